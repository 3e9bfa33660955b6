//! `server.conf` as read once for the server's own settings and its backends: the wire struct (the raw
//! inputs of `kadeploy_server::Settings`), the typed `backend/*` keys, and the CA file that
//! `authentication/certificate` names, read here so that nothing reads configuration files again.

use super::backend::{self, BackendKeys};
use super::error::{ConfigError, Ctx};
use super::files::ReadFile;
use super::wire;
use std::path::{Path, PathBuf};

/// `server.conf`, read once.
#[derive(Clone, Debug)]
pub struct ServerConf {
    /// The configuration directory: relative paths of `server.conf` are resolved against it.
    pub dir: PathBuf,
    /// The keys as written, with Kadeploy's defaults.
    pub file: wire::ServerFile,
    /// `backend/*`, typed.
    pub backend: BackendKeys,
    /// The CA of `authentication/certificate`, when that section names one.
    pub ca: Option<CaFile>,
}

/// Which key of `authentication/certificate` names the CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaSource {
    /// `ca_cert`: a certificate (PEM or DER), whose subject key is trusted.
    Certificate,
    /// `ca_public_key/file`: a public key (PEM `PUBLIC KEY` or DER SubjectPublicKeyInfo).
    PublicKey,
}

/// A CA file as read at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaFile {
    /// What the file holds.
    pub source: CaSource,
    /// The file, resolved against the configuration directory (for messages).
    pub path: PathBuf,
    /// Its contents.
    pub bytes: Vec<u8>,
}

/// Types the parts of `w` that the server and its backends use; reads the files named by keys
/// (`authentication/certificate`'s CA, `backend/ipmi/password_file`) with `read_bytes`, resolved against
/// `dir`.
pub(crate) fn convert(
    w: wire::ServerFile,
    ctx: Ctx<'_>,
    dir: &Path,
    read_bytes: &mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<ServerConf, ConfigError> {
    let mut read_text = |path: &Path| -> std::io::Result<String> {
        let bytes = read_bytes(path)?;
        String::from_utf8(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    };
    let read: ReadFile<'_> = &mut read_text;
    let backend = backend::convert(w.backend.as_ref(), ctx, dir, read)?;
    let ca = ca_file(&w, ctx, dir, read_bytes)?;
    Ok(ServerConf {
        dir: dir.to_path_buf(),
        file: w,
        backend,
        ca,
    })
}

/// Reads the CA of `authentication/certificate`: `ca_cert` first, else `ca_public_key/file`.
fn ca_file(
    w: &wire::ServerFile,
    ctx: Ctx<'_>,
    dir: &Path,
    read_bytes: &mut dyn FnMut(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Option<CaFile>, ConfigError> {
    let Some(cert) = &w.authentication.certificate else {
        return Ok(None);
    };
    let (source, key, name) = match (
        &cert.ca_cert,
        cert.ca_public_key.as_ref().and_then(|k| k.file.as_ref()),
    ) {
        (Some(f), _) => (
            CaSource::Certificate,
            "authentication/certificate/ca_cert",
            f,
        ),
        (None, Some(f)) => (
            CaSource::PublicKey,
            "authentication/certificate/ca_public_key/file",
            f,
        ),
        (None, None) => return Err(ctx.missing("authentication/certificate/ca_cert")),
    };
    let path = dir.join(name);
    let bytes = read_bytes(&path).map_err(|source| ConfigError::File {
        file: ctx.file.into(),
        key: key.into(),
        path: path.clone(),
        source,
    })?;
    Ok(Some(CaFile {
        source,
        path,
        bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// Converts `yaml`, with `files` (name → contents) as the only readable files of `/etc/kadeploy3`.
    fn conf(yaml: &str, files: &[(&str, &[u8])]) -> Result<ServerConf, ConfigError> {
        let w: wire::ServerFile = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
        let dir = Path::new("/etc/kadeploy3");
        let mut read = |path: &Path| -> io::Result<Vec<u8>> {
            files
                .iter()
                .find(|(name, _)| dir.join(name) == path)
                .map(|(_, bytes)| bytes.to_vec())
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        };
        convert(
            w,
            Ctx {
                file: "server.conf",
            },
            dir,
            &mut read,
        )
    }

    #[test]
    fn the_ca_is_read_once_from_the_key_that_names_it() {
        let c = conf("rights: {kind: db}\n", &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.ca, c.backend.kind.as_str()), (None, "simulated"));
        let yaml = "authentication:\n  certificate:\n    ca_cert: ca.pem\n    \
                    ca_public_key: {algorithm: RSA, file: ca.pub}\n";
        let files: &[(&str, &[u8])] = &[("ca.pem", b"CERT"), ("ca.pub", b"KEY")];
        let ca = conf(yaml, files).unwrap_or_else(|e| panic!("{e}")).ca;
        let ca = ca.unwrap_or_else(|| panic!("a CA"));
        assert_eq!(
            (ca.source, ca.bytes.as_slice()),
            (CaSource::Certificate, &b"CERT"[..])
        );
        let yaml =
            "authentication: {certificate: {ca_public_key: {algorithm: RSA, file: ca.pub}}}\n";
        let ca = conf(yaml, files).unwrap_or_else(|e| panic!("{e}")).ca;
        assert_eq!(ca.map(|c| c.source), Some(CaSource::PublicKey));
    }

    #[test]
    fn an_unreadable_ca_names_the_file_and_the_key() {
        let yaml = "authentication: {certificate: {ca_cert: missing.pem}}\n";
        let e = conf(yaml, &[]).map(|_| ()).unwrap_err();
        assert_eq!(e.key(), Some("authentication/certificate/ca_cert"));
        assert!(
            e.to_string()
                .starts_with("server.conf: authentication/certificate/ca_cert: cannot read /etc/kadeploy3/missing.pem"),
            "{e}"
        );
        let e = conf("authentication: {certificate: {}}\n", &[])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.key(), Some("authentication/certificate/ca_cert"));
    }
}
