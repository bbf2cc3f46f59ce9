//! The card issuer CA: a P-256 key in a 0600 file, which certifies each container's SE key
//! at personalization. Its public key is what the service server trusts.

use crate::state::CardState;
use secure_channel::mutual::{self, SigningKey};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use thiserror::Error;

const FORMAT: &str = "vse-issuer-ca";

/// Ten years, the validity of the SE certificates issued at personalization.
const CERTIFICATE_VALIDITY: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Error)]
pub enum CaError {
    #[error("cannot read the issuer CA file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("cannot write the issuer CA file {0}: {1}")]
    Write(String, std::io::Error),
    #[error("{0} already exists; pass --force to replace it (cards it certified will no longer be trusted)")]
    Exists(String),
    #[error(
        "{0} is not an issuer CA file ({1}); create one with `card-emulator ca create --out FILE`"
    )]
    Corrupt(String, String),
    #[error("certificate issuing failed: {0}")]
    Issue(#[from] mutual::MutualError),
}

#[derive(Serialize, Deserialize)]
struct CaFile {
    format: String,
    version: u32,
    name: String,
    private_key: String,
    public_key: String,
}

/// The issuer CA: its name (the certificates' issuer identifier) and key.
pub struct IssuerCa {
    pub name: String,
    key: SigningKey,
}

impl IssuerCa {
    pub fn generate(name: &str) -> Result<IssuerCa, CaError> {
        Ok(IssuerCa {
            name: name.to_string(),
            key: SigningKey::generate()?,
        })
    }

    /// A CA around an existing key (tests and benchmarks share one with a server).
    pub fn from_key(name: &str, key: SigningKey) -> IssuerCa {
        IssuerCa {
            name: name.to_string(),
            key,
        }
    }

    pub fn load(path: &Path) -> Result<IssuerCa, CaError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CaError::Read(name.clone(), e))?;
        let f: CaFile = serde_json::from_str(&text)
            .map_err(|e| CaError::Corrupt(name.clone(), e.to_string()))?;
        if f.format != FORMAT || f.version != 1 {
            return Err(CaError::Corrupt(
                name,
                format!("format {} version {}", f.format, f.version),
            ));
        }
        let bytes = hex::decode(&f.private_key)
            .map_err(|e| CaError::Corrupt(name.clone(), e.to_string()))?;
        let key =
            SigningKey::from_bytes(&bytes).map_err(|e| CaError::Corrupt(name, e.to_string()))?;
        Ok(IssuerCa { name: f.name, key })
    }

    /// Write the CA to a new file with mode 0600 (refused if it exists, unless `force`).
    pub fn save(&self, path: &Path, force: bool) -> Result<(), CaError> {
        let name = path.display().to_string();
        let f = CaFile {
            format: FORMAT.into(),
            version: 1,
            name: self.name.clone(),
            private_key: hex::encode_upper(*self.key.to_bytes()),
            public_key: self.public_hex(),
        };
        let text = serde_json::to_string_pretty(&f).unwrap_or_default();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).mode(0o600);
        if force {
            opts.create(true).truncate(true);
        } else {
            opts.create_new(true);
        }
        let mut file = opts.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CaError::Exists(name.clone()),
            _ => CaError::Write(name.clone(), e),
        })?;
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| CaError::Write(name, e))
    }

    /// The CA public key, SEC1 uncompressed, hex: what `server` is configured with.
    pub fn public_hex(&self) -> String {
        hex::encode_upper(self.key.verifying_key().to_sec1())
    }

    /// Personalize every container's authentication applet: a fresh SE key pair generated
    /// here, on the card, and a certificate for it (subject = EID || ICCID).
    pub fn personalize(&self, state: &mut CardState, now: u64) -> Result<(), CaError> {
        let eid = state.eid.clone();
        for (i, c) in state.containers_mut().iter_mut().enumerate() {
            let se = SigningKey::generate()?;
            let mut subject = [0u8; mutual::SUBJECT_LEN];
            for (d, s) in subject.iter_mut().zip(eid.iter().chain(c.iccid.iter())) {
                *d = *s;
            }
            let mut serial = vec![(i as u8).wrapping_add(1)];
            serial.extend_from_slice(&mutual::random_bytes::<7>()?);
            let expiry = u32::try_from(now + CERTIFICATE_VALIDITY).unwrap_or(u32::MAX);
            let cert = mutual::issue_certificate(
                &self.key,
                &serial,
                &self.name,
                subject,
                expiry,
                &se.verifying_key(),
            )?;
            c.auth.se_key = se.to_bytes().to_vec();
            c.auth.certificate = cert.to_bytes();
        }
        Ok(())
    }
}
