//! Translations of Kadeploy 3.3 behaviours: `set_vlan`, the custom broadcast, unsupported implementations and
//! fsa partition maps.

use super::*;
use crate::engine::exec::local::CustomBroadcast;
use crate::engine::slot::{MacroKind, SetDeploymentEnvKind};
use crate::engine::step::VlanRequest;
use hal::FsaPart;

/// `set_vlan` moves the nodes to the job's VLAN, or back to the default one; nothing without a VLAN.
#[test]
fn set_vlan_uses_the_jobs_vlan_or_the_default_one() {
    assert_eq!(
        action(Step::SetVlan { default: false }, &job()),
        Action::Nothing
    );
    let vlan = Job {
        vlan: Some(VlanRequest {
            id: "12".into(),
            user: "alice".into(),
        }),
        ..job()
    };
    assert_eq!(
        action(Step::SetVlan { default: false }, &vlan),
        Action::SetVlan {
            id: "12".into(),
            user: "alice".into()
        }
    );
    assert_eq!(
        action(Step::SetVlan { default: true }, &vlan),
        Action::SetVlan {
            id: "DEFAULT".into(),
            user: "alice".into()
        }
    );
    let config = server().vlan.unwrap_or_else(|| panic!("vlan"));
    assert_eq!(
        config.command(&["n-1.site", "n-2.site"], "12", "alice"),
        "kavlan  -m n-1.site -m n-2.site -s -i 12 -u alice"
    );
    assert_eq!(
        config.command(&["n"], "3", "a b';x"),
        r"kavlan  -m n -s -i 3 -u 'a b'\'';x'",
        "a user name that is not plain is quoted"
    );
    assert_eq!(
        config.host_in_vlan("n-1.site.fr", "12"),
        "n-1-kavlan-12.site.fr"
    );
}

/// The custom broadcast runs the cluster's command with Kadeploy's substitutions; a cluster without one
/// refuses its nodes with a clear error, as do implementations this deployer does not have.
#[test]
fn the_custom_broadcast_runs_the_clusters_command() {
    assert_eq!(
        action(Step::SendEnvironmentCustom, &job()),
        Action::CustomBroadcast(CustomBroadcast {
            template: "bcast -f ENVFILE -n NODEFILE -c 'DECOMPRESS' -s 'TAKTUK_CONNECTOR'".into(),
            envfile: "/var/lib/kadeploy/envs/debian12-min.tgz".into(),
            decompress: "tar  -C /mnt/dest -xz".into(),
            connector: "ssh -q".into(),
        })
    );
    let to_file = Job {
        broadcast_to_file: true,
        ..job()
    };
    let Action::CustomBroadcast(b) = action(Step::SendEnvironmentCustom, &to_file) else {
        panic!("a custom broadcast")
    };
    assert_eq!(b.decompress, "cat - > /rambin/_KATMP_debian12-min.tgz");
    let bare = ClusterConfig {
        broadcast_cmd: None,
        ..cluster()
    };
    let Action::Refuse(why) = action_with(Step::SendEnvironmentCustom, &job(), &bare) else {
        panic!("a refusal")
    };
    assert!(why.contains("localops/broadcastenv/cmd"), "{why}");
    assert_eq!(
        action(
            Step::Unsupported(MacroKind::SetDeploymentEnv(SetDeploymentEnvKind::Nfsroot)),
            &job()
        ),
        Action::refuse("SetDeploymentEnvNfsroot is not supported by this deployer")
    );
}

/// An fsa image restores its map: every entry when multipart, the first id to the deploy partition
/// otherwise (before, id 0 to the deploy partition whatever the map said).
#[test]
fn fsa_images_restore_their_partition_map() {
    let parts = vec![
        FsaPart {
            id: 1,
            device: "/dev/sda1".into(),
        },
        FsaPart {
            id: 2,
            device: "/dev/sda5".into(),
        },
    ];
    let mut env = Environment::sample_tarball(1 << 20, 2.0);
    env.image.kind = ImageKind::Fsa;
    env.fsa_partitions = parts.clone();
    env.multipart = true;
    let fsa = |env: Environment| Job {
        environment: Some(env),
        broadcast_to_file: true,
        ..job()
    };
    let written = |job: &Job| match action(Step::DecompressEnvironment, job) {
        Action::Run(Operation::WriteImage { fsa_parts, .. }) => fsa_parts,
        other => panic!("{other:?}"),
    };
    assert_eq!(written(&fsa(env.clone())), parts);
    env.multipart = false;
    assert_eq!(
        written(&fsa(env.clone())),
        vec![FsaPart {
            id: 1,
            device: "/dev/sda3".into()
        }]
    );
    env.fsa_partitions.clear();
    assert_eq!(
        written(&fsa(env)),
        Vec::new(),
        "id 0 to the deploy partition"
    );
}
