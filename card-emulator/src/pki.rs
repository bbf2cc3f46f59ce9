//! The eUICC's SGP.22 identity: its ECDSA P-256 key and the test chain CI -> EUM -> eUICC.

// SGP.22 (GSMA eSIM) has the eUICC sign what it tells an SM-DP+ (notifications,
// authentication answers) and send CERT.EUICC.ECDSA with CERT.EUM.ECDSA, which the server
// checks up to a CI certificate it trusts. A virtual card has no GSMA-certified CI, so each
// card gets its own freshly made TEST CI (its subject says so): a verifier trusts it by
// being given `ci_pem()` as its anchor (`card-emulator init` exports it), never by accident.
//
// Certificate profiles follow SGP.22 §4.5.2 (v2.x: CERT.CI.ECDSA §4.5.2.1.0.1, CERT.EUM.ECDSA
// §4.5.2.1.0.2, CERT.EUICC.ECDSA §4.5.2.1.0.3) with these omissions, on purpose:
// - no CRL distribution points: no CRL exists for a test CI;
// - no subjectAltName registeredID in the CI and EUM certificates: SGP.22 puts there an OID
//   GSMA assigns to the CI / EUM organisation, and this test chain has none;
// - no nameConstraints in the EUM certificate (SGP.22 restricts the eUICC subjects to the
//   EUM's O and an EID prefix): one EUM signs one eUICC here, and OpenSSL matches a
//   directoryName constraint as a prefix of the subject's RDN sequence, whole RDN by whole
//   RDN, which a partial-EID `serialNumber` is not, so `openssl verify` would refuse it.
// Key identifiers are SHA-1 of the subject public key (RFC 5280 §4.2.1.2 method 1), which
// is what x509-cert's builder computes and what GSMA's test certificates (SGP.26) carry.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use p256::ecdsa::signature::Signer;
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePublicKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{GeneralizedTime, OctetString};
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::der::referenced::OwnedToRef;
use x509_cert::der::{DateTime, Decode, Encode};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::state::hex_bytes;
use apdu_specs::es10::cert::{self, CertSummary};

/// SGP.22 §4.5.2: the certificate policies that name each role (id-rspRole = 2.23.146.1.2.1).
pub const ID_RSP_ROLE_CI: ObjectIdentifier = ObjectIdentifier::new_unwrap(cert::ID_RSP_ROLE_CI);
pub const ID_RSP_ROLE_EUICC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap(cert::ID_RSP_ROLE_EUICC);
pub const ID_RSP_ROLE_EUM: ObjectIdentifier = ObjectIdentifier::new_unwrap(cert::ID_RSP_ROLE_EUM);

/// Subjects of the test chain. "Test" and an organisation no GSMA CI knows make plain that
/// nothing here is a production eSIM identity; `XX` is the ISO 3166 user-assigned code.
const CI_SUBJECT: &str = "CN=vSE Test CI,O=RustVSE test,C=XX";
const EUM_SUBJECT: &str = "CN=vSE Test EUM,O=RustVSE test,C=XX";
const EUICC_CN: &str = "vSE Test eUICC";
const ORGANISATION: &str = "O=RustVSE test,C=XX";

/// How far notBefore is set back from now.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// Validity of the CI and EUM certificates: about 30 years, so a test card outlives its uses.
const CA_VALIDITY: Duration = Duration::from_secs(30 * 36525 * 864);

/// Failures to make or read the eUICC's certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("the EID must be 16 bytes (32 digits), got {0} bytes")]
    EidLength(usize),
    #[error("the EID {0} is not 32 decimal digits (SGP.29)")]
    EidNotDecimal(String),
    #[error("the OS random generator failed; no key or serial number can be made")]
    Random,
    #[error("cannot build the {role} certificate: {reason}")]
    Build { role: &'static str, reason: String },
    #[error("the {role} certificate is not a DER X.509 certificate: {reason}")]
    Parse { role: String, reason: String },
    #[error("the stored eUICC private key does not match the public key of the eUICC certificate")]
    KeyMismatch,
}

/// The eUICC's SGP.22 identity: its private key and the CI -> EUM -> eUICC certificates.
/// The CI and EUM private keys were discarded once they had signed; only the eUICC key is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredIdentity")]
pub struct EuiccIdentity {
    /// The eUICC's P-256 private key (hex in the state file, like the GP keys; zeroized on
    /// drop). No command answers it, `Debug` and `inspect` never show it.
    private_key: EuiccKey,
    /// CERT.EUICC.ECDSA, DER.
    #[serde(with = "hex_bytes")]
    pub euicc_certificate: Vec<u8>,
    /// CERT.EUM.ECDSA, DER.
    #[serde(with = "hex_bytes")]
    pub eum_certificate: Vec<u8>,
    /// CERT.CI.ECDSA, DER (self-signed root), kept so `init` can export it and `inspect` show it.
    #[serde(with = "hex_bytes")]
    pub ci_certificate: Vec<u8>,
}

/// The same fields as loaded, before the checks `EuiccIdentity` guarantees (three parsable
/// certificates, and a private key that belongs to the eUICC certificate): a hand-edited or
/// damaged state file is refused at load instead of signing what nobody can verify.
#[derive(Deserialize)]
struct StoredIdentity {
    private_key: EuiccKey,
    #[serde(with = "hex_bytes")]
    euicc_certificate: Vec<u8>,
    #[serde(with = "hex_bytes")]
    eum_certificate: Vec<u8>,
    #[serde(with = "hex_bytes")]
    ci_certificate: Vec<u8>,
}

impl TryFrom<StoredIdentity> for EuiccIdentity {
    type Error = PkiError;

    fn try_from(s: StoredIdentity) -> Result<EuiccIdentity, PkiError> {
        let euicc = parse("eUICC", &s.euicc_certificate)?;
        parse("EUM", &s.eum_certificate)?;
        parse("CI", &s.ci_certificate)?;
        let public = spki_of(&s.private_key.0, "eUICC")?;
        if public != euicc.tbs_certificate.subject_public_key_info {
            return Err(PkiError::KeyMismatch);
        }
        Ok(EuiccIdentity {
            private_key: s.private_key,
            euicc_certificate: s.euicc_certificate,
            eum_certificate: s.eum_certificate,
            ci_certificate: s.ci_certificate,
        })
    }
}

/// The private key (p256 zeroizes it on drop), comparable in constant time so the state
/// stays `PartialEq`, stored as the 32-byte scalar in upper-case hex like secure-channel's
/// keys (the intermediate texts zeroized too).
#[derive(Clone)]
struct EuiccKey(SigningKey);

impl EuiccKey {
    fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes().into())
    }
}

impl PartialEq for EuiccKey {
    fn eq(&self, other: &EuiccKey) -> bool {
        self.to_bytes().ct_eq(&*other.to_bytes()).into()
    }
}

impl Eq for EuiccKey {}

impl Serialize for EuiccKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(hex::encode_upper(
            self.to_bytes().as_slice(),
        )))
    }
}

impl<'de> Deserialize<'de> for EuiccKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EuiccKey, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let bytes =
            Zeroizing::new(apdu_specs::hexfmt::parse(&text).map_err(serde::de::Error::custom)?);
        if bytes.len() != 32 {
            return Err(serde::de::Error::custom(format!(
                "the eUICC private key must be 32 bytes, got {}",
                bytes.len()
            )));
        }
        SigningKey::from_slice(&bytes)
            .map(EuiccKey)
            .map_err(|_| serde::de::Error::custom("the eUICC private key is not a P-256 scalar"))
    }
}

impl fmt::Debug for EuiccIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The public half and certificate sizes only: state dumps and logs must not leak
        // the private key.
        f.debug_struct("EuiccIdentity")
            .field("private_key", &"redacted")
            .field(
                "public_key",
                &apdu_specs::hexfmt::upper(
                    self.private_key
                        .0
                        .verifying_key()
                        .to_encoded_point(false)
                        .as_bytes(),
                ),
            )
            .field("euicc_certificate", &self.euicc_certificate.len())
            .field("eum_certificate", &self.eum_certificate.len())
            .field("ci_certificate", &self.ci_certificate.len())
            .finish()
    }
}

impl EuiccIdentity {
    /// A fresh identity for the card with this EID (16 bytes, 32 BCD digits): three new
    /// P-256 keys from the OS generator, the CI self-signed, the EUM signed by the CI, the
    /// eUICC (subject serialNumber = the EID) signed by the EUM; the CI and EUM keys are
    /// then dropped (and zeroized).
    pub fn generate(eid: &[u8]) -> Result<EuiccIdentity, PkiError> {
        let eid_digits = eid_digits(eid)?;
        let ci_key = new_key()?;
        let eum_key = new_key()?;
        let euicc_key = new_key()?;
        let now = SystemTime::now();
        let ca_validity = Validity {
            // An hour back: a verifier whose clock is a little behind this host's (an
            // SM-DP+ in a container) must not see a certificate from the future.
            not_before: time(now.checked_sub(CLOCK_SKEW).unwrap_or(now), "CI")?,
            not_after: time(
                now.checked_add(CA_VALIDITY)
                    .ok_or_else(|| build_error("CI", "the clock is past the representable time"))?,
                "CI",
            )?,
        };
        // SGP.22 §4.5.2.1.0.3: the eUICC certificate does not expire, notAfter is the
        // GeneralizedTime 99991231235959Z (RFC 5280 §4.1.2.5's "no well-defined expiration").
        let forever = DateTime::new(9999, 12, 31, 23, 59, 59)
            .map(GeneralizedTime::from_date_time)
            .map_err(|e| build_error("eUICC", e))?;
        let euicc_validity = Validity {
            not_before: ca_validity.not_before,
            not_after: Time::GeneralTime(forever),
        };

        let ci_name = name(CI_SUBJECT, "CI")?;
        let eum_name = name(EUM_SUBJECT, "EUM")?;
        let euicc_name = name(
            &format!("CN={EUICC_CN},serialNumber={eid_digits},{ORGANISATION}"),
            "eUICC",
        )?;
        let ci_spki = spki_of(&ci_key, "CI")?;
        let eum_spki = spki_of(&eum_key, "EUM")?;
        let euicc_spki = spki_of(&euicc_key, "eUICC")?;

        // CERT.CI.ECDSA (§4.5.2.1.0.1): self-signed root.
        let ci = issue(
            "CI",
            &ci_key,
            None,
            &ci_spki,
            ca_validity,
            ci_name.clone(),
            ci_spki.clone(),
            &[
                ext(
                    "CI",
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: None,
                    },
                )?,
                ext("CI", &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
                policy("CI", ID_RSP_ROLE_CI)?,
            ],
        )?;
        // CERT.EUM.ECDSA (§4.5.2.1.0.2): a CA that may sign end entities only.
        let eum = issue(
            "EUM",
            &ci_key,
            Some(ci_name),
            &ci_spki,
            ca_validity,
            eum_name.clone(),
            eum_spki.clone(),
            &[
                ext(
                    "EUM",
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(0),
                    },
                )?,
                ext("EUM", &KeyUsage(KeyUsages::KeyCertSign.into()))?,
                policy("EUM", ID_RSP_ROLE_EUM)?,
            ],
        )?;
        // CERT.EUICC.ECDSA (§4.5.2.1.0.3): signing only, no basicConstraints (as SGP.22).
        let euicc = issue(
            "eUICC",
            &eum_key,
            Some(eum_name),
            &eum_spki,
            euicc_validity,
            euicc_name,
            euicc_spki,
            &[
                ext("eUICC", &KeyUsage(KeyUsages::DigitalSignature.into()))?,
                policy("eUICC", ID_RSP_ROLE_EUICC)?,
            ],
        )?;
        Ok(EuiccIdentity {
            private_key: EuiccKey(euicc_key),
            euicc_certificate: euicc,
            eum_certificate: eum,
            ci_certificate: ci,
        })
    }

    /// SGP.22 signature: ECDSA P-256 with SHA-256 over `message`, encoded r || s (64 bytes,
    /// TR-03111 plain format, as SGP.22 §2.6.7 uses). Deterministic nonces (RFC 6979), low s.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let sig: p256::ecdsa::Signature = self.private_key.0.sign(message);
        // Low s, as secure-channel signs: some verifiers refuse the high-s twin.
        sig.normalize_s().unwrap_or(sig).to_bytes().into()
    }

    /// The CI certificate as PEM text ("-----BEGIN CERTIFICATE-----").
    pub fn ci_pem(&self) -> String {
        // Fails only when the length overflows usize: a certificate of a few hundred bytes
        // cannot; an empty text would then make any verifier complain loudly.
        x509_cert::der::pem::encode_string(
            "CERTIFICATE",
            x509_cert::der::pem::LineEnding::LF,
            &self.ci_certificate,
        )
        .unwrap_or_default()
    }

    /// The subject key identifier of the CI certificate (what EUICCInfo1/2 list as the CI
    /// PKId); empty if the certificate has none (every one `generate` makes has it).
    pub fn ci_key_id(&self) -> Vec<u8> {
        parse("CI", &self.ci_certificate)
            .ok()
            .and_then(|c| cert::subject_key_id(&c))
            .unwrap_or_default()
    }

    /// Human summary of the three certificates for `inspect`, CI first. A certificate that
    /// does not parse (impossible for a loaded identity, which is checked) shows the error
    /// as its subject.
    pub fn summary(&self) -> Vec<CertSummary> {
        [
            ("CI", &self.ci_certificate),
            ("EUM", &self.eum_certificate),
            ("eUICC", &self.euicc_certificate),
        ]
        .into_iter()
        .map(|(role, der)| cert::summary_or_reason(role, der))
        .collect()
    }
}

/// The EID as its 32 digits, checked: 16 bytes of BCD (SGP.29: the EID is decimal).
fn eid_digits(eid: &[u8]) -> Result<String, PkiError> {
    if eid.len() != 16 {
        return Err(PkiError::EidLength(eid.len()));
    }
    let digits = apdu_specs::hexfmt::upper(eid);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PkiError::EidNotDecimal(digits));
    }
    Ok(digits)
}

/// A fresh P-256 key from the OS generator, the way secure-channel's `random_secret` makes
/// every other key of the card. Not through `mutual::SigningKey::generate`: converting its
/// key into the p256 type the certificate builder signs with costs a second scalar
/// multiplication per key, and `profile::build` (every test card) pays for each.
pub(crate) fn new_key() -> Result<SigningKey, PkiError> {
    // A uniformly random 32-byte string is >= n with probability ~2^-32; retry.
    for _ in 0..16 {
        let bytes = Zeroizing::new(
            secure_channel::mutual::random_bytes::<32>().map_err(|_| PkiError::Random)?,
        );
        if let Ok(k) = SigningKey::from_slice(bytes.as_slice()) {
            return Ok(k);
        }
    }
    Err(PkiError::Random)
}

fn parse(role: &str, der: &[u8]) -> Result<Certificate, PkiError> {
    cert::parse(role, der).map_err(|e| PkiError::Parse {
        role: e.role,
        reason: e.reason,
    })
}

fn build_error(role: &'static str, e: impl fmt::Display) -> PkiError {
    PkiError::Build {
        role,
        reason: e.to_string(),
    }
}

fn name(rfc4514: &str, role: &'static str) -> Result<Name, PkiError> {
    Name::from_str(rfc4514).map_err(|e| build_error(role, e))
}

fn time(t: SystemTime, role: &'static str) -> Result<Time, PkiError> {
    // Whole seconds: DER times have no fraction here.
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|e| build_error(role, e))?
        .as_secs();
    Time::try_from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .map_err(|e| build_error(role, e))
}

/// The SubjectPublicKeyInfo of a key's public half.
fn spki_of(key: &SigningKey, role: &'static str) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    let der = key
        .verifying_key()
        .to_public_key_der()
        .map_err(|e| build_error(role, e))?;
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(|e| build_error(role, e))
}

/// A random positive serial number: 16 bytes (SGP.22 allows up to 20), top bit clear so
/// the INTEGER is positive, second bit set so it keeps all 16 bytes.
fn serial(role: &'static str) -> Result<SerialNumber, PkiError> {
    let mut b = secure_channel::mutual::random_bytes::<16>().map_err(|_| PkiError::Random)?;
    b[0] = (b[0] & 0x7F) | 0x40;
    SerialNumber::new(&b).map_err(|e| build_error(role, e))
}

fn ext<E: AsExtension>(role: &'static str, e: &E) -> Result<Extension, PkiError> {
    // The subject and earlier extensions are only consulted by extensions whose
    // criticality depends on them; none of these does.
    e.to_extension(&Name::default(), &[])
        .map_err(|e| build_error(role, e))
}

/// certificatePolicies with the role's OID, critical as SGP.22 §4.5.2 marks it (x509-cert
/// makes it non-critical by default, hence the hand-made extension).
fn policy(role: &'static str, oid: ObjectIdentifier) -> Result<Extension, PkiError> {
    let value = CertificatePolicies(vec![PolicyInformation {
        policy_identifier: oid,
        policy_qualifiers: None,
    }])
    .to_der()
    .map_err(|e| build_error(role, e))?;
    Ok(Extension {
        extn_id: CertificatePolicies::OID,
        critical: true,
        extn_value: OctetString::new(value).map_err(|e| build_error(role, e))?,
    })
}

/// Issue one certificate: `extensions` plus the SKI (from `subject_key`) and, unless it is
/// self-signed (`issuer` None), the AKI (the issuer key's SKI).
#[allow(clippy::too_many_arguments)]
fn issue(
    role: &'static str,
    signer: &SigningKey,
    issuer: Option<Name>,
    issuer_spki: &SubjectPublicKeyInfoOwned,
    validity: Validity,
    subject: Name,
    subject_key: SubjectPublicKeyInfoOwned,
    extensions: &[Extension],
) -> Result<Vec<u8>, PkiError> {
    let e = |e: x509_cert::builder::Error| build_error(role, e);
    let ski = SubjectKeyIdentifier::try_from(subject_key.owned_to_ref())
        .map_err(|e| build_error(role, e))?;
    let self_signed = issuer.is_none();
    // `Manual`: only the extensions SGP.22 lists, none of the builder's defaults.
    let mut builder = CertificateBuilder::new(
        Profile::Manual { issuer },
        serial(role)?,
        validity,
        subject,
        subject_key,
        signer,
    )
    .map_err(e)?;
    builder.add_extension(&ski).map_err(e)?;
    if !self_signed {
        let aki = AuthorityKeyIdentifier::try_from(issuer_spki.owned_to_ref())
            .map_err(|e| build_error(role, e))?;
        builder.add_extension(&aki).map_err(e)?;
    }
    for x in extensions {
        builder.add_extension(&Raw(x.clone())).map_err(e)?;
    }
    let cert = builder.build::<p256::ecdsa::DerSignature>().map_err(e)?;
    cert.to_der().map_err(|e| build_error(role, e))
}

/// An already encoded extension, for `CertificateBuilder::add_extension`.
struct Raw(Extension);

impl AssociatedOid for Raw {
    // Unused: `to_extension` below keeps the extension's own OID.
    const OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.0");
}

impl Encode for Raw {
    fn encoded_len(&self) -> x509_cert::der::Result<x509_cert::der::Length> {
        self.0.extn_value.as_bytes().len().try_into()
    }

    fn encode(&self, writer: &mut impl x509_cert::der::Writer) -> x509_cert::der::Result<()> {
        writer.write(self.0.extn_value.as_bytes())
    }
}

impl AsExtension for Raw {
    fn critical(&self, _: &Name, _: &[Extension]) -> bool {
        self.0.critical
    }

    fn to_extension(&self, _: &Name, _: &[Extension]) -> x509_cert::der::Result<Extension> {
        Ok(self.0.clone())
    }
}

/// The decoded extension `E` of a certificate, if present and well formed.
#[cfg(test)]
mod tests {
    use super::*;

    const EID: [u8; 16] = [
        0x89, 0x04, 0x90, 0x32, 0x12, 0x34, 0x51, 0x23, 0x45, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12,
        0x35,
    ];

    fn identity() -> EuiccIdentity {
        EuiccIdentity::generate(&EID).unwrap()
    }

    fn key_hex(id: &EuiccIdentity) -> String {
        hex::encode_upper(id.private_key.to_bytes().as_slice())
    }

    #[test]
    fn generate_makes_a_ci_eum_euicc_chain_with_the_sgp22_roles_and_the_eid() {
        let id = identity();
        let s = id.summary();
        assert_eq!(
            s.iter().map(|c| c.role.as_str()).collect::<Vec<_>>(),
            ["CI", "EUM", "eUICC"]
        );
        assert_eq!(s[0].subject, CI_SUBJECT);
        assert_eq!(s[0].issuer, CI_SUBJECT);
        assert_eq!(s[1].issuer, CI_SUBJECT);
        assert_eq!(s[2].issuer, EUM_SUBJECT);
        assert!(
            s[2].subject.contains("89049032123451234512345678901235"),
            "{}",
            s[2].subject
        );
        assert_eq!(s[0].policies, ["2.23.146.1.2.1.0"]);
        assert_eq!(s[1].policies, ["2.23.146.1.2.1.2"]);
        assert_eq!(s[2].policies, ["2.23.146.1.2.1.1"]);
        assert_eq!(s[2].not_after, "9999-12-31T23:59:59Z");
        assert_eq!(hex::encode_upper(id.ci_key_id()), s[0].ski);
        assert_eq!(id.ci_key_id().len(), 20);
        for c in &s {
            assert_eq!(c.serial.len(), 32, "16-byte positive serial: {c}");
        }
    }

    #[test]
    fn each_generate_makes_a_new_key_and_new_serials() {
        let (a, b) = (identity(), identity());
        assert_ne!(a, b);
        assert_ne!(key_hex(&a), key_hex(&b));
        assert_ne!(a.summary()[2].serial, b.summary()[2].serial);
    }

    #[test]
    fn generate_refuses_an_eid_of_15_or_17_bytes_or_with_hex_digits() {
        assert!(matches!(
            EuiccIdentity::generate(&EID[..15]),
            Err(PkiError::EidLength(15))
        ));
        let mut long = EID.to_vec();
        long.push(0);
        assert!(matches!(
            EuiccIdentity::generate(&long),
            Err(PkiError::EidLength(17))
        ));
        let mut hexy = EID;
        hexy[15] = 0x3A;
        assert!(matches!(
            EuiccIdentity::generate(&hexy),
            Err(PkiError::EidNotDecimal(_))
        ));
    }

    #[test]
    fn sign_makes_a_64_byte_signature_the_euicc_certificate_key_verifies() {
        use p256::ecdsa::signature::Verifier;
        let id = identity();
        let cert = Certificate::from_der(&id.euicc_certificate).unwrap();
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        let public =
            <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(&spki)
                .unwrap();
        let sig = id.sign(b"notification");
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        assert!(public.verify(b"notification", &sig).is_ok());
        assert!(public.verify(b"notificatioN", &sig).is_err());
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let id = identity();
        let text = format!("{id:?}");
        assert!(text.contains("redacted"), "{text}");
        assert!(!text.contains(&key_hex(&id)), "{text}");
        assert!(!text.to_lowercase().contains(&key_hex(&id).to_lowercase()));
    }

    #[test]
    fn json_round_trip_keeps_the_identity() {
        let id = identity();
        let json = serde_json::to_string(&id).unwrap();
        assert!(json.contains(&key_hex(&id)), "the key is stored, as hex");
        let back: EuiccIdentity = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert_eq!(
            back.sign(b"m"),
            id.sign(b"m"),
            "RFC 6979: same key, same signature"
        );
    }

    #[test]
    fn loading_refuses_a_key_that_is_not_the_euicc_certificates() {
        let (a, b) = (identity(), identity());
        let mut json: serde_json::Value = serde_json::to_value(&a).unwrap();
        json["private_key"] = serde_json::to_value(&b).unwrap()["private_key"].clone();
        let err = serde_json::from_value::<EuiccIdentity>(json).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn loading_refuses_a_damaged_certificate() {
        let a = identity();
        let mut json: serde_json::Value = serde_json::to_value(&a).unwrap();
        json["eum_certificate"] = "3003020100".into();
        let err = serde_json::from_value::<EuiccIdentity>(json).unwrap_err();
        assert!(err.to_string().contains("EUM certificate"), "{err}");
    }

    #[test]
    fn ci_pem_is_the_ci_certificate_in_pem() {
        let id = identity();
        let pem = id.ci_pem();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        assert!(pem.trim_end().ends_with("-----END CERTIFICATE-----"));
        let (label, der) = x509_cert::der::pem::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(label, "CERTIFICATE");
        assert_eq!(der, id.ci_certificate);
    }
}
