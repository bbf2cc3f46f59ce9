//! `server init --tls`: a self-signed P-256 certificate for `localhost`, `127.0.0.1` and
//! `::1` and its key (PEM, 0600) in the data directory, for tests and loopback set-ups.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{Ia5String, OctetString};
use x509_cert::der::pem::LineEnding as DerLineEnding;
use x509_cert::der::{Decode, EncodePem};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

/// File names inside the data directory, as the starter configuration names them.
pub const CERT_FILE: &str = "tls-cert.pem";
pub const KEY_FILE: &str = "tls-key.pem";

/// How long the test certificate is valid.
const VALIDITY: Duration = Duration::from_secs(365 * 86_400);

/// id-kp-serverAuth (RFC 5280 §4.2.1.12).
const SERVER_AUTH: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");

/// Writes `DIR/tls-cert.pem` and `DIR/tls-key.pem` (0600); refuses to replace either.
/// Returns their paths.
pub fn create(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    for p in [&cert_path, &key_path] {
        if p.exists() {
            anyhow::bail!(
                "{} already exists; delete it to make a new pair, or keep it",
                p.display()
            );
        }
    }
    let key = new_key()?;
    let cert = certificate(&key).context("cannot build the self-signed TLS certificate")?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("cannot encode the TLS key")?;
    server::keyfile::write_new_secret_file(&key_path, key_pem.as_bytes())?;
    std::fs::write(&cert_path, cert)
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    Ok((cert_path, key_path))
}

/// A fresh P-256 key from the OS generator.
fn new_key() -> anyhow::Result<SigningKey> {
    // A uniformly random 32-byte string is >= n with probability ~2^-32; retry.
    for _ in 0..16 {
        let bytes = zeroize::Zeroizing::new(
            secure_channel::mutual::random_bytes::<32>()
                .map_err(|e| anyhow::anyhow!("cannot generate the TLS key: {e}"))?,
        );
        if let Ok(k) = SigningKey::from_slice(bytes.as_slice()) {
            return Ok(k);
        }
    }
    anyhow::bail!("cannot generate the TLS key: the random generator keeps failing")
}

/// The self-signed end-entity certificate in PEM: CN=localhost, SANs localhost, 127.0.0.1
/// and ::1, serverAuth, not a CA (clients trust it directly).
fn certificate(key: &SigningKey) -> anyhow::Result<String> {
    let subject = Name::from_str("CN=localhost")?;
    let spki =
        SubjectPublicKeyInfoOwned::from_der(key.verifying_key().to_public_key_der()?.as_bytes())?;
    let mut serial = secure_channel::mutual::random_bytes::<16>()
        .map_err(|e| anyhow::anyhow!("cannot generate the serial number: {e}"))?;
    serial[0] = (serial[0] & 0x7F) | 0x40;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    // An hour back: a client whose clock is slightly behind still accepts it.
    let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(now.saturating_sub(3600));
    let validity = Validity {
        not_before: not_before.try_into()?,
        not_after: (not_before + VALIDITY).try_into()?,
    };
    let mut builder = CertificateBuilder::new(
        Profile::Leaf {
            issuer: subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
            include_subject_key_identifier: true,
        },
        SerialNumber::new(&serial)?,
        validity,
        subject,
        spki,
        key,
    )?;
    builder.add_extension(&SubjectAltName(vec![
        GeneralName::DnsName(Ia5String::new("localhost")?),
        GeneralName::IpAddress(OctetString::new(vec![127, 0, 0, 1])?),
        GeneralName::IpAddress(OctetString::new(std::net::Ipv6Addr::LOCALHOST.octets())?),
    ]))?;
    builder.add_extension(&ExtendedKeyUsage(vec![SERVER_AUTH]))?;
    let cert = builder.build::<p256::ecdsa::DerSignature>()?;
    Ok(cert.to_pem(DerLineEnding::LF)?)
}
