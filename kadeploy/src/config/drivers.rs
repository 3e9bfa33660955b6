//! What real drivers take from `server.conf`, typed at load: the PXE profile writer's methods
//! (`pxe/{dhcp,localboot,networkboot}`) and how to reach nodes over SSH (`ssh_private_key`, the user of
//! `external/default_connector`). Paths are resolved against the configuration directory, never read.

use super::error::{ConfigError, Ctx};
use super::wire;
use hal::netboot::pxe::{Headers, PxeConfig, PxeMethod};
use std::path::{Path, PathBuf};

/// How the server reaches nodes over SSH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshKeys {
    /// `ssh_private_key` (`<confdir>/keys/id_deploy`), resolved against the configuration directory.
    pub private_key: PathBuf,
    /// The user of `external/default_connector`'s `-l` option (`root` when it has none).
    pub user: String,
}

/// The SSH settings of a `server.conf` wire struct.
pub(crate) fn ssh(w: &wire::ServerFile, dir: &Path) -> SshKeys {
    SshKeys {
        private_key: w
            .ssh_private_key
            .as_deref()
            .map_or_else(|| dir.join("keys/id_deploy"), |k| dir.join(k)),
        user: connector_user(&w.external.default_connector).unwrap_or_else(|| "root".into()),
    }
}

/// The user of an ssh connector command line (`-l root`; `user@` is not used by Kadeploy).
fn connector_user(connector: &str) -> Option<String> {
    let mut words = connector.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-l" {
            return words.next().map(str::to_string);
        }
    }
    None
}

/// The PXE writer's configuration of `pxe/*` (repositories resolved against `dir`), without cluster
/// headers; `server.conf` must have been validated (`pxe/dhcp` and each method's repository present).
pub(crate) fn pxe(
    w: &wire::ServerFile,
    ctx: Ctx<'_>,
    dir: &Path,
) -> Result<PxeConfig, ConfigError> {
    let method = |m: &wire::PxeMethod, key: &str| -> Result<PxeMethod, ConfigError> {
        let repository = ctx.required(m.repository.as_deref(), &format!("{key}/repository"))?;
        PxeMethod::new(
            &m.method,
            dir.join(repository),
            m.binary.clone(),
            &m.export.kind,
            &m.export.server,
            &m.profiles.directory,
            &m.profiles.filename,
        )
        .map_err(|e| ctx.invalid(key, e.to_string()))
    };
    let dhcp = ctx.required(w.pxe.dhcp.as_ref(), "pxe/dhcp")?;
    let userfiles = dhcp
        .userfiles
        .as_ref()
        .and_then(|u| u.directory.clone())
        .unwrap_or_else(|| "userfiles".into());
    let mut pxe = PxeConfig::single(method(dhcp, "pxe/dhcp")?, userfiles);
    if let Some(m) = &w.pxe.localboot {
        pxe.localboot = method(m, "pxe/localboot")?;
    }
    if let Some(m) = &w.pxe.networkboot {
        pxe.networkboot = method(m, "pxe/networkboot")?;
    }
    Ok(pxe)
}

/// A cluster file's `pxe/headers`.
pub(crate) fn headers(h: &wire::PxeHeaders) -> Headers {
    Headers {
        dhcp: h.dhcp.clone(),
        localboot: h.localboot.clone(),
        networkboot: h.networkboot.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connector_gives_the_ssh_user() {
        assert_eq!(
            connector_user(wire::DEFAULT_CONNECTOR).as_deref(),
            Some("root")
        );
        assert_eq!(connector_user("ssh -q -o BatchMode=yes"), None);
        let w: wire::ServerFile = serde_saphyr::from_str(
            "ssh_private_key: /root/.ssh/deploy\nexternal: {default_connector: ssh -q}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let keys = ssh(&w, Path::new("/etc/kadeploy3"));
        assert_eq!(keys.private_key, Path::new("/root/.ssh/deploy"));
        assert_eq!(keys.user, "root", "root when the connector names no user");
    }

    #[test]
    fn pxe_methods_resolve_their_repository_and_default_to_dhcp() {
        let w: wire::ServerFile = serde_saphyr::from_str(
            "pxe:\n  dhcp: {method: PXElinux, repository: tftpboot, userfiles: {directory: uf}}\n  \
             networkboot: {method: IPXE, repository: /srv/http, binary: ipxe.efi, export: {kind: http}}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ctx = Ctx {
            file: "server.conf",
        };
        let pxe = pxe(&w, ctx, Path::new("/etc/kadeploy3")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pxe.dhcp.repository, Path::new("/etc/kadeploy3/tftpboot"));
        assert_eq!(pxe.localboot, pxe.dhcp);
        assert_eq!(pxe.networkboot.repository, Path::new("/srv/http"));
        assert_eq!(pxe.userfiles_dir(), Path::new("/etc/kadeploy3/tftpboot/uf"));
        let w: wire::ServerFile =
            serde_saphyr::from_str("pxe: {}\n").unwrap_or_else(|e| panic!("{e}"));
        let e = pxe_error(&w, ctx);
        assert_eq!(e, "server.conf: pxe/dhcp: mandatory field is missing");
    }

    fn pxe_error(w: &wire::ServerFile, ctx: Ctx<'_>) -> String {
        match pxe(w, ctx, Path::new("/")) {
            Ok(p) => panic!("must fail, gave {p:?}"),
            Err(e) => e.to_string(),
        }
    }
}
