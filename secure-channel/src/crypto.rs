//! Block-cipher primitives behind SCP02/SCP03: AES of any size, AES-CMAC, the SCP03 KDF, 3DES, retail MAC, ISO padding.

use crate::ScpError;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use cmac::{Cmac, Mac};
use des::{Des, TdesEde2, TdesEde3};
use zeroize::Zeroizing;

pub(crate) const AES_BLOCK: usize = 16;
pub(crate) const DES_BLOCK: usize = 8;

/// ISO/IEC 9797-1 padding method 2: append `80`, then `00` up to a multiple of `block` (always adds).
pub(crate) fn pad80(data: &[u8], block: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + block);
    out.extend_from_slice(data);
    out.push(0x80);
    while out.len() % block != 0 {
        out.push(0x00);
    }
    out
}

/// Remove method-2 padding: strip trailing `00`s, then require the `80` marker.
///
/// Lenient like GPPro `GPCrypto.unpad80` and pysim `unpad80`: the zero run may exceed one block
/// (Samsung OpenSCP pads an 11-byte R-ENC response to 32 bytes). Safe because a MAC over the
/// data has been verified before (SCP03) or is verified after (SCP02).
pub(crate) fn unpad80(data: &[u8]) -> Result<Vec<u8>, ScpError> {
    let pos = data
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(ScpError::BadPadding)?;
    if data.get(pos) != Some(&0x80) {
        return Err(ScpError::BadPadding);
    }
    Ok(data.get(..pos).unwrap_or_default().to_vec())
}

/// AES with a key of 16, 24 or 32 bytes.
pub(crate) enum Aes {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl Aes {
    pub(crate) fn new(key: &[u8]) -> Result<Aes, ScpError> {
        let bad = |_| ScpError::KeyLength(key.len());
        Ok(match key.len() {
            16 => Aes::A128(Aes128::new_from_slice(key).map_err(bad)?),
            24 => Aes::A192(Aes192::new_from_slice(key).map_err(bad)?),
            32 => Aes::A256(Aes256::new_from_slice(key).map_err(bad)?),
            n => return Err(ScpError::KeyLength(n)),
        })
    }

    pub(crate) fn encrypt_block(&self, block: &mut [u8; AES_BLOCK]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Aes::A128(c) => c.encrypt_block(b),
            Aes::A192(c) => c.encrypt_block(b),
            Aes::A256(c) => c.encrypt_block(b),
        }
    }

    pub(crate) fn decrypt_block(&self, block: &mut [u8; AES_BLOCK]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Aes::A128(c) => c.decrypt_block(b),
            Aes::A192(c) => c.decrypt_block(b),
            Aes::A256(c) => c.decrypt_block(b),
        }
    }

    /// CBC encryption of whole blocks; refuses a partial block.
    pub(crate) fn cbc_encrypt(
        &self,
        iv: &[u8; AES_BLOCK],
        data: &[u8],
    ) -> Result<Vec<u8>, ScpError> {
        cbc_encrypt(iv, data, |b| self.encrypt_block(b))
    }

    /// CBC decryption of whole blocks; refuses a partial block.
    pub(crate) fn cbc_decrypt(
        &self,
        iv: &[u8; AES_BLOCK],
        data: &[u8],
    ) -> Result<Vec<u8>, ScpError> {
        cbc_decrypt(iv, data, |b| self.decrypt_block(b))
    }
}

fn cbc_encrypt<const N: usize>(
    iv: &[u8; N],
    data: &[u8],
    encrypt: impl Fn(&mut [u8; N]),
) -> Result<Vec<u8>, ScpError> {
    if data.len() % N != 0 {
        return Err(ScpError::BadPadding);
    }
    let mut out = Vec::with_capacity(data.len());
    let mut chain = *iv;
    for chunk in data.chunks_exact(N) {
        for (c, d) in chain.iter_mut().zip(chunk) {
            *c ^= d;
        }
        encrypt(&mut chain);
        out.extend_from_slice(&chain);
    }
    Ok(out)
}

fn cbc_decrypt<const N: usize>(
    iv: &[u8; N],
    data: &[u8],
    decrypt: impl Fn(&mut [u8; N]),
) -> Result<Vec<u8>, ScpError> {
    if data.len() % N != 0 {
        return Err(ScpError::BadPadding);
    }
    let mut out = Vec::with_capacity(data.len());
    let mut prev = *iv;
    for chunk in data.chunks_exact(N) {
        let mut block = [0u8; N];
        block.copy_from_slice(chunk);
        let cipher = block;
        decrypt(&mut block);
        for (b, p) in block.iter_mut().zip(prev.iter()) {
            *b ^= p;
        }
        out.extend_from_slice(&block);
        prev = cipher;
    }
    Ok(out)
}

fn cmac_parts<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Result<[u8; AES_BLOCK], ScpError> {
    let mut mac = <M as Mac>::new_from_slice(key).map_err(|_| ScpError::KeyLength(key.len()))?;
    for p in parts {
        mac.update(p);
    }
    let tag = mac.finalize().into_bytes();
    let mut out = [0u8; AES_BLOCK];
    for (o, t) in out.iter_mut().zip(tag.iter()) {
        *o = *t;
    }
    Ok(out)
}

/// AES-CMAC (NIST SP 800-38B) over the concatenation of `parts`, full 16 bytes.
pub(crate) fn aes_cmac(key: &[u8], parts: &[&[u8]]) -> Result<[u8; AES_BLOCK], ScpError> {
    match key.len() {
        16 => cmac_parts::<Cmac<Aes128>>(key, parts),
        24 => cmac_parts::<Cmac<Aes192>>(key, parts),
        32 => cmac_parts::<Cmac<Aes256>>(key, parts),
        n => Err(ScpError::KeyLength(n)),
    }
}

/// SCP03 KDF (GP Amd D §4.1.5): NIST SP 800-108 counter mode, PRF AES-CMAC, input
/// `00×11 | constant | 00 | L (2 bytes, bits) | i (1 byte from 01) | context`, truncated to L bits.
pub(crate) fn scp03_kdf(
    key: &[u8],
    constant: u8,
    l_bits: u16,
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ScpError> {
    let len = usize::from(l_bits / 8);
    let mut out = Zeroizing::new(Vec::with_capacity(len + AES_BLOCK));
    let mut i: u8 = 1;
    while out.len() < len {
        let block = aes_cmac(
            key,
            &[
                &[0u8; 11],
                &[constant, 0x00],
                &l_bits.to_be_bytes(),
                &[i],
                context,
            ],
        )?;
        out.extend_from_slice(&block);
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// Counter-mode KDF with the counter byte first: `CMAC(key, i | suffix)`, `len` bytes (GPPro "KDF3").
pub(crate) fn counter_first_kdf(
    key: &[u8],
    suffix: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, ScpError> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + AES_BLOCK));
    let mut i: u8 = 1;
    while out.len() < len {
        out.extend_from_slice(&aes_cmac(key, &[&[i], suffix])?);
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// Triple DES, two-key (16 bytes) or three-key (24 bytes).
pub(crate) enum Tdes {
    Two(TdesEde2),
    Three(TdesEde3),
}

impl Tdes {
    pub(crate) fn new(key: &[u8]) -> Result<Tdes, ScpError> {
        let bad = |_| ScpError::KeyLength(key.len());
        Ok(match key.len() {
            16 => Tdes::Two(TdesEde2::new_from_slice(key).map_err(bad)?),
            24 => Tdes::Three(TdesEde3::new_from_slice(key).map_err(bad)?),
            n => return Err(ScpError::KeyLength(n)),
        })
    }

    pub(crate) fn encrypt_block(&self, block: &mut [u8; DES_BLOCK]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Tdes::Two(c) => c.encrypt_block(b),
            Tdes::Three(c) => c.encrypt_block(b),
        }
    }

    pub(crate) fn decrypt_block(&self, block: &mut [u8; DES_BLOCK]) {
        let b = GenericArray::from_mut_slice(block);
        match self {
            Tdes::Two(c) => c.decrypt_block(b),
            Tdes::Three(c) => c.decrypt_block(b),
        }
    }

    pub(crate) fn cbc_encrypt(
        &self,
        iv: &[u8; DES_BLOCK],
        data: &[u8],
    ) -> Result<Vec<u8>, ScpError> {
        cbc_encrypt(iv, data, |b| self.encrypt_block(b))
    }

    pub(crate) fn cbc_decrypt(
        &self,
        iv: &[u8; DES_BLOCK],
        data: &[u8],
    ) -> Result<Vec<u8>, ScpError> {
        cbc_decrypt(iv, data, |b| self.decrypt_block(b))
    }

    /// ECB over whole blocks.
    pub(crate) fn ecb(&self, data: &[u8], encrypt: bool) -> Result<Vec<u8>, ScpError> {
        if data.len() % DES_BLOCK != 0 {
            return Err(ScpError::BadPadding);
        }
        let mut out = Vec::with_capacity(data.len());
        for chunk in data.chunks_exact(DES_BLOCK) {
            let mut b = [0u8; DES_BLOCK];
            b.copy_from_slice(chunk);
            if encrypt {
                self.encrypt_block(&mut b);
            } else {
                self.decrypt_block(&mut b);
            }
            out.extend_from_slice(&b);
        }
        Ok(out)
    }

    /// Full triple-DES CBC-MAC, IV zero, over `pad80(data)` (GP Card Spec B.1.2.1).
    pub(crate) fn cbc_mac(&self, data: &[u8]) -> [u8; DES_BLOCK] {
        let padded = pad80(data, DES_BLOCK);
        let mut h = [0u8; DES_BLOCK];
        for chunk in padded.chunks_exact(DES_BLOCK) {
            for (x, d) in h.iter_mut().zip(chunk) {
                *x ^= d;
            }
            self.encrypt_block(&mut h);
        }
        h
    }
}

/// Single DES with the first 8 bytes of `key`.
pub(crate) fn des_k1(key: &[u8]) -> Result<Des, ScpError> {
    let k = key.get(..DES_BLOCK).ok_or(ScpError::KeyLength(key.len()))?;
    Des::new_from_slice(k).map_err(|_| ScpError::KeyLength(key.len()))
}

/// DES-ECB encryption of one block under `key[0..8]` (SCP02 ICV encryption).
pub(crate) fn des_encrypt(
    key: &[u8],
    block: &[u8; DES_BLOCK],
) -> Result<[u8; DES_BLOCK], ScpError> {
    let des = des_k1(key)?;
    let mut b = *block;
    des.encrypt_block(GenericArray::from_mut_slice(&mut b));
    Ok(b)
}

/// ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC") with padding method 2 and a 16-byte key:
/// single-DES CBC under K1 from `icv`, then the last block DES⁻¹ under K2 and DES under K1
/// (GP Card Spec B.1.2.2).
pub(crate) fn retail_mac(
    key: &[u8],
    icv: &[u8; DES_BLOCK],
    data: &[u8],
) -> Result<[u8; DES_BLOCK], ScpError> {
    if key.len() != 16 {
        return Err(ScpError::KeyLength(key.len()));
    }
    let k1 = des_k1(key)?;
    let k2 = key
        .get(DES_BLOCK..)
        .and_then(|k| Des::new_from_slice(k).ok())
        .ok_or(ScpError::KeyLength(key.len()))?;
    let padded = pad80(data, DES_BLOCK);
    let mut h = *icv;
    for chunk in padded.chunks_exact(DES_BLOCK) {
        for (x, d) in h.iter_mut().zip(chunk) {
            *x ^= d;
        }
        k1.encrypt_block(GenericArray::from_mut_slice(&mut h));
    }
    k2.decrypt_block(GenericArray::from_mut_slice(&mut h));
    k1.encrypt_block(GenericArray::from_mut_slice(&mut h));
    Ok(h)
}

/// A key as PUT KEY encrypts it: right-padded with zeros to whole cipher blocks, at least one
/// (the clear length travels beside it).
pub(crate) fn zero_padded(key: &[u8], block: usize) -> Zeroizing<Vec<u8>> {
    let mut padded = Zeroizing::new(key.to_vec());
    padded.resize(key.len().div_ceil(block).max(1) * block, 0);
    padded
}

/// A PUT KEY key component must be whole cipher blocks that hold a `key_len`-byte key.
pub(crate) fn check_key_block(
    component: &[u8],
    key_len: usize,
    block: usize,
    cipher: &str,
) -> Result<(), ScpError> {
    if component.is_empty() || component.len() % block != 0 || key_len > component.len() {
        return Err(ScpError::MalformedApdu(format!(
            "key component of {} bytes cannot hold a {key_len}-byte key in whole {cipher} blocks",
            component.len()
        )));
    }
    Ok(())
}

/// Fill a fresh buffer from the operating system's generator.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], ScpError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| ScpError::Random(e.to_string()))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn padding_round_trips_and_refuses_garbage() {
        for n in 0..40 {
            let data: Vec<u8> = (0..n as u8).map(|b| b | 1).collect();
            let p = pad80(&data, 16);
            assert_eq!(p.len() % 16, 0);
            assert!(p.len() > data.len());
            assert_eq!(unpad80(&p).unwrap(), data);
        }
        assert_eq!(unpad80(&[]), Err(ScpError::BadPadding));
        assert_eq!(unpad80(&[0; 16]), Err(ScpError::BadPadding));
        assert_eq!(unpad80(&hex!("0102")), Err(ScpError::BadPadding));
        assert_eq!(unpad80(&hex!("01028001")), Err(ScpError::BadPadding));
        // A zero run longer than a block is accepted (GPPro, pysim; Samsung OpenSCP emits it).
        let mut long = vec![0x42, 0x80];
        long.extend([0u8; 30]);
        assert_eq!(unpad80(&long).unwrap(), [0x42]);
    }

    #[test]
    fn aes_cbc_round_trips_for_every_key_size() {
        for len in [16, 24, 32] {
            let aes = Aes::new(&vec![7u8; len]).unwrap();
            let iv = [3u8; 16];
            let data = pad80(b"hello secure channel", 16);
            let c = aes.cbc_encrypt(&iv, &data).unwrap();
            assert_ne!(c, data);
            assert_eq!(aes.cbc_decrypt(&iv, &c).unwrap(), data);
        }
        assert!(Aes::new(&[0; 15]).is_err());
        assert!(Aes::new(&[0; 16])
            .unwrap()
            .cbc_decrypt(&[0; 16], &[0; 17])
            .is_err());
    }

    #[test]
    fn aes_cmac_matches_nist_sp800_38b() {
        // NIST SP 800-38B Appendix D.1, AES-128, Example 2 (16-byte message).
        let key = hex!("2b7e151628aed2a6abf7158809cf4f3c");
        let msg = hex!("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            aes_cmac(&key, &[&msg[..5], &msg[5..]]).unwrap(),
            hex!("070a16b46b4d4144f79bdd9dd04a287c")
        );
    }
}
