//! SGP.22 certificates as the terminal and the card show them: a summary of any DER X.509
//! certificate (subject, issuer, serial, validity, key identifier, role policy).

use std::fmt;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::{CertificatePolicies, SubjectKeyIdentifier};
use x509_cert::Certificate;

/// SGP.22 §4.5.2: the certificate policies that name each role (id-rspRole = 2.23.146.1.2.1).
pub const ID_RSP_ROLE_CI: &str = "2.23.146.1.2.1.0";
pub const ID_RSP_ROLE_EUICC: &str = "2.23.146.1.2.1.1";
pub const ID_RSP_ROLE_EUM: &str = "2.23.146.1.2.1.2";

/// A certificate that is not DER X.509.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {role} certificate is not DER X.509: {reason}")]
pub struct CertError {
    pub role: String,
    pub reason: String,
}

/// One certificate, labelled with the role its holder gave it (CI, EUM, eUICC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub role: String,
    /// RFC 4514 distinguished names.
    pub subject: String,
    pub issuer: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// RFC 3339 UTC times.
    pub not_before: String,
    pub not_after: String,
    /// Subject key identifier, upper-case hex; empty when the certificate has none.
    pub ski: String,
    /// Certificate policy OIDs (SGP.22 names the role by one of them).
    pub policies: Vec<String>,
}

impl CertSummary {
    /// The SGP.22 role its policies name (`CI`, `EUM`, `eUICC`), if any.
    pub fn sgp22_role(&self) -> Option<&'static str> {
        self.policies.iter().find_map(|p| match p.as_str() {
            ID_RSP_ROLE_CI => Some("CI"),
            ID_RSP_ROLE_EUM => Some("EUM"),
            ID_RSP_ROLE_EUICC => Some("eUICC"),
            _ => None,
        })
    }
}

impl fmt::Display for CertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: subject {}; issuer {}; serial {}; valid {} .. {}; SKI {}",
            self.role,
            self.subject,
            self.issuer,
            self.serial,
            self.not_before,
            self.not_after,
            if self.ski.is_empty() {
                "none"
            } else {
                &self.ski
            },
        )
    }
}

/// Parse a DER certificate, errors naming `role`.
pub fn parse(role: &str, der: &[u8]) -> Result<Certificate, CertError> {
    Certificate::from_der(der).map_err(|e| CertError {
        role: role.to_string(),
        reason: e.to_string(),
    })
}

/// Summary of any DER X.509 certificate, labelled with `role`.
pub fn summary(role: &str, der: &[u8]) -> Result<CertSummary, CertError> {
    let cert = parse(role, der)?;
    let tbs = &cert.tbs_certificate;
    let policies = extension::<CertificatePolicies>(&cert)
        .map(|p| {
            p.0.iter()
                .map(|i| i.policy_identifier.to_string())
                .collect()
        })
        .unwrap_or_default();
    Ok(CertSummary {
        role: role.to_string(),
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        serial: crate::hexfmt::upper(tbs.serial_number.as_bytes()),
        not_before: tbs.validity.not_before.to_string(),
        not_after: tbs.validity.not_after.to_string(),
        ski: subject_key_id(&cert)
            .map(|k| crate::hexfmt::upper(&k))
            .unwrap_or_default(),
        policies,
    })
}

/// [`summary`], or for a certificate that does not parse a summary whose subject says why
/// (what a display shows rather than failing as a whole).
pub fn summary_or_reason(role: &str, der: &[u8]) -> CertSummary {
    summary(role, der).unwrap_or_else(|e| CertSummary {
        role: role.to_string(),
        subject: format!("({e})"),
        issuer: String::new(),
        serial: String::new(),
        not_before: String::new(),
        not_after: String::new(),
        ski: String::new(),
        policies: Vec::new(),
    })
}

/// The value of extension `E`, if the certificate has it and it decodes.
pub fn extension<E: AssociatedOid + for<'a> Decode<'a>>(cert: &Certificate) -> Option<E> {
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|x| x.extn_id == E::OID)
        .and_then(|x| E::from_der(x.extn_value.as_bytes()).ok())
}

/// The subject key identifier, if present.
pub fn subject_key_id(cert: &Certificate) -> Option<Vec<u8>> {
    extension::<SubjectKeyIdentifier>(cert).map(|k| k.0.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_naming_the_role_not_a_panic() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x82, 0xFF, 0xFF],
            &[0x30, 0x03, 0x02, 0x01, 0x01],
            &[0xFF; 40],
        ] {
            let e = summary("EUM", bad).unwrap_err();
            assert_eq!(e.role, "EUM");
        }
    }
}
