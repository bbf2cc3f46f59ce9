//! ES10c answers about the eUICC itself: configured addresses (`BF3C`), the rules
//! authorisation table (`BF43`), EUICCInfo1 (`BF20`) and EUICCInfo2 (`BF22`).

use std::fmt;

use super::der::{self, DataObject};
use super::{tag, Es10Error};
use crate::tlv;

fn utf8(v: &[u8], field: &'static str) -> Result<String, Es10Error> {
    String::from_utf8(v.to_vec()).map_err(|_| Es10Error::Invalid {
        field,
        reason: "not UTF-8",
    })
}

/// `EuiccConfiguredAddressesResponse` (`BF3C { 80 defaultDpAddress? 81 rootDsAddress }`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EuiccConfiguredAddresses {
    pub default_dp_address: Option<String>,
    pub root_ds_address: String,
}

impl EuiccConfiguredAddresses {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        if let Some(dp) = &self.default_dp_address {
            tlv::push(&mut body, 0x80, dp.as_bytes());
        }
        tlv::push(&mut body, 0x81, self.root_ds_address.as_bytes());
        tlv::build(tag::EUICC_CONFIGURED_ADDRESSES, &body)
    }

    pub fn parse(bytes: &[u8]) -> Result<EuiccConfiguredAddresses, Es10Error> {
        let c = der::read_all(der::read_expected(bytes, tag::EUICC_CONFIGURED_ADDRESSES)?)?;
        Ok(EuiccConfiguredAddresses {
            default_dp_address: der::find(&c, 0x80)
                .map(|v| utf8(v, "defaultDpAddress"))
                .transpose()?,
            root_ds_address: utf8(
                der::find(&c, 0x81).ok_or(Es10Error::Missing("rootDsAddress (81)"))?,
                "rootDsAddress",
            )?,
        })
    }
}

/// `GetRatResponse` (`BF43 { A0 { rule… } }`). The rules (`ProfilePolicyAuthorisationRule`
/// SEQUENCEs) are kept as their concatenated DER; empty means no rule (`BF43 02 A0 00`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RatResponse {
    pub rules_der: Vec<u8>,
}

impl RatResponse {
    pub fn to_bytes(&self) -> Vec<u8> {
        tlv::build(tag::GET_RAT, &tlv::build(tag::CHOICE_0, &self.rules_der))
    }

    pub fn parse(bytes: &[u8]) -> Result<RatResponse, Es10Error> {
        let c = der::read_all(der::read_expected(bytes, tag::GET_RAT)?)?;
        let rules = der::find(&c, tag::CHOICE_0).ok_or(Es10Error::Missing("rat (A0)"))?;
        der::read_all(rules)?;
        Ok(RatResponse {
            rules_der: rules.to_vec(),
        })
    }
}

/// `VersionType ::= OCTET STRING (SIZE(3))`: major, minor, revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub [u8; 3]);

impl Version {
    fn from_value(v: &[u8], field: &'static str) -> Result<Version, Es10Error> {
        Ok(Version(v.try_into().map_err(|_| Es10Error::Invalid {
            field,
            reason: "a VersionType has 3 bytes",
        })?))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a}.{b}.{c}")
    }
}

/// A DER BIT STRING: the count of unused bits in the last byte, then the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct BitString {
    pub unused_bits: u8,
    pub bytes: Vec<u8>,
}

impl BitString {
    /// A named-bit list with the given bit numbers set (bit 0 = MSB of the first byte),
    /// trailing zero bits trimmed as DER requires.
    pub fn from_bits(set: &[usize]) -> BitString {
        let Some(&max) = set.iter().max() else {
            return BitString::default();
        };
        let mut bytes = vec![0u8; max / 8 + 1];
        for &bit in set {
            if let Some(b) = bytes.get_mut(bit / 8) {
                *b |= 0x80 >> (bit % 8);
            }
        }
        BitString {
            unused_bits: (7 - (max % 8)) as u8,
            bytes,
        }
    }

    /// Whether bit `n` (0 = MSB of the first byte) is set.
    pub fn bit(&self, n: usize) -> bool {
        self.bytes
            .get(n / 8)
            .is_some_and(|b| b & (0x80 >> (n % 8)) != 0)
    }

    pub(crate) fn value(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.bytes.len() + 1);
        v.push(self.unused_bits);
        v.extend_from_slice(&self.bytes);
        v
    }

    pub(crate) fn from_value(v: &[u8], field: &'static str) -> Result<BitString, Es10Error> {
        match v.split_first() {
            Some((&unused, bytes)) if unused <= 7 && (unused == 0 || !bytes.is_empty()) => {
                Ok(BitString {
                    unused_bits: unused,
                    bytes: bytes.to_vec(),
                })
            }
            _ => Err(Es10Error::Invalid {
                field,
                reason: "malformed BIT STRING",
            }),
        }
    }
}

fn key_ids(value: &[u8], field: &'static str) -> Result<Vec<Vec<u8>>, Es10Error> {
    der::read_all(value)?
        .into_iter()
        .map(|k| {
            if k.tag == 0x04 {
                Ok(k.value.to_vec())
            } else {
                Err(Es10Error::Invalid {
                    field,
                    reason: "a SubjectKeyIdentifier is an OCTET STRING (04)",
                })
            }
        })
        .collect()
}

fn push_key_ids(out: &mut Vec<u8>, t: u32, ids: &[Vec<u8>]) {
    let mut body = Vec::new();
    for id in ids {
        tlv::push(&mut body, 0x04, id);
    }
    tlv::push(out, t, &body);
}

/// The subject key identifier of the GSMA test CI certificate (public, as in lpac's
/// sample EUICCInfo2); our virtual card claims it for plausibility.
pub const GSMA_TEST_CI_PKID: [u8; 20] = [
    0x81, 0x37, 0x0F, 0x51, 0x25, 0xD0, 0xB1, 0xD4, 0x08, 0xD4, 0xC3, 0xB2, 0x32, 0xE6, 0xD2, 0x5E,
    0x79, 0x5B, 0xEB, 0xFB,
];

/// `EUICCInfo1` (`BF20 { 82 svn A9 {04 ski…} AA {04 ski…} }`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EuiccInfo1 {
    pub svn: Version,
    pub ci_pkid_for_verification: Vec<Vec<u8>>,
    pub ci_pkid_for_signing: Vec<Vec<u8>>,
}

impl EuiccInfo1 {
    /// SGP.22 v2.2.0 with the GSMA test CI.
    pub fn plausible() -> EuiccInfo1 {
        EuiccInfo1 {
            svn: Version([2, 2, 0]),
            ci_pkid_for_verification: vec![GSMA_TEST_CI_PKID.to_vec()],
            ci_pkid_for_signing: vec![GSMA_TEST_CI_PKID.to_vec()],
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        tlv::push(&mut body, 0x82, &self.svn.0);
        push_key_ids(&mut body, 0xA9, &self.ci_pkid_for_verification);
        push_key_ids(&mut body, 0xAA, &self.ci_pkid_for_signing);
        tlv::build(tag::EUICC_INFO1, &body)
    }

    pub fn parse(bytes: &[u8]) -> Result<EuiccInfo1, Es10Error> {
        let c = der::read_all(der::read_expected(bytes, tag::EUICC_INFO1)?)?;
        Ok(EuiccInfo1 {
            svn: Version::from_value(
                der::find(&c, 0x82).ok_or(Es10Error::Missing("svn (82)"))?,
                "svn",
            )?,
            ci_pkid_for_verification: key_ids(
                der::find(&c, 0xA9)
                    .ok_or(Es10Error::Missing("euiccCiPKIdListForVerification (A9)"))?,
                "euiccCiPKIdListForVerification",
            )?,
            ci_pkid_for_signing: key_ids(
                der::find(&c, 0xAA).ok_or(Es10Error::Missing("euiccCiPKIdListForSigning (AA)"))?,
                "euiccCiPKIdListForSigning",
            )?,
        })
    }
}

/// `extCardResource [4] OCTET STRING` of EUICCInfo2, whose content is itself TLV
/// (`81` installed applications, `82` free non-volatile memory, `83` free volatile memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ExtCardResource {
    pub installed_applications: u32,
    pub free_non_volatile_memory: u32,
    pub free_volatile_memory: u32,
}

impl ExtCardResource {
    pub(crate) fn value(&self) -> Vec<u8> {
        let mut v = Vec::new();
        der::push_uint(&mut v, 0x81, self.installed_applications);
        der::push_uint(&mut v, 0x82, self.free_non_volatile_memory);
        der::push_uint(&mut v, 0x83, self.free_volatile_memory);
        v
    }

    fn from_value(v: &[u8]) -> Result<ExtCardResource, Es10Error> {
        let c = der::read_all(v)?;
        let get = |t, field| {
            der::find(&c, t)
                .map(|v| der::read_uint(v, field))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        Ok(ExtCardResource {
            installed_applications: get(0x81, "installedApplication")?,
            free_non_volatile_memory: get(0x82, "freeNonVolatileMemory")?,
            free_volatile_memory: get(0x83, "freeVolatileMemory")?,
        })
    }
}

/// `certificationDataObject [12]` (`AC { 80 platformLabel 81 discoveryBaseURL }`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificationData {
    pub platform_label: String,
    pub discovery_base_url: String,
}

/// `EUICCInfo2` (`BF22`), the fields of SGP.22 v2.2 in their ASN.1 order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EuiccInfo2 {
    /// `81` profileVersion (SIMalliance interoperable profile version).
    pub profile_version: Version,
    /// `82` svn (SGP.22 version).
    pub svn: Version,
    /// `83` euiccFirmwareVer.
    pub firmware_version: Version,
    /// `84` extCardResource.
    pub ext_card_resource: ExtCardResource,
    /// `85` uiccCapability (bit 1 usimSupport, 14 javacard, …).
    pub uicc_capability: BitString,
    /// `86` ts102241Version / javacardVersion.
    pub javacard_version: Option<Version>,
    /// `87` globalplatformVersion.
    pub globalplatform_version: Option<Version>,
    /// `88` rspCapability (0 additionalProfile, 1 crlSupport, 2 rpmSupport, 3 testProfileSupport).
    pub rsp_capability: BitString,
    /// `A9` euiccCiPKIdListForVerification.
    pub ci_pkid_for_verification: Vec<Vec<u8>>,
    /// `AA` euiccCiPKIdListForSigning.
    pub ci_pkid_for_signing: Vec<Vec<u8>>,
    /// `8B` euiccCategory (0 other, 1 basic, 2 medium, 3 contactless).
    pub euicc_category: Option<u32>,
    /// `99` forbiddenProfilePolicyRules.
    pub forbidden_profile_policy_rules: Option<BitString>,
    /// `04` ppVersion (protection profile).
    pub pp_version: Version,
    /// `0C` sasAcreditationNumber.
    pub sas_accreditation_number: String,
    /// `AC` certificationDataObject.
    pub certification_data: Option<CertificationData>,
}

impl EuiccInfo2 {
    /// What our virtual eUICC reports: SGP.22 2.2.0, profile package 2.3.0, USIM and
    /// Java Card capable, additional profiles and test profiles supported, GSMA test CI.
    pub fn plausible(ext_card_resource: ExtCardResource) -> EuiccInfo2 {
        EuiccInfo2 {
            profile_version: Version([2, 3, 0]),
            svn: Version([2, 2, 0]),
            firmware_version: Version([0, 1, 0]),
            ext_card_resource,
            // usimSupport(1), akaMilenage(4), javacard(14)
            uicc_capability: BitString::from_bits(&[1, 4, 14]),
            javacard_version: Some(Version([3, 0, 5])),
            globalplatform_version: Some(Version([2, 3, 1])),
            // additionalProfile(0), testProfileSupport(3)
            rsp_capability: BitString::from_bits(&[0, 3]),
            ci_pkid_for_verification: vec![GSMA_TEST_CI_PKID.to_vec()],
            ci_pkid_for_signing: vec![GSMA_TEST_CI_PKID.to_vec()],
            euicc_category: None,
            forbidden_profile_policy_rules: None,
            pp_version: Version([0, 0, 1]),
            sas_accreditation_number: "VIRTUAL-SE-0000".to_owned(),
            certification_data: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        tlv::push(&mut b, 0x81, &self.profile_version.0);
        tlv::push(&mut b, 0x82, &self.svn.0);
        tlv::push(&mut b, 0x83, &self.firmware_version.0);
        tlv::push(&mut b, 0x84, &self.ext_card_resource.value());
        tlv::push(&mut b, 0x85, &self.uicc_capability.value());
        if let Some(v) = self.javacard_version {
            tlv::push(&mut b, 0x86, &v.0);
        }
        if let Some(v) = self.globalplatform_version {
            tlv::push(&mut b, 0x87, &v.0);
        }
        tlv::push(&mut b, 0x88, &self.rsp_capability.value());
        push_key_ids(&mut b, 0xA9, &self.ci_pkid_for_verification);
        push_key_ids(&mut b, 0xAA, &self.ci_pkid_for_signing);
        if let Some(c) = self.euicc_category {
            der::push_uint(&mut b, 0x8B, c);
        }
        if let Some(f) = &self.forbidden_profile_policy_rules {
            tlv::push(&mut b, 0x99, &f.value());
        }
        tlv::push(&mut b, 0x04, &self.pp_version.0);
        tlv::push(&mut b, 0x0C, self.sas_accreditation_number.as_bytes());
        if let Some(c) = &self.certification_data {
            let mut inner = Vec::new();
            tlv::push(&mut inner, 0x80, c.platform_label.as_bytes());
            tlv::push(&mut inner, 0x81, c.discovery_base_url.as_bytes());
            tlv::push(&mut b, 0xAC, &inner);
        }
        tlv::build(tag::EUICC_INFO2, &b)
    }

    pub fn parse(bytes: &[u8]) -> Result<EuiccInfo2, Es10Error> {
        let c = der::read_all(der::read_expected(bytes, tag::EUICC_INFO2)?)?;
        let need = |t: u32, name: &'static str| der::find(&c, t).ok_or(Es10Error::Missing(name));
        let version = |t: u32, name: &'static str| Version::from_value(need(t, name)?, name);
        let opt_version = |t: u32, name: &'static str| {
            der::find(&c, t)
                .map(|v| Version::from_value(v, name))
                .transpose()
        };
        Ok(EuiccInfo2 {
            profile_version: version(0x81, "profileVersion")?,
            svn: version(0x82, "svn")?,
            firmware_version: version(0x83, "euiccFirmwareVer")?,
            ext_card_resource: ExtCardResource::from_value(need(0x84, "extCardResource")?)?,
            uicc_capability: BitString::from_value(
                need(0x85, "uiccCapability")?,
                "uiccCapability",
            )?,
            javacard_version: opt_version(0x86, "javacardVersion")?,
            globalplatform_version: opt_version(0x87, "globalplatformVersion")?,
            rsp_capability: BitString::from_value(need(0x88, "rspCapability")?, "rspCapability")?,
            ci_pkid_for_verification: key_ids(
                need(0xA9, "euiccCiPKIdListForVerification")?,
                "euiccCiPKIdListForVerification",
            )?,
            ci_pkid_for_signing: key_ids(
                need(0xAA, "euiccCiPKIdListForSigning")?,
                "euiccCiPKIdListForSigning",
            )?,
            euicc_category: der::find(&c, 0x8B)
                .map(|v| der::read_uint(v, "euiccCategory"))
                .transpose()?,
            forbidden_profile_policy_rules: der::find(&c, 0x99)
                .map(|v| BitString::from_value(v, "forbiddenProfilePolicyRules"))
                .transpose()?,
            pp_version: version(0x04, "ppVersion")?,
            sas_accreditation_number: utf8(
                need(0x0C, "sasAcreditationNumber")?,
                "sasAcreditationNumber",
            )?,
            certification_data: der::find(&c, 0xAC).map(parse_certification).transpose()?,
        })
    }
}

fn parse_certification(v: &[u8]) -> Result<CertificationData, Es10Error> {
    let c: Vec<DataObject<'_>> = der::read_all(v)?;
    Ok(CertificationData {
        platform_label: utf8(
            der::find(&c, 0x80).ok_or(Es10Error::Missing("platformLabel (80)"))?,
            "platformLabel",
        )?,
        discovery_base_url: utf8(
            der::find(&c, 0x81).ok_or(Es10Error::Missing("discoveryBaseURL (81)"))?,
            "discoveryBaseURL",
        )?,
    })
}
