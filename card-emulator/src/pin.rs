//! PIN and PUK secrets: salted hashing and constant-time comparison.

use crate::state::Secret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hash a new PIN or PUK with a fresh salt from the OS CSPRNG.
pub fn hash_secret(value: &[u8]) -> Result<Secret, getrandom::Error> {
    let mut salt = vec![0u8; 16];
    getrandom::getrandom(&mut salt)?;
    let digest = digest(&salt, value);
    Ok(Secret {
        length: value.len().min(255) as u8,
        salt,
        digest,
    })
}

fn digest(salt: &[u8], value: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(value);
    h.finalize().to_vec()
}

/// Whether `candidate` is the secret; the digest comparison is constant-time.
pub fn matches(secret: &Secret, candidate: &[u8]) -> bool {
    let d = digest(&secret.salt, candidate);
    bool::from(d.ct_eq(&secret.digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_value() {
        let s = hash_secret(b"1234").unwrap();
        assert!(matches(&s, b"1234"));
        assert!(!matches(&s, b"1235"));
        assert!(!matches(&s, b"12345"));
        assert!(!matches(&s, b""));
        assert_eq!(s.length, 4);
        assert_ne!(hash_secret(b"1234").unwrap().salt, s.salt);
    }
}
