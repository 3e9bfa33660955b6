//! `backend/pdu/v3/context` against snmpsim (PyPI `snmpsim`), an independent SNMP agent that picks the
//! device a v3 request addresses by its contextName: the PDU built from the keys reads the outlets of
//! the recording named by the context, and a request without it reaches no device.

use super::pdu_power;
use hal::testing::snmpsim::{V3_AUTH_KEY, V3_PRIV_KEY, V3_USER};
use hal::{NodeId, NodeInfo, Outcome, Power, PowerState};
use kadeploy::config::{PduKeys, PduV3Keys};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const OUTLET_CTL: &str = "1.3.6.1.4.1.318.1.1.4.4.2.1.3";

/// snmpsim serving an APC recording (outlet 1 on, outlet 2 off) under the context `apc-rack-1`.
struct Snmpsim(hal::testing::snmpsim::Snmpsim);

impl Snmpsim {
    fn start() -> Snmpsim {
        let rec = format!(
            "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.318.1.3.4.5\n{OUTLET_CTL}.1|2|1\n{OUTLET_CTL}.2|2|2\n"
        );
        Snmpsim(
            hal::testing::snmpsim::Snmpsim::start("kadeploy3d", &[("apc-rack-1.snmprec", rec)])
                .expect(
                    "snmpsim-command-responder started (scripts/install-deps.sh: PyPI snmpsim)",
                ),
        )
    }

    /// The `backend/pdu` keys of the two nodes' outlets, with `context`.
    fn keys(&self, context: &str) -> PduKeys {
        PduKeys {
            model: "apc".into(),
            port: self.0.port,
            community: None,
            v3: Some(PduV3Keys {
                user: V3_USER.into(),
                auth: "sha".into(),
                auth_password: V3_AUTH_KEY.into(),
                priv_password: Some(V3_PRIV_KEY.into()),
                context: context.into(),
            }),
            timeout: Duration::from_millis(700),
            retries: 1,
            outlets: (1..=2)
                .map(|i| (format!("node-{i}.lab"), ("127.0.0.1".to_string(), i)))
                .collect::<BTreeMap<_, _>>(),
        }
    }
}

fn nodes() -> Vec<NodeInfo> {
    (1..=2)
        .map(|i| NodeInfo {
            name: format!("node-{i}.lab"),
            address: std::net::IpAddr::from([127, 0, 0, i]),
        })
        .collect()
}

fn states(out: &hal::Outcomes<PowerState>) -> Vec<Option<PowerState>> {
    out.iter()
        .map(|(_, o)| match o {
            Outcome::Ok(s) => Some(*s),
            Outcome::Err(_) => None,
        })
        .collect()
}

/// The context of `backend/pdu/v3/context` reaches the agent: with it, snmpsim answers from the recording
/// it names; without it, no device answers. Before, the key was refused as unknown and every v3 request
/// went out with an empty context, so such a PDU could not be driven at all.
#[tokio::test(flavor = "multi_thread")]
async fn the_v3_context_of_the_keys_selects_snmpsims_device() {
    let sim = tokio::task::spawn_blocking(Snmpsim::start)
        .await
        .expect("snmpsim started");
    let power = pdu_power(&nodes(), &sim.keys("apc-rack-1")).unwrap_or_else(|e| panic!("{e}"));
    let both = [NodeId(0), NodeId(1)];
    // snmpsim indexes its data before it answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = states(&power.status(&both).await);
    while seen.contains(&None) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        seen = states(&power.status(&both).await);
    }
    assert_eq!(
        seen,
        [Some(PowerState::On), Some(PowerState::Off)],
        "snmpsim log: {}",
        sim.0.log()
    );
    let without = pdu_power(&nodes(), &sim.keys("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(states(&without.status(&both).await), [None, None]);
}
