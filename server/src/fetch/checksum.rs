//! MD5 checksums of an environment's files (spec §8.1 "Checksums"), computed when an environment is
//! recorded (`kaenv3 -a`) and when `kaenv3 --update-image-checksum`, `--update-preinstall-checksum` or
//! `--update-postinstalls-checksum` asks: the whole file is read, `server://` files from the directories
//! allowed for them, `http(s)://` and client-exported files streamed over HTTP, never more than the size
//! limit of the file's kind. A file that cannot be read is Kadeploy's error 5, "Unable to grab the file".

use super::download::{FileRef, client_url, http_client};
use crate::App;
use crate::server_files::ServerFileError;
use crate::store::Checksums;
use kadeploy::envdesc::EnvDesc;
use kadeploy::error::{ApiError, RequestError};
use std::io::Read as _;

/// Largest image checksummed when `cache/size` is not configured (bytes).
pub const MAX_IMAGE: u64 = 256 << 30;

/// Which checksums to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The image.
    Image,
    /// The pre-install archive.
    Preinstall,
    /// Every post-install archive.
    Postinstalls,
}

fn unable(file: &str, detail: Option<String>) -> RequestError {
    let msg = match detail {
        Some(d) => format!("Unable to grab the file {file} ({d})"),
        None => format!("Unable to grab the file {file}"),
    };
    RequestError::new(ApiError::InvalidFile, msg)
}

/// Every checksum of `desc`'s files (`client`: the request's client file server).
pub async fn environment(
    app: &App,
    client: Option<&str>,
    desc: &EnvDesc,
) -> Result<Checksums, RequestError> {
    let mut sums = Checksums::default();
    for which in [Which::Image, Which::Preinstall, Which::Postinstalls] {
        update(app, client, desc, which, &mut sums).await?;
    }
    Ok(sums)
}

/// Recomputes the checksums `which` of `desc`'s files into `sums`.
pub async fn update(
    app: &App,
    client: Option<&str>,
    desc: &EnvDesc,
    which: Which,
    sums: &mut Checksums,
) -> Result<(), RequestError> {
    match which {
        Which::Image => {
            let max = app.settings.cache.size.unwrap_or(MAX_IMAGE);
            sums.image = md5(app, client, &desc.image.file, max).await?;
        }
        Which::Preinstall => {
            sums.preinstall = match &desc.preinstall {
                Some(pre) => md5(app, client, &pre.archive, app.settings.max_preinstall).await?,
                None => String::new(),
            };
        }
        Which::Postinstalls => {
            let mut all = Vec::new();
            for post in &desc.postinstalls {
                all.push(md5(app, client, &post.archive, app.settings.max_postinstall).await?);
            }
            sums.postinstalls = all;
        }
    }
    Ok(())
}

/// The MD5 (lower-case hex) of the file reference `file`, read up to `max` bytes (error 5 beyond).
/// A client-side file without a client file server is not readable: its checksum stays unknown (empty)
/// when every backend is simulated, as such an environment is accepted there; it is error 3 otherwise.
pub async fn md5(
    app: &App,
    client: Option<&str>,
    file: &str,
    max: u64,
) -> Result<String, RequestError> {
    let url = match FileRef::parse(file) {
        FileRef::Server(path) => return server_md5(app, file, &path, max).await,
        FileRef::Http(url) => url,
        FileRef::Local(path) => match client {
            Some(c) => client_url(c, &path),
            None if super::simulated(app) => return Ok(String::new()),
            None => {
                return Err(RequestError::new(
                    ApiError::InvalidClient,
                    format!(
                        "There is no way to retrieve {file} from the Kadeploy server. Consider using a server:// or a http:// URL"
                    ),
                ));
            }
        },
    };
    http_md5(&url, file, max).await
}

/// The MD5 of an allowed server file, read on the blocking pool.
async fn server_md5(app: &App, file: &str, path: &str, max: u64) -> Result<String, RequestError> {
    let opened = app.settings.server_files.open(path, Some(max));
    let shown = path.to_string();
    let mut opened = opened.map_err(|e| match e {
        ServerFileError::Refused => unable(&shown, None),
        e @ ServerFileError::TooBig { .. } => unable(&shown, Some(e.to_string())),
    })?;
    let name = file.to_string();
    let read = move || -> Result<String, RequestError> {
        let mut ctx = md5::Context::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = (opened.file.read(&mut buf)).map_err(|e| unable(&name, Some(e.to_string())))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > max {
                return Err(unable(&name, Some(format!("more than {max} bytes"))));
            }
            ctx.consume(buf.get(..n).unwrap_or_default());
        }
        Ok(format!("{:x}", ctx.finalize()))
    };
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or_else(|_| Err(unable(file, None)))
}

/// The MD5 of the body of `GET url` (`file` as the request names it), streamed.
async fn http_md5(url: &str, file: &str, max: u64) -> Result<String, RequestError> {
    let http = http_client()?;
    let mut resp = (http.get(url).send().await).map_err(|e| unable(file, Some(e.to_string())))?;
    if !resp.status().is_success() {
        let code = resp.status().as_u16();
        return Err(unable(file, Some(format!("http error #{code}"))));
    }
    if let Some(len) = resp.content_length()
        && len > max
    {
        return Err(unable(file, Some(format!("{len} bytes, at most {max}"))));
    }
    let mut ctx = md5::Context::new();
    let mut total = 0u64;
    while let Some(chunk) = (resp.chunk().await).map_err(|e| unable(file, Some(e.to_string())))? {
        total += chunk.len() as u64;
        if total > max {
            return Err(unable(file, Some(format!("more than {max} bytes"))));
        }
        ctx.consume(&chunk);
    }
    Ok(format!("{:x}", ctx.finalize()))
}
