//! The files of a submission (spec §3.4, §3.7): the environment image, pre/post-install archives, the
//! authorized keys file and custom-operation files are fetched into the cache before the `wid` is
//! returned (the client's file server only lives while the client waits), and the engine request is
//! rewritten to use the cached copies.

use super::App;
use super::grab::{self, FileRef, Wanted};
use super::route::Req;
use crate::engine::DeployRequest;
use crate::envdesc::EnvDesc;
use crate::error::{ApiError, RequestError};

/// Fetches one reference; `None` when it stays as is (`server://`).
fn fetch(
    app: &App,
    r: &Req,
    file: &str,
    what: &str,
    version: &str,
    max_size: Option<u64>,
) -> Result<Option<String>, RequestError> {
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
    if let Some(path) = &got {
        tracing::info!(file, cached = %path.display(), "{what} file fetched");
    }
    Ok(got.map(|p| p.display().to_string()))
}

/// Fetches the environment files of a deployment, as `desc` names them, and points the request at the
/// cached copies.
pub fn deploy(
    app: &App,
    r: &Req,
    d: &mut DeployRequest,
    desc: &EnvDesc,
    version: &str,
) -> Result<(), RequestError> {
    let env = &mut d.environment;
    if let Some(path) = fetch(app, r, &desc.image.file, "image", version, None)? {
        env.image.path = path;
    }
    if let (Some(pre), Some(wanted)) = (&mut env.preinstall, &desc.preinstall)
        && let Some(path) = fetch(
            app,
            r,
            &wanted.archive,
            "preinstall",
            version,
            Some(app.settings.max_preinstall),
        )?
    {
        pre.file = path;
    }
    for (post, wanted) in env.postinstalls.iter_mut().zip(&desc.postinstalls) {
        if let Some(path) = fetch(
            app,
            r,
            &wanted.archive,
            "postinstall",
            version,
            Some(app.settings.max_postinstall),
        )? {
            post.file = path;
        }
    }
    Ok(())
}

/// The content of the `ssh_authorized_keys` file reference `file`.
pub fn keys(app: &App, r: &Req, file: &str) -> Result<String, RequestError> {
    let path = match fetch(app, r, file, "key", "anon", Some(1 << 20))? {
        Some(p) => p,
        None => match FileRef::parse(file) {
            FileRef::Server(p) => p,
            _ => file.to_string(),
        },
    };
    std::fs::read_to_string(&path).map_err(|e| {
        RequestError::new(
            ApiError::InvalidFile,
            format!("The key file {file} cannot be read: {e}"),
        )
    })
}

/// Fetches the file of a custom operation: the server path to use.
pub fn custom_op(app: &App, r: &Req, file: &str) -> Result<String, RequestError> {
    Ok(
        match fetch(app, r, file, "custom operation", "anon", None)? {
            Some(p) => p,
            None => match FileRef::parse(file) {
                FileRef::Server(p) => p,
                _ => file.to_string(),
            },
        },
    )
}

/// Fetches a PXE file (`pxe.files`) and installs it in the PXE repository as
/// `<repository>/<userfiles>/pxe-<user>--<basename>`, where profiles find it through `FILES_PREFIX`.
pub fn pxe_file(app: &App, r: &Req, file: &str) -> Result<(), RequestError> {
    let dir = app.settings.pxe_userfiles.as_ref().ok_or_else(|| {
        RequestError::new(
            ApiError::BadConfiguration,
            "no PXE repository is configured (pxe/dhcp/repository)",
        )
    })?;
    let source = match fetch(app, r, file, "PXE", "anon", None)? {
        Some(p) => p,
        None => match FileRef::parse(file) {
            FileRef::Server(p) => p,
            _ => file.to_string(),
        },
    };
    let base = std::path::Path::new(file)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let invalid = |e: String| RequestError::new(ApiError::InvalidFile, e);
    let target = dir.join(format!("pxe-{}--{base}", r.user));
    let temp = dir.join(format!(".pxe-{}--{base}.part", r.user));
    let copy = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::copy(&source, &temp)?;
        std::fs::rename(&temp, &target)
    };
    copy().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        invalid(format!("The PXE file {file} cannot be installed: {e}"))
    })
}
