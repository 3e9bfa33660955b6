//! The `site` backend's out-of-band power from `backend/redfish` and `backend/pdu`: one Redfish service per
//! node (the URL a template of its names) at the hard level, one PDU outlet per node at the very_hard level.

use hal::power::command::substitute;
use hal::power::redfish::{AuthMode, RedfishPower, RedfishSettings, RedfishTarget, ResetType};
use hal::power::snmp::client::{Security, V3User};
use hal::power::snmp::models::OutletModel;
use hal::power::snmp::usm::{AuthProtocol, PrivProtocol};
use hal::power::snmp::{Outlet, PduSettings, SnmpPower};
use hal::{NodeId, NodeInfo, PowerLevel};
use kadeploy::config::{PduKeys, RedfishKeys};
use std::collections::BTreeMap;
use std::time::Duration;

/// Redfish at the hard level for every node of the cluster.
pub(super) fn redfish_power(
    nodes: &[NodeInfo],
    keys: &RedfishKeys,
) -> anyhow::Result<RedfishPower> {
    let targets = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                NodeId(i as u32),
                RedfishTarget {
                    base: substitute(&keys.url, n),
                    user: keys.user.clone(),
                    password: keys.password.clone(),
                    system: keys.system.as_ref().map(|s| substitute(s, n)),
                },
            )
        })
        .collect();
    let settings = RedfishSettings {
        auth: AuthMode::parse(&keys.auth).unwrap_or(AuthMode::Session),
        reboot: ResetType::parse(&keys.reboot).unwrap_or(ResetType::ForceRestart),
        timeout: keys.timeout,
        level: PowerLevel::Hard,
    };
    Ok(RedfishPower::new(targets, settings)?)
}

/// PDU outlets at the very_hard level for the nodes of the cluster that `backend/pdu/outlets` names
/// (the other nodes answer `Config`: they have no outlet).
pub(super) fn pdu_power(nodes: &[NodeInfo], keys: &PduKeys) -> anyhow::Result<SnmpPower> {
    let model = OutletModel::builtin(&keys.model)
        .ok_or_else(|| anyhow::anyhow!("backend/pdu/model: unknown model {:?}", keys.model))?;
    let security = match (&keys.v3, &keys.community) {
        (Some(v3), _) => Security::V3(V3User {
            user: v3.user.clone(),
            auth: AuthProtocol::parse(&v3.auth)
                .ok_or_else(|| anyhow::anyhow!("backend/pdu/v3/auth: {:?}", v3.auth))?,
            auth_password: v3.auth_password.clone(),
            privacy: v3.priv_password.clone().map(|p| (PrivProtocol::Aes128, p)),
            context: v3.context.clone(),
        }),
        (None, Some(community)) => Security::V2c {
            community: community.clone(),
        },
        (None, None) => anyhow::bail!("backend/pdu: neither community_file nor v3"),
    };
    let outlets: BTreeMap<NodeId, Outlet> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let (host, outlet) = keys.outlets.get(&n.name)?;
            Some((
                NodeId(i as u32),
                Outlet {
                    host: host.clone(),
                    port: keys.port,
                    outlet: *outlet,
                },
            ))
        })
        .collect();
    let settings = PduSettings {
        model,
        security,
        timeout: keys.timeout,
        retries: keys.retries,
        level: PowerLevel::VeryHard,
        off_on_delay: Duration::from_secs(2),
    };
    SnmpPower::new(outlets, settings).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod snmpsim;

#[cfg(test)]
mod tests {
    use super::*;
    use hal::{ErrorKind, Power, PowerAction};

    fn nodes() -> Vec<NodeInfo> {
        (1..=2)
            .map(|i| NodeInfo {
                name: format!("node-{i}.lab"),
                address: std::net::IpAddr::from([127, 0, 0, i]),
            })
            .collect()
    }

    /// A node that `backend/pdu/outlets` does not name has no outlet; only very_hard is served.
    #[tokio::test]
    async fn pdu_outlets_come_from_the_keys() {
        let keys = PduKeys {
            model: "raritan".into(),
            port: 1,
            community: Some("private".into()),
            v3: None,
            timeout: Duration::from_millis(50),
            retries: 0,
            outlets: BTreeMap::from([("node-2.lab".to_string(), ("127.0.0.1".to_string(), 4))]),
        };
        let power = pdu_power(&nodes(), &keys).unwrap_or_else(|e| panic!("{e}"));
        let out = power.status(&[NodeId(0), NodeId(1)]).await;
        let failures = out.failures();
        assert_eq!(
            failures[0].1.kind,
            ErrorKind::Config,
            "node-1 has no outlet"
        );
        assert_eq!(
            failures[1].1.kind,
            ErrorKind::Unreachable,
            "node-2's PDU is silent"
        );
        let hard = power
            .power(PowerAction::Reboot, PowerLevel::Hard, &[NodeId(1)])
            .await;
        assert_eq!(hard.failures()[0].1.kind, ErrorKind::NotSupported);
    }

    /// The URL template names each node's service; a refused connection is unreachable.
    #[tokio::test]
    async fn redfish_targets_follow_the_url_template() {
        let keys = RedfishKeys {
            url: "https://HOSTNAME_SHORT-bmc.invalid:1".into(),
            user: "root".into(),
            password: "pw".into(),
            auth: "basic".into(),
            reboot: "PowerCycle".into(),
            system: None,
            timeout: Duration::from_secs(2),
        };
        let power = redfish_power(&nodes(), &keys).unwrap_or_else(|e| panic!("{e}"));
        let out = power.status(&[NodeId(1)]).await;
        let err = out.failures()[0].1.clone();
        assert_eq!(err.kind, ErrorKind::Unreachable, "{err}");
        assert!(err.message.contains("node-2-bmc.invalid"), "{err}");
    }
}
