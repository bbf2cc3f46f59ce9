//! Seed-1 mutual authentication crypto for card and server: P-256 keys and certificates, signed R/R', ECDH + HKDF, the AES-256-GCM connection.
//!
//! The wire contract is `apdu-specs/docs/mutual-auth.md`; the structures are the codecs
//! of [`apdu_specs::auth`]. Everything is sans-IO and clock-free: callers pass `now`
//! (Unix seconds). The flow, with the helpers each side calls:
//!
//! 1. SE, GET REGISTRATION: [`se_build_registration`] -> [`PendingRegistration`] (persist it;
//!    its ephemeral key is secret), send `pending.signed().to_bytes()`.
//! 2. Server: [`server_verify_registration`] (certificate chain, expiry, key usage,
//!    signature, service id), then its own nonce store and policy, then [`server_answer`]
//!    -> signed R' and, when granted, the server's [`Connection`].
//! 3. SE, VERIFY SERVER: [`se_accept_answer`] -> the SE's [`Connection`].
//! 4. Both: [`Connection::seal`] / [`Connection::open`] (or the typed `seal_call`,
//!    `open_call`, `seal_result`, `open_result`).
//!
//! Signatures are raw `r || s` with low `s` (signers normalise; verifiers refuse high `s`,
//! so a relay cannot produce a second valid signature and split the transcript hash).

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::Signature;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

pub use apdu_specs::auth::{
    AuthError, Call, CallResult, CallStatus, Certificate, ProtectedMessage, Registration,
    SealedAnswer, SealedRegistration, ServerAnswer, SignedRegistration, SignedServerAnswer,
    ANSWER_BUCKETS, CID_LEN, KEY_USAGE_DIGITAL_SIGNATURE, MESSAGE_BUCKETS, NONCE_LEN,
    PUBLIC_KEY_LEN, REGISTRATION_BUCKETS, SIGNATURE_LEN, SUBJECT_LEN,
};
use apdu_specs::Status;

/// HKDF `info` of the session keys.
pub const KDF_INFO: &[u8] = b"vse mutual auth v2";
/// HKDF `info` of the key that seals R to the server.
pub const KDF_INFO_R: &[u8] = b"vse mutual auth v2 R";
/// HKDF `info` of the key that seals R' to the SE.
pub const KDF_INFO_RP: &[u8] = b"vse mutual auth v2 R'";
/// Nonce prefix of SE -> server messages ("up").
pub const DIRECTION_UP: [u8; 4] = [0x75, 0x70, 0x00, 0x00];
/// Nonce prefix of server -> SE messages ("dn").
pub const DIRECTION_DOWN: [u8; 4] = [0x64, 0x6E, 0x00, 0x00];

/// What failed in the mutual authentication or on the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutualError {
    #[error("malformed message: {0}")]
    Codec(#[from] AuthError),
    #[error("the operating system's random number generator failed; check /dev/urandom")]
    Rng,
    #[error("{0} is not a valid P-256 public key (uncompressed point on the curve expected)")]
    InvalidPublicKey(&'static str),
    #[error("invalid P-256 private key (32 bytes, 0 < d < n expected)")]
    InvalidPrivateKey,
    #[error("certificate signature does not verify with the issuer CA key (wrong CA configured?)")]
    BadCertificateSignature,
    #[error("certificate key usage {0:02X} is not digital signature (80)")]
    WrongKeyUsage(u8),
    #[error("certificate expired at {expiry} (now {now})")]
    CertificateExpired { expiry: u64, now: u64 },
    #[error("{0} signature does not verify")]
    BadSignature(&'static str),
    #[error("R' does not answer the pending R: {0} differs")]
    AnswerMismatch(&'static str),
    #[error("registration is for service {found:?}, expected {expected:?}")]
    WrongService { expected: String, found: String },
    #[error("the server refused the service")]
    NotGranted,
    #[error("grant expired at {expiry} (now {now}); register again")]
    GrantExpired { expiry: u64, now: u64 },
    #[error("call {0:?} is outside the granted scope")]
    OutsideScope(String),
    #[error("message authentication failed: {0}")]
    Authentication(&'static str),
    #[error("message counter exhausted; register again")]
    CounterExhausted,
    #[error("plaintext of {0} bytes is too long")]
    TooLong(usize),
}

impl MutualError {
    /// The status word the authentication applet answers for this error.
    pub fn status(&self) -> Status {
        match self {
            MutualError::Codec(_) => Status::IncorrectData,
            MutualError::BadSignature(_)
            | MutualError::AnswerMismatch(_)
            | MutualError::InvalidPublicKey(_) => Status::BadServerSignature,
            MutualError::NotGranted | MutualError::OutsideScope(_) => Status::ServiceNotGranted,
            MutualError::GrantExpired { .. } => Status::GrantExpired,
            MutualError::Authentication(_) => Status::MessageAuthenticationFailed,
            _ => Status::NoPreciseDiagnosis,
        }
    }
}

type Result<T> = core::result::Result<T, MutualError>;

/// `n` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|_| MutualError::Rng)?;
    Ok(b)
}

fn random_secret() -> Result<p256::SecretKey> {
    // A uniformly random 32-byte string is >= n with probability ~2^-32; retry.
    for _ in 0..16 {
        let bytes = Zeroizing::new(random_bytes::<32>()?);
        if let Ok(k) = p256::SecretKey::from_slice(bytes.as_slice()) {
            return Ok(k);
        }
    }
    Err(MutualError::Rng)
}

fn secret_from_bytes(bytes: &[u8]) -> Result<p256::SecretKey> {
    if bytes.len() != 32 {
        return Err(MutualError::InvalidPrivateKey);
    }
    p256::SecretKey::from_slice(bytes).map_err(|_| MutualError::InvalidPrivateKey)
}

fn public_from_sec1(what: &'static str, bytes: &[u8]) -> Result<p256::PublicKey> {
    if bytes.len() != PUBLIC_KEY_LEN || bytes.first() != Some(&0x04) {
        return Err(MutualError::InvalidPublicKey(what));
    }
    p256::PublicKey::from_sec1_bytes(bytes).map_err(|_| MutualError::InvalidPublicKey(what))
}

fn sec1(public: &p256::PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    let point = public.to_encoded_point(false);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    if point.as_bytes().len() == PUBLIC_KEY_LEN {
        out.copy_from_slice(point.as_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------
// Keys

/// A long-term ECDSA P-256 private key (CA, SE or server). Zeroized on drop.
#[derive(Clone)]
pub struct SigningKey(p256::ecdsa::SigningKey);

impl SigningKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        Ok(SigningKey(p256::ecdsa::SigningKey::from(&random_secret()?)))
    }

    /// From the 32-byte big-endian scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Ok(SigningKey(p256::ecdsa::SigningKey::from(
            &secret_from_bytes(bytes)?,
        )))
    }

    /// The 32-byte big-endian scalar (write it only to 0600 files).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_key(*self.0.verifying_key())
    }

    /// ECDSA P-256 / SHA-256 over `message`, raw `r || s` with low `s` (RFC 6979 nonces).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let sig: Signature = self.0.sign(message);
        let sig = sig.normalize_s().unwrap_or(sig);
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(&sig.to_bytes());
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.verifying_key())
    }
}

/// An ECDSA P-256 public key, validated on the curve, with its SEC1 encoding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey {
    key: p256::ecdsa::VerifyingKey,
    sec1: [u8; PUBLIC_KEY_LEN],
}

impl VerifyingKey {
    fn from_key(key: p256::ecdsa::VerifyingKey) -> VerifyingKey {
        VerifyingKey {
            key,
            sec1: sec1(&p256::PublicKey::from(&key)),
        }
    }

    /// From a SEC1 uncompressed point (65 bytes, `04 || X || Y`) on the curve.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self> {
        Ok(VerifyingKey::from_key(p256::ecdsa::VerifyingKey::from(
            public_from_sec1("verifying key", bytes)?,
        )))
    }

    /// The SEC1 uncompressed point.
    pub fn to_sec1(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.sec1
    }

    /// Check a raw `r || s` signature over `message`; high `s` is refused.
    ///
    /// The check itself is ring's: its assembly P-256 verifies in about a sixth of the
    /// time of the pure-Rust `p256` (a flow verifies two signatures, the card's and the
    /// server's). Verification is a public computation: no secret meets ring here.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        if sig.normalize_s().is_some() {
            return false;
        }
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &self.sec1,
        )
        .verify(message, signature)
        .is_ok()
    }
}

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.to_sec1()))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({self})")
    }
}

/// The X coordinate of ECDH(`secret`, `peer`): the one place both ends compute a shared secret.
fn ecdh_x(secret: p256::NonZeroScalar, peer: &p256::AffinePoint) -> Zeroizing<[u8; 32]> {
    let shared = p256::ecdh::diffie_hellman(secret, peer);
    let mut x = Zeroizing::new([0u8; 32]);
    x.copy_from_slice(shared.raw_secret_bytes());
    x
}

/// An ephemeral ECDH P-256 private key, committed inside R or R'. Zeroized on drop.
#[derive(Clone)]
pub struct EphemeralKey {
    secret: p256::SecretKey,
    /// The public point, computed on first use: R and R' each name it twice (inside and
    /// outside the seal), and each computation is a scalar multiplication.
    public: std::sync::OnceLock<[u8; PUBLIC_KEY_LEN]>,
}

impl EphemeralKey {
    fn new(secret: p256::SecretKey) -> EphemeralKey {
        EphemeralKey {
            secret,
            public: std::sync::OnceLock::new(),
        }
    }

    pub fn generate() -> Result<Self> {
        Ok(EphemeralKey::new(random_secret()?))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Ok(EphemeralKey::new(secret_from_bytes(bytes)?))
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.secret.to_bytes());
        out
    }

    /// The SEC1 uncompressed public point.
    pub fn public_sec1(&self) -> [u8; PUBLIC_KEY_LEN] {
        *self.public.get_or_init(|| sec1(&self.secret.public_key()))
    }

    /// `Z`: the X coordinate of ECDH with the peer's public point.
    pub fn diffie_hellman(&self, peer_sec1: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let peer = public_from_sec1("peer ephemeral key", peer_sec1)?;
        Ok(ecdh_x(self.secret.to_nonzero_scalar(), peer.as_affine()))
    }

    /// ECDH with a static key already parsed (the server key R is sealed to).
    pub fn diffie_hellman_with(&self, peer: &VerifyingKey) -> Zeroizing<[u8; 32]> {
        ecdh_x(self.secret.to_nonzero_scalar(), peer.key.as_affine())
    }
}

impl fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EphemeralKey(..)")
    }
}

mod hex_serde {
    use super::*;

    pub fn secret<S: Serializer>(bytes: &[u8], s: S) -> core::result::Result<S::Ok, S::Error> {
        let text = Zeroizing::new(hex::encode_upper(bytes));
        s.serialize_str(&text)
    }

    pub fn bytes<'de, D: Deserializer<'de>>(
        d: D,
    ) -> core::result::Result<Zeroizing<Vec<u8>>, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        hex::decode(text.as_bytes())
            .map(Zeroizing::new)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for SigningKey {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        hex_serde::secret(self.to_bytes().as_slice(), s)
    }
}

impl<'de> Deserialize<'de> for SigningKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        SigningKey::from_bytes(&hex_serde::bytes(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for EphemeralKey {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        hex_serde::secret(self.to_bytes().as_slice(), s)
    }
}

impl<'de> Deserialize<'de> for EphemeralKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        EphemeralKey::from_bytes(&hex_serde::bytes(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for VerifyingKey {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(self.to_sec1()))
    }
}

impl<'de> Deserialize<'de> for VerifyingKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        VerifyingKey::from_sec1(&hex_serde::bytes(d)?).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Certificates

/// Issue an SE certificate: the CA signs the body (`93 42 5F20 95 5F24 7F49`).
pub fn issue_certificate(
    ca_key: &SigningKey,
    serial: &[u8],
    issuer: &str,
    subject: [u8; SUBJECT_LEN],
    expiry: u32,
    se_public: &VerifyingKey,
) -> Result<Certificate> {
    let mut cert = Certificate {
        serial: serial.to_vec(),
        issuer: issuer.to_string(),
        subject,
        key_usage: KEY_USAGE_DIGITAL_SIGNATURE,
        expiry,
        public_key: se_public.to_sec1(),
        signature: [0u8; SIGNATURE_LEN],
    };
    cert.signature = ca_key.sign(&cert.body_bytes());
    // Refuse to issue what no parser would accept (serial or issuer length).
    Certificate::parse(&cert.to_bytes())?;
    Ok(cert)
}

/// Check an SE certificate against the issuer CA key at `now`; the certified key.
/// Valid while `now < expiry`; key usage must be digital signature.
pub fn verify_certificate(
    ca_public: &VerifyingKey,
    cert: &Certificate,
    now: u64,
) -> Result<VerifyingKey> {
    if !ca_public.verify(&cert.body_bytes(), &cert.signature) {
        return Err(MutualError::BadCertificateSignature);
    }
    check_certificate_use(cert, now)?;
    VerifyingKey::from_sec1(&cert.public_key)
        .map_err(|_| MutualError::InvalidPublicKey("certificate public key"))
}

/// What holds for a certificate at `now` besides its CA signature: key usage digital
/// signature, and `now < expiry`.
fn check_certificate_use(cert: &Certificate, now: u64) -> Result<()> {
    if cert.key_usage != KEY_USAGE_DIGITAL_SIGNATURE {
        return Err(MutualError::WrongKeyUsage(cert.key_usage));
    }
    if now >= u64::from(cert.expiry) {
        return Err(MutualError::CertificateExpired {
            expiry: u64::from(cert.expiry),
            now,
        });
    }
    Ok(())
}

/// Sign R (SE key).
pub fn sign_registration(se_key: &SigningKey, r: Registration) -> SignedRegistration {
    let signature = se_key.sign(&r.to_bytes());
    SignedRegistration {
        registration: r,
        signature,
    }
}

/// Check sigR with the SE key.
pub fn verify_registration(se_public: &VerifyingKey, signed: &SignedRegistration) -> Result<()> {
    if se_public.verify(&signed.registration.to_bytes(), &signed.signature) {
        Ok(())
    } else {
        Err(MutualError::BadSignature("registration (R)"))
    }
}

/// Sign R' (server key).
pub fn sign_answer(server_key: &SigningKey, answer: ServerAnswer) -> SignedServerAnswer {
    let signature = server_key.sign(&answer.to_bytes());
    SignedServerAnswer { answer, signature }
}

/// Check sigR' with the server key trusted for the service.
pub fn verify_answer(server_public: &VerifyingKey, signed: &SignedServerAnswer) -> Result<()> {
    if server_public.verify(&signed.answer.to_bytes(), &signed.signature) {
        Ok(())
    } else {
        Err(MutualError::BadSignature("server answer (R')"))
    }
}

// ---------------------------------------------------------------------------------------
// Key schedule

/// `H(R) = SHA-256(R-TLV || sigR-TLV)`: what R' carries to answer exactly this R, and the
/// salt of the key that seals R'.
pub fn registration_hash(r: &SignedRegistration) -> [u8; 32] {
    Sha256::digest(r.to_bytes()).into()
}

/// `TH = SHA-256(R-TLV || sigR || R'-TLV || sigR')`.
pub fn transcript_hash(r: &SignedRegistration, r_prime: &SignedServerAnswer) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(r.registration.to_bytes());
    h.update(r.signature);
    h.update(r_prime.answer.to_bytes());
    h.update(r_prime.signature);
    h.finalize().into()
}

/// The session keys, zeroized on drop.
#[derive(Clone)]
pub struct SessionKeys {
    /// SE -> server.
    pub k_up: [u8; 32],
    /// Server -> SE.
    pub k_down: [u8; 32],
    /// The server's key for credentials derived per connection and counter.
    pub k_credential: [u8; 32],
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.k_up.zeroize();
        self.k_down.zeroize();
        self.k_credential.zeroize();
    }
}

/// HKDF-SHA256 of `L` bytes.
fn hkdf<const L: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; L]> {
    let mut okm = Zeroizing::new([0u8; L]);
    // L <= 255 * 32 for every caller: expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, okm.as_mut_slice());
    okm
}

/// `OKM = HKDF-SHA256(salt = TH, IKM = Z, info = "vse mutual auth v2", L = 96)`,
/// `K_up = OKM[0..32]`, `K_down = OKM[32..64]`, `K_credential = OKM[64..96]`.
pub fn derive_keys(z: &[u8; 32], th: &[u8; 32]) -> SessionKeys {
    let okm = hkdf::<96>(th, z, KDF_INFO);
    let mut keys = SessionKeys {
        k_up: [0u8; 32],
        k_down: [0u8; 32],
        k_credential: [0u8; 32],
    };
    let (up, rest) = okm.split_at(32);
    let (down, credential) = rest.split_at(32);
    keys.k_up.copy_from_slice(up);
    keys.k_down.copy_from_slice(down);
    keys.k_credential.copy_from_slice(credential);
    keys
}

/// `K_R = HKDF-SHA256(salt = SE ephemeral public key, IKM = ECDH(SE ephemeral, server
/// static key), info = "vse mutual auth v2 R", L = 32)`: seals R to the server.
pub fn registration_key(dh: &[u8; 32], se_ephemeral: &[u8; PUBLIC_KEY_LEN]) -> Zeroizing<[u8; 32]> {
    hkdf::<32>(se_ephemeral, dh, KDF_INFO_R)
}

/// `K_A = HKDF-SHA256(salt = H(R), IKM = Z, info = "vse mutual auth v2 R'", L = 32)`:
/// seals R' to the SE; only a party that derived Z for this R can make or open it.
pub fn answer_key(z: &[u8; 32], registration_hash: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    hkdf::<32>(registration_hash, z, KDF_INFO_RP)
}

/// `CID = TH[0..16]`.
pub fn connection_id(th: &[u8; 32]) -> [u8; CID_LEN] {
    let mut cid = [0u8; CID_LEN];
    cid.copy_from_slice(&th[..CID_LEN]);
    cid
}

/// The 12-byte GCM nonce: direction (4) || counter (8).
pub fn gcm_nonce(direction: [u8; 4], counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&direction);
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// The nonce of a sealed R and R': their keys are used once (fresh ephemeral keys).
const SINGLE_USE_NONCE: [u8; 12] = [0u8; 12];

/// AES-256-GCM encryption: ciphertext || 16-byte tag.
fn gcm_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>> {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
        .encrypt(Nonce::from_slice(nonce), Payload { msg, aad })
        .map_err(|_| MutualError::TooLong(msg.len()))
}

fn gcm_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
        .map(Zeroizing::new)
        .map_err(|_| MutualError::Authentication("tag does not verify (modified or truncated)"))
}

// ---------------------------------------------------------------------------------------
// Handshake helpers

/// The SE's pending registration: the signed R it sealed and its ephemeral key. Persist it
/// (0600) until VERIFY SERVER; a container switch discards it.
#[derive(Clone, Debug)]
pub struct PendingRegistration {
    signed: SignedRegistration,
    ephemeral: EphemeralKey,
}

impl PendingRegistration {
    /// R || sigR (inside the sealed R; never sent in clear).
    pub fn signed(&self) -> &SignedRegistration {
        &self.signed
    }

    pub fn service_id(&self) -> &str {
        &self.signed.registration.service_id
    }
}

#[derive(Serialize, Deserialize)]
struct StoredPending {
    signed: String,
    ephemeral: EphemeralKey,
}

impl Serialize for PendingRegistration {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        StoredPending {
            signed: hex::encode_upper(self.signed.to_bytes()),
            ephemeral: self.ephemeral.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PendingRegistration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let stored = StoredPending::deserialize(d)?;
        let bytes = hex::decode(&stored.signed).map_err(serde::de::Error::custom)?;
        let signed = SignedRegistration::parse(&bytes).map_err(serde::de::Error::custom)?;
        if signed.registration.se_ephemeral != stored.ephemeral.public_sec1() {
            return Err(serde::de::Error::custom(
                "pending registration: ephemeral key does not match R",
            ));
        }
        Ok(PendingRegistration {
            signed,
            ephemeral: stored.ephemeral,
        })
    }
}

/// The randomness one side draws for one handshake step: a nonce and an ephemeral key.
/// Tests and the published test vectors pass fixed values; everything else draws them
/// with [`Fresh::draw`].
#[derive(Debug)]
pub struct Fresh {
    pub nonce: [u8; NONCE_LEN],
    pub ephemeral: EphemeralKey,
}

impl Fresh {
    /// A nonce and an ephemeral key from the OS CSPRNG.
    pub fn draw() -> Result<Fresh> {
        Ok(Fresh {
            nonce: random_bytes()?,
            ephemeral: EphemeralKey::generate()?,
        })
    }
}

/// SE, GET REGISTRATION: a fresh nonce and ephemeral key, R signed with the SE key and
/// sealed to the server key trusted for the service. Returns what to keep and what to send.
pub fn se_build_registration(
    se_key: &SigningKey,
    certificate: &Certificate,
    service_id: &str,
    counter: u32,
    server_public: &VerifyingKey,
) -> Result<(PendingRegistration, SealedRegistration)> {
    se_build_registration_with(
        se_key,
        certificate,
        service_id,
        counter,
        server_public,
        Fresh::draw()?,
    )
}

/// [`se_build_registration`] with the randomness given.
pub fn se_build_registration_with(
    se_key: &SigningKey,
    certificate: &Certificate,
    service_id: &str,
    counter: u32,
    server_public: &VerifyingKey,
    fresh: Fresh,
) -> Result<(PendingRegistration, SealedRegistration)> {
    let ephemeral = fresh.ephemeral;
    let r = Registration {
        certificate: certificate.clone(),
        service_id: service_id.to_string(),
        se_nonce: fresh.nonce,
        se_ephemeral: ephemeral.public_sec1(),
        counter,
    };
    let signed = sign_registration(se_key, r);
    // Refuse to emit what the server's parser would refuse (service id length).
    SignedRegistration::parse(&signed.to_bytes())?;
    let dh = ephemeral.diffie_hellman_with(server_public);
    let se_ephemeral = ephemeral.public_sec1();
    let key = registration_key(&dh, &se_ephemeral);
    let plain = Zeroizing::new(
        apdu_specs::auth::pad(&signed.to_bytes(), &REGISTRATION_BUCKETS)
            .ok_or(MutualError::TooLong(signed.to_bytes().len()))?,
    );
    let mut sealed = SealedRegistration {
        service_id: service_id.to_string(),
        se_ephemeral,
        sealed: Vec::new(),
    };
    sealed.sealed = gcm_seal(&key, &SINGLE_USE_NONCE, &sealed.aad(), &plain)?;
    Ok((PendingRegistration { signed, ephemeral }, sealed))
}

/// Server: open a sealed R with the server's static key. The R inside must name the same
/// service and ephemeral key as the clear fields. Check it next with
/// [`server_verify_registration`].
pub fn server_open_registration(
    server_key: &SigningKey,
    sealed: &SealedRegistration,
) -> Result<SignedRegistration> {
    let peer = public_from_sec1("SE ephemeral key", &sealed.se_ephemeral)?;
    let dh = ecdh_x(*server_key.0.as_nonzero_scalar(), peer.as_affine());
    let key = registration_key(&dh, &sealed.se_ephemeral);
    let padded =
        gcm_open(&key, &SINGLE_USE_NONCE, &sealed.aad(), &sealed.sealed).map_err(|_| {
            MutualError::Authentication("sealed R does not open with this server's key")
        })?;
    let plain = apdu_specs::auth::unpad(&padded, &REGISTRATION_BUCKETS, "sealed R")?;
    let signed = SignedRegistration::parse(plain)?;
    let r = &signed.registration;
    if r.service_id != sealed.service_id {
        return Err(MutualError::WrongService {
            expected: sealed.service_id.clone(),
            found: r.service_id.clone(),
        });
    }
    if r.se_ephemeral != sealed.se_ephemeral {
        return Err(MutualError::Authentication(
            "sealed R: the ephemeral key inside differs from the one outside",
        ));
    }
    Ok(signed)
}

/// Server: check R at `now` for the service it was posted to: certificate (CA signature,
/// key usage, expiry), the SE signature, the service id, the SE ephemeral key. Returns the
/// SE's certified key. Nonce uniqueness and policy are the caller's (replay store, grants).
pub fn server_verify_registration(
    ca_public: &VerifyingKey,
    signed: &SignedRegistration,
    service_id: &str,
    now: u64,
) -> Result<VerifyingKey> {
    server_verify_registration_cached(ca_public, signed, service_id, now, None)
}

/// Certificates whose CA signature verified, by SHA-256 of their encoding: an SE registers
/// with the same certificate every time, and the CA signature check is two of the server's
/// scalar multiplications per registration. Bounded: emptied when full. Expiry and key usage
/// are checked on every use (they are part of the hashed bytes, the clock is not).
pub struct CertificateCache {
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], VerifyingKey>>,
    capacity: usize,
}

impl CertificateCache {
    pub fn new(capacity: usize) -> CertificateCache {
        CertificateCache {
            verified: std::sync::Mutex::new(std::collections::HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn certified_key(
        &self,
        ca_public: &VerifyingKey,
        cert: &Certificate,
        now: u64,
    ) -> Result<VerifyingKey> {
        let digest: [u8; 32] = Sha256::digest(cert.to_bytes()).into();
        let hit = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).copied());
        if let Some(key) = hit {
            check_certificate_use(cert, now)?;
            return Ok(key);
        }
        let key = verify_certificate(ca_public, cert, now)?;
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(digest, key);
        }
        Ok(key)
    }
}

/// [`server_verify_registration`] with a cache of verified certificates.
pub fn server_verify_registration_cached(
    ca_public: &VerifyingKey,
    signed: &SignedRegistration,
    service_id: &str,
    now: u64,
    cache: Option<&CertificateCache>,
) -> Result<VerifyingKey> {
    let r = &signed.registration;
    let se_public = match cache {
        Some(c) => c.certified_key(ca_public, &r.certificate, now)?,
        None => verify_certificate(ca_public, &r.certificate, now)?,
    };
    verify_registration(&se_public, signed)?;
    if r.service_id != service_id {
        return Err(MutualError::WrongService {
            expected: service_id.to_string(),
            found: r.service_id.clone(),
        });
    }
    public_from_sec1("SE ephemeral key", &r.se_ephemeral)?;
    Ok(se_public)
}

/// The server's decision for one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Granted: the calls allowed and the expiry (Unix seconds) of grant and connection.
    Granted { scope: Vec<String>, expiry: u64 },
    /// Refused (still signed and sealed, so the SE can tell a refusal from a forgery).
    Refused,
}

/// Server: build, sign and seal R' for an R already checked with
/// [`server_verify_registration`], at the server's time `now`. When granted, also the
/// server's end of the connection (unconfirmed until the SE's first up message opens).
pub fn server_answer(
    server_key: &SigningKey,
    signed_r: &SignedRegistration,
    grant: Grant,
    now: u64,
) -> Result<(SealedAnswer, Option<Connection>)> {
    server_answer_with(server_key, signed_r, grant, now, Fresh::draw()?)
}

/// [`server_answer`] with the randomness given.
pub fn server_answer_with(
    server_key: &SigningKey,
    signed_r: &SignedRegistration,
    grant: Grant,
    now: u64,
    fresh: Fresh,
) -> Result<(SealedAnswer, Option<Connection>)> {
    let ephemeral = fresh.ephemeral;
    let r = &signed_r.registration;
    let (granted, scope, expiry) = match grant {
        Grant::Granted { scope, expiry } => (true, scope, expiry),
        Grant::Refused => (false, Vec::new(), 0),
    };
    let h_r = registration_hash(signed_r);
    let answer = ServerAnswer {
        registration_hash: h_r,
        se_nonce: r.se_nonce,
        server_nonce: fresh.nonce,
        service_id: r.service_id.clone(),
        granted,
        scope,
        expiry,
        server_time: now,
        server_ephemeral: ephemeral.public_sec1(),
    };
    let signed_bytes = sign_answer(server_key, answer).to_bytes();
    // The connection is built from R' as the SE will parse it, so both ends hold the
    // same scope (and nothing is emitted that the SE's parser would refuse).
    let signed = SignedServerAnswer::parse(&signed_bytes)?;
    let z = ephemeral.diffie_hellman(&r.se_ephemeral)?;
    let key = answer_key(&z, &h_r);
    let plain = Zeroizing::new(
        apdu_specs::auth::pad(&signed_bytes, &ANSWER_BUCKETS)
            .ok_or(MutualError::TooLong(signed_bytes.len()))?,
    );
    let mut sealed = SealedAnswer {
        server_ephemeral: ephemeral.public_sec1(),
        sealed: Vec::new(),
    };
    sealed.sealed = gcm_seal(&key, &SINGLE_USE_NONCE, &sealed.aad(), &plain)?;
    let conn = granted.then(|| Connection::new(Role::Server, &z, signed_r, &signed));
    Ok((sealed, conn))
}

/// What the SE learns from an accepted R': the connection and the server's signed time.
#[derive(Debug)]
pub struct Accepted {
    pub connection: Connection,
    /// The server's time in R' (Unix seconds), for the card's trusted time floor.
    pub server_time: u64,
}

/// An R' the SE has authenticated (opened, signature verified, bound to its pending R),
/// before its grant and expiry are looked at: its server time is trusted from here on,
/// also when the grant is a refusal.
pub struct VerifiedAnswer {
    registration: SignedRegistration,
    answer: SignedServerAnswer,
    z: Zeroizing<[u8; 32]>,
}

impl VerifiedAnswer {
    /// R' || sigR' as the server signed them.
    pub fn answer(&self) -> &SignedServerAnswer {
        &self.answer
    }

    /// The server's signed time (Unix seconds).
    pub fn server_time(&self) -> u64 {
        self.answer.answer.server_time
    }

    /// The grant: the connection when R' grants the service and has not expired at `now`
    /// (the later of the caller's trusted time and the server's own time).
    pub fn open_connection(&self, now: u64) -> Result<Connection> {
        let a = &self.answer.answer;
        if !a.granted {
            return Err(MutualError::NotGranted);
        }
        let now = now.max(a.server_time);
        if now >= a.expiry {
            return Err(MutualError::GrantExpired {
                expiry: a.expiry,
                now,
            });
        }
        Ok(Connection::new(
            Role::Se,
            &self.z,
            &self.registration,
            &self.answer,
        ))
    }
}

/// SE, VERIFY SERVER, first half: open the sealed R' (the server's key confirmation: only
/// a party that derived the same Z for this R can seal it), check the server signature
/// with the key trusted for the service, and that R' answers exactly the pending R (hash
/// of R, nonce, service, the ephemeral key in clear). Fails closed.
pub fn se_verify_answer(
    pending: &PendingRegistration,
    server_public: &VerifyingKey,
    sealed: &SealedAnswer,
) -> Result<VerifiedAnswer> {
    let z = pending
        .ephemeral
        .diffie_hellman(&sealed.server_ephemeral)
        .map_err(|_| MutualError::InvalidPublicKey("server ephemeral key"))?;
    let h_r = registration_hash(&pending.signed);
    let key = answer_key(&z, &h_r);
    let padded =
        gcm_open(&key, &SINGLE_USE_NONCE, &sealed.aad(), &sealed.sealed).map_err(|_| {
            MutualError::AnswerMismatch("sealed R' (it does not open with this R's keys)")
        })?;
    let plain = apdu_specs::auth::unpad(&padded, &ANSWER_BUCKETS, "sealed R'")?;
    let answer = SignedServerAnswer::parse(plain)?;
    verify_answer(server_public, &answer)?;
    let r = &pending.signed.registration;
    let a = &answer.answer;
    if !bool::from(a.registration_hash.ct_eq(&h_r)) {
        return Err(MutualError::AnswerMismatch("hash of R"));
    }
    if !bool::from(a.se_nonce.ct_eq(&r.se_nonce)) {
        return Err(MutualError::AnswerMismatch("SE nonce"));
    }
    if a.service_id != r.service_id {
        return Err(MutualError::AnswerMismatch("service id"));
    }
    if a.server_ephemeral != sealed.server_ephemeral {
        return Err(MutualError::AnswerMismatch("server ephemeral key"));
    }
    Ok(VerifiedAnswer {
        registration: pending.signed.clone(),
        answer,
        z,
    })
}

/// SE, VERIFY SERVER, whole: [`se_verify_answer`], then the grant and the expiry at `now`.
pub fn se_accept_answer(
    pending: &PendingRegistration,
    server_public: &VerifyingKey,
    sealed: &SealedAnswer,
    now: u64,
) -> Result<Accepted> {
    let verified = se_verify_answer(pending, server_public, sealed)?;
    Ok(Accepted {
        connection: verified.open_connection(now)?,
        server_time: verified.server_time(),
    })
}

// ---------------------------------------------------------------------------------------
// Connection

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sends up (K_up), receives down (K_down).
    Se,
    /// Sends down (K_down), receives up (K_up).
    Server,
}

/// A 32-byte AES key, zeroized on drop, serialized as hex.
#[derive(Clone)]
struct AesKey([u8; 32]);

impl PartialEq for AesKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for AesKey {}

impl Drop for AesKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Serialize for AesKey {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        hex_serde::secret(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for AesKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let bytes = hex_serde::bytes(d)?;
        let mut k = AesKey([0u8; 32]);
        if bytes.len() != 32 {
            return Err(serde::de::Error::custom("session key: 32 bytes expected"));
        }
        k.0.copy_from_slice(&bytes);
        Ok(k)
    }
}

/// One end of an open secure connection: keys, connection id, counters, grant. Serializable
/// (keys included: callers write it only to 0600 files); keys are zeroized on drop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    role: Role,
    #[serde(with = "cid_hex")]
    cid: [u8; CID_LEN],
    send_key: AesKey,
    receive_key: AesKey,
    /// The server's key for credentials (derived, never drawn: a call run again after a
    /// database restore seals the same plaintext under the same nonce). `None` on the SE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential_key: Option<AesKey>,
    /// Counter of the last message sealed (0: none yet).
    sent: u64,
    /// Counter of the last message accepted (0: none yet).
    received: u64,
    service_id: String,
    scope: Vec<String>,
    expiry: u64,
}

mod cid_hex {
    use super::*;

    pub fn serialize<S: Serializer>(
        cid: &[u8; CID_LEN],
        s: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(cid))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> core::result::Result<[u8; CID_LEN], D::Error> {
        let bytes = hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)?;
        <[u8; CID_LEN]>::try_from(bytes.as_slice())
            .map_err(|_| serde::de::Error::custom("connection id: 16 bytes expected"))
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("cid", &hex::encode_upper(self.cid))
            .field("sent", &self.sent)
            .field("received", &self.received)
            .field("service_id", &self.service_id)
            .field("scope", &self.scope)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(role: Role, z: &[u8; 32], r: &SignedRegistration, r_prime: &SignedServerAnswer) -> Self {
        let th = transcript_hash(r, r_prime);
        let keys = derive_keys(z, &th);
        let (send, receive) = match role {
            Role::Se => (keys.k_up, keys.k_down),
            Role::Server => (keys.k_down, keys.k_up),
        };
        Connection {
            role,
            cid: connection_id(&th),
            send_key: AesKey(send),
            receive_key: AesKey(receive),
            credential_key: (role == Role::Server).then(|| AesKey(keys.k_credential)),
            sent: 0,
            received: 0,
            service_id: r_prime.answer.service_id.clone(),
            scope: r_prime.answer.scope.clone(),
            expiry: r_prime.answer.expiry,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The connection identifier (TH[0..16]); the server looks connections up by it.
    pub fn cid(&self) -> [u8; CID_LEN] {
        self.cid
    }

    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    pub fn scope(&self) -> &[String] {
        &self.scope
    }

    /// Unix seconds; the connection is usable while `now < expiry`.
    pub fn expiry(&self) -> u64 {
        self.expiry
    }

    /// Counter of the last message sealed by this end.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Counter of the last message accepted by this end.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Server: whether the SE confirmed the keys (an up message of this connection opened).
    /// The server accepts the first up message only as that confirmation.
    pub fn confirmed(&self) -> bool {
        self.received > 0
    }

    /// Server: the credential of the call answered by down message `counter`, derived from
    /// the connection's credential key: `HKDF-SHA256(salt = CID, IKM = K_credential,
    /// info = "vse credential" || counter, L = 32)`. The same connection and counter always
    /// give the same credential.
    pub fn derive_credential(&self, counter: u64) -> Result<Zeroizing<[u8; 32]>> {
        let key = self
            .credential_key
            .as_ref()
            .ok_or(MutualError::Authentication(
                "only the server derives credentials",
            ))?;
        let mut info = b"vse credential".to_vec();
        info.extend_from_slice(&counter.to_be_bytes());
        Ok(hkdf::<32>(&self.cid, &key.0, &info))
    }

    /// `Ok` while `now < expiry`.
    pub fn check_fresh(&self, now: u64) -> Result<()> {
        if now >= self.expiry {
            return Err(MutualError::GrantExpired {
                expiry: self.expiry,
                now,
            });
        }
        Ok(())
    }

    /// `Ok` when `call` is in the granted scope.
    pub fn check_scope(&self, call: &str) -> Result<()> {
        if self.scope.iter().any(|c| c == call) {
            Ok(())
        } else {
            Err(MutualError::OutsideScope(call.to_string()))
        }
    }

    fn directions(&self) -> ([u8; 4], [u8; 4]) {
        match self.role {
            Role::Se => (DIRECTION_UP, DIRECTION_DOWN),
            Role::Server => (DIRECTION_DOWN, DIRECTION_UP),
        }
    }

    /// Encrypt the next message in this end's direction, padded to its size bucket. The
    /// SE's counter is last + 1; the server's down message carries the counter of the up
    /// message it answers (one answer per call), so an up message fixes its answer's nonce.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<ProtectedMessage> {
        if plaintext.len() > apdu_specs::auth::MAX_PLAINTEXT_LEN {
            return Err(MutualError::TooLong(plaintext.len()));
        }
        let counter = match self.role {
            Role::Se => self
                .sent
                .checked_add(1)
                .ok_or(MutualError::CounterExhausted)?,
            Role::Server if self.received > self.sent => self.received,
            Role::Server => {
                return Err(MutualError::Authentication(
                    "the server seals one answer per accepted up message",
                ))
            }
        };
        let padded = Zeroizing::new(
            apdu_specs::auth::pad(plaintext, &MESSAGE_BUCKETS)
                .ok_or(MutualError::TooLong(plaintext.len()))?,
        );
        let (send_dir, _) = self.directions();
        let aad = ProtectedMessage::aad_for(&self.cid, counter);
        let ciphertext = gcm_seal(
            &self.send_key.0,
            &gcm_nonce(send_dir, counter),
            &aad,
            &padded,
        )?;
        self.sent = counter;
        Ok(ProtectedMessage {
            cid: self.cid,
            counter,
            ciphertext,
        })
    }

    /// Authenticate and decrypt without changing state.
    fn decrypt(&self, msg: &ProtectedMessage) -> Result<Zeroizing<Vec<u8>>> {
        if !bool::from(msg.cid.ct_eq(&self.cid)) {
            return Err(MutualError::Authentication(
                "message is for another connection",
            ));
        }
        // The server answers up message n with down message n: the SE takes the answer to
        // its last up message (once), so an answer lost before a new call breaks nothing;
        // the server takes exactly the next up message.
        let expected = match self.role {
            Role::Se if self.sent > self.received => self.sent,
            Role::Se => 0,
            Role::Server => self
                .received
                .checked_add(1)
                .ok_or(MutualError::CounterExhausted)?,
        };
        if msg.counter != expected || expected == 0 {
            return Err(MutualError::Authentication(
                "counter is not the next one (replayed, reordered or lost message)",
            ));
        }
        let (_, receive_dir) = self.directions();
        let padded = gcm_open(
            &self.receive_key.0,
            &gcm_nonce(receive_dir, msg.counter),
            &msg.aad(),
            &msg.ciphertext,
        )?;
        let plain = apdu_specs::auth::unpad(&padded, &MESSAGE_BUCKETS, "protected message")
            .map_err(|_| MutualError::Authentication("authenticated but badly padded"))?;
        Ok(Zeroizing::new(plain.to_vec()))
    }

    /// Accept exactly the next message from the peer; a refused message changes nothing.
    pub fn open(&mut self, msg: &ProtectedMessage) -> Result<Zeroizing<Vec<u8>>> {
        let plain = self.decrypt(msg)?;
        self.received = msg.counter;
        Ok(plain)
    }

    /// Parse and open the bytes of a `73` message.
    pub fn open_bytes(&mut self, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let msg = ProtectedMessage::parse(bytes)
            .map_err(|_| MutualError::Authentication("malformed protected message"))?;
        self.open(&msg)
    }

    /// SE: seal a call (`74`) as the next up message.
    pub fn seal_call(&mut self, call: &Call) -> Result<ProtectedMessage> {
        self.seal(&call.to_bytes())
    }

    /// Server: open the next up message as a call (`74`). A message that authenticates
    /// but does not decode is refused and changes nothing.
    pub fn open_call(&mut self, msg: &ProtectedMessage) -> Result<Call> {
        let plain = self.decrypt(msg)?;
        let call = Call::parse(&plain)?;
        self.received = msg.counter;
        Ok(call)
    }

    /// Server: seal a call result (`75`) as the next down message.
    pub fn seal_result(&mut self, result: &CallResult) -> Result<ProtectedMessage> {
        self.seal(&result.to_bytes())
    }

    /// SE: open the next down message as a call result (`75`).
    pub fn open_result(&mut self, msg: &ProtectedMessage) -> Result<CallResult> {
        let plain = self.decrypt(msg)?;
        let result = CallResult::parse(&plain)?;
        self.received = msg.counter;
        Ok(result)
    }
}

#[cfg(test)]
mod tests;
