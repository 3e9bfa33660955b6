//! X.509 certificate authentication (spec §3.2): a client certificate, sent Base64-encoded in the
//! `<prefix>Certificate` header (Kadeploy's way) or presented in the TLS handshake, must be signed by the
//! configured CA (`authentication/certificate/ca_cert` or `ca_public_key`) and be valid now; its subject's
//! CN list gives the users it authenticates. A certificate only names users: whether the client holds its
//! key is for [`super::auth`] to establish (TLS handshake, or a trusted front end). CA certificates
//! (`basicConstraints` CA:TRUE, or the CA's own key) and certificates not meant for client authentication
//! (`extendedKeyUsage` without `clientAuth`, `keyUsage` without `digitalSignature`) are refused.

use base64::Engine as _;
use std::path::Path;
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};

/// Why a certificate is refused.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The CA file cannot be read or parsed.
    #[error("{0}")]
    Ca(String),
    /// The client's certificate is not usable.
    #[error("invalid certificate: {0}")]
    Invalid(String),
}

/// The trusted CA: the DER of its public key (SubjectPublicKeyInfo).
#[derive(Clone, Debug)]
pub struct CaKey {
    spki: Vec<u8>,
}

/// Decodes the first PEM block of `bytes` (or returns them as is when they are DER).
fn pem_or_der(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Ok(bytes.to_vec());
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(bytes).map_err(|e| format!("bad PEM: {e}"))?;
    Ok(pem.contents)
}

/// A CA file that cannot be read or parsed, named by its path.
fn ca_error(path: &Path, message: String) -> CertError {
    CertError::Ca(format!("{}: {message}", path.display()))
}

impl CaKey {
    /// Loads `ca_cert` (a PEM certificate): the key of its subject.
    pub fn from_cert_file(path: &Path) -> Result<CaKey, CertError> {
        let bytes = std::fs::read(path).map_err(|e| ca_error(path, e.to_string()))?;
        CaKey::from_cert_bytes(path, &bytes)
    }

    /// The key of the subject of `ca_cert`'s contents `bytes` (PEM or DER), read from `path`.
    pub fn from_cert_bytes(path: &Path, bytes: &[u8]) -> Result<CaKey, CertError> {
        let ca = |m: String| ca_error(path, m);
        let der = pem_or_der(bytes).map_err(ca)?;
        let (_, cert) = X509Certificate::from_der(&der).map_err(|e| ca(e.to_string()))?;
        Ok(CaKey {
            spki: cert.public_key().raw.to_vec(),
        })
    }

    /// Loads `ca_public_key/file` (a PEM `PUBLIC KEY`, i.e. SubjectPublicKeyInfo).
    pub fn from_key_file(path: &Path) -> Result<CaKey, CertError> {
        let bytes = std::fs::read(path).map_err(|e| ca_error(path, e.to_string()))?;
        CaKey::from_key_bytes(path, &bytes)
    }

    /// The key of `ca_public_key/file`'s contents `bytes` (PEM `PUBLIC KEY` or DER), read from `path`.
    pub fn from_key_bytes(path: &Path, bytes: &[u8]) -> Result<CaKey, CertError> {
        let ca = |m: String| ca_error(path, m);
        let der = pem_or_der(bytes).map_err(ca)?;
        SubjectPublicKeyInfo::from_der(&der)
            .map_err(|e| ca(format!("not a SubjectPublicKeyInfo public key: {e}")))?;
        Ok(CaKey { spki: der })
    }

    /// Checks a DER certificate: signed by this CA, valid now. Returns its subject's common names.
    pub fn verify_der(&self, der: &[u8]) -> Result<Vec<String>, CertError> {
        let bad = |m: String| CertError::Invalid(m);
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        let (_, key) = SubjectPublicKeyInfo::from_der(&self.spki)
            .map_err(|e| CertError::Ca(format!("CA key: {e}")))?;
        cert.verify_signature(Some(&key))
            .map_err(|_| bad("the certificate is not signed by the trusted CA".into()))?;
        if !cert.validity().is_valid() {
            return Err(bad("the certificate is expired or not yet valid".into()));
        }
        check_client_usage(&cert, &self.spki)?;
        Ok(cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(String::from)
            .collect())
    }

    /// Checks the value of a `<prefix>Certificate` header: Base64 of a PEM (or DER) certificate.
    pub fn verify_header(&self, value: &str) -> Result<Vec<String>, CertError> {
        let compact: String = value.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| CertError::Invalid(format!("bad Base64: {e}")))?;
        let der = pem_or_der(&bytes).map_err(CertError::Invalid)?;
        self.verify_der(&der)
    }
}

/// Refuses CA certificates and certificates whose extensions exclude client authentication.
fn check_client_usage(cert: &X509Certificate<'_>, ca_spki: &[u8]) -> Result<(), CertError> {
    let bad = |m: &str| CertError::Invalid(m.to_string());
    let ext = |e: x509_parser::error::X509Error| CertError::Invalid(format!("bad extensions: {e}"));
    if cert.public_key().raw == ca_spki {
        return Err(bad("the CA's own certificate cannot authenticate a user"));
    }
    if cert
        .basic_constraints()
        .map_err(ext)?
        .is_some_and(|bc| bc.value.ca)
    {
        return Err(bad(
            "a CA certificate (basicConstraints CA:TRUE) cannot authenticate a user",
        ));
    }
    if let Some(eku) = cert.extended_key_usage().map_err(ext)?
        && !eku.value.client_auth
    {
        return Err(bad(
            "the certificate is not meant for client authentication (extendedKeyUsage without clientAuth)",
        ));
    }
    if let Some(ku) = cert.key_usage().map_err(ext)?
        && !ku.value.digital_signature()
    {
        return Err(bad(
            "the certificate is not meant for client authentication (keyUsage without digitalSignature)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };

    fn params(cn: &str) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p
    }

    #[test]
    fn a_ca_public_key_or_certificate_checks_client_certificates() {
        let dir = std::env::temp_dir().join(format!("kadeploy-x509-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = params("CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
        std::fs::write(dir.join("ca.pub"), ca_key.public_key_pem()).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = params("alice").signed_by(&leaf_key, &issuer).unwrap();
        let other = params("alice").self_signed(&leaf_key).unwrap();
        for ca in [
            CaKey::from_cert_file(&dir.join("ca.pem")).unwrap(),
            CaKey::from_key_file(&dir.join("ca.pub")).unwrap(),
        ] {
            assert_eq!(
                ca.verify_der(leaf.der()).unwrap(),
                vec!["alice".to_string()]
            );
            let header = base64::engine::general_purpose::STANDARD.encode(leaf.pem());
            assert_eq!(
                ca.verify_header(&header).unwrap(),
                vec!["alice".to_string()]
            );
            assert!(matches!(
                ca.verify_der(other.der()),
                Err(CertError::Invalid(_))
            ));
            assert!(ca.verify_header("%%%").is_err());
        }
        assert!(CaKey::from_key_file(&dir.join("missing")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Before, the CA's certificate authenticated its CN, and so did certificates for servers only.
    #[test]
    fn ca_and_non_client_certificates_are_refused() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = params("TestCA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = CaKey {
            spki: rcgen::PublicKeyData::subject_public_key_info(&ca_key),
        };
        let issuer = Issuer::new(ca_params, ca_key);
        let refused = |der: &[u8], why: &str| match ca.verify_der(der) {
            Err(CertError::Invalid(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("expected a refusal ({why}), got {other:?}"),
        };
        refused(ca_cert.der(), "CA's own certificate");
        let mut sub = params("SubCA");
        sub.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        refused(
            sub.signed_by(&KeyPair::generate().unwrap(), &issuer)
                .unwrap()
                .der(),
            "CA:TRUE",
        );
        let mut server = params("root");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        refused(
            server
                .signed_by(&KeyPair::generate().unwrap(), &issuer)
                .unwrap()
                .der(),
            "clientAuth",
        );
        let mut enc = params("root");
        enc.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        refused(
            enc.signed_by(&KeyPair::generate().unwrap(), &issuer)
                .unwrap()
                .der(),
            "digitalSignature",
        );
        let mut client = params("root");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let ok = client
            .signed_by(&KeyPair::generate().unwrap(), &issuer)
            .unwrap();
        assert_eq!(ca.verify_der(ok.der()).unwrap(), vec!["root".to_string()]);
    }
}
