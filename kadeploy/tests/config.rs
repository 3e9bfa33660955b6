//! Configuration loading: the simulated 300-node cluster, and error messages that name the file and the key.

use hal::PowerLevel;
use kadeploy::config::{ClusterEntry, ClusterSpecific, ServerConfig};
use kadeploy::config::{
    ConfigError, Parsed, default_automata, load_dir, parse_cluster_specific_with, parse_clusters,
    parse_commands, parse_server,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The sample configuration directory of the simulator.
fn sim300() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulator/config/sim300")
}

/// A minimal valid cluster file, with `extra` appended at top level.
fn cluster_text(extra: &str) -> String {
    format!(
        "partitioning:\n  block_device: /dev/sda\n  partitions: {{swap: 1, deploy: 3}}\n  script: parted\n\
         boot:\n  install_bootloader: grub\n  kernels:\n    deploy: {{vmlinuz: vmlinuz, initrd: initrd}}\n{extra}"
    )
}

/// Parses a cluster file whose scripts are found in memory.
fn cluster(text: &str) -> Result<Parsed<ClusterSpecific>, ConfigError> {
    parse_cluster_specific_with(
        text,
        "c.conf",
        Path::new("/etc/kadeploy3"),
        &mut |path: &Path| Ok(format!("#!/bin/sh\n# {}\n", path.display())),
    )
}

/// The message of an error that must happen.
fn message<T: std::fmt::Debug>(result: Result<T, ConfigError>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e.to_string(),
    }
}

fn server(text: &str) -> Result<ServerConfig, ConfigError> {
    parse_server(text, "server.conf").map(|parsed| parsed.value)
}

const PXE: &str =
    "pxe:\n  dhcp:\n    repository: /tftp\n    userfiles: {directory: u, max_size: 10}\n";

#[test]
fn loads_the_sim300_directory() {
    let loaded = load_dir(&sim300()).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let server = &loaded.config.server;
    assert_eq!((server.reboot_window, server.check_window), (100, 100));
    assert_eq!(server.reboot_window_sleep, 10.0);
    assert_eq!(server.localboot_method, "GrubPXE");
    assert_eq!(server.mkfs_args.keys().collect::<Vec<_>>(), ["ext4"]);
    let [sim] = loaded.config.clusters.as_slice() else {
        panic!("one cluster expected");
    };
    assert_eq!(sim.name, "sim");
    assert_eq!(sim.nodes.len(), 300);
    assert_eq!(sim.nodes[0].name, "node-1.sim.kadeploy");
    assert_eq!(sim.nodes[0].address.to_string(), "10.16.0.1");
    assert_eq!(sim.nodes[249].address.to_string(), "10.16.0.250");
    assert_eq!(sim.nodes[299].name, "node-300.sim.kadeploy");
    assert_eq!(sim.nodes[299].address.to_string(), "10.16.1.50");
    let names: Vec<&str> = sim.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        kadeploy::nodelist::fold(&names),
        "node-[1-300].sim.kadeploy"
    );
    let p = &sim.partitioning;
    assert_eq!(
        (p.block_device.as_str(), p.swap, p.prod, p.deploy, p.tmp),
        ("/dev/sda", Some(1), Some(2), 3, Some(5))
    );
    assert!(p.script.starts_with("#!/bin/sh") && p.script.contains("partprobe"));
    assert!(sim.boot.install_bootloader.contains("grub-install"));
    assert_eq!(sim.boot.sleep_time_before_ping, 20.0);
    assert_eq!(sim.boot.supported_fs, ["ext2", "ext3", "ext4", "vfat"]);
    assert_eq!(sim.timeout_reboot.eval(1.0), Ok(200.0));
    assert!(
        (sim.timeout_reboot.eval(300.0).unwrap_or(0.0) - (200.0 + 20.0 * 300f64.ln())).abs() < 1e-9
    );
    assert_eq!(sim.timeout_kexec.eval(300.0), Ok(60.0));
    let kinds = |slot: &[kadeploy::config::MacroInstance]| {
        slot.iter()
            .map(|i| (i.kind.to_string(), i.retries, i.timeout))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&sim.automata.set_deployment_env),
        [("Untrusted".into(), 2, 400.0)]
    );
    assert_eq!(
        kinds(&sim.automata.broadcast_env),
        [("Kascade".into(), 2, 600.0)]
    );
    assert_eq!(
        kinds(&sim.automata.boot_new_env),
        [("Kexec".into(), 0, 150.0), ("Classical".into(), 1, 400.0)]
    );
    assert_eq!(sim.reboot_levels, PowerLevel::ALL);
    let ops = &loaded.remoteops["sim"];
    assert!(ops.reboot[0].cmd.ends_with("root@HOSTNAME_FQDN reboot"));
    assert!(
        ops.reboot[1].cmd.contains("-H HOSTNAME_SHORT-bmc")
            && ops.reboot[1].cmd.ends_with("chassis power cycle")
    );
    assert_eq!(ops.power_on.len(), 1);
    assert_eq!(
        ops.power_off.iter().map(|op| op.name).collect::<Vec<_>>(),
        [PowerLevel::Soft, PowerLevel::Hard]
    );
    assert!(ops.power_status.is_some() && ops.console.is_some());
    assert!(loaded.commands["node-1.sim.kadeploy"].contains_key("reboot_very_hard"));
}

#[test]
fn missing_mandatory_keys_name_file_and_key() {
    assert_eq!(
        message(server("rights: {kind: db}\n")),
        "server.conf: pxe/dhcp: mandatory field is missing"
    );
    assert_eq!(
        message(server(
            "pxe:\n  dhcp:\n    userfiles: {directory: u, max_size: 10}\n"
        )),
        "server.conf: pxe/dhcp/repository: mandatory field is missing"
    );
    let no_block_device = cluster_text("").replace("  block_device: /dev/sda\n", "");
    assert_eq!(
        message(cluster(&no_block_device)),
        "c.conf: partitioning/block_device: mandatory field is missing"
    );
    let no_swap = cluster_text("").replace("swap: 1, ", "");
    assert_eq!(
        message(cluster(&no_swap)),
        "c.conf: partitioning/partitions/swap: mandatory field is missing"
    );
    let no_swap_ok = no_swap.replace("  partitions:", "  disable_swap: true\n  partitions:");
    assert_eq!(
        cluster(&no_swap_ok).map(|c| c.value.partitioning.swap).ok(),
        Some(None)
    );
    assert_eq!(
        message(parse_clusters(
            "clusters:\n  - {name: c, conf_file: c.conf}\n",
            "clusters.conf"
        )),
        "clusters.conf: clusters[0]/nodes: mandatory field is missing"
    );
}

#[test]
fn server_defaults_and_ignored_database() {
    let text = format!("database: {{kind: mysql, host: db}}\n{PXE}");
    let parsed = parse_server(&text, "server.conf").unwrap_or_else(|e| panic!("{e}"));
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let s = parsed.value;
    assert_eq!(
        (
            s.ssh_port,
            s.test_deploy_env_port,
            s.reboot_window,
            s.check_window
        ),
        (22, 25300, 50, 50)
    );
    assert_eq!((s.verbosity, s.localboot_method.as_str()), (3, "PXElinux"));
    assert_eq!(
        (s.extraction_dir.as_str(), s.rambin_dir.as_str()),
        ("/mnt/dest", "/rambin")
    );
    let text = format!(
        "{PXE}verbosity: {{clients: 7}}\nunknown_top: 1\nwindows: {{check: {{size: 5, extra: 1}}}}\n"
    );
    assert_eq!(
        message(server(&text)),
        "server.conf: verbosity/clients: invalid level 7 (expected 0 to 4)"
    );
    let text = format!("{PXE}unknown_top: 1\nwindows: {{check: {{size: 5, extra: 1}}}}\n");
    let parsed = parse_server(&text, "server.conf").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        parsed.warnings,
        [
            "Unused field unknown_top in server.conf",
            "Unused field windows/check/extra in server.conf"
        ]
    );
    let bad_type = format!("{PXE}windows: {{check: {{size: many}}}}\n");
    let err = message(server(&bad_type));
    assert!(err.starts_with("server.conf: line 5 column"), "{err}");
}

#[test]
fn node_list_errors() {
    let dup = "      - {name: 'node-[1-3].dom', address: '10.0.0.[1-3]'}\n      - {name: node-3.dom, address: 10.0.0.9}\n";
    assert_eq!(
        message(clusters(dup)),
        "clusters.conf: clusters[0]/nodes[1]/name: duplicate node name `node-3.dom` (already in cluster c)"
    );
    let reversed = "      - {name: 'node-[5-1].dom', address: '10.0.0.[1-5]'}\n";
    assert_eq!(
        message(clusters(reversed)),
        "clusters.conf: clusters[0]/nodes[0]/name: reversed range `5-1` in `node-[5-1].dom`"
    );
    let unbalanced = "      - {name: 'node-[1-5.dom', address: '10.0.0.[1-5]'}\n";
    assert!(
        message(clusters(unbalanced))
            .starts_with("clusters.conf: clusters[0]/nodes[0]/name: unbalanced brackets")
    );
    let lengths = "      - {name: 'node-[1-5].dom', address: '10.0.0.[1-4]'}\n";
    assert_eq!(
        message(clusters(lengths)),
        "clusters.conf: clusters[0]/nodes[0]: `node-[1-5].dom` gives 5 names but `10.0.0.[1-4]` gives 4 addresses"
    );
    let address = "      - {name: 'node-[1-2].dom', address: '10.0.0.[255-256]'}\n";
    assert_eq!(
        message(clusters(address)),
        "clusters.conf: clusters[0]/nodes[0]/address: invalid IP address `10.0.0.256`"
    );
    assert_eq!(
        message(clusters("      []\n")),
        "clusters.conf: clusters[0]/nodes: empty node list"
    );
    let ok = clusters("      - {name: 'n-[01-10].dom', address: '10.0.0.[1-10]'}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.value[0].nodes[9].name, "n-10.dom");
}

/// `clusters.conf` with one cluster `c` whose `nodes:` items are `nodes`.
fn clusters(nodes: &str) -> Result<Parsed<Vec<ClusterEntry>>, ConfigError> {
    parse_clusters(
        &format!("clusters:\n  - name: c\n    conf_file: c.conf\n    nodes:\n{nodes}"),
        "clusters.conf",
    )
}

#[test]
fn node_macs_give_dhcp_reservations_for_single_nodes_only() {
    let ok = clusters(
        "      - {name: n-1.dom, address: 10.0.0.1, mac: '52:54:00:AA:00:01'}\n      - {name: 'n-[2-3].dom', address: '10.0.0.[2-3]'}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let macs = &ok.value[0].macs;
    assert_eq!(macs.len(), 1);
    assert_eq!(macs["n-1.dom"].to_string(), "52:54:00:aa:00:01");
    let range =
        "      - {name: 'n-[1-2].dom', address: '10.0.0.[1-2]', mac: '52:54:00:00:00:01'}\n";
    assert_eq!(
        message(clusters(range)),
        "clusters.conf: clusters[0]/nodes[0]/mac: a mac address is given for a single node, not a range"
    );
    let bad = "      - {name: n-1.dom, address: 10.0.0.1, mac: '52:54:00:00:01'}\n";
    assert_eq!(
        message(clusters(bad)),
        "clusters.conf: clusters[0]/nodes[0]/mac: '52:54:00:00:01' is not a MAC address"
    );
    let twice = "      - {name: n-1.dom, address: 10.0.0.1, mac: '52:54:00:00:00:01'}\n      - {name: n-2.dom, address: 10.0.0.2, mac: '52-54-00-00-00-01'}\n";
    assert_eq!(
        message(clusters(twice)),
        "clusters.conf: clusters[0]/nodes[1]/mac: mac 52:54:00:00:00:01 is already the mac of n-1.dom"
    );
}

#[test]
fn node_switches_apply_to_single_nodes_and_ranges() {
    let ok = clusters(
        "      - {name: 'n-[1-2].dom', address: '10.0.0.[1-2]', switch: sw-b}\n      - {name: n-3.dom, address: 10.0.0.3, switch: ' sw-a '}\n      - {name: n-4.dom, address: 10.0.0.4}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let switches = &ok.value[0].switches;
    assert_eq!(switches.len(), 3);
    assert_eq!(switches["n-1.dom"], "sw-b");
    assert_eq!(switches["n-2.dom"], "sw-b");
    assert_eq!(switches["n-3.dom"], "sw-a");
    let empty = "      - {name: n-1.dom, address: 10.0.0.1, switch: ''}\n";
    assert_eq!(
        message(clusters(empty)),
        "clusters.conf: clusters[0]/nodes[0]/switch: empty switch name"
    );
}

#[test]
fn micro_steps_of_the_automata_carry_the_admins_custom_operations() {
    let with_micro = |micro: &str| {
        cluster_text(&format!(
            "automata:\n  macrosteps:\n    SetDeploymentEnv:\n      - type: Untrusted\n        timeout: 300\n        microsteps:\n{micro}\
             \x20   BroadcastEnv: [{{type: Chain}}]\n    BootNewEnv: [{{type: Kexec, timeout: 100}}, {{type: Classical, timeout: 200}}]\n"
        ))
    };
    let good = with_micro(
        "          - name: create_partition_table\n            retries: 1\n            substitute: [{action: run, name: my_partitioning, file: partitioning.sh, timeout: 16, scattering: tree}]\n            post-ops: [{action: exec, name: sync, command: sync}]\n",
    );
    let parsed = cluster(&good).unwrap_or_else(|e| panic!("{e}"));
    let micro = &parsed.value.automata.set_deployment_env[0].microsteps["create_partition_table"];
    assert_eq!(micro.retries, 1);
    let sub = micro.custom.substitute.as_deref().expect("a substitute");
    assert_eq!(
        sub[0].action,
        kadeploy::engine::custom::CustomAction::Run {
            file: "/etc/kadeploy3/partitioning.sh".into(),
            params: String::new()
        },
        "files are relative to the configuration directory"
    );
    assert_eq!(
        (sub[0].timeout, micro.custom.post[0].name.as_str()),
        (16.0, "sync")
    );
    assert_eq!(
        message(cluster(&with_micro("          - name: no_such_step\n"))),
        "c.conf: automata/macrosteps/SetDeploymentEnv[0]/microsteps[0]/name: unknown micro-step `no_such_step`"
    );
    assert_eq!(
        message(cluster(&with_micro(
            "          - name: format_deploy_part\n            pre-ops: [{action: exec, name: x}]\n"
        ))),
        "c.conf: automata/macrosteps/SetDeploymentEnv[0]/microsteps[0]: format_deploy_part/pre-ops/x: 'command' is mandatory"
    );
}

#[test]
fn automata_errors_and_default() {
    let parsed = cluster(&cluster_text("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.value.automata, default_automata());
    assert_eq!(parsed.value.timeout_reboot.eval(10.0), Ok(120.0));
    assert_eq!(
        parsed.value.partitioning.script,
        "#!/bin/sh\n# /etc/kadeploy3/parted\n"
    );
    let automata = |slot: &str| {
        cluster_text(&format!(
            "automata:\n  macrosteps:\n    SetDeploymentEnv: [{{type: Untrusted, timeout: 300}}]\n\
             {slot}    BootNewEnv: [{{type: Kexec, timeout: 100}}, {{type: Classical, retries: 1, timeout: 200}}]\n"
        ))
    };
    assert_eq!(
        message(cluster(&automata("    BroadcastEnv: [{type: Foo}]\n"))),
        "c.conf: automata/macrosteps/BroadcastEnv[0]/type: invalid BroadcastEnv type `Foo` \
         (expected one of Chain, Tree, Kastafior, Kascade, Bittorrent, Custom, Dummy, Multicast, Swarm, Auto)"
    );
    assert_eq!(
        message(cluster(&automata(""))),
        "c.conf: automata/macrosteps/BroadcastEnv: mandatory field is missing"
    );
    let good = automata("    BroadcastEnv: [{type: Chain}]\n");
    assert!(cluster(&good).is_ok());
    assert_eq!(
        message(cluster(&format!(
            "{good}timeouts: {{reboot: 150 + 50 * Math.log(n) + 60}}\n"
        ))),
        "c.conf: automata/macrosteps/BootNewEnv[1]/timeout: the timeout of BootNewEnvClassical (200 s) \
         is lower than timeouts/reboot (210 s at n=1)"
    );
    assert!(
        message(cluster(&format!("{good}timeouts: {{kexec: 120}}\n"))).starts_with(
            "c.conf: automata/macrosteps/BootNewEnv[0]/timeout: the timeout of BootNewEnvKexec"
        )
    );
    assert_eq!(
        message(cluster(&cluster_text("timeouts: {reboot: 150}\n"))),
        "c.conf: timeouts/reboot: 150 s at n=1 exceeds the timeout of BootNewEnvHardReboot in the default automata \
         (120 s)"
    );
    assert!(
        message(cluster(&cluster_text("timeouts: {reboot: 100 +}\n")))
            .starts_with("c.conf: timeouts/reboot: invalid expression")
    );
}

#[test]
fn scripts_remoteops_and_commands() {
    let missing = parse_cluster_specific_with(
        &cluster_text(""),
        "c.conf",
        Path::new("/cfg"),
        &mut |path: &Path| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} not found", path.display()),
            ))
        },
    );
    assert!(message(missing).starts_with("c.conf: partitioning/script: cannot read /cfg/parted:"));
    let ops = cluster_text(
        "remoteops:\n  reboot:\n    - {name: hard, cmd: ipmi}\n    - {name: soft, cmd: ssh, group: g.txt}\n",
    );
    let parsed = cluster(&ops).unwrap_or_else(|e| panic!("{e}"));
    let reboot = &parsed.value.remoteops.reboot;
    assert_eq!(
        reboot.iter().map(|op| op.name).collect::<Vec<_>>(),
        [PowerLevel::Soft, PowerLevel::Hard]
    );
    assert_eq!(reboot[0].group.as_deref(), Some("/etc/kadeploy3/g.txt"));
    let bad_level = cluster_text("remoteops:\n  reboot:\n    - {name: brutal, cmd: x}\n");
    assert!(
        message(cluster(&bad_level))
            .starts_with("c.conf: remoteops/reboot[0]/name: invalid level `brutal`")
    );
    let nodes: BTreeSet<String> = ["n1.dom".to_string()].into();
    let unknown_node = parse_commands("n2.dom: {reboot_soft: x}\n", "command.conf", &nodes);
    assert!(message(unknown_node).starts_with("command.conf: n2.dom: unknown node"));
    let unknown_key = parse_commands("n1.dom: {reboot_brutal: x}\n", "command.conf", &nodes);
    assert!(
        message(unknown_key).starts_with("command.conf: n1.dom/reboot_brutal: unknown command")
    );
}

#[test]
fn load_dir_reports_missing_files() {
    let err = message(load_dir(Path::new("/nonexistent/kadeploy3")));
    assert!(
        err.starts_with("cannot read /nonexistent/kadeploy3/server.conf"),
        "{err}"
    );
}

/// A copy of the sim300 directory in a fresh scratch directory (removed by [`Scratch`]'s drop), with
/// `server.conf` passed through `edit`.
struct Scratch(PathBuf);

impl Scratch {
    fn sim300(name: &str, edit: impl Fn(String) -> String) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("kadeploy-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        for entry in std::fs::read_dir(sim300()).expect("sim300") {
            let path = entry.expect("entry").path();
            if let Some(file) = path.file_name() {
                std::fs::copy(&path, dir.join(file)).expect("copy");
            }
        }
        let server = dir.join("server.conf");
        let text = std::fs::read_to_string(&server).expect("server.conf");
        std::fs::write(&server, edit(text)).expect("server.conf");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The sample's `backend` section replaced by `backend`.
fn with_backend(backend: &'static str) -> impl Fn(String) -> String {
    move |text| text.replace("backend:\n  kind: simulated\n  time_scale: 0\n", backend)
}

/// What the server's settings and the backends use is loaded with the rest, once: `simulation.conf` as
/// text, the typed `backend/*` keys (the IPMI password read from its file), the PXE methods with each
/// cluster's headers, the SSH key; nothing needs the directory afterwards (before, the site backend loaded
/// the directory again and re-read server.conf, clusters.conf and the cluster files for each cluster).
#[test]
fn load_dir_carries_what_settings_and_backends_use() {
    let site = "backend:\n  kind: site\n  time_scale: 2\n  command_timeout: 30\n  \
                ipmi: {host: HOSTNAME_SHORT-bmc, user: ADMIN, password_file: ipmi.pass}\n";
    let scratch = Scratch::sim300("carries", with_backend(site));
    std::fs::write(scratch.0.join("ipmi.pass"), "s3cret\n").expect("password");
    let simulation = std::fs::read_to_string(scratch.0.join("simulation.conf")).expect("sim");
    let loaded = load_dir(&scratch.0).unwrap_or_else(|e| panic!("{e}"));
    drop(scratch);
    let file = loaded
        .simulation
        .as_ref()
        .expect("simulation.conf is carried");
    assert_eq!(file.text, simulation);
    assert!(file.path.ends_with("simulation.conf"));
    let backend = &loaded.server_conf.backend;
    assert_eq!((backend.kind.as_str(), backend.defaulted), ("site", false));
    assert_eq!(backend.time_scale, 2.0);
    let keys = backend.site.as_ref().expect("site keys");
    assert_eq!(keys.command_timeout, std::time::Duration::from_secs(30));
    assert_eq!(keys.agent_port, 25301);
    let ipmi = keys.ipmi.as_ref().expect("ipmi");
    assert_eq!(
        (ipmi.user.as_str(), ipmi.password.as_str()),
        ("ADMIN", "s3cret")
    );
    let [sim] = loaded.config.clusters.as_slice() else {
        panic!("one cluster")
    };
    let pxe = loaded.pxe_of(sim);
    assert!(
        !pxe.headers.dhcp.is_empty(),
        "the cluster file's pxe/headers"
    );
    assert_eq!(pxe.dhcp, loaded.pxe.dhcp);
    assert!(loaded.ssh.private_key.is_absolute());
    assert_eq!(loaded.ssh.user, "root");
    assert_eq!(
        loaded.commands_of(sim).keys().collect::<Vec<_>>(),
        loaded.commands.keys().collect::<Vec<_>>()
    );
}

/// Without `simulation.conf` the loaded configuration has none; a `backend` key of the wrong type, or an
/// unreadable file it names, is an error naming `server.conf` and the key.
#[test]
fn backend_keys_are_checked_at_load() {
    let scratch = Scratch::sim300("nosim", |t| t);
    std::fs::remove_file(scratch.0.join("simulation.conf")).expect("rm");
    let loaded = load_dir(&scratch.0).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.simulation.is_none());
    assert!(loaded.server_conf.backend.site.is_none());
    for (name, backend, key, text) in [
        (
            "port",
            "backend:\n  kind: site\n  agent_port: many\n",
            "backend/agent_port",
            "server.conf: backend/agent_port: invalid value `\"many\"` (expected a port number)",
        ),
        (
            "pass",
            "backend:\n  kind: site\n  ipmi: {host: h, user: u, password_file: nope.pass}\n",
            "backend/ipmi/password_file",
            "server.conf: backend/ipmi/password_file: cannot read ",
        ),
        (
            "scale",
            "backend:\n  time_scale: [1]\n",
            "backend/time_scale",
            "server.conf: backend/time_scale: invalid value `[1]` (expected a number)",
        ),
    ] {
        let scratch = Scratch::sim300(name, with_backend(backend));
        let err = load_dir(&scratch.0).map(|_| ()).unwrap_err();
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().starts_with(text), "{err}");
    }
}

mod config {
    //! Remote operations read at load: connectors, group files, the next boot device.
    mod remoteops;
}

#[test]
fn probe_period_and_timeout_default_to_kadeploys_and_are_bounded() {
    let parsed = cluster(&cluster_text("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.value.boot.probe_period, 5.0);
    assert_eq!(parsed.value.boot.probe_timeout, 2.0);
    let with_boot = |keys: &str| cluster_text("").replace("boot:\n", &format!("boot:\n{keys}"));
    let parsed = cluster(&with_boot("  probe_period: 0.5\n  probe_timeout: 1\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.value.boot.probe_period, 0.5);
    assert_eq!(parsed.value.boot.probe_timeout, 1.0);
    assert_eq!(
        message(cluster(&with_boot("  probe_period: 0\n"))),
        "c.conf: boot/probe_period: 0 is not 0.1 to 600 seconds"
    );
    assert!(message(cluster(&with_boot("  probe_timeout: 700\n"))).contains("boot/probe_timeout"));
}
