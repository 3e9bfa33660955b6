//! Typed submissions: parsing (values, defaults, Kadeploy's error numbers and the order in which errors
//! are found) and the per-cluster engine requests of a submission spanning two clusters.

use super::*;
use crate::auth::Caller;
use crate::fetch::EnvFiles;
use crate::nodeset::NodeIndex;
use crate::params::Params;
use crate::store::Store;
use hal::PowerLevel;
use kadeploy::config::{VlanConfig, load_dir};
use kadeploy::engine::custom::CustomAction;
use kadeploy::engine::{PowerOperation, RebootKind};
use serde_json::json;
use std::net::SocketAddr;

/// The sample configuration's clusters (one: `sim`, 300 nodes).
fn sample_clusters() -> Vec<ClusterConfig> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../simulator/config/sim300");
    load_dir(std::path::Path::new(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .config
        .clusters
}

/// Two clusters: `a-[1-3].x` (cluster 0) and `b-[1-2].y` (cluster 1).
fn two_cluster_index() -> NodeIndex {
    let mut nodes = NodeIndex::new();
    for i in 1..=3u32 {
        nodes.insert(format!("a-{i}.x"), (0, NodeId(i - 1)));
    }
    for i in 1..=2u32 {
        nodes.insert(format!("b-{i}.y"), (1, NodeId(i - 1)));
    }
    nodes
}

struct Fixture {
    nodes: NodeIndex,
    store: Store,
    almighty: Vec<String>,
}

impl Fixture {
    /// Two clusters, an empty database but for root's `debian12` version 1 and bob's private `secret`.
    fn new() -> Fixture {
        let store = Store::in_memory().unwrap_or_else(|e| panic!("store: {e}"));
        let env = |name: &str, visibility: &str| {
            let v = json!({"name": name, "version": 1, "visibility": visibility, "os": "linux",
                "image": {"file": "server:///envs/x.tgz", "kind": "tar", "compression": "gzip"},
                "boot": {"kernel": "/vmlinuz"}, "filesystem": "ext4"});
            kadeploy::envdesc::EnvDesc::from_value(&v)
                .unwrap_or_else(|e| panic!("{e}"))
                .0
        };
        store
            .env_add("root", &env("debian12", "shared"), &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .env_add("bob", &env("secret", "private"), &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        Fixture {
            nodes: two_cluster_index(),
            store,
            almighty: vec!["root".into()],
        }
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            nodes: &self.nodes,
            verbosity: 3,
            almighty: &self.almighty,
            store: &self.store,
            vlan: None,
        }
    }
}

fn caller(user: &str) -> Caller {
    Caller {
        user: user.into(),
        almighty: user == "root",
        peer: SocketAddr::from(([127, 0, 0, 1], 4000)),
    }
}

fn params(v: serde_json::Value) -> Params {
    Params(v.as_object().cloned().unwrap_or_default())
}

fn deployment(f: &Fixture, user: &str, v: serde_json::Value) -> Result<Deployment, RequestError> {
    Deployment::parse(&f.ctx(), &caller(user), &params(v))
}

fn reboot(f: &Fixture, v: serde_json::Value) -> Result<Reboot, RequestError> {
    Reboot::parse(&f.ctx(), &caller("root"), &params(v))
}

/// Kadeploy's error number and message.
fn refusal<T: std::fmt::Debug>(r: Result<T, RequestError>) -> (u32, String) {
    let e = r.expect_err("refused");
    (e.kind.code(), e.detail)
}

#[test]
fn a_deployment_is_read_once_into_its_fields() {
    let f = Fixture::new();
    let d = deployment(
        &f,
        "bob",
        json!({"nodes": ["b-[1-2]", "a-1"], "environment": {"name": "debian12", "user": "root"},
            "verbose_level": "5", "block_device": "/dev/sdb", "deploy_partition": "", "boot_partition": 2,
            "reformat_tmp_partition": "ext4", "disable_kexec": true, "timeout_reboot_kexec": "30",
            "breakpoint": "BroadcastEnv:send_environment", "ssh_authorized_keys": "server:///k",
            "pxe": {"profile": "p", "files": ["server:///f", 3]}, "force": "false", "debug": true,
            "client": {"bad": 1},
            "custom_operations": {"SetDeploymentEnv": {"format_swap_part": {"pre-ops": [
                {"action": "send", "name": "s", "file": "/c/f", "destination": "/tmp"}]}}}}),
    )
    .expect("a valid deployment");
    let c = &d.common;
    assert_eq!(c.nodes, ["a-1.x", "b-1.y", "b-2.y"]);
    assert_eq!(c.verbose, 5);
    assert!(
        c.debug && c.force && !c.dry_run,
        "`force` is present: a toggle"
    );
    assert_eq!(
        c.breakpoint.as_deref(),
        Some("BroadcastEnv:send_environment")
    );
    assert_eq!(c.requester.user, "bob");
    assert_eq!(
        c.requester.client.clone().map_err(|e| e.kind.code()),
        Err(4),
        "a broken `client` is refused only when a file needs it"
    );
    let op = &c.custom_operations["SetDeploymentEnv"]["format_swap_part"].pre[0];
    assert!(matches!(&op.action, CustomAction::Send { file, .. } if file == "/c/f"));
    assert_eq!(
        (
            d.environment.owner.as_str(),
            d.environment.desc.name.as_str()
        ),
        ("root", "debian12")
    );
    assert!(d.environment.id.is_some());
    assert_eq!(d.environment.cache_version(), "debian12/1");
    assert_eq!(d.block_device.as_deref(), Some("/dev/sdb"));
    assert_eq!(d.deploy_partition, Some(None), "empty: the whole disk");
    assert_eq!(d.boot_partition, Some(2));
    assert_eq!(d.reformat_tmp.as_deref(), Some("ext4"));
    assert!(d.disable_kexec && !d.disable_bootloader_install);
    assert!(d.timeout_reboot_kexec.is_some() && d.timeout_reboot_classical.is_none());
    assert_eq!(d.ssh_key_file.as_deref(), Some("server:///k"));
    assert_eq!(
        d.pxe,
        Pxe {
            profile: Some("p".into()),
            singularities: None,
            files: vec![Some("server:///f".into()), None]
        }
    );
    let defaults = deployment(
        &f,
        "root",
        json!({"nodes": "a-2", "environment": {"name": "debian12"}}),
    )
    .expect("defaults");
    assert_eq!(defaults.common.verbose, 3, "verbosity/clients");
    assert!(!defaults.common.force && !defaults.common.debug);
    assert_eq!(defaults.deploy_partition, None);
    assert!(
        defaults
            .common
            .requester
            .client
            .clone()
            .is_ok_and(|c| c.is_none())
    );
}

#[test]
fn deployment_errors_come_in_kadeploys_order() {
    let f = Fixture::new();
    let env = json!({"name": "debian12"});
    let cases = [
        (json!({}), (12, "Parameter 'nodes': is mandatory")),
        (
            json!({"nodes": 3}),
            (4, "Parameter 'nodes': should be an Array"),
        ),
        (
            json!({"nodes": "zz", "verbose_level": 9}),
            (2, "The node 'zz' does not exist"),
        ),
        (
            json!({"nodes": "a-1", "verbose_level": 9, "vlan": "1"}),
            (4, "Parameter 'verbose_level': must have a value in (0..5)"),
        ),
        (
            json!({"nodes": "a-1", "vlan": "1", "custom_operations": 3}),
            (
                9,
                "VLAN management is disabled (network/vlan is not configured)",
            ),
        ),
        (
            json!({"nodes": "a-1", "custom_operations": 3, "environment": 3}),
            (8, "Parameter 'custom_operations': should be a Hash"),
        ),
        (
            json!({"nodes": "a-1", "environment": {"name": "nope"}, "breakpoint": "a b"}),
            (7, "the environment nope, of root does not exist"),
        ),
        (
            json!({"nodes": "a-1", "breakpoint": "a b"}),
            (4, "Invalid breakpoint 'a b' (Macro or Macro:micro)"),
        ),
        (
            json!({"nodes": "a-1", "block_device": {}}),
            (12, "Parameter 'environment': is mandatory"),
        ),
        (
            json!({"nodes": "a-1", "environment": env, "block_device": {}, "deploy_partition": "x"}),
            (4, "Parameter 'block_device': should be a String"),
        ),
        (
            json!({"nodes": "a-1", "environment": env, "deploy_partition": "x", "boot_partition": "y"}),
            (
                4,
                "Parameter 'deploy_partition': should be a partition number",
            ),
        ),
        (
            json!({"nodes": "a-1", "environment": env, "automata": 3, "pxe": 3}),
            (4, "Parameter 'automata': should be a Hash"),
        ),
        (
            json!({"nodes": "a-1", "environment": env, "pxe": 3}),
            (4, "Parameter 'pxe': should be a Hash"),
        ),
        (
            json!({"nodes": "a-1", "environment": {"name": "debian12", "version": 4294967297u64}}),
            (
                4,
                "Parameter 'environment/version': should be an Integer from 0 to 4294967295",
            ),
        ),
        (
            json!({"nodes": "a-1", "environment": {"kind": "weird"}}),
            (
                4,
                "Parameter 'environment/kind': must have a value in (anonymous, database)",
            ),
        ),
    ];
    for (request, (code, message)) in cases {
        let got = refusal(deployment(&f, "root", request.clone()));
        assert_eq!(got, (code, message.to_string()), "{request}");
    }
}

#[test]
fn private_environments_are_their_owners_and_anonymous_ones_need_a_reachable_image() {
    let f = Fixture::new();
    let secret = json!({"nodes": "a-1", "environment": {"name": "secret", "user": "bob"}});
    assert!(deployment(&f, "bob", secret.clone()).is_ok());
    assert!(deployment(&f, "root", secret.clone()).is_ok(), "almighty");
    assert_eq!(refusal(deployment(&f, "carol", secret)).0, 7);
    let anonymous = |file: &str| {
        json!({"nodes": "a-1", "environment": {"kind": "anonymous", "name": "anon", "version": 1,
            "os": "linux", "image": {"file": file, "kind": "tar", "compression": "gzip"},
            "boot": {"kernel": "/vmlinuz"}, "filesystem": "ext4"}})
    };
    let d = deployment(&f, "carol", anonymous("http://h/x.tgz")).expect("anonymous");
    assert_eq!(
        (d.environment.id, d.environment.db_id()),
        (None, -1),
        "anonymous"
    );
    assert_eq!(d.environment.owner, "carol");
    assert_eq!(d.environment.cache_version(), "anon");
    assert_eq!(refusal(deployment(&f, "carol", anonymous("/x.tgz"))).0, 3);
}

#[test]
fn reboots_and_power_operations_are_typed() {
    let f = Fixture::new();
    let r = reboot(
        &f,
        json!({"nodes": "a-1", "kind": "recorded_env", "environment": {"name": "debian12"},
            "deploy_partition": 2, "level": "very_hard", "check_destructive": true}),
    )
    .expect("a recorded_env reboot");
    assert_eq!(r.kind, RebootKind::RecordedEnv);
    assert_eq!(r.deploy_partition.as_deref(), Some("2"));
    assert_eq!(r.level, PowerLevel::VeryHard);
    assert_eq!(r.step1(), "RecordedEnv");
    let cases = [
        (
            json!({"nodes": "a-1"}),
            (12, "Parameter 'kind': is mandatory"),
        ),
        (
            json!({"nodes": "a-1", "kind": "x"}),
            (
                4,
                "Parameter 'kind': must have a value in (set_pxe, simple, deploy_env, recorded_env)",
            ),
        ),
        (
            json!({"nodes": "a-1", "kind": "set_pxe", "level": "x"}),
            (
                4,
                "Parameter 'level': must have a value in (soft, hard, very_hard)",
            ),
        ),
        (
            json!({"nodes": "a-1", "kind": "set_pxe"}),
            (
                12,
                "You must specify a PXE boot profile when rebooting using set_pxe",
            ),
        ),
        (
            json!({"nodes": "a-1", "kind": "recorded_env", "environment": {"name": "debian12"}}),
            (
                12,
                "You must specify a partition when rebooting using recorded_env",
            ),
        ),
        (
            json!({"nodes": "a-1", "kind": "recorded_env", "deploy_partition": "2"}),
            (
                12,
                "You must specify an environment when rebooting using recorded_env",
            ),
        ),
        (
            json!({"nodes": "a-1", "kind": "simple", "level": "x", "ssh_authorized_keys": 3}),
            (
                4,
                "Parameter 'level': must have a value in (soft, hard, very_hard)",
            ),
        ),
    ];
    for (request, (code, message)) in cases {
        assert_eq!(
            refusal(reboot(&f, request.clone())),
            (code, message.to_string()),
            "{request}"
        );
    }
    let power = |v: serde_json::Value, query: bool| {
        Power::parse(&f.ctx(), &caller("root"), &params(v), query)
    };
    let p = power(json!({"nodes": "b-1", "status": "on"}), false).expect("a power operation");
    assert_eq!(
        (p.operation, p.level),
        (PowerOperation::On, PowerLevel::Soft)
    );
    let p = power(json!({"nodes": "b-1"}), true).expect("a status query");
    assert_eq!((p.operation, p.step1()), (PowerOperation::Status, "Status"));
    assert_eq!(
        refusal(power(json!({"nodes": "b-1"}), false)),
        (12, "Parameter 'status': is mandatory".to_string())
    );
    assert_eq!(
        refusal(power(
            json!({"nodes": "b-1", "breakpoint": "a b", "status": "x"}),
            false
        ))
        .1,
        "Invalid breakpoint 'a b' (Macro or Macro:micro)",
        "power operations check the breakpoint too, before the status"
    );
}

/// A submission spanning two clusters takes each part's values from that part's own cluster: the image
/// size its backend assumes, the deploy partition its rights name, the state of its nodes after a
/// `recorded_env` reboot. Before the typed submissions, all three came from the first cluster.
#[test]
fn each_part_takes_its_own_clusters_values() {
    let f = Fixture::new();
    let sample = sample_clusters();
    let mut first = sample[0].clone();
    first.name = "a".into();
    let mut second = first.clone();
    second.name = "b".into();
    second.partitioning.block_device = "/dev/vdb".into();
    second.partitioning.deploy = 7;
    second.partitioning.prod = Some(4);
    assert_eq!(first.partitioning.prod, Some(2));
    let a = PartCluster {
        config: &first,
        image_size: 1000,
        image_ratio: 2.0,
    };
    let b = PartCluster {
        config: &second,
        image_size: 5000,
        image_ratio: 3.0,
    };
    let d = deployment(
        &f,
        "root",
        json!({"nodes": ["a-1", "b-1"], "environment": {"name": "debian12"}}),
    )
    .expect("deployment");
    assert_eq!(d.partition_on(a.config), "/dev/sda3");
    assert_eq!(d.partition_on(b.config), "/dev/vdb7");
    let files = Fetched {
        environment: Some(EnvFiles {
            image: "/cache/image".into(),
            preinstall: None,
            postinstalls: Vec::new(),
        }),
        ssh_key: Some("ssh-ed25519 AAAA".into()),
        ..Fetched::default()
    };
    let submission = Submission::Deployment(d);
    let image = |cluster: PartCluster<'_>| match submission.engine_request(
        &files,
        cluster,
        vec![NodeId(0)],
    ) {
        EngineRequest::Deploy(r) => {
            assert_eq!(r.environment.image.path, "/cache/image");
            assert_eq!(r.ssh_key.as_deref(), Some("ssh-ed25519 AAAA"));
            (
                r.environment.image.size,
                r.environment.image.uncompressed_size,
            )
        }
        _ => panic!("a deployment"),
    };
    assert_eq!(image(a), (1000, Some(2000)));
    assert_eq!(
        image(b),
        (5000, Some(15000)),
        "the second cluster's backend"
    );
    let recorded = Submission::Reboot(
        reboot(
            &f,
            json!({"nodes": ["a-1", "b-1"], "kind": "recorded_env", "environment": {"name": "debian12"},
                "deploy_partition": "4"}),
        )
        .expect("reboot"),
    );
    assert_eq!(recorded.ok_state(a.config), "recorded_env");
    assert_eq!(
        recorded.ok_state(b.config),
        "prod_env",
        "partition 4 is the second cluster's production partition"
    );
}

/// `vlan` is read as Kadeploy 3.3 does (before, every `vlan` was refused with error 9): configured
/// VLAN management, a plain id (it goes into `set_cmd`'s command line: `5;reboot` is refused before any
/// command runs), each node's name in the VLAN resolving; and `pxe/singularities` is read.
#[test]
fn vlans_and_singularities_are_read_as_kadeploy_does() {
    let f = Fixture::new();
    let vlan = VlanConfig {
        hostname_suffix: "-kavlan-VLAN_ID".into(),
        set_cmd: "kavlan NODES -s -i VLAN_ID -u USER".into(),
    };
    let ctx = Context {
        vlan: Some(&vlan),
        ..f.ctx()
    };
    let parse = |v: serde_json::Value| Reboot::parse(&ctx, &caller("root"), &params(v));
    assert_eq!(
        refusal(parse(
            json!({"nodes": "a-1", "kind": "simple", "vlan": "3"})
        )),
        (9, "Cannot resolv a-1-kavlan-3.x".into())
    );
    for evil in ["5;reboot", "5 6", "$(id)"] {
        assert_eq!(
            refusal(parse(
                json!({"nodes": "a-1", "kind": "simple", "vlan": evil})
            )),
            (9, format!("Invalid VLAN id {evil:?}"))
        );
    }
    let r = reboot(
        &f,
        json!({"nodes": "a-1", "kind": "set_pxe",
            "pxe": {"profile": "p", "singularities": {"a-1.x": "7", "a-2": 8}}}),
    )
    .expect("a valid reboot");
    let expected: std::collections::BTreeMap<String, String> = [
        ("a-1.x".to_string(), "7".to_string()),
        ("a-2".to_string(), "8".to_string()),
    ]
    .into();
    assert_eq!(r.pxe.singularities, Some(expected));
    let engine = r.pxe.for_engine("alice").expect("a profile");
    assert_eq!(engine.user, "alice");
    assert_eq!(
        refusal(reboot(
            &f,
            json!({"nodes": "a-1", "kind": "set_pxe", "pxe": {"profile": "p", "singularities": [1]}})
        )),
        (4, "Parameter 'pxe/singularities': should be a Hash".into())
    );
}
