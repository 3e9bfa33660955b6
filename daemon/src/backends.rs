//! The backends `backend/kind` can name, built side by side: the simulated cluster (`simulated`, the
//! default) and the real drivers of a site (`site`).

pub mod planner;
pub mod simulated;
pub mod site;

use kadeploy_server::Backends;
use std::sync::Arc;

/// The name → constructor table.
pub fn backends() -> Backends {
    let mut b = Backends::new();
    b.register(simulated::KIND, true, Arc::new(simulated::backend));
    b.register(site::KIND, false, Arc::new(site::backend));
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use kadeploy::config::{Loaded, load_dir};
    use kadeploy_server::{BackendSpec, Executor, Settings};
    use std::path::{Path, PathBuf};

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("kadeploy3d-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch directory");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A copy of the shipped sim300 configuration in `dir`, each file passed through `edit(name, text)`.
    fn copy_sample(dir: &Path, edit: impl Fn(&str, String) -> String) {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulator/config/sim300");
        for entry in std::fs::read_dir(sample).expect("sim300") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("sample file");
            std::fs::write(dir.join(&name), edit(&name, text)).expect("copy");
        }
    }

    /// Builds the `kind` backend of every cluster of `loaded`, each on its executor as the server does.
    fn build(kind: &str, loaded: Loaded) -> anyhow::Result<Vec<BackendSpec>> {
        let table = backends();
        let (paused, factory) = table.get(kind).expect("a registered backend");
        let loaded = Arc::new(loaded);
        let mut specs = Vec::new();
        for cluster in &loaded.config.clusters {
            let (f, c, l) = (factory.clone(), cluster.clone(), loaded.clone());
            let (_executor, spec) =
                Executor::start(&cluster.name, *paused, 0.0, move || f(&c, &l))?;
            specs.push(spec);
        }
        Ok(specs)
    }

    /// The settings and the simulated backend come from the loaded configuration alone: the directory
    /// is gone when they are built (before, `Settings::load` re-read `server.conf` and the simulated
    /// backend read `simulation.conf` itself, once per cluster).
    #[test]
    fn settings_and_the_simulated_backend_need_no_file() {
        let conf = Scratch::new("simulated");
        copy_sample(&conf.0, |name, text| match name {
            "simulation.conf" => text.replace(
                "image: {size: 1.0e9, ratio: 2.5}",
                "image: {size: 7.0e8, ratio: 3.5}",
            ),
            _ => text,
        });
        let loaded = load_dir(&conf.0).unwrap_or_else(|e| panic!("{e}"));
        drop(conf);
        let settings = Settings::from_loaded(&loaded).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            (settings.backend.as_str(), settings.time_scale),
            ("simulated", 0.0)
        );
        assert!(!settings.backend_defaulted);
        assert_eq!(settings.console_clusters.as_ref().map(|c| c.len()), Some(1));
        let specs = build(simulated::KIND, loaded).unwrap_or_else(|e| panic!("{e:#}"));
        let [spec] = specs.as_slice() else {
            panic!("one cluster")
        };
        assert_eq!(spec.image_size, 700_000_000, "simulation.conf as loaded");
        assert_eq!(spec.image_ratio, 3.5);
    }

    /// A scratch directory of what a site keeps outside its configuration: a TFTP root with the
    /// PXElinux and GRUB directories, and an SSH key made by ssh-keygen; (directory, root, key).
    fn outside_files(name: &str) -> (Scratch, PathBuf, PathBuf) {
        let outside = Scratch::new(name);
        let (tftp, key) = (outside.0.join("tftp"), outside.0.join("id_deploy"));
        for sub in ["pxelinux.cfg", "grub.cfg"] {
            std::fs::create_dir_all(tftp.join(sub)).expect("tftp");
        }
        let keygen = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (openssh-client) runs");
        assert!(keygen.success());
        (outside, tftp, key)
    }

    /// The site backend takes its PXE, SSH, IPMI and kaagent settings from the loaded configuration: it is
    /// built after the configuration directory is removed (only the SSH key and the PXE repository, which
    /// are not configuration, stay elsewhere). Before, it loaded the directory again, re-read `server.conf`
    /// for `backend/*`, `ssh_private_key` and `pxe/*`, `clusters.conf` and the cluster file for the PXE
    /// headers, and the IPMI password file, for each cluster.
    #[test]
    fn the_site_backend_reads_no_configuration_file() {
        let (_outside, tftp, key) = outside_files("site-outside");
        let conf = Scratch::new("site");
        let site = format!(
            "backend:\n  kind: site\n  command_timeout: 100000\n  \
             ipmi: {{host: HOSTNAME_SHORT-bmc, user: ADMIN, password_file: ipmi.pass}}\n\
             ssh_private_key: {}\n",
            key.display()
        );
        copy_sample(&conf.0, |name, text| match name {
            "server.conf" => text
                .replace("backend:\n  kind: simulated\n  time_scale: 0\n", &site)
                .replace("/var/lib/tftpboot", &tftp.display().to_string()),
            _ => text,
        });
        std::fs::write(conf.0.join("ipmi.pass"), "s3cret\n").expect("password");
        let loaded = load_dir(&conf.0).unwrap_or_else(|e| panic!("{e}"));
        drop(conf);
        let settings = Settings::from_loaded(&loaded).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(settings.backend, site::KIND);
        let warnings = site::warnings(&loaded);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("cluster sim: backend/command_timeout (100000 s) is not below"),
            "{warnings:?}"
        );
        let specs = build(site::KIND, loaded).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(specs.len(), 1);
        assert!(!specs[0].virtual_time);
    }

    /// A cluster's `boot/next_boot_device` wraps the site backend's power in the step that sets the
    /// device out of band: it needs `backend/ipmi` or `backend/redfish`, and says so at start.
    #[test]
    fn next_boot_device_needs_the_native_ipmi_keys() {
        let (_outside, tftp, key) = outside_files("nextboot-outside");
        for ipmi in [false, true] {
            let conf = Scratch::new("nextboot");
            let keys = if ipmi {
                "  ipmi: {host: HOSTNAME_SHORT-bmc, user: ADMIN, password_file: ipmi.pass}\n"
            } else {
                ""
            };
            let site = format!(
                "backend:\n  kind: site\n{keys}ssh_private_key: {}\n",
                key.display()
            );
            copy_sample(&conf.0, |name, text| {
                match name {
                "server.conf" => text
                    .replace("backend:\n  kind: simulated\n  time_scale: 0\n", &site)
                    .replace("/var/lib/tftpboot", &tftp.display().to_string()),
                "sim-cluster.conf" => text.replace(
                    "  install_bootloader: install_grub2\n",
                    "  install_bootloader: install_grub2\n  next_boot_device: {device: pxe, efiboot: true}\n",
                ),
                _ => text,
            }
            });
            std::fs::write(conf.0.join("ipmi.pass"), "s3cret\n").expect("password");
            let loaded = load_dir(&conf.0).unwrap_or_else(|e| panic!("{e}"));
            match build(site::KIND, loaded) {
                Ok(specs) => assert!(ipmi, "built without backend/ipmi: {}", specs.len()),
                Err(e) => {
                    assert!(!ipmi, "{e:#}");
                    assert!(
                        format!("{e:#}").contains(
                            "boot/next_boot_device needs backend/ipmi or backend/redfish"
                        ),
                        "{e:#}"
                    );
                }
            }
        }
    }
}
