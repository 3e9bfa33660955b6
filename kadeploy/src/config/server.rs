//! `server.conf`: validation of the wire struct and conversion to [`ServerConfig`].

use super::connector;
use super::error::{ConfigError, Ctx};
use super::types::{ServerConfig, VlanConfig};
use super::wire;
use std::collections::BTreeMap;

/// PXE methods (`pxe/*/method`) and the export kinds each supports.
const PXE_METHODS: [(&str, &[&str]); 4] = [
    ("PXElinux", &["tftp"]),
    ("GPXElinux", &["tftp", "http", "ftp"]),
    ("IPXE", &["tftp", "http", "ftp"]),
    ("GrubPXE", &["tftp", "http"]),
];

/// Validates `server.conf` and keeps what the engine uses.
///
/// Kadeploy's mandatory `database/*` and `cache/size` are optional here: this server keeps its own database.
pub(crate) fn convert(w: &wire::ServerFile, ctx: Ctx<'_>) -> Result<ServerConfig, ConfigError> {
    ctx.one_of(&w.rights.kind, &["db", "dummy"], "rights/kind")?;
    check_authentication(w, ctx)?;
    if !w.security.certificate.is_empty() {
        let key = ctx.required(w.security.private_key.as_ref(), "security/private_key")?;
        check_key_file(key, "security/private_key", ctx)?;
    }
    for (level, key) in [
        (w.verbosity.logs, "verbosity/logs"),
        (w.verbosity.clients, "verbosity/clients"),
    ] {
        if level > 4 {
            return Err(ctx.invalid(key, format!("invalid level {level} (expected 0 to 4)")));
        }
    }
    for (size, key) in [
        (w.windows.reboot.size, "windows/reboot/size"),
        (w.windows.check.size, "windows/check/size"),
    ] {
        if size == 0 {
            return Err(ctx.invalid(key, "the window size must be at least 1"));
        }
    }
    let sleep = w.windows.reboot.sleep_time;
    if !sleep.is_finite() || sleep < 0.0 {
        return Err(ctx.invalid(
            "windows/reboot/sleep_time",
            format!("invalid duration {sleep}"),
        ));
    }
    let dhcp = ctx.required(w.pxe.dhcp.as_ref(), "pxe/dhcp")?;
    check_pxe_method(dhcp, "pxe/dhcp", ctx)?;
    let userfiles = ctx.required(dhcp.userfiles.as_ref(), "pxe/dhcp/userfiles")?;
    ctx.required(userfiles.directory.as_ref(), "pxe/dhcp/userfiles/directory")?;
    ctx.required(userfiles.max_size, "pxe/dhcp/userfiles/max_size")?;
    for (section, key) in [
        (&w.pxe.localboot, "pxe/localboot"),
        (&w.pxe.networkboot, "pxe/networkboot"),
    ] {
        if let Some(method) = section {
            check_pxe_method(method, key, ctx)?;
            ctx.required(method.binary.as_ref(), &format!("{key}/binary"))?;
        }
    }
    let mut mkfs_args = BTreeMap::new();
    for (i, entry) in w.external.mkfs.iter().enumerate() {
        let fstype = ctx.required(entry.fstype.clone(), &format!("external/mkfs[{i}]/fstype"))?;
        let args = ctx.required(entry.args.clone(), &format!("external/mkfs[{i}]/args"))?;
        mkfs_args.insert(fstype, args);
    }
    let localboot_method = w.pxe.localboot.as_ref().unwrap_or(dhcp).method.clone();
    let vlan = &w.network.vlan;
    let vlan = (!vlan.set_cmd.trim().is_empty()).then(|| VlanConfig {
        hostname_suffix: vlan.hostname_suffix.clone(),
        set_cmd: vlan.set_cmd.clone(),
    });
    Ok(ServerConfig {
        ssh_port: w.network.ports.ssh,
        test_deploy_env_port: w.network.ports.test_deploy_env,
        reboot_window: w.windows.reboot.size,
        reboot_window_sleep: sleep,
        check_window: w.windows.check.size,
        extraction_dir: w.environments.deployment.extraction_dir.clone(),
        rambin_dir: w.environments.deployment.rambin_dir.clone(),
        mkfs_args,
        tar_options: w.external.tar.clone(),
        verbosity: w.verbosity.clients,
        localboot_method,
        taktuk_connector: connector::substitute(
            &w.external.taktuk.connector,
            &w.external.default_connector,
        ),
        vlan,
    })
}

/// The sections of `authentication` that are present must be complete.
fn check_authentication(w: &wire::ServerFile, ctx: Ctx<'_>) -> Result<(), ConfigError> {
    let auth = &w.authentication;
    if let Some(acl) = &auth.acl {
        ctx.required(acl.whitelist.as_ref(), "authentication/acl/whitelist")?;
    }
    if let Some(cert) = &auth.certificate {
        match (&cert.ca_public_key, &cert.ca_cert) {
            (Some(key), _) => check_key_file(key, "authentication/certificate/ca_public_key", ctx)?,
            (None, Some(_)) => {}
            (None, None) => return Err(ctx.missing("authentication/certificate/ca_cert")),
        }
    }
    if let Some(basic) = &auth.http_basic {
        ctx.required(basic.dbfile.as_ref(), "authentication/http_basic/dbfile")?;
    }
    if let Some(ident) = &auth.ident
        && !w.security.local_only
    {
        ctx.required(ident.whitelist.as_ref(), "authentication/ident/whitelist")?;
    }
    Ok(())
}

/// `{algorithm, file}`: both mandatory, the algorithm one of `RSA`, `DSA`, `EC`.
fn check_key_file(key: &wire::KeyFile, path: &str, ctx: Ctx<'_>) -> Result<(), ConfigError> {
    let algorithm = ctx.required(key.algorithm.as_deref(), &format!("{path}/algorithm"))?;
    ctx.one_of(
        algorithm,
        &["RSA", "DSA", "EC"],
        &format!("{path}/algorithm"),
    )?;
    ctx.required(key.file.as_ref(), &format!("{path}/file"))?;
    Ok(())
}

/// A PXE method section: known method, repository given, export kind supported by the method.
fn check_pxe_method(m: &wire::PxeMethod, path: &str, ctx: Ctx<'_>) -> Result<(), ConfigError> {
    let names: Vec<&str> = PXE_METHODS.iter().map(|(name, _)| *name).collect();
    ctx.one_of(&m.method, &names, &format!("{path}/method"))?;
    ctx.required(m.repository.as_ref(), &format!("{path}/repository"))?;
    let kinds = PXE_METHODS
        .iter()
        .find(|(name, _)| *name == m.method)
        .map_or(&[][..], |(_, kinds)| *kinds);
    if !kinds.contains(&m.export.kind.as_str()) {
        return Err(ctx.invalid(
            format!("{path}/export/kind"),
            format!(
                "export kind `{}` is not supported by {} (expected {})",
                m.export.kind,
                m.method,
                kinds.join(", ")
            ),
        ));
    }
    ctx.one_of(
        &m.profiles.filename,
        &["ip", "ip_hex", "hostname", "hostname_short"],
        &format!("{path}/profiles/filename"),
    )
}
