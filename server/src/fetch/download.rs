//! Downloading a file into the server's cache (spec §3.4, `grabfile.rb`): `http(s)://` URLs, and
//! client-side (`local://` or plain) paths exported by the client at `<client>/<urlsafe_base64(path)>`.
//! A `HEAD` gives the size and the checksum (the `ETag`), a `GET` the content, written to a temporary
//! file and renamed into the server's cache (`cache/directory`) only once complete and checked, so a
//! failure leaves nothing. A cached copy whose checksum is unchanged is reused. The size limit of the
//! file's kind is checked on the announced length and again while receiving. `server://` references
//! are not downloaded: they are checked by [`crate::server_files`].

use base64::Engine as _;
use kadeploy::error::{ApiError, RequestError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What kind of reference a file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRef {
    /// `server:///abs/path`: already on the server.
    Server(String),
    /// `http://…` or `https://…`.
    Http(String),
    /// A client-side absolute path (`local:///abs/path` or a plain path).
    Local(String),
}

impl FileRef {
    /// Classifies a file reference.
    pub fn parse(file: &str) -> FileRef {
        if let Some(p) = file.strip_prefix("server://") {
            FileRef::Server(p.to_string())
        } else if file.starts_with("http://") || file.starts_with("https://") {
            FileRef::Http(file.to_string())
        } else if let Some(p) = file.strip_prefix("local://") {
            FileRef::Local(p.to_string())
        } else {
            FileRef::Local(file.to_string())
        }
    }
}

/// The URL of a client-exported `path` on the client's file server `client`.
pub fn client_url(client: &str, path: &str) -> String {
    format!(
        "{}/{}",
        client.trim_end_matches('/'),
        base64::engine::general_purpose::URL_SAFE.encode(path)
    )
}

/// Kadeploy's cache file name: every non-word character of `"<tag>-<version>-<origin>"` becomes `_`,
/// plus `.data`.
pub fn cache_name(tag: &str, version: &str, origin: &str) -> String {
    let raw = format!("{tag}-{version}-{origin}");
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.push_str(".data");
    name
}

/// Where and how files are cached.
#[derive(Clone, Debug)]
pub struct Cache {
    /// `cache/directory`.
    pub dir: PathBuf,
    /// `cache/size` in bytes, when configured.
    pub size: Option<u64>,
}

/// One file to fetch.
pub struct Wanted<'a> {
    /// The reference as the request gave it.
    pub file: &'a str,
    /// What it is, for messages (`image`, `postinstall`...).
    pub what: &'a str,
    /// Cache tag (the user).
    pub tag: &'a str,
    /// Cache version (`<name>/<version>` of the environment, `anon` otherwise).
    pub version: &'a str,
    /// Size limit in bytes (pre/post-install archives), error 5 above it.
    pub max_size: Option<u64>,
}

fn invalid(msg: String) -> RequestError {
    RequestError::new(ApiError::InvalidFile, msg)
}

fn no_client(file: &str) -> RequestError {
    RequestError::new(
        ApiError::InvalidClient,
        format!(
            "There is no way to retrieve {file} from the Kadeploy server. Consider using a server:// or a http:// URL"
        ),
    )
}

/// The HTTP client of downloads: certificates not verified (as Kadeploy), at most an hour per transfer.
pub fn http_client() -> Result<reqwest::Client, RequestError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(3600))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| invalid(format!("HTTP client: {e}")))
}

/// Fetches `w` into `cache` when it is an HTTP or client-side reference: the path of the cached copy, or
/// `None` for `server://` references. `client` is the request's `client` parameter.
pub async fn fetch(
    cache: &Cache,
    client: Option<&str>,
    w: &Wanted<'_>,
) -> Result<Option<PathBuf>, RequestError> {
    let url = match FileRef::parse(w.file) {
        FileRef::Server(_) => return Ok(None),
        FileRef::Http(u) => u,
        FileRef::Local(path) => {
            let client = client.ok_or_else(|| no_client(w.file))?;
            if !path.starts_with('/') {
                return Err(invalid(format!(
                    "The {} file {path} is not an absolute path",
                    w.what
                )));
            }
            client_url(client, &path)
        }
    };
    let http = http_client()?;
    let unable = |detail: String| invalid(format!("Unable to grab the file {} ({detail})", w.file));
    let head = http
        .head(&url)
        .send()
        .await
        .map_err(|e| unable(e.to_string()))?;
    if !head.status().is_success() {
        return Err(unable(format!("HTTP {}", head.status().as_u16())));
    }
    let etag = head
        .headers()
        .get("ETag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let length = head
        .headers()
        .get("Content-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(max), Some(len)) = (w.max_size, length)
        && len > max
    {
        return Err(invalid(format!(
            "The {} file {} is too big ({len} bytes, at most {max})",
            w.what, w.file
        )));
    }
    if let (Some(size), Some(len)) = (cache.size, length)
        && len > size
    {
        return Err(RequestError::new(
            ApiError::CacheError,
            format!("The file {} is bigger than the cache", w.file),
        ));
    }
    let cache_err = |e: std::io::Error| {
        RequestError::new(
            ApiError::CacheError,
            format!("{}: {e}", cache.dir.display()),
        )
    };
    create_private_dir(&cache.dir).map_err(cache_err)?;
    let name = cache_name(w.tag, w.version, w.file);
    let data = cache.dir.join(&name);
    let meta = cache.dir.join(format!("{name}.etag"));
    if !etag.is_empty() && data.is_file() && std::fs::read_to_string(&meta).is_ok_and(|m| m == etag)
    {
        tracing::debug!(file = w.file, cached = %data.display(), "cache hit");
        return Ok(Some(data));
    }
    let part = cache.dir.join(format!("{name}.part"));
    let result = download(&http, &url, &part, &etag, length, w.max_size).await;
    match result {
        Ok(()) => {
            std::fs::rename(&part, &data).map_err(cache_err)?;
            std::fs::write(&meta, &etag).map_err(cache_err)?;
            Ok(Some(data))
        }
        Err(detail) => {
            let _ = std::fs::remove_file(&part);
            Err(unable(detail))
        }
    }
}

/// `GET url` into `part`, checking the checksum (ETag) and the size announced by the `HEAD`.
async fn download(
    http: &reqwest::Client,
    url: &str,
    part: &Path,
    etag: &str,
    length: Option<u64>,
    max: Option<u64>,
) -> Result<(), String> {
    use tokio::io::AsyncWriteExt as _;
    let mut resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    let got = resp
        .headers()
        .get("ETag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if got != etag {
        return Err(format!(
            "the checksum changed during the transfer ({etag} then {got})"
        ));
    }
    let mut out = tokio::fs::File::create(part)
        .await
        .map_err(|e| format!("{}: {e}", part.display()))?;
    let mut written = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        out.write_all(&chunk)
            .await
            .map_err(|e| format!("{}: {e}", part.display()))?;
        written += chunk.len() as u64;
        if let Some(max) = max
            && written > max
        {
            return Err(format!("more than {max} bytes"));
        }
    }
    out.flush().await.map_err(|e| e.to_string())?;
    if let Some(len) = length
        && written != len
    {
        return Err(format!("{written} bytes received, {len} announced"));
    }
    Ok(())
}

/// Creates `dir` (mode 0700, as Kadeploy's cache) when missing.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_names() {
        assert_eq!(
            FileRef::parse("server:///e/x.tgz"),
            FileRef::Server("/e/x.tgz".into())
        );
        assert_eq!(
            FileRef::parse("local:///home/u/x.tgz"),
            FileRef::Local("/home/u/x.tgz".into())
        );
        assert_eq!(FileRef::parse("/a"), FileRef::Local("/a".into()));
        assert_eq!(
            client_url("http://h:1/", "/tmp/a?b"),
            "http://h:1/L3RtcC9hP2I="
        );
        assert_eq!(client_url("http://h", "???"), "http://h/Pz8_");
        assert_eq!(
            cache_name("bob", "anon", "/tmp/x.tgz"),
            "bob_anon__tmp_x_tgz.data"
        );
    }
}
