//! Kadeploy 3.3 behaviours of the `site` backend seen from our clients: a custom PXE profile written
//! under the user's login with `NODE_SINGULARITY` filled, the sample soft reboot through
//! `DEFAULT_CONNECTOR`, and `--vlan` through `network/vlan/set_cmd`. The node is `localhost`; the
//! connector, the hard reboot and `set_cmd` are scripts that record their calls.

use super::harness::{Server, config_copy, setup};
use kadeploy_clients::{ClientEnv, tools, workflow};
use std::path::{Path, PathBuf};

/// Writes an executable script at `path` that appends its arguments to `path.log`.
fn recorder(path: &Path) {
    let script = format!("#!/bin/sh\necho \"$*\" >> '{}.log'\n", path.display());
    std::fs::write(path, script).expect("script");
    let chmod = std::process::Command::new("chmod")
        .arg("755")
        .arg(path)
        .status()
        .expect("chmod");
    assert!(chmod.success());
}

fn log(path: &Path) -> Vec<String> {
    std::fs::read_to_string(format!("{}.log", path.display()))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Replaces `from` (which must be there) by `to` in the file `path`.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("config file");
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("config file");
}

/// The sample configuration turned into a `site` backend driving one node, `localhost`.
fn site_config(dir: &Path) -> PathBuf {
    let conf = config_copy(dir, false);
    let key = dir.join("id_deploy");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client) runs");
    assert!(keygen.success());
    for sub in ["pxelinux.cfg", "grub.cfg", "userfiles"] {
        std::fs::create_dir_all(dir.join("tftp").join(sub)).expect("tftp");
    }
    for script in ["connector", "hard", "kavlan"] {
        recorder(&dir.join(script));
    }
    let server = conf.join("server.conf");
    edit(
        &server,
        "backend:\n  kind: simulated\n  time_scale: 0\n",
        &format!(
            "backend:\n  kind: site\n  command_timeout: 20\n  power_timeout: 20\nssh_private_key: {}\n",
            key.display()
        ),
    );
    let text = std::fs::read_to_string(&server).expect("server.conf");
    let text = text
        .replace(
            "repository: /var/lib/tftpboot",
            &format!("repository: {}", dir.join("tftp").display()),
        )
        .replace(
            "directory: /var/cache/kadeploy3",
            &format!("directory: {}", dir.join("cache").display()),
        );
    std::fs::write(&server, text).expect("server.conf");
    edit(
        &server,
        "network:\n",
        &format!(
            "network:\n  vlan: {{set_cmd: '{} NODES VLAN_ID USER'}}\n",
            dir.join("kavlan").display()
        ),
    );
    edit(
        &server,
        "external:\n",
        &format!(
            "external:\n  default_connector: {}\n",
            dir.join("connector").display()
        ),
    );
    std::fs::write(
        conf.join("clusters.conf"),
        "clusters:\n  - name: sim\n    prefix: sim\n    conf_file: sim-cluster.conf\n    nodes:\n      \
         - {name: localhost, address: 127.0.0.1}\n",
    )
    .expect("clusters.conf");
    std::fs::remove_file(conf.join("command.conf")).expect("no command.conf");
    let cluster = conf.join("sim-cluster.conf");
    edit(
        &cluster,
        "sleep_time_before_ping: 20",
        "sleep_time_before_ping: 0",
    );
    edit(
        &cluster,
        "cmd: ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o PreferredAuthentications=publickey -o ConnectTimeout=2 -o UserKnownHostsFile=/dev/null -i /etc/kadeploy3/keys/id_deploy root@HOSTNAME_FQDN reboot",
        "cmd: DEFAULT_CONNECTOR HOSTNAME_FQDN /sbin/reboot",
    );
    edit(
        &cluster,
        "cmd: ipmitool -I lanplus -H HOSTNAME_SHORT-bmc -U ADMIN -f /etc/kadeploy3/ipmi.pass chassis power cycle",
        &format!("cmd: {} HOSTNAME_FQDN", dir.join("hard").display()),
    );
    conf
}

/// `kareboot3 -r set_pxe -w -x --set-pxe-pattern --vlan` on the site backend: the profile names the
/// user's uploaded files (`pxe-root--vmlinuz`) and carries the node's singularity; the soft reboot runs
/// Kadeploy's sample command through `DEFAULT_CONNECTOR` without escalating; `set_cmd` moves the node
/// to the VLAN. Before: the profile said `pxe-user` and `NODE_SINGULARITY` was empty, the soft command kept
/// the word `DEFAULT_CONNECTOR` (it failed, the hard reboot ran), and `--vlan` was refused with error 9.
#[test]
fn custom_pxe_soft_reboot_and_vlan_on_the_site_backend() {
    let dir = setup("site-parity");
    let conf = site_config(&dir);
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);
    std::fs::write(
        dir.join("client.conf"),
        format!(
            "default: t\nservers:\n  - {{name: t, hostname: 127.0.0.1, port: {}, secure: false}}\n",
            server.port
        ),
    )
    .expect("client.conf");
    let env = ClientEnv {
        config_dir: dir.clone(),
        user: "root".into(),
    };
    let grant: Vec<String> = ["-a", "-u", "root", "-m", "*", "-p", "*"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(tools::karights(&grant, &env), 0);
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("files");
    std::fs::write(
        files.join("profile"),
        "DEFAULT boot\nLABEL boot\n\tKERNEL FILES_PREFIX--vmlinuz\n\tAPPEND node_id=NODE_SINGULARITY\n",
    )
    .expect("profile");
    std::fs::write(files.join("vmlinuz"), b"kernel").expect("kernel");
    std::fs::write(files.join("pattern"), "localhost,42\n").expect("pattern");
    let path = |name: &str| files.join(name).display().to_string();
    let args: Vec<String> = [
        "-m",
        "localhost",
        "-r",
        "set_pxe",
        "-w",
        &path("profile"),
        "-x",
        &path("vmlinuz"),
        "--set-pxe-pattern",
        &path("pattern"),
        "--vlan",
        "5",
        "--reboot-classical-timeout",
        "1",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    assert_eq!(workflow::reboot(&args, &env), 0);
    assert_eq!(
        std::fs::read_to_string(dir.join("tftp/pxelinux.cfg/7F000001")).expect("profile"),
        "DEFAULT boot\nLABEL boot\n\tKERNEL /userfiles/pxe-root--vmlinuz\n\tAPPEND node_id=42\n"
    );
    assert_eq!(
        std::fs::read(dir.join("tftp/userfiles/pxe-root--vmlinuz")).expect("uploaded file"),
        b"kernel"
    );
    assert_eq!(log(&dir.join("connector")), ["localhost /sbin/reboot"]);
    assert!(log(&dir.join("hard")).is_empty(), "no escalation to hard");
    assert_eq!(log(&dir.join("kavlan")), ["-m localhost 5 root"]);

    // A VLAN id that is not a plain word is refused with error 9 before anything runs.
    let marker = dir.join("injected");
    let evil = format!("5;touch {}", marker.display());
    let args: Vec<String> = ["-m", "localhost", "--vlan", &evil]
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(workflow::reboot(&args, &env), 9);
    assert!(!marker.exists());
    assert_eq!(log(&dir.join("kavlan")).len(), 1);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
