//! TLS for both services: reading the certificate chain and key from PEM files (the key
//! 0600 or stricter), the rustls server configuration on the `ring` provider, and the
//! plain-HTTP rule (a non-loopback address needs TLS or an explicit `--insecure-http`).

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
pub use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::config::{invalid, ConfigError};

/// Where a service's certificate chain (PEM, leaf first) and private key (PEM, PKCS#8, SEC1
/// or PKCS#1) are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the TLS files cannot be used. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}; check the path (`server init --data DIR --tls` creates a test pair)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the TLS key {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyTooOpen { path: PathBuf, mode: u32 },
    #[error("{path} is not a PEM certificate file ({reason}); give certificates in PEM (-----BEGIN CERTIFICATE-----; a chain starts with the service's own)")]
    BadCertificates { path: PathBuf, reason: String },
    #[error("{path} is not a PEM private key ({reason}); give a PKCS#8, SEC1 or PKCS#1 key in PEM (-----BEGIN PRIVATE KEY-----)")]
    BadKey { path: PathBuf, reason: String },
    #[error("the certificate {cert} and the key {key} cannot serve TLS: {reason}; check that the key is the certificate's (same pair) and the certificate is valid X.509")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The TLS provider of every TLS configuration here: `ring`, whatever else the process has.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of the PEM file at `path` (a chain, or the CAs a client trusts);
/// at least one.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| TlsError::BadCertificates {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE section found".into()));
    }
    Ok(certs)
}

/// Reads the private key at `path`, refusing a file that group or others can read.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyTooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(read)?);
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::BadKey {
        path: path.to_owned(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY section found".into(),
            e => e.to_string(),
        },
    })
}

/// The rustls server configuration for `files`: HTTP/1.1 over TLS 1.3 or 1.2, no client
/// certificate. Checks that the key is the certificate's.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = read_certificates(&files.cert)?;
    let key = read_private_key(&files.key)?;
    let unusable = |e: rustls::Error| TlsError::Unusable {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(unusable)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A root store holding the certificates of the PEM file at `path` (a CA, or a self-signed
/// server certificate), for clients that verify a server against it.
pub fn root_store(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certificates(path)? {
        roots.add(cert).map_err(|e| TlsError::BadCertificates {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A client configuration that trusts only the certificates of the PEM file at `ca`.
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = root_store(ca)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::BadCertificates {
            path: ca.to_owned(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// True for 127.0.0.0/8, ::1 and ::ffff:127.x.y.z.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
    }
}

/// How a service listens, as its file and command line say: `tls_cert` and `tls_key` (both
/// or neither) and `insecure_http`.
#[derive(Debug, Clone, Default)]
pub struct ListenSettings {
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_http: bool,
}

/// The one rule of both services: TLS with both files, or plain HTTP on a loopback address,
/// or plain HTTP anywhere with `insecure_http` (a TLS proxy in front, a private network).
pub fn check_listen(
    listen: SocketAddr,
    settings: &ListenSettings,
) -> Result<Option<TlsFiles>, ConfigError> {
    match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })),
        (Some(_), None) | (None, Some(_)) => Err(invalid(
            "tls_cert, tls_key",
            "give both the certificate and its key (or neither, for plain HTTP)",
        )),
        (None, None) if is_loopback(listen.ip()) || settings.insecure_http => Ok(None),
        (None, None) => Err(ConfigError::PlainHttpOffLoopback(listen)),
    }
}

/// A path from a configuration file: relative to the file's directory.
pub fn relative_to_file(config_file: &Path, path: &Path) -> PathBuf {
    match config_file.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_off_loopback_needs_the_flag_and_names_it() {
        let none = ListenSettings::default();
        for a in [
            "127.0.0.1:0",
            "[::1]:8080",
            "127.9.9.9:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert_eq!(
                check_listen(a.parse().unwrap(), &none).unwrap(),
                None,
                "{a}"
            );
        }
        for a in ["0.0.0.0:0", "[::]:0", "192.0.2.1:443"] {
            let e = check_listen(a.parse().unwrap(), &none).unwrap_err();
            assert!(e.to_string().contains("--insecure-http"), "{e}");
            let ok = ListenSettings {
                insecure_http: true,
                ..ListenSettings::default()
            };
            assert_eq!(check_listen(a.parse().unwrap(), &ok).unwrap(), None);
        }
        let half = ListenSettings {
            tls_cert: Some("c.pem".into()),
            ..ListenSettings::default()
        };
        assert!(check_listen("0.0.0.0:0".parse().unwrap(), &half).is_err());
        let both = ListenSettings {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            insecure_http: false,
        };
        assert!(check_listen("0.0.0.0:0".parse().unwrap(), &both)
            .unwrap()
            .is_some());
    }

    #[test]
    fn bad_files_are_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("cert.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let e = read_certificates(&garbage).unwrap_err();
        assert!(
            e.to_string().contains(&garbage.display().to_string()),
            "{e}"
        );

        let key = dir.path().join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_private_key(&key).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the TLS key {p} is readable by group or others (mode 644); run `chmod 600 {p}`",
                p = key.display()
            )
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let files = TlsFiles {
            cert: garbage.clone(),
            key: key.clone(),
        };
        assert!(matches!(
            server_config(&files),
            Err(TlsError::BadCertificates { .. })
        ));
        let missing = dir.path().join("absent.pem");
        assert!(matches!(
            read_certificates(&missing),
            Err(TlsError::Read { .. })
        ));
    }
}
