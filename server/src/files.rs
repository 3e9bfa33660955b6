//! The files of a submission (spec §3.4, §3.7): the environment image, pre/post-install archives, the
//! authorized keys file and custom-operation files are fetched into the cache before the `wid` is
//! returned (the client's file server only lives while the client waits), and the engine request is
//! rewritten to use the cached copies. `server://` references are confined to the directories of
//! `security/server_file_directories` ([`super::server_files`]) and bounded in size by kind.

use super::App;
use super::grab::{self, FileRef, Wanted};
use super::route::Req;
use super::server_files::{Found, ServerFile, ServerFileError};
use kadeploy::engine::DeployRequest;
use kadeploy::envdesc::EnvDesc;
use kadeploy::error::{ApiError, RequestError};
use std::io::Read as _;

/// Largest authorized keys file (bytes): it is read into memory.
pub const MAX_KEY_FILE: u64 = 1 << 20;

/// Largest custom-operation file (bytes).
pub const MAX_CUSTOM_OP_FILE: u64 = 100 << 20;

fn invalid(msg: String) -> RequestError {
    RequestError::new(ApiError::InvalidFile, msg)
}

/// The answer for a refused `server://` reference (the same for missing, forbidden and non-regular files).
fn refused(what: &str, file: &str, e: &ServerFileError) -> RequestError {
    invalid(format!("The {what} file {file} {e}"))
}

/// Every backend runs in virtual time: the server never reads the environment's files.
fn simulated(app: &App) -> bool {
    !app.clusters.is_empty() && app.clusters.iter().all(|c| c.backend.virtual_time)
}

/// Opens the file of a `server://` reference (`path` without the scheme).
fn open_server(
    app: &App,
    what: &str,
    file: &str,
    path: &str,
    max: Option<u64>,
) -> Result<ServerFile, RequestError> {
    app.settings
        .server_files
        .open(path, max)
        .map_err(|e| refused(what, file, &e))
}

/// The server path the backends use for a `server://` reference they open themselves: the real path of
/// the checked file, or, on simulated backends only, the allowed path of a file that is not there.
fn server_path_for_backend(
    app: &App,
    what: &str,
    file: &str,
    path: &str,
    max: Option<u64>,
) -> Result<String, RequestError> {
    let found = app
        .settings
        .server_files
        .find(path, max)
        .map_err(|e| refused(what, file, &e))?;
    match found {
        Found::File(f) => Ok(f.path.display().to_string()),
        Found::Absent(p) if simulated(app) => Ok(p.display().to_string()),
        Found::Absent(_) => Err(refused(what, file, &ServerFileError::Refused)),
    }
}

/// Fetches one reference: the cached copy, or, for `server://`, the checked server path.
fn fetch(
    app: &App,
    r: &Req,
    file: &str,
    what: &str,
    version: &str,
    max_size: Option<u64>,
) -> Result<String, RequestError> {
    if let FileRef::Server(path) = FileRef::parse(file) {
        return server_path_for_backend(app, what, file, &path, max_size);
    }
    let client = r.params.string("client")?;
    let wanted = Wanted {
        file,
        what,
        tag: &r.user,
        version,
        max_size,
    };
    let fut = grab::fetch(&app.settings.cache, client.as_deref(), &wanted);
    let got = tokio::runtime::Handle::current().block_on(fut)?;
    let path = got.ok_or_else(|| invalid(format!("The {what} file {file} cannot be fetched")))?;
    tracing::info!(file, cached = %path.display(), "{what} file fetched");
    Ok(path.display().to_string())
}

/// Fetches the environment files of a deployment, as `desc` names them, and points the request at the
/// cached copies (or the checked server files).
pub fn deploy(
    app: &App,
    r: &Req,
    d: &mut DeployRequest,
    desc: &EnvDesc,
    version: &str,
) -> Result<(), RequestError> {
    let env = &mut d.environment;
    env.image.path = fetch(app, r, &desc.image.file, "image", version, None)?;
    if let (Some(pre), Some(wanted)) = (&mut env.preinstall, &desc.preinstall) {
        let max = Some(app.settings.max_preinstall);
        pre.file = fetch(app, r, &wanted.archive, "preinstall", version, max)?;
    }
    for (post, wanted) in env.postinstalls.iter_mut().zip(&desc.postinstalls) {
        let max = Some(app.settings.max_postinstall);
        post.file = fetch(app, r, &wanted.archive, "postinstall", version, max)?;
    }
    Ok(())
}

/// Opens the content of a reference the server itself reads (keys, PXE files): the checked server file,
/// or the cached copy of a fetched one.
fn open_content(
    app: &App,
    r: &Req,
    file: &str,
    what: &str,
    max: u64,
) -> Result<std::fs::File, RequestError> {
    if let FileRef::Server(path) = FileRef::parse(file) {
        return Ok(open_server(app, what, file, &path, Some(max))?.file);
    }
    let cached = fetch(app, r, file, what, "anon", Some(max))?;
    std::fs::File::open(&cached)
        .map_err(|e| invalid(format!("The {what} file {file} cannot be read: {e}")))
}

/// The content of the `ssh_authorized_keys` file reference `file` (at most [`MAX_KEY_FILE`] bytes).
pub fn keys(app: &App, r: &Req, file: &str) -> Result<String, RequestError> {
    let f = open_content(app, r, file, "key", MAX_KEY_FILE)?;
    let mut text = String::new();
    f.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| invalid(format!("The key file {file} cannot be read: {e}")))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(invalid(format!(
            "The key file {file} is too big (at most {MAX_KEY_FILE} bytes)"
        )));
    }
    Ok(text)
}

/// Fetches the file of a custom operation: the server path to use.
pub fn custom_op(app: &App, r: &Req, file: &str) -> Result<String, RequestError> {
    fetch(
        app,
        r,
        file,
        "custom operation",
        "anon",
        Some(MAX_CUSTOM_OP_FILE),
    )
}

/// A user name or file name usable in a PXE repository file name (no path separator, not `.`/`..`).
fn plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0'])
}

/// Fetches a PXE file (`pxe.files`) and installs it in the PXE repository as
/// `<repository>/<userfiles>/pxe-<user>--<basename>`, where profiles find it through `FILES_PREFIX`
/// (at most `pxe/dhcp/userfiles/max_size` MB).
pub fn pxe_file(app: &App, r: &Req, file: &str) -> Result<(), RequestError> {
    let dir = app.settings.pxe_userfiles.as_ref().ok_or_else(|| {
        RequestError::new(
            ApiError::BadConfiguration,
            "no PXE repository is configured (pxe/dhcp/repository)",
        )
    })?;
    let base = std::path::Path::new(file)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !plain_name(&base) || !plain_name(&r.user) {
        return Err(invalid(format!(
            "The PXE file {file} of {} cannot be named in the PXE repository",
            r.user
        )));
    }
    let max = app.settings.max_pxe_file;
    let source = open_content(app, r, file, "PXE", max)?;
    let target = dir.join(format!("pxe-{}--{base}", r.user));
    let temp = dir.join(format!(".pxe-{}--{base}.part", r.user));
    let copy = || -> std::io::Result<u64> {
        std::fs::create_dir_all(dir)?;
        let mut out = std::fs::File::create(&temp)?;
        let n = std::io::copy(&mut source.take(max + 1), &mut out)?;
        if n > max {
            return Err(std::io::Error::other(format!(
                "too big (at most {max} bytes)"
            )));
        }
        std::fs::rename(&temp, &target)?;
        Ok(n)
    };
    copy().map(|_| ()).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        invalid(format!("The PXE file {file} cannot be installed: {e}"))
    })
}
