//! Static keys (K-ENC, K-MAC, K-DEK), their check values and per-card diversification.

use crate::crypto::{self, Aes, Tdes};
use crate::ScpError;
use std::fmt;
use zeroize::Zeroizing;

/// The GlobalPlatform test key `404142…4F` (GPPro `PlaintextKeys.DEFAULT_KEY`, yubikit `_DEFAULT_KEY`).
pub const GP_DEFAULT_KEY: [u8; 16] = [
    0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
];

/// Whether `key` is published with tools and samples, so that every terminal may know it:
/// the GlobalPlatform test key counting up from 40 (40..4F, and 40..57 / 40..5F as AES-192 /
/// AES-256 test keys), the Gemalto GemXpresso sample key `GEMXPRESSOSAMPLE` (GPShell
/// scripts), and the all-zero key. Returns what it is, for messages.
pub fn well_known_key(key: &[u8]) -> Option<&'static str> {
    if key.is_empty() {
        return None;
    }
    if key.iter().zip(0x40u8..).all(|(k, n)| *k == n) {
        return Some("the GlobalPlatform test key 40..");
    }
    if key == b"GEMXPRESSOSAMPLE" {
        return Some("the Gemalto sample key GEMXPRESSOSAMPLE");
    }
    if key.iter().all(|k| *k == 0) {
        return Some("an all-zero key");
    }
    None
}

/// A static key set: K-ENC, K-MAC and K-DEK. Wiped from memory on drop.
///
/// Each key is 16, 24 or 32 bytes (AES for SCP03; SCP02 takes 16-byte 3DES keys).
#[derive(Clone)]
pub struct StaticKeys {
    enc: Zeroizing<Vec<u8>>,
    mac: Zeroizing<Vec<u8>>,
    dek: Zeroizing<Vec<u8>>,
}

impl StaticKeys {
    /// Three keys, each 16, 24 or 32 bytes.
    pub fn new(enc: &[u8], mac: &[u8], dek: &[u8]) -> Result<StaticKeys, ScpError> {
        for k in [enc, mac, dek] {
            if !matches!(k.len(), 16 | 24 | 32) {
                return Err(ScpError::KeyLength(k.len()));
            }
        }
        Ok(StaticKeys {
            enc: Zeroizing::new(enc.to_vec()),
            mac: Zeroizing::new(mac.to_vec()),
            dek: Zeroizing::new(dek.to_vec()),
        })
    }

    /// The same key for ENC, MAC and DEK (how GPPro treats a single `--key`).
    pub fn from_single(key: &[u8]) -> Result<StaticKeys, ScpError> {
        StaticKeys::new(key, key, key)
    }

    /// `404142…4F` three times: the factory test keys most tools try first.
    pub fn gp_default() -> StaticKeys {
        let k = Zeroizing::new(GP_DEFAULT_KEY.to_vec());
        StaticKeys {
            enc: k.clone(),
            mac: k.clone(),
            dek: k,
        }
    }

    /// Whether ENC, MAC or DEK is a [`well_known_key`]: anyone may then open a channel
    /// with this set, or read the keys sent under its DEK.
    pub fn is_publicly_known(&self) -> bool {
        [self.enc(), self.mac(), self.dek()]
            .into_iter()
            .any(|k| well_known_key(k).is_some())
    }

    pub fn enc(&self) -> &[u8] {
        &self.enc
    }
    pub fn mac(&self) -> &[u8] {
        &self.mac
    }
    pub fn dek(&self) -> &[u8] {
        &self.dek
    }

    /// Derive card keys from these master keys and the card's key diversification data
    /// (the first 10 bytes of the INITIALIZE UPDATE response).
    pub fn diversify(
        &self,
        method: Diversification,
        kdd: &[u8; 10],
    ) -> Result<StaticKeys, ScpError> {
        let one = |master: &[u8], purpose: u8| -> Result<Zeroizing<Vec<u8>>, ScpError> {
            match method {
                Diversification::Emv | Diversification::Visa2 => {
                    let id: [u8; 6] = match method {
                        Diversification::Emv => [kdd[4], kdd[5], kdd[6], kdd[7], kdd[8], kdd[9]],
                        _ => [kdd[0], kdd[1], kdd[4], kdd[5], kdd[6], kdd[7]],
                    };
                    let mut data = Vec::with_capacity(16);
                    for tag in [0xF0, 0x0F] {
                        data.extend_from_slice(&id);
                        data.extend_from_slice(&[tag, purpose]);
                    }
                    Ok(Zeroizing::new(Tdes::new(master)?.ecb(&data, true)?))
                }
                Diversification::Kdf3 => {
                    let mut suffix = vec![0x00, 0x00, 0x00, purpose, 0x00];
                    suffix.extend_from_slice(kdd);
                    crypto::counter_first_kdf(master, &suffix, master.len())
                }
            }
        };
        Ok(StaticKeys {
            enc: one(&self.enc, 1)?,
            mac: one(&self.mac, 2)?,
            dek: one(&self.dek, 3)?,
        })
    }
}

impl fmt::Debug for StaticKeys {
    /// Never prints key material: lengths only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StaticKeys {{ enc: {} bytes, mac: {} bytes, dek: {} bytes }}",
            self.enc.len(),
            self.mac.len(),
            self.dek.len()
        )
    }
}

/// How card keys are derived from master keys and the KDD (GPPro `PlaintextKeys.kdf_templates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diversification {
    /// EMV CPS: 3DES-ECB(master, KDD[4..10] F0 t | KDD[4..10] 0F t), t = 01 ENC, 02 MAC, 03 DEK.
    Emv,
    /// VISA2: like EMV with KDD[0..2] KDD[4..8] as the card identifier.
    Visa2,
    /// SCP03 "KDF3": AES-CMAC counter mode, `CMAC(master, i | 00 00 00 t 00 | KDD)`, key-sized output.
    Kdf3,
}

/// AES key check value: the first 3 bytes of AES(key, 01×16) (GP Amd D §7.2.2).
pub fn kcv_aes(key: &[u8]) -> Result<[u8; 3], ScpError> {
    let mut b = [0x01u8; 16];
    Aes::new(key)?.encrypt_block(&mut b);
    Ok([b[0], b[1], b[2]])
}

/// 3DES key check value: the first 3 bytes of 3DES-ECB(key, 00×8) (GP Card Spec §11.8.2.3).
pub fn kcv_des3(key: &[u8]) -> Result<[u8; 3], ScpError> {
    let mut b = [0x00u8; 8];
    Tdes::new(key)?.encrypt_block(&mut b);
    Ok([b[0], b[1], b[2]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    const KDD: [u8; 10] = hex!("00010203040506070809");

    fn kcvs(k: &StaticKeys, kcv: fn(&[u8]) -> Result<[u8; 3], ScpError>) -> [[u8; 3]; 3] {
        [
            kcv(k.enc()).unwrap(),
            kcv(k.mac()).unwrap(),
            kcv(k.dek()).unwrap(),
        ]
    }

    #[test]
    fn the_public_test_keys_are_known_and_others_are_not() {
        assert!(StaticKeys::gp_default().is_publicly_known());
        let counting: Vec<u8> = (0x40..0x60).collect();
        for len in [16, 24, 32] {
            assert!(well_known_key(&counting[..len]).is_some(), "{len}");
            assert!(well_known_key(&vec![0; len]).is_some(), "{len}");
        }
        assert!(well_known_key(b"GEMXPRESSOSAMPLE").is_some());
        let mut almost = GP_DEFAULT_KEY;
        almost[15] ^= 1;
        assert_eq!(well_known_key(&almost), None);
        assert_eq!(well_known_key(&[0x21; 16]), None);
        // One public key of the three is enough to make the set public.
        let one = StaticKeys::new(&[0x21; 16], &[0x22; 16], &GP_DEFAULT_KEY).unwrap();
        assert!(one.is_publicly_known());
        let none = StaticKeys::new(&[0x21; 16], &[0x22; 16], &[0x23; 16]).unwrap();
        assert!(!none.is_publicly_known());
    }

    #[test]
    fn kcv_of_static_keys() {
        // GPPro TestPlaintextKeys.testSessionKeys_SCP03: static 404142…4F, AES KCV 504A77.
        assert_eq!(kcv_aes(&GP_DEFAULT_KEY).unwrap(), hex!("504A77"));
        // osmocom/pysim tests/unittests/test_globalplatform.py SCP03_KCV_Test (KEYSET_AES128).
        assert_eq!(
            kcv_aes(&hex!("000102030405060708090a0b0c0d0e0f")).unwrap(),
            hex!("C35280")
        );
        assert_eq!(
            kcv_aes(&hex!("101112131415161718191a1b1c1d1e1f")).unwrap(),
            hex!("013808")
        );
        assert_eq!(
            kcv_aes(&hex!("202122232425262728292a2b2c2d2e2f")).unwrap(),
            hex!("840DE5")
        );
        assert_eq!(kcv_aes(&[0; 15]), Err(ScpError::KeyLength(15)));
        assert_eq!(kcv_des3(&[0; 8]), Err(ScpError::KeyLength(8)));
    }

    #[test]
    fn diversification_emv_and_visa2() {
        // GPPro TestPlaintextKeys.testDiversification_EMV_SCP02 / _VISA2_SCP02 (KCV level).
        let master = StaticKeys::gp_default();
        let emv = master.diversify(Diversification::Emv, &KDD).unwrap();
        assert_eq!(
            kcvs(&emv, kcv_des3),
            [hex!("C33013"), hex!("6F4CA6"), hex!("BB8179")]
        );
        let visa2 = master.diversify(Diversification::Visa2, &KDD).unwrap();
        assert_eq!(
            kcvs(&visa2, kcv_des3),
            [hex!("2BE598"), hex!("58DA38"), hex!("3C328E")]
        );
    }

    #[test]
    fn diversification_kdf3() {
        // GPPro TestPlaintextKeys.testDiversification_KDF3_SCP03_AES128/192/256 (KCV level).
        let cases: [(&[u8], [[u8; 3]; 3]); 3] = [
            (
                &hex!("404142434445464748494A4B4C4D4E4F"),
                [hex!("E79C05"), hex!("D1BD77"), hex!("3FDE8C")],
            ),
            (
                &hex!("404142434445464748494A4B4C4D4E4F5051525354555657"),
                [hex!("1DE8EA"), hex!("47C00C"), hex!("C04D76")],
            ),
            (
                &hex!("404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F"),
                [hex!("2972D2"), hex!("036F94"), hex!("5D57B8")],
            ),
        ];
        for (master, want) in cases {
            let k = StaticKeys::from_single(master)
                .unwrap()
                .diversify(Diversification::Kdf3, &KDD)
                .unwrap();
            assert_eq!(kcvs(&k, kcv_aes), want, "master of {} bytes", master.len());
        }
        // GPPro TestPlaintextKeys.testDiversification_KDF3_ExternalVector (full ENC key from
        // protocols.md C.5).
        let master = hex!("8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD");
        let k = StaticKeys::from_single(&master)
            .unwrap()
            .diversify(Diversification::Kdf3, &hex!("D9B1DE5D0362DEDCE4FB"))
            .unwrap();
        assert_eq!(
            k.enc(),
            hex!("9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781")
        );
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let s = format!("{:?}", StaticKeys::gp_default());
        assert!(!s.contains("40"), "{s}");
        assert!(s.contains("16 bytes"));
    }
}
