//! Mutual-authentication wire codecs (seed document 1, `docs/mutual-auth.md`): certificate, R, R', protected messages, calls.
//!
//! Pure codecs: no cryptography, no I/O. Every `parse` reads bytes from outside with the
//! one-level reader of [`crate::der`] (no recursion) and is strict: unknown, missing or
//! duplicate tags, wrong fixed lengths, oversize fields, a wrong version and trailing
//! bytes are typed [`AuthError`]s. The accepted encoding is the canonical one (fields in
//! the documented order, minimal lengths), so `parse(b)?.to_bytes() == b` always holds and
//! a signature over received bytes is a signature over `to_bytes()`.

use crate::cla::SecureMessaging;
use crate::der::{self, DataObject, DerError};
use crate::tlv;
use crate::{Command, Status};

/// AID of the authentication applet (one instance per container).
pub const AID: [u8; 7] = [0xF0, 0x4D, 0x41, 0x55, 0x54, 0x48, 0x01];
/// Class byte of the applet's proprietary commands.
pub const CLA: u8 = 0x80;
/// The only protocol version (`80 01 02` in every structure). Version 01 (R, R' and their
/// grant in clear, R' not bound to R) is refused, never downgraded to.
pub const VERSION: u8 = 0x02;

/// Instruction codes of the authentication applet (CLA 80), from the one table.
pub use crate::ins::auth as ins;

/// P1-P2 of GET DATA.
pub mod get_data {
    /// The container's SE certificate (`7F21`).
    pub const CERTIFICATE: u16 = 0x7F21;
    /// The container identity: `5A` ICCID, `4F` ISD-P AID, `5F20` subject.
    pub const IDENTITY: u16 = 0x005A;
}

/// Status words of the applet, as entries of the one table in [`crate::status`].
pub mod sw {
    use crate::Status;
    pub const OK: Status = Status::Success;
    /// GET REGISTRATION before VERIFY of the container PIN.
    pub const PIN_NOT_VERIFIED: Status = Status::SecurityStatusNotSatisfied;
    /// VERIFY SERVER without a pending registration.
    pub const NO_PENDING_REGISTRATION: Status = Status::ConditionsNotSatisfied;
    /// Malformed command data (any [`super::AuthError`] from a parser).
    pub const INCORRECT_DATA: Status = Status::IncorrectData;
    pub const BAD_SERVER_SIGNATURE: Status = Status::BadServerSignature;
    pub const NOT_GRANTED: Status = Status::ServiceNotGranted;
    pub const EXPIRED: Status = Status::GrantExpired;
    pub const NO_SECURE_CONNECTION: Status = Status::NoSecureConnection;
    pub const AUTHENTICATION_FAILED: Status = Status::MessageAuthenticationFailed;
    pub const NO_TRUST_ANCHOR: Status = Status::NoTrustAnchor;
}

/// Every tag of the protocol, declared once.
pub mod tag {
    pub const CERTIFICATE: u32 = 0x7F21;
    pub const SERIAL: u32 = 0x93;
    pub const ISSUER: u32 = 0x42;
    pub const SUBJECT: u32 = 0x5F20;
    pub const KEY_USAGE: u32 = 0x95;
    pub const EXPIRY_DATE: u32 = 0x5F24;
    pub const PUBLIC_KEY: u32 = 0x7F49;
    /// The point inside `7F49` (GlobalPlatform SCP11 uses `B0`; its value is read as
    /// opaque bytes despite the constructed bit).
    pub const POINT: u32 = 0xB0;
    pub const SIGNATURE: u32 = 0x5F37;

    /// The sealed R as it crosses the portal.
    pub const SEALED_REGISTRATION: u32 = 0x70;
    pub const REGISTRATION: u32 = 0x71;
    pub const SERVER_ANSWER: u32 = 0x72;
    /// The sealed R' as it crosses the portal.
    pub const SEALED_ANSWER: u32 = 0x78;
    /// AES-256-GCM ciphertext || tag of a sealed R or R'.
    pub const SEALED: u32 = 0x86;
    pub const PROTECTED: u32 = 0x73;
    pub const CALL: u32 = 0x74;
    pub const CALL_RESULT: u32 = 0x75;

    pub const VERSION: u32 = 0x80;
    pub const SERVICE_ID: u32 = 0x81;
    pub const SE_NONCE: u32 = 0x82;
    pub const SE_EPHEMERAL: u32 = 0x83;
    pub const REGISTRATION_COUNTER: u32 = 0x84;
    pub const SERVER_NONCE: u32 = 0x85;
    pub const GRANT: u32 = 0x86;
    pub const SCOPE: u32 = 0x87;
    pub const GRANT_EXPIRY: u32 = 0x88;
    pub const SERVER_EPHEMERAL: u32 = 0x89;
    /// In R': SHA-256 of the R (`71` TLV || `5F37` TLV) it answers.
    pub const REGISTRATION_HASH: u32 = 0x8B;
    /// In R': the server's current time, Unix seconds (8 bytes).
    pub const SERVER_TIME: u32 = 0x8C;

    pub const CID: u32 = 0x83;
    pub const COUNTER: u32 = 0x84;
    pub const CIPHERTEXT: u32 = 0x86;

    pub const CALL_NAME: u32 = 0x81;
    pub const DATA: u32 = 0x82;
    pub const STATUS: u32 = 0x80;
    pub const CREDENTIAL: u32 = 0x90;

    pub const ICCID: u32 = 0x5A;
    pub const ISD_P_AID: u32 = 0x4F;
}

pub const NONCE_LEN: usize = 16;
/// SEC1 uncompressed point `04 || X || Y`.
pub const PUBLIC_KEY_LEN: usize = 65;
/// Raw `r || s`.
pub const SIGNATURE_LEN: usize = 64;
pub const CID_LEN: usize = 16;
/// EID (16) || ICCID (10).
pub const SUBJECT_LEN: usize = 26;
pub const ICCID_LEN: usize = 10;
pub const MAX_SERIAL_LEN: usize = 16;
/// Issuer identifier, service identifier and call name: 1..=32 bytes of UTF-8.
pub const MAX_ID_LEN: usize = 32;
/// Scope (comma-separated call names): at most this many bytes.
pub const MAX_SCOPE_LEN: usize = 256;
/// Call data and result data.
pub const MAX_DATA_LEN: usize = 4096;
/// Credential (`90`) in a call result.
pub const MAX_CREDENTIAL_LEN: usize = 1024;
/// AES-GCM tag appended to the ciphertext.
pub const GCM_TAG_LEN: usize = 16;
/// Largest plaintext of a protected message before padding (the largest `75` encoding).
pub const MAX_PLAINTEXT_LEN: usize = 4 + 3 + (4 + MAX_DATA_LEN) + (4 + MAX_CREDENTIAL_LEN);
/// Padded sizes of a protected message's plaintext: the smallest that holds the message
/// and at least one padding byte, so calls and results cannot be told apart by length
/// within a bucket (`echo` and `provision` both fit the first).
pub const MESSAGE_BUCKETS: [usize; 4] = [256, 1024, 4096, 5376];
/// Padded size of a sealed R's plaintext (`71` || `5F37`): hides certificate and counter sizes.
pub const REGISTRATION_BUCKETS: [usize; 1] = [512];
/// Padded size of a sealed R''s plaintext (`72` || `5F37`): hides the scope's size.
pub const ANSWER_BUCKETS: [usize; 1] = [640];
/// Largest `86` value of a protected message.
pub const MAX_CIPHERTEXT_LEN: usize = MESSAGE_BUCKETS[3] + GCM_TAG_LEN;
/// Key usage of an SE certificate: digital signature.
pub const KEY_USAGE_DIGITAL_SIGNATURE: u8 = 0x80;

/// Why bytes are not the structure a parser asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Der(#[from] DerError),
    #[error("{structure}: unknown tag {tag:X}")]
    UnknownTag { structure: &'static str, tag: u32 },
    #[error("{structure}: mandatory tag {tag:X} is missing")]
    MissingTag { structure: &'static str, tag: u32 },
    #[error("{structure}: tag {tag:X} appears twice")]
    DuplicateTag { structure: &'static str, tag: u32 },
    #[error("{structure}: fields out of the documented order")]
    OutOfOrder { structure: &'static str },
    #[error("{field}: {found} bytes, expected exactly {expected}")]
    WrongLength {
        field: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("{field}: {found} bytes, expected {min}..={max}")]
    LengthOutOfRange {
        field: &'static str,
        min: usize,
        max: usize,
        found: usize,
    },
    #[error("unsupported protocol version {0:02X} (this side speaks only version 02; version 01 is refused, never downgraded to: update the other side)")]
    UnsupportedVersion(u8),
    #[error("{0}: padding is not 80 00.. to the documented size")]
    BadPadding(&'static str),
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("{0}: non-canonical encoding (non-minimal length); send the canonical form")]
    NonCanonical(&'static str),
}

impl AuthError {
    /// The status word a card answers for malformed command data.
    pub fn status(&self) -> Status {
        Status::IncorrectData
    }
}

type Result<T> = core::result::Result<T, AuthError>;

// ---------------------------------------------------------------------------------------
// Field helpers

/// The children of one constructed object, checked against the schema: only `order`
/// tags, each at most once, in that order.
struct Fields<'a> {
    structure: &'static str,
    items: Vec<DataObject<'a>>,
}

impl<'a> Fields<'a> {
    fn parse(structure: &'static str, value: &'a [u8], order: &[u32]) -> Result<Self> {
        let items = der::read_all(value)?;
        let mut last: Option<usize> = None;
        for (i, item) in items.iter().enumerate() {
            let Some(pos) = order.iter().position(|t| *t == item.tag) else {
                return Err(AuthError::UnknownTag {
                    structure,
                    tag: item.tag,
                });
            };
            if items.iter().take(i).any(|o| o.tag == item.tag) {
                return Err(AuthError::DuplicateTag {
                    structure,
                    tag: item.tag,
                });
            }
            if last.is_some_and(|l| pos < l) {
                return Err(AuthError::OutOfOrder { structure });
            }
            last = Some(pos);
        }
        Ok(Fields { structure, items })
    }

    fn optional(&self, tag: u32) -> Option<&'a [u8]> {
        der::find(&self.items, tag)
    }

    fn required(&self, tag: u32) -> Result<&'a [u8]> {
        self.optional(tag).ok_or(AuthError::MissingTag {
            structure: self.structure,
            tag,
        })
    }
}

fn fixed<const N: usize>(field: &'static str, v: &[u8]) -> Result<[u8; N]> {
    <[u8; N]>::try_from(v).map_err(|_| AuthError::WrongLength {
        field,
        expected: N,
        found: v.len(),
    })
}

fn bounded(field: &'static str, v: &[u8], min: usize, max: usize) -> Result<Vec<u8>> {
    if v.len() < min || v.len() > max {
        return Err(AuthError::LengthOutOfRange {
            field,
            min,
            max,
            found: v.len(),
        });
    }
    Ok(v.to_vec())
}

fn text(field: &'static str, v: &[u8], min: usize, max: usize) -> Result<String> {
    let bytes = bounded(field, v, min, max)?;
    String::from_utf8(bytes).map_err(|_| AuthError::NotUtf8(field))
}

fn identifier(field: &'static str, v: &[u8]) -> Result<String> {
    text(field, v, 1, MAX_ID_LEN)
}

fn point(field: &'static str, v: &[u8]) -> Result<[u8; PUBLIC_KEY_LEN]> {
    let p: [u8; PUBLIC_KEY_LEN] = fixed(field, v)?;
    if p[0] != 0x04 {
        return Err(AuthError::Invalid {
            field,
            reason: "not an uncompressed SEC1 point (first byte must be 04)",
        });
    }
    Ok(p)
}

fn version(v: &[u8]) -> Result<()> {
    let [b] = fixed::<1>("version (80)", v)?;
    if b != VERSION {
        return Err(AuthError::UnsupportedVersion(b));
    }
    Ok(())
}

/// Exactly one object with tag `expected`; its value.
fn outer(bytes: &[u8], expected: u32) -> Result<&[u8]> {
    Ok(der::read_expected(bytes, expected)?)
}

/// The encoding must be the canonical one (minimal lengths): re-encode and compare.
fn canonical<T>(
    structure: &'static str,
    input: &[u8],
    value: T,
    encode: fn(&T) -> Vec<u8>,
) -> Result<T> {
    if encode(&value) != input {
        return Err(AuthError::NonCanonical(structure));
    }
    Ok(value)
}

/// Split `object || 5F37 signature`, returning the object's bytes and the signature.
fn split_signed(bytes: &[u8], expected: u32) -> Result<(&[u8], [u8; SIGNATURE_LEN])> {
    let (first, rest) = der::read_one(bytes)?;
    if first.tag != expected {
        return Err(DerError::UnexpectedTag {
            expected,
            found: first.tag,
        }
        .into());
    }
    let object = bytes.get(..bytes.len() - rest.len()).unwrap_or_default();
    let sig = der::read_expected(rest, tag::SIGNATURE)?;
    Ok((object, fixed("signature (5F37)", sig)?))
}

fn push_version(out: &mut Vec<u8>) {
    tlv::push(out, tag::VERSION, &[VERSION]);
}

/// Pad `plain` with `80 00..` to the smallest of `buckets` that holds it and one padding
/// byte (ISO/IEC 7816-4 padding); `None` when it does not fit the largest.
pub fn pad(plain: &[u8], buckets: &[usize]) -> Option<Vec<u8>> {
    let size = *buckets.iter().find(|b| **b > plain.len())?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(plain);
    out.push(0x80);
    out.resize(size, 0x00);
    Some(out)
}

/// Remove the padding of [`pad`]: the length must be one of `buckets`, and the smallest
/// bucket for the unpadded length (so each plaintext has exactly one padded form).
pub fn unpad<'a>(padded: &'a [u8], buckets: &[usize], what: &'static str) -> Result<&'a [u8]> {
    let end = padded
        .iter()
        .rposition(|b| *b != 0)
        .filter(|i| padded[*i] == 0x80)
        .ok_or(AuthError::BadPadding(what))?;
    let plain = &padded[..end];
    match buckets.iter().find(|b| **b > plain.len()) {
        Some(b) if *b == padded.len() => Ok(plain),
        _ => Err(AuthError::BadPadding(what)),
    }
}

// ---------------------------------------------------------------------------------------
// Certificate

/// A card-verifiable SE certificate (`7F21`), in the manner of GlobalPlatform SCP11.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// `93`, 1..=16 bytes.
    pub serial: Vec<u8>,
    /// `42`, the CA's name, UTF-8 1..=32 bytes.
    pub issuer: String,
    /// `5F20`, EID (16) || ICCID (10).
    pub subject: [u8; SUBJECT_LEN],
    /// `95`, [`KEY_USAGE_DIGITAL_SIGNATURE`] for SE keys.
    pub key_usage: u8,
    /// `5F24`, Unix seconds; the certificate is valid while `now < expiry`.
    pub expiry: u32,
    /// `7F49 { B0 }`, SEC1 uncompressed.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// `5F37`, the CA's raw `r || s` over [`Certificate::body_bytes`].
    pub signature: [u8; SIGNATURE_LEN],
}

const CERT_ORDER: [u32; 7] = [
    tag::SERIAL,
    tag::ISSUER,
    tag::SUBJECT,
    tag::KEY_USAGE,
    tag::EXPIRY_DATE,
    tag::PUBLIC_KEY,
    tag::SIGNATURE,
];

impl Certificate {
    /// The signed bytes: the TLVs `93 42 5F20 95 5F24 7F49` in this order, without the
    /// `7F21` header and without `5F37`.
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        tlv::push(&mut out, tag::SERIAL, &self.serial);
        tlv::push(&mut out, tag::ISSUER, self.issuer.as_bytes());
        tlv::push(&mut out, tag::SUBJECT, &self.subject);
        tlv::push(&mut out, tag::KEY_USAGE, &[self.key_usage]);
        tlv::push(&mut out, tag::EXPIRY_DATE, &self.expiry.to_be_bytes());
        tlv::push(
            &mut out,
            tag::PUBLIC_KEY,
            &tlv::build(tag::POINT, &self.public_key),
        );
        out
    }

    /// The whole `7F21` object.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = self.body_bytes();
        tlv::push(&mut body, tag::SIGNATURE, &self.signature);
        tlv::build(tag::CERTIFICATE, &body)
    }

    /// Parse one `7F21` object (no trailing bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value = outer(bytes, tag::CERTIFICATE)?;
        canonical(
            "certificate (7F21)",
            bytes,
            Self::from_value(value)?,
            Self::to_bytes,
        )
    }

    fn from_value(value: &[u8]) -> Result<Self> {
        let f = Fields::parse("certificate (7F21)", value, &CERT_ORDER)?;
        let pk = Fields::parse(
            "public key (7F49)",
            f.required(tag::PUBLIC_KEY)?,
            &[tag::POINT],
        )?;
        Ok(Certificate {
            serial: bounded("serial (93)", f.required(tag::SERIAL)?, 1, MAX_SERIAL_LEN)?,
            issuer: identifier("issuer (42)", f.required(tag::ISSUER)?)?,
            subject: fixed("subject (5F20)", f.required(tag::SUBJECT)?)?,
            key_usage: u8::from_be_bytes(fixed("key usage (95)", f.required(tag::KEY_USAGE)?)?),
            expiry: u32::from_be_bytes(fixed("expiry (5F24)", f.required(tag::EXPIRY_DATE)?)?),
            public_key: point("public key (B0)", pk.required(tag::POINT)?)?,
            signature: fixed("signature (5F37)", f.required(tag::SIGNATURE)?)?,
        })
    }

    /// The EID part of the subject.
    pub fn eid(&self) -> [u8; 16] {
        let mut eid = [0u8; 16];
        eid.copy_from_slice(&self.subject[..16]);
        eid
    }

    /// The ICCID part of the subject.
    pub fn iccid(&self) -> [u8; ICCID_LEN] {
        let mut iccid = [0u8; ICCID_LEN];
        iccid.copy_from_slice(&self.subject[16..]);
        iccid
    }
}

// ---------------------------------------------------------------------------------------
// R and R'

/// R (`71`): the registration request, SE -> server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub certificate: Certificate,
    /// `81`, UTF-8 1..=32 bytes.
    pub service_id: String,
    /// `82`, fresh from the OS CSPRNG.
    pub se_nonce: [u8; NONCE_LEN],
    /// `83`, SE ephemeral ECDH public key.
    pub se_ephemeral: [u8; PUBLIC_KEY_LEN],
    /// `84`, strictly increasing per container.
    pub counter: u32,
}

const R_ORDER: [u32; 6] = [
    tag::VERSION,
    tag::CERTIFICATE,
    tag::SERVICE_ID,
    tag::SE_NONCE,
    tag::SE_EPHEMERAL,
    tag::REGISTRATION_COUNTER,
];

impl Registration {
    /// The `71` object (the bytes the SE signs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(400);
        push_version(&mut v);
        v.extend_from_slice(&self.certificate.to_bytes());
        tlv::push(&mut v, tag::SERVICE_ID, self.service_id.as_bytes());
        tlv::push(&mut v, tag::SE_NONCE, &self.se_nonce);
        tlv::push(&mut v, tag::SE_EPHEMERAL, &self.se_ephemeral);
        tlv::push(
            &mut v,
            tag::REGISTRATION_COUNTER,
            &self.counter.to_be_bytes(),
        );
        tlv::build(tag::REGISTRATION, &v)
    }

    /// Parse one `71` object.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value = outer(bytes, tag::REGISTRATION)?;
        let f = Fields::parse("registration (71)", value, &R_ORDER)?;
        version(f.required(tag::VERSION)?)?;
        let r = Registration {
            certificate: Certificate::from_value(f.required(tag::CERTIFICATE)?)?,
            service_id: identifier("service id (81)", f.required(tag::SERVICE_ID)?)?,
            se_nonce: fixed("SE nonce (82)", f.required(tag::SE_NONCE)?)?,
            se_ephemeral: point("SE ephemeral key (83)", f.required(tag::SE_EPHEMERAL)?)?,
            counter: u32::from_be_bytes(fixed(
                "registration counter (84)",
                f.required(tag::REGISTRATION_COUNTER)?,
            )?),
        };
        canonical("registration (71)", bytes, r, Self::to_bytes)
    }
}

/// R || sigR: what GET REGISTRATION returns and the server receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRegistration {
    pub registration: Registration,
    /// `5F37`, by the SE key over `registration.to_bytes()`.
    pub signature: [u8; SIGNATURE_LEN],
}

impl SignedRegistration {
    /// `71 ... 5F37 ...`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.registration.to_bytes();
        tlv::push(&mut out, tag::SIGNATURE, &self.signature);
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let (r, signature) = split_signed(bytes, tag::REGISTRATION)?;
        let s = SignedRegistration {
            registration: Registration::parse(r)?,
            signature,
        };
        canonical("signed registration (71 5F37)", bytes, s, Self::to_bytes)
    }
}

/// R' (`72`): the server's answer, server -> SE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAnswer {
    /// `8B`, SHA-256 of the whole R answered (`71` TLV || `5F37` TLV).
    pub registration_hash: [u8; 32],
    /// `82`, the SE nonce of the R answered.
    pub se_nonce: [u8; NONCE_LEN],
    /// `85`.
    pub server_nonce: [u8; NONCE_LEN],
    /// `81`, the service id of the R answered.
    pub service_id: String,
    /// `86`: `01` granted, `00` refused.
    pub granted: bool,
    /// `87`: call names (each 1..=32 bytes, no comma), joined by commas; empty when refused.
    pub scope: Vec<String>,
    /// `88`: expiry of the grant and of the connection, Unix seconds (valid while `now < expiry`).
    pub expiry: u64,
    /// `8C`: the server's current time, Unix seconds (the card's trusted time floor).
    pub server_time: u64,
    /// `89`: server ephemeral ECDH public key.
    pub server_ephemeral: [u8; PUBLIC_KEY_LEN],
}

const RP_ORDER: [u32; 10] = [
    tag::VERSION,
    tag::REGISTRATION_HASH,
    tag::SE_NONCE,
    tag::SERVER_NONCE,
    tag::SERVICE_ID,
    tag::GRANT,
    tag::SCOPE,
    tag::GRANT_EXPIRY,
    tag::SERVER_TIME,
    tag::SERVER_EPHEMERAL,
];

impl ServerAnswer {
    /// The `72` object (the bytes the server signs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(240);
        push_version(&mut v);
        tlv::push(&mut v, tag::REGISTRATION_HASH, &self.registration_hash);
        tlv::push(&mut v, tag::SE_NONCE, &self.se_nonce);
        tlv::push(&mut v, tag::SERVER_NONCE, &self.server_nonce);
        tlv::push(&mut v, tag::SERVICE_ID, self.service_id.as_bytes());
        tlv::push(&mut v, tag::GRANT, &[u8::from(self.granted)]);
        tlv::push(&mut v, tag::SCOPE, self.scope.join(",").as_bytes());
        tlv::push(&mut v, tag::GRANT_EXPIRY, &self.expiry.to_be_bytes());
        tlv::push(&mut v, tag::SERVER_TIME, &self.server_time.to_be_bytes());
        tlv::push(&mut v, tag::SERVER_EPHEMERAL, &self.server_ephemeral);
        tlv::build(tag::SERVER_ANSWER, &v)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value = outer(bytes, tag::SERVER_ANSWER)?;
        let f = Fields::parse("server answer (72)", value, &RP_ORDER)?;
        version(f.required(tag::VERSION)?)?;
        let granted = match fixed::<1>("grant (86)", f.required(tag::GRANT)?)? {
            [0x00] => false,
            [0x01] => true,
            _ => {
                return Err(AuthError::Invalid {
                    field: "grant (86)",
                    reason: "neither 00 (refused) nor 01 (granted)",
                })
            }
        };
        let scope = parse_scope(f.required(tag::SCOPE)?)?;
        if !granted && !scope.is_empty() {
            return Err(AuthError::Invalid {
                field: "scope (87)",
                reason: "a refusal carries an empty scope",
            });
        }
        let a = ServerAnswer {
            registration_hash: fixed(
                "registration hash (8B)",
                f.required(tag::REGISTRATION_HASH)?,
            )?,
            se_nonce: fixed("SE nonce (82)", f.required(tag::SE_NONCE)?)?,
            server_nonce: fixed("server nonce (85)", f.required(tag::SERVER_NONCE)?)?,
            service_id: identifier("service id (81)", f.required(tag::SERVICE_ID)?)?,
            granted,
            scope,
            expiry: u64::from_be_bytes(fixed("grant expiry (88)", f.required(tag::GRANT_EXPIRY)?)?),
            server_time: u64::from_be_bytes(fixed(
                "server time (8C)",
                f.required(tag::SERVER_TIME)?,
            )?),
            server_ephemeral: point(
                "server ephemeral key (89)",
                f.required(tag::SERVER_EPHEMERAL)?,
            )?,
        };
        canonical("server answer (72)", bytes, a, Self::to_bytes)
    }

    /// Whether the answer grants `call`.
    pub fn allows(&self, call: &str) -> bool {
        self.granted && self.scope.iter().any(|c| c == call)
    }
}

/// Parse a scope (`87`): empty, or comma-separated call names of 1..=32 bytes, no duplicates.
pub fn parse_scope(v: &[u8]) -> Result<Vec<String>> {
    let s = text("scope (87)", v, 0, MAX_SCOPE_LEN)?;
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<String> = Vec::new();
    for name in s.split(',') {
        if name.is_empty() || name.len() > MAX_ID_LEN {
            return Err(AuthError::Invalid {
                field: "scope (87)",
                reason: "a call name is empty or longer than 32 bytes",
            });
        }
        if out.iter().any(|n| n == name) {
            return Err(AuthError::Invalid {
                field: "scope (87)",
                reason: "a call name appears twice",
            });
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// R' || sigR': what the server returns and VERIFY SERVER receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedServerAnswer {
    pub answer: ServerAnswer,
    /// `5F37`, by the server key over `answer.to_bytes()`.
    pub signature: [u8; SIGNATURE_LEN],
}

impl SignedServerAnswer {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.answer.to_bytes();
        tlv::push(&mut out, tag::SIGNATURE, &self.signature);
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let (a, signature) = split_signed(bytes, tag::SERVER_ANSWER)?;
        let s = SignedServerAnswer {
            answer: ServerAnswer::parse(a)?,
            signature,
        };
        canonical("signed server answer (72 5F37)", bytes, s, Self::to_bytes)
    }
}

/// The sealed R (`70`), as GET REGISTRATION returns it and the portal relays it: only the
/// service id (the portal routes by it) and the SE's ephemeral key are in clear. The `86`
/// value is AES-256-GCM under a key from ECDH(SE ephemeral, server static key) of the
/// padded R || sigR; its AAD is the `80`, `81` and `83` TLVs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRegistration {
    /// `81`.
    pub service_id: String,
    /// `83`.
    pub se_ephemeral: [u8; PUBLIC_KEY_LEN],
    /// `86`: ciphertext || tag of `pad(R || sigR, REGISTRATION_BUCKETS)`.
    pub sealed: Vec<u8>,
}

const SEALED_R_ORDER: [u32; 4] = [
    tag::VERSION,
    tag::SERVICE_ID,
    tag::SE_EPHEMERAL,
    tag::SEALED,
];

impl SealedRegistration {
    /// The additional authenticated data: the `80`, `81` and `83` TLVs.
    pub fn aad(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(3 + 2 + self.service_id.len() + 2 + PUBLIC_KEY_LEN);
        push_version(&mut v);
        tlv::push(&mut v, tag::SERVICE_ID, self.service_id.as_bytes());
        tlv::push(&mut v, tag::SE_EPHEMERAL, &self.se_ephemeral);
        v
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.aad();
        tlv::push(&mut v, tag::SEALED, &self.sealed);
        tlv::build(tag::SEALED_REGISTRATION, &v)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value = outer(bytes, tag::SEALED_REGISTRATION)?;
        let f = Fields::parse("sealed registration (70)", value, &SEALED_R_ORDER)?;
        version(f.required(tag::VERSION)?)?;
        let size = REGISTRATION_BUCKETS[0] + GCM_TAG_LEN;
        let r = SealedRegistration {
            service_id: identifier("service id (81)", f.required(tag::SERVICE_ID)?)?,
            se_ephemeral: point("SE ephemeral key (83)", f.required(tag::SE_EPHEMERAL)?)?,
            sealed: bounded("sealed R (86)", f.required(tag::SEALED)?, size, size)?,
        };
        canonical("sealed registration (70)", bytes, r, Self::to_bytes)
    }
}

/// The sealed R' (`78`), as the server returns it and VERIFY SERVER takes it: only the
/// server's ephemeral key is in clear. The `86` value is AES-256-GCM under a key from
/// ECDH(SE ephemeral, server ephemeral) and the hash of R, of the padded R' || sigR'; its
/// AAD is the `80` and `89` TLVs. Opening it is the server's key confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedAnswer {
    /// `89`.
    pub server_ephemeral: [u8; PUBLIC_KEY_LEN],
    /// `86`: ciphertext || tag of `pad(R' || sigR', ANSWER_BUCKETS)`.
    pub sealed: Vec<u8>,
}

const SEALED_RP_ORDER: [u32; 3] = [tag::VERSION, tag::SERVER_EPHEMERAL, tag::SEALED];

impl SealedAnswer {
    /// The additional authenticated data: the `80` and `89` TLVs.
    pub fn aad(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(3 + 2 + PUBLIC_KEY_LEN);
        push_version(&mut v);
        tlv::push(&mut v, tag::SERVER_EPHEMERAL, &self.server_ephemeral);
        v
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.aad();
        tlv::push(&mut v, tag::SEALED, &self.sealed);
        tlv::build(tag::SEALED_ANSWER, &v)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value = outer(bytes, tag::SEALED_ANSWER)?;
        let f = Fields::parse("sealed server answer (78)", value, &SEALED_RP_ORDER)?;
        version(f.required(tag::VERSION)?)?;
        let size = ANSWER_BUCKETS[0] + GCM_TAG_LEN;
        let a = SealedAnswer {
            server_ephemeral: point(
                "server ephemeral key (89)",
                f.required(tag::SERVER_EPHEMERAL)?,
            )?,
            sealed: bounded("sealed R' (86)", f.required(tag::SEALED)?, size, size)?,
        };
        canonical("sealed server answer (78)", bytes, a, Self::to_bytes)
    }
}

// ---------------------------------------------------------------------------------------
// Secure connection

/// A protected message (`73`), either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedMessage {
    /// `83`, the connection identifier (TH[0..16]).
    pub cid: [u8; CID_LEN],
    /// `84`, the sender's counter (starts at 1).
    pub counter: u64,
    /// `86`, AES-256-GCM ciphertext || 16-byte tag.
    pub ciphertext: Vec<u8>,
}

const PM_ORDER: [u32; 4] = [tag::VERSION, tag::CID, tag::COUNTER, tag::CIPHERTEXT];

impl ProtectedMessage {
    /// The additional authenticated data: the `80`, `83` and `84` TLVs in this order.
    pub fn aad(&self) -> Vec<u8> {
        Self::aad_for(&self.cid, self.counter)
    }

    /// The AAD of a message with this connection id and counter.
    pub fn aad_for(cid: &[u8; CID_LEN], counter: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(3 + 2 + CID_LEN + 2 + 8);
        push_version(&mut v);
        tlv::push(&mut v, tag::CID, cid);
        tlv::push(&mut v, tag::COUNTER, &counter.to_be_bytes());
        v
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.aad();
        tlv::push(&mut v, tag::CIPHERTEXT, &self.ciphertext);
        tlv::build(tag::PROTECTED, &v)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value = outer(bytes, tag::PROTECTED)?;
        let f = Fields::parse("protected message (73)", value, &PM_ORDER)?;
        version(f.required(tag::VERSION)?)?;
        let m = ProtectedMessage {
            cid: fixed("connection id (83)", f.required(tag::CID)?)?,
            counter: u64::from_be_bytes(fixed("counter (84)", f.required(tag::COUNTER)?)?),
            ciphertext: bounded(
                "ciphertext (86)",
                f.required(tag::CIPHERTEXT)?,
                MESSAGE_BUCKETS[0] + GCM_TAG_LEN,
                MAX_CIPHERTEXT_LEN,
            )?,
        };
        if !MESSAGE_BUCKETS
            .iter()
            .any(|b| b + GCM_TAG_LEN == m.ciphertext.len())
        {
            return Err(AuthError::LengthOutOfRange {
                field: "ciphertext (86): not a padded size",
                min: MESSAGE_BUCKETS[0] + GCM_TAG_LEN,
                max: MAX_CIPHERTEXT_LEN,
                found: m.ciphertext.len(),
            });
        }
        canonical("protected message (73)", bytes, m, Self::to_bytes)
    }
}

/// A service call (`74`), the plaintext of an up message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `81`, UTF-8 1..=32 bytes (`echo`, `provision`).
    pub name: String,
    /// `82`, 0..=4096 bytes.
    pub data: Vec<u8>,
}

impl Call {
    /// The fields without the `74` header: the data of SECURE SEND (`81 call 82 data`).
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.data.len() + 40);
        tlv::push(&mut v, tag::CALL_NAME, self.name.as_bytes());
        tlv::push(&mut v, tag::DATA, &self.data);
        v
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        tlv::build(tag::CALL, &self.body_bytes())
    }

    /// Parse the fields without the header (SECURE SEND command data).
    pub fn parse_body(body: &[u8]) -> Result<Self> {
        let f = Fields::parse("call (74)", body, &[tag::CALL_NAME, tag::DATA])?;
        let c = Call {
            name: identifier("call name (81)", f.required(tag::CALL_NAME)?)?,
            data: bounded("call data (82)", f.required(tag::DATA)?, 0, MAX_DATA_LEN)?,
        };
        canonical("call (74)", body, c, Self::body_bytes)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let c = Self::parse_body(outer(bytes, tag::CALL)?)?;
        canonical("call (74)", bytes, c, Self::to_bytes)
    }
}

/// The status of a call result (`75 80`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    Ok = 0x00,
    Refused = 0x01,
    Failed = 0x02,
}

impl CallStatus {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x00 => Some(CallStatus::Ok),
            0x01 => Some(CallStatus::Refused),
            0x02 => Some(CallStatus::Failed),
            _ => None,
        }
    }
}

/// A call result (`75`), the plaintext of a down message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// `80`.
    pub status: CallStatus,
    /// `82`, 0..=4096 bytes.
    pub data: Vec<u8>,
    /// `90`, 1..=1024 bytes, optional (`provision`).
    pub credential: Option<Vec<u8>>,
}

impl CallResult {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.data.len() + 16);
        tlv::push(&mut v, tag::STATUS, &[self.status as u8]);
        tlv::push(&mut v, tag::DATA, &self.data);
        if let Some(c) = &self.credential {
            tlv::push(&mut v, tag::CREDENTIAL, c);
        }
        tlv::build(tag::CALL_RESULT, &v)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value = outer(bytes, tag::CALL_RESULT)?;
        let f = Fields::parse(
            "call result (75)",
            value,
            &[tag::STATUS, tag::DATA, tag::CREDENTIAL],
        )?;
        let [s] = fixed::<1>("status (80)", f.required(tag::STATUS)?)?;
        let r = CallResult {
            status: CallStatus::from_byte(s).ok_or(AuthError::Invalid {
                field: "status (80)",
                reason: "neither 00 ok, 01 refused nor 02 failed",
            })?,
            data: bounded("result data (82)", f.required(tag::DATA)?, 0, MAX_DATA_LEN)?,
            credential: f
                .optional(tag::CREDENTIAL)
                .map(|c| bounded("credential (90)", c, 1, MAX_CREDENTIAL_LEN))
                .transpose()?,
        };
        canonical("call result (75)", bytes, r, Self::to_bytes)
    }

    /// The same result without its credential (what SECURE RECEIVE returns).
    pub fn without_credential(&self) -> CallResult {
        CallResult {
            credential: None,
            ..self.clone()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Command data of GET REGISTRATION, GET DATA identity and the admin DGI

/// GET REGISTRATION command data: `81 service id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRegistration {
    pub service_id: String,
}

impl GetRegistration {
    pub fn to_bytes(&self) -> Vec<u8> {
        tlv::build(tag::SERVICE_ID, self.service_id.as_bytes())
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let g = GetRegistration {
            service_id: identifier("service id (81)", outer(bytes, tag::SERVICE_ID)?)?,
        };
        canonical("GET REGISTRATION data", bytes, g, Self::to_bytes)
    }
}

/// DGI `A001` content (admin, STORE DATA): the server key trusted for a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    /// `80`, UTF-8 1..=32 bytes.
    pub service_id: String,
    /// `81`, SEC1 uncompressed.
    pub server_public_key: [u8; PUBLIC_KEY_LEN],
}

/// The DGI carrying a [`TrustAnchor`].
pub const DGI_TRUST_ANCHOR: u16 = 0xA001;

impl TrustAnchor {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = tlv::build(0x80, self.service_id.as_bytes());
        tlv::push(&mut v, 0x81, &self.server_public_key);
        v
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let f = Fields::parse("trust anchor (DGI A001)", bytes, &[0x80, 0x81])?;
        let t = TrustAnchor {
            service_id: identifier("service id (80)", f.required(0x80)?)?,
            server_public_key: point("server public key (81)", f.required(0x81)?)?,
        };
        canonical("trust anchor (DGI A001)", bytes, t, Self::to_bytes)
    }
}

/// VERIFY SERVER answer data: `87` scope and `88` expiry of the connection it opened, for
/// the terminal's report (the portal never sees them: they cross it inside the sealed R').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSummary {
    pub scope: Vec<String>,
    pub expiry: u64,
}

impl ConnectionSummary {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = tlv::build(tag::SCOPE, self.scope.join(",").as_bytes());
        tlv::push(&mut v, tag::GRANT_EXPIRY, &self.expiry.to_be_bytes());
        v
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let f = Fields::parse(
            "connection summary",
            bytes,
            &[tag::SCOPE, tag::GRANT_EXPIRY],
        )?;
        let c = ConnectionSummary {
            scope: parse_scope(f.required(tag::SCOPE)?)?,
            expiry: u64::from_be_bytes(fixed("expiry (88)", f.required(tag::GRANT_EXPIRY)?)?),
        };
        canonical("connection summary", bytes, c, Self::to_bytes)
    }
}

/// GET DATA `00 5A` answer: `5A` ICCID (10), `4F` ISD-P AID (5..=16), `5F20` subject (26).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerIdentity {
    pub iccid: [u8; ICCID_LEN],
    pub isd_p_aid: Vec<u8>,
    pub subject: [u8; SUBJECT_LEN],
}

impl ContainerIdentity {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = tlv::build(tag::ICCID, &self.iccid);
        tlv::push(&mut v, tag::ISD_P_AID, &self.isd_p_aid);
        tlv::push(&mut v, tag::SUBJECT, &self.subject);
        v
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let f = Fields::parse(
            "container identity",
            bytes,
            &[tag::ICCID, tag::ISD_P_AID, tag::SUBJECT],
        )?;
        let c = ContainerIdentity {
            iccid: fixed("ICCID (5A)", f.required(tag::ICCID)?)?,
            isd_p_aid: bounded("ISD-P AID (4F)", f.required(tag::ISD_P_AID)?, 5, 16)?,
            subject: fixed("subject (5F20)", f.required(tag::SUBJECT)?)?,
        };
        canonical("container identity", bytes, c, Self::to_bytes)
    }
}

// ---------------------------------------------------------------------------------------
// The applet's commands: built by the client, parsed by the card (one type for both)

/// One command of the authentication applet, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthCommand {
    /// `80 10 00 00 {81 service id} 00`.
    GetRegistration(GetRegistration),
    /// `80 12 00 00 {78 sealed R'}`.
    VerifyServer(SealedAnswer),
    /// `80 14 00 00 {81 call 82 data} 00`.
    SecureSend(Call),
    /// `80 16 00 00 {73 down message} 00`.
    SecureReceive(ProtectedMessage),
    /// `80 CA 7F 21 00`.
    GetCertificate,
    /// `80 CA 00 5A 00`.
    GetIdentity,
}

/// Le of a command with `data_len` bytes of data: 256 in short form, 65536 once the data
/// forces the extended form (the card answers longer data through `61xx` either way).
fn le_for(data_len: usize) -> usize {
    if data_len > 255 {
        65_536
    } else {
        256
    }
}

impl AuthCommand {
    /// The C-APDU (CLA 80, logical channel 0).
    pub fn to_command(&self) -> Command<'static> {
        let (ins_code, p1p2, data, le) = match self {
            AuthCommand::GetRegistration(g) => (ins::GET_REGISTRATION, 0, g.to_bytes(), true),
            AuthCommand::VerifyServer(a) => (ins::VERIFY_SERVER, 0, a.to_bytes(), true),
            AuthCommand::SecureSend(c) => (ins::SECURE_SEND, 0, c.body_bytes(), true),
            AuthCommand::SecureReceive(m) => (ins::SECURE_RECEIVE, 0, m.to_bytes(), true),
            AuthCommand::GetCertificate => (ins::GET_DATA, get_data::CERTIFICATE, Vec::new(), true),
            AuthCommand::GetIdentity => (ins::GET_DATA, get_data::IDENTITY, Vec::new(), true),
        };
        let [p1, p2] = p1p2.to_be_bytes();
        let le = le.then(|| le_for(data.len()));
        Command::new(CLA, ins_code, p1, p2)
            .with_data(data)
            .with_le(le)
    }

    /// Parse a C-APDU addressed to the applet (proprietary class without secure messaging,
    /// any logical channel, chains already reassembled): the error is the
    /// status word to answer (`6E00` class, `6D00` instruction, `6A86` P1-P2, `6A88` GET
    /// DATA object, `6A80` data, `6700` missing data).
    pub fn parse(cmd: &Command<'_>) -> core::result::Result<Self, Status> {
        match crate::Cla::decode(cmd.cla) {
            Ok(c) if c.is_proprietary() && c.secure_messaging() == SecureMessaging::None => {}
            _ => return Err(Status::ClaNotSupported),
        }
        let p1p2 = u16::from_be_bytes([cmd.p1, cmd.p2]);
        let data = cmd.data();
        let need_data = |d: &[u8]| {
            if d.is_empty() {
                Err(Status::WrongLength)
            } else {
                Ok(())
            }
        };
        match cmd.ins {
            ins::GET_DATA => {
                if !data.is_empty() {
                    return Err(Status::WrongLength);
                }
                match p1p2 {
                    get_data::CERTIFICATE => Ok(AuthCommand::GetCertificate),
                    get_data::IDENTITY => Ok(AuthCommand::GetIdentity),
                    _ => Err(Status::ReferencedDataNotFound),
                }
            }
            _ if p1p2 != 0 => Err(Status::IncorrectP1P2),
            ins::GET_REGISTRATION => {
                need_data(data)?;
                GetRegistration::parse(data)
                    .map(AuthCommand::GetRegistration)
                    .map_err(|e| e.status())
            }
            ins::VERIFY_SERVER => {
                need_data(data)?;
                SealedAnswer::parse(data)
                    .map(AuthCommand::VerifyServer)
                    .map_err(|e| e.status())
            }
            ins::SECURE_SEND => {
                need_data(data)?;
                Call::parse_body(data)
                    .map(AuthCommand::SecureSend)
                    .map_err(|e| e.status())
            }
            ins::SECURE_RECEIVE => {
                need_data(data)?;
                ProtectedMessage::parse(data)
                    .map(AuthCommand::SecureReceive)
                    .map_err(|e| e.status())
            }
            _ => Err(Status::InsNotSupported),
        }
    }
}

#[cfg(test)]
mod tests;
