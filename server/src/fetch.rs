//! Fetching the files a submission names (spec §3.4, §3.7): the environment image, pre/post-install
//! archives, the authorized keys file, custom-operation files and PXE files are fetched before the
//! `wid` is returned (the client's file server only lives while the client waits): `http://` and
//! client-side files are downloaded into the cache ([`download`]), `server://` references are confined
//! to the directories of `security/server_file_directories` ([`crate::server_files`]) and bounded in
//! size by kind. Downloads run on the runtime; reading and copying files runs on the blocking pool.

pub mod checksum;
pub mod download;

use crate::App;
use crate::server_files::{Found, ServerFile, ServerFileError};
use download::{FileRef, Wanted};
use kadeploy::engine::custom::{CustomAction, CustomOps};
use kadeploy::envdesc::EnvDesc;
use kadeploy::error::{ApiError, RequestError};
use std::io::Read as _;
use std::path::Path;

pub use download::Cache;

/// Largest authorized keys file (bytes): it is read into memory.
pub const MAX_KEY_FILE: u64 = 1 << 20;

/// Largest custom-operation file (bytes).
pub const MAX_CUSTOM_OP_FILE: u64 = 100 << 20;

/// Whom files are fetched for.
#[derive(Clone, Debug)]
pub struct Requester {
    /// The user: the cache tag, and part of PXE file names.
    pub user: String,
    /// The client's file server (the `client` parameter), or why the parameter is unusable: like
    /// Kadeploy, it is read only when a file has to come from a client or a URL, so its error shows then.
    pub client: Result<Option<String>, RequestError>,
}

/// Where the engine finds an environment's files once fetched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvFiles {
    /// The image.
    pub image: String,
    /// The pre-install archive, when the environment has one.
    pub preinstall: Option<String>,
    /// The post-install archives, in the environment's order.
    pub postinstalls: Vec<String>,
}

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
/// the checked file. A file that is not there is refused, on simulated backends too (they used to
/// "deploy" environments whose image did not exist).
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
        Found::Absent(_) => Err(refused(what, file, &ServerFileError::Refused)),
    }
}

/// Fetches one reference: the cached copy, or, for `server://`, the checked server path.
async fn fetch(
    app: &App,
    who: &Requester,
    file: &str,
    what: &str,
    version: &str,
    max_size: Option<u64>,
) -> Result<String, RequestError> {
    if let FileRef::Server(path) = FileRef::parse(file) {
        return server_path_for_backend(app, what, file, &path, max_size);
    }
    let client = who.client.clone()?;
    let wanted = Wanted {
        file,
        what,
        tag: &who.user,
        version,
        max_size,
    };
    let got = download::fetch(&app.settings.cache, client.as_deref(), &wanted).await?;
    let path = got.ok_or_else(|| invalid(format!("The {what} file {file} cannot be fetched")))?;
    tracing::info!(file, cached = %path.display(), "{what} file fetched");
    Ok(path.display().to_string())
}

/// Fetches the files of the environment `desc` (`version` names it in the cache: `<name>/<version>`,
/// or `anon`).
pub async fn environment(
    app: &App,
    who: &Requester,
    desc: &EnvDesc,
    version: &str,
) -> Result<EnvFiles, RequestError> {
    let image = fetch(app, who, &desc.image.file, "image", version, None).await?;
    let preinstall = match &desc.preinstall {
        Some(pre) => {
            let max = Some(app.settings.max_preinstall);
            Some(fetch(app, who, &pre.archive, "preinstall", version, max).await?)
        }
        None => None,
    };
    let mut postinstalls = Vec::new();
    for post in &desc.postinstalls {
        let max = Some(app.settings.max_postinstall);
        postinstalls.push(fetch(app, who, &post.archive, "postinstall", version, max).await?);
    }
    Ok(EnvFiles {
        image,
        preinstall,
        postinstalls,
    })
}

/// Points the `send` and `run` operations of `ops` at their fetched files, in the order the request
/// lists them (macro-step, micro-step, then substitute, pre-ops, post-ops).
pub async fn custom_operations(
    app: &App,
    who: &Requester,
    ops: &mut CustomOps,
) -> Result<(), RequestError> {
    for micros in ops.values_mut() {
        for micro in micros.values_mut() {
            let all = (micro.substitute.iter_mut().flatten())
                .chain(micro.pre.iter_mut())
                .chain(micro.post.iter_mut());
            for op in all {
                if let CustomAction::Send { file, .. } | CustomAction::Run { file, .. } =
                    &mut op.action
                {
                    let max = Some(MAX_CUSTOM_OP_FILE);
                    *file = fetch(app, who, file, "custom operation", "anon", max).await?;
                }
            }
        }
    }
    Ok(())
}

/// Opens the content of a reference the server itself reads (keys, PXE files): the checked server file,
/// or the cached copy of a fetched one.
async fn open_content(
    app: &App,
    who: &Requester,
    file: &str,
    what: &str,
    max: u64,
) -> Result<std::fs::File, RequestError> {
    if let FileRef::Server(path) = FileRef::parse(file) {
        return Ok(open_server(app, what, file, &path, Some(max))?.file);
    }
    let cached = fetch(app, who, file, what, "anon", Some(max)).await?;
    std::fs::File::open(&cached)
        .map_err(|e| invalid(format!("The {what} file {file} cannot be read: {e}")))
}

/// Runs the file system work `f` on the blocking pool; `failed` is the error if it panics.
async fn on_blocking_pool<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RequestError> + Send + 'static,
    failed: impl FnOnce() -> RequestError,
) -> Result<T, RequestError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(failed()))
}

/// The content of the `ssh_authorized_keys` file reference `file` (at most [`MAX_KEY_FILE`] bytes).
pub async fn keys(app: &App, who: &Requester, file: &str) -> Result<String, RequestError> {
    let f = open_content(app, who, file, "key", MAX_KEY_FILE).await?;
    let name = file.to_string();
    let read = move || {
        let mut text = String::new();
        f.take(MAX_KEY_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| invalid(format!("The key file {name} cannot be read: {e}")))?;
        if text.len() as u64 > MAX_KEY_FILE {
            return Err(invalid(format!(
                "The key file {name} is too big (at most {MAX_KEY_FILE} bytes)"
            )));
        }
        Ok(text)
    };
    on_blocking_pool(read, || {
        invalid(format!("The key file {file} cannot be read"))
    })
    .await
}

/// A user name or file name usable in a PXE repository file name (no path separator, not `.`/`..`).
fn plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0'])
}

/// Fetches a PXE file (`pxe.files`) and installs it in the PXE repository as
/// `<repository>/<userfiles>/pxe-<user>--<basename>`, where profiles find it through `FILES_PREFIX`
/// (at most `pxe/dhcp/userfiles/max_size` MB).
pub async fn pxe_file(app: &App, who: &Requester, file: &str) -> Result<(), RequestError> {
    let dir = app.settings.pxe_userfiles.clone().ok_or_else(|| {
        RequestError::new(
            ApiError::BadConfiguration,
            "no PXE repository is configured (pxe/dhcp/repository)",
        )
    })?;
    let base = std::path::Path::new(file)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !plain_name(&base) || !plain_name(&who.user) {
        return Err(invalid(format!(
            "The PXE file {file} of {} cannot be named in the PXE repository",
            who.user
        )));
    }
    let max = app.settings.max_pxe_file;
    let source = open_content(app, who, file, "PXE", max).await?;
    let target = dir.join(format!("pxe-{}--{base}", who.user));
    let temp = dir.join(format!(".pxe-{}--{base}.part", who.user));
    let name = file.to_string();
    let install = move || install_pxe_file(source, &dir, &temp, &target, max, &name);
    on_blocking_pool(install, || {
        invalid(format!("The PXE file {file} cannot be installed"))
    })
    .await
}

/// Copies `source` (at most `max` bytes) to `temp` in `dir`, then renames it to `target`.
fn install_pxe_file(
    source: std::fs::File,
    dir: &Path,
    temp: &Path,
    target: &Path,
    max: u64,
    file: &str,
) -> Result<(), RequestError> {
    let copy = || -> std::io::Result<u64> {
        std::fs::create_dir_all(dir)?;
        let mut out = std::fs::File::create(temp)?;
        let n = std::io::copy(&mut source.take(max + 1), &mut out)?;
        if n > max {
            return Err(std::io::Error::other(format!(
                "too big (at most {max} bytes)"
            )));
        }
        std::fs::rename(temp, target)?;
        Ok(n)
    };
    copy().map(|_| ()).map_err(|e| {
        let _ = std::fs::remove_file(temp);
        invalid(format!("The PXE file {file} cannot be installed: {e}"))
    })
}
