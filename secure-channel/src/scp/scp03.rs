//! GlobalPlatform SCP03 (GP Card Spec v2.3 Amendment D): AES session keys by the SP 800-108 KDF, cryptograms, S8/S16, encrypt-then-MAC with AES-CMAC chaining, R-MAC and R-ENCRYPTION.
//!
//! Only what is SCP03's own lives here; the sessions are [`crate::scp`]'s, shared with SCP02.

use super::core::{split_identity, MacBlock, Protocol};
use crate::crypto::{self, Aes, AES_BLOCK};
use crate::gp::{initialize_update_data, CardChallenge, CardConfig, InitializeUpdate};
use crate::{ScpError, SecurityLevel, StaticKeys};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The card's side of an SCP03 session.
pub type CardSession = super::CardSession<Scp03>;
/// The host's first step of an SCP03 session.
pub type HostHandshake = super::HostHandshake<Scp03>;
/// The host's side of an SCP03 session.
pub type HostSession = super::HostSession<Scp03>;

/// The SCP identifier byte in the INITIALIZE UPDATE response.
pub const SCP_ID: u8 = 0x03;

/// i parameter bit: S16 mode (16-byte challenges, cryptograms and MACs).
pub const I_S16: u8 = 0x01;
/// i parameter bit: pseudo-random card challenge (and sequence counter in the response).
pub const I_PSEUDO_RANDOM: u8 = 0x10;
/// i parameter bit: R-MAC supported.
pub const I_R_MAC: u8 = 0x20;
/// i parameter bit: R-ENCRYPTION supported.
pub const I_R_ENC: u8 = 0x40;

/// Largest sequence counter (3 bytes).
pub const MAX_SEQUENCE_COUNTER: u32 = 0x00FF_FFFF;

// Data derivation constants, GP Amd D §4.1.5 Table 4-1.
const DDC_CARD_CRYPTOGRAM: u8 = 0x00;
const DDC_HOST_CRYPTOGRAM: u8 = 0x01;
const DDC_CARD_CHALLENGE: u8 = 0x02;
const DDC_S_ENC: u8 = 0x04;
const DDC_S_MAC: u8 = 0x06;
const DDC_S_RMAC: u8 = 0x07;

/// S8 (8-byte challenges, cryptograms and MACs) or S16 (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SMode {
    S8,
    S16,
}

impl SMode {
    /// Length of challenges, cryptograms and MACs in this mode.
    pub const fn bytes(self) -> usize {
        match self {
            SMode::S8 => 8,
            SMode::S16 => 16,
        }
    }
    fn from_len(len: usize) -> Result<SMode, ScpError> {
        match len {
            8 => Ok(SMode::S8),
            16 => Ok(SMode::S16),
            n => Err(ScpError::Unsupported(format!(
                "SCP03 challenge of {n} bytes (S8: 8, S16: 16)"
            ))),
        }
    }
    fn l_bits(self) -> u16 {
        match self {
            SMode::S8 => 0x0040,
            SMode::S16 => 0x0080,
        }
    }
}

/// The three session keys (GP Amd D §6.2.1); S-DEK is the static K-DEK.
pub(crate) struct SessionKeys {
    pub(crate) enc: Zeroizing<Vec<u8>>,
    pub(crate) mac: Zeroizing<Vec<u8>>,
    pub(crate) rmac: Zeroizing<Vec<u8>>,
}

/// Derive S-ENC, S-MAC, S-RMAC for a context (normally host challenge | card challenge).
pub(crate) fn derive_session_keys(
    keys: &StaticKeys,
    context: &[u8],
) -> Result<SessionKeys, ScpError> {
    let bits = |k: &[u8]| u16::try_from(k.len() * 8).map_err(|_| ScpError::KeyLength(k.len()));
    Ok(SessionKeys {
        enc: crypto::scp03_kdf(keys.enc(), DDC_S_ENC, bits(keys.enc())?, context)?,
        mac: crypto::scp03_kdf(keys.mac(), DDC_S_MAC, bits(keys.mac())?, context)?,
        rmac: crypto::scp03_kdf(keys.mac(), DDC_S_RMAC, bits(keys.mac())?, context)?,
    })
}

/// (card cryptogram, host cryptogram) under S-MAC (GP Amd D §6.2.2.2-3).
fn cryptograms(s_mac: &[u8], context: &[u8], mode: SMode) -> Result<(Vec<u8>, Vec<u8>), ScpError> {
    let card = crypto::scp03_kdf(s_mac, DDC_CARD_CRYPTOGRAM, mode.l_bits(), context)?;
    let host = crypto::scp03_kdf(s_mac, DDC_HOST_CRYPTOGRAM, mode.l_bits(), context)?;
    Ok((card.to_vec(), host.to_vec()))
}

/// The pseudo-random card challenge (GP Amd D §6.2.2.1):
/// `KDF(K-ENC, 02, L, sequence counter (3 bytes) | AID of the selected SD)`.
pub fn pseudo_random_challenge(
    keys: &StaticKeys,
    sequence_counter: u32,
    sd_aid: &[u8],
    mode: SMode,
) -> Result<Vec<u8>, ScpError> {
    let mut context = seq_bytes(sequence_counter)?.to_vec();
    context.extend_from_slice(sd_aid);
    Ok(crypto::scp03_kdf(keys.enc(), DDC_CARD_CHALLENGE, mode.l_bits(), &context)?.to_vec())
}

fn seq_bytes(seq: u32) -> Result<[u8; 3], ScpError> {
    if seq > MAX_SEQUENCE_COUNTER {
        return Err(ScpError::CounterExhausted);
    }
    let [_, a, b, c] = seq.to_be_bytes();
    Ok([a, b, c])
}

/// Encrypt a key for PUT KEY under the static K-DEK: AES-CBC, IV zero (GP Amd D §7.2.1),
/// right-padded with zeros to whole blocks. The clear length travels in the PUT KEY key data.
pub fn encrypt_key(dek: &[u8], key: &[u8]) -> Result<Vec<u8>, ScpError> {
    Aes::new(dek)?.cbc_encrypt(&[0; AES_BLOCK], &crypto::zero_padded(key, AES_BLOCK))
}

/// Decrypt a PUT KEY key component block and keep its first `key_len` bytes.
pub fn decrypt_key(
    dek: &[u8],
    block: &[u8],
    key_len: usize,
) -> Result<Zeroizing<Vec<u8>>, ScpError> {
    crypto::check_key_block(block, key_len, AES_BLOCK, "AES")?;
    let mut clear = Zeroizing::new(Aes::new(dek)?.cbc_decrypt(&[0; AES_BLOCK], block)?);
    clear.truncate(key_len);
    Ok(clear)
}

/// The INITIALIZE UPDATE response data:
/// `KDD(10) | KVN | 03 | i | card challenge | card cryptogram | [sequence counter(3)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitUpdateResponse {
    pub kdd: [u8; 10],
    pub kvn: u8,
    pub i: u8,
    pub card_challenge: Vec<u8>,
    pub card_cryptogram: Vec<u8>,
    /// Present when the card uses pseudo-random challenges.
    pub sequence_counter: Option<u32>,
}

impl InitUpdateResponse {
    /// Parse the response data (without SW): 29 or 32 bytes in S8, 45 or 48 in S16.
    pub fn parse(data: &[u8]) -> Result<InitUpdateResponse, ScpError> {
        let (mode, with_seq) = match data.len() {
            29 => (SMode::S8, false),
            32 => (SMode::S8, true),
            45 => (SMode::S16, false),
            48 => (SMode::S16, true),
            n => {
                return Err(ScpError::MalformedResponse(format!(
                "SCP03 INITIALIZE UPDATE response must be 29/32 (S8) or 45/48 (S16) bytes, got {n}"
            )))
            }
        };
        let short = || ScpError::MalformedResponse("INITIALIZE UPDATE response too short".into());
        let (kdd, kvn, rest) = split_identity::<Scp03>(data)?;
        let (&i, rest) = rest.split_first().ok_or_else(short)?;
        let (challenge, rest) = rest.split_at_checked(mode.bytes()).ok_or_else(short)?;
        let (cryptogram, rest) = rest.split_at_checked(mode.bytes()).ok_or_else(short)?;
        let sequence_counter = match (with_seq, rest) {
            (true, [a, b, c]) => Some(u32::from_be_bytes([0, *a, *b, *c])),
            (false, []) => None,
            _ => return Err(short()),
        };
        Ok(InitUpdateResponse {
            kdd,
            kvn,
            i,
            card_challenge: challenge.to_vec(),
            card_cryptogram: cryptogram.to_vec(),
            sequence_counter,
        })
    }

    /// Serialise as the card answers (data only; the caller appends SW 9000).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        out.extend_from_slice(&self.kdd);
        out.extend_from_slice(&[self.kvn, SCP_ID, self.i]);
        out.extend_from_slice(&self.card_challenge);
        out.extend_from_slice(&self.card_cryptogram);
        if let Some(seq) = self.sequence_counter {
            let [_, a, b, c] = seq.to_be_bytes();
            out.extend_from_slice(&[a, b, c]);
        }
        out
    }
}

/// Refuse i parameters GP Amd D Table 5-1 does not define: RFU bits, R-ENC without R-MAC.
fn check_i(i: u8) -> Result<(), ScpError> {
    let rfu = 0x80 | 0x08 | 0x04 | 0x02;
    if i & rfu != 0 || (i & I_R_ENC != 0 && i & I_R_MAC == 0) {
        return Err(ScpError::Unsupported(format!(
            "SCP03 i={i:02X} (GP Amd D Table 5-1: b1 S16, b5 pseudo-random, b6 R-MAC, b7 R-ENC)"
        )));
    }
    Ok(())
}

/// Whether the card's i parameter allows a level.
fn level_allowed(i: u8, level: SecurityLevel) -> bool {
    (!level.r_mac() || i & I_R_MAC != 0) && (!level.r_enc() || i & I_R_ENC != 0)
}

/// SCP03's rules over one session's keys: AES session keys from both challenges, encryption
/// with an ICV made from the command counter, then an AES-CMAC chained over every command.
pub struct Scp03 {
    keys: SessionKeys,
    /// PUT KEY encrypts under the static K-DEK (GP Amd D §7.2.1), not a session key.
    dek: Zeroizing<Vec<u8>>,
    mode: SMode,
    /// The i parameter the card answered with (it decides which levels are allowed).
    i: u8,
}

impl Scp03 {
    /// ICV for command encryption: AES(S-ENC, counter as a 16-byte big-endian block); for
    /// response encryption the same block with its first byte set to `80` (GP Amd D §6.2.6-7).
    fn icv(&self, counter: u128, response: bool) -> Result<[u8; AES_BLOCK], ScpError> {
        let mut b = counter.to_be_bytes();
        if response {
            b[0] = 0x80;
        }
        Aes::new(&self.keys.enc)?.encrypt_block(&mut b);
        Ok(b)
    }

    fn encrypt(&self, counter: u128, response: bool, data: &[u8]) -> Result<Vec<u8>, ScpError> {
        let icv = self.icv(counter, response)?;
        Aes::new(&self.keys.enc)?.cbc_encrypt(&icv, &crypto::pad80(data, AES_BLOCK))
    }

    fn decrypt(&self, counter: u128, response: bool, body: &[u8]) -> Result<Vec<u8>, ScpError> {
        let icv = self.icv(counter, response)?;
        let clear = Aes::new(&self.keys.enc)?.cbc_decrypt(&icv, body)?;
        crypto::unpad80(&clear)
    }

    fn new(keys: &StaticKeys, context: &[u8], mode: SMode, i: u8) -> Result<Scp03, ScpError> {
        Ok(Scp03 {
            keys: derive_session_keys(keys, context)?,
            dek: Zeroizing::new(keys.dek().to_vec()),
            mode,
            i,
        })
    }
}

impl Protocol for Scp03 {
    const NAME: &'static str = "SCP03";
    const SCP_ID: u8 = SCP_ID;
    const MAC_OVER_PLAIN: bool = false;
    const EXTENDED_APDUS: bool = true;
    /// Unused: the SCP03 answer carries i.
    const ASSUMED_I: u8 = 0x00;
    type Counter = u32;
    type Answer = InitUpdateResponse;

    fn mac_len(&self) -> usize {
        self.mode.bytes()
    }

    /// GP Amd D §7.1. `sequence_counter` is the value to announce: §6.2.2.1 increments the
    /// key set's counter on every INITIALIZE UPDATE and uses the new value, so the caller
    /// passes the incremented, persisted counter (above `FFFFFF`:
    /// [`ScpError::CounterExhausted`]). The S-mode follows the host challenge length (8: S8,
    /// 16: S16) and sets the S16 bit of the answered i.
    fn card_handshake(
        keys: &StaticKeys,
        config: &CardConfig,
        sequence_counter: u32,
        command: &InitializeUpdate,
        challenge: CardChallenge<'_>,
    ) -> Result<(Scp03, Vec<u8>, Vec<u8>), ScpError> {
        let mode = SMode::from_len(command.host_challenge.len())?;
        seq_bytes(sequence_counter)?;
        check_i(config.i)?;
        let i = (config.i & !I_S16) | if mode == SMode::S16 { I_S16 } else { 0 };
        let card_challenge = match challenge {
            CardChallenge::Fixed(c) if c.len() == mode.bytes() => c.to_vec(),
            CardChallenge::Fixed(c) => {
                return Err(ScpError::Unsupported(format!(
                    "fixed card challenge of {} bytes in {mode:?} mode",
                    c.len()
                )))
            }
            CardChallenge::FromConfig if i & I_PSEUDO_RANDOM != 0 => {
                pseudo_random_challenge(keys, sequence_counter, config.pseudo_random_aid()?, mode)?
            }
            CardChallenge::FromConfig => match mode {
                SMode::S8 => crypto::random::<8>()?.to_vec(),
                SMode::S16 => crypto::random::<16>()?.to_vec(),
            },
        };
        let mut context = command.host_challenge.clone();
        context.extend_from_slice(&card_challenge);
        let protocol = Scp03::new(keys, &context, mode, i)?;
        let (card_cryptogram, host_cryptogram) = cryptograms(&protocol.keys.mac, &context, mode)?;
        let response = InitUpdateResponse {
            kdd: config.kdd,
            kvn: config.kvn,
            i,
            card_challenge,
            card_cryptogram,
            sequence_counter: (i & I_PSEUDO_RANDOM != 0).then_some(sequence_counter),
        };
        Ok((protocol, host_cryptogram, response.to_bytes()))
    }

    fn check_host_setup(_keys: &StaticKeys, host_challenge: &[u8]) -> Result<(), ScpError> {
        SMode::from_len(host_challenge.len()).map(|_| ())
    }

    fn host_handshake(
        keys: &StaticKeys,
        host_challenge: &[u8],
        _assumed_i: u8,
        response: &[u8],
        level: SecurityLevel,
    ) -> Result<(Scp03, InitUpdateResponse, Vec<u8>), ScpError> {
        let iu = InitUpdateResponse::parse(initialize_update_data(response)?)?;
        check_i(iu.i)?;
        let mode = SMode::from_len(host_challenge.len())?;
        let card_mode = if iu.i & I_S16 != 0 {
            SMode::S16
        } else {
            SMode::S8
        };
        if iu.card_challenge.len() != mode.bytes() || card_mode != mode {
            return Err(ScpError::Unsupported(format!(
                "asked for {mode:?}, the card answered i={:02X} with a {}-byte challenge",
                iu.i,
                iu.card_challenge.len()
            )));
        }
        if !level_allowed(iu.i, level) {
            return Err(ScpError::UnsupportedLevel(level.bits()));
        }
        let mut context = host_challenge.to_vec();
        context.extend_from_slice(&iu.card_challenge);
        let protocol = Scp03::new(keys, &context, mode, iu.i)?;
        let (card_cryptogram, host_cryptogram) = cryptograms(&protocol.keys.mac, &context, mode)?;
        if !bool::from(card_cryptogram.ct_eq(&iu.card_cryptogram)) {
            return Err(ScpError::CardCryptogram);
        }
        Ok((protocol, iu, host_cryptogram))
    }

    fn answer_identity(answer: &InitUpdateResponse) -> (u8, [u8; 10]) {
        (answer.kvn, answer.kdd)
    }

    fn allows(&self, level: SecurityLevel) -> bool {
        level_allowed(self.i, level)
    }

    /// AES-CMAC under S-MAC over the chaining value (zero for EXTERNAL AUTHENTICATE), the
    /// header and the (encrypted) data (GP Amd D §6.2.4).
    fn command_mac(
        &self,
        chain: Option<&MacBlock>,
        header: &[u8],
        data: &[u8],
    ) -> Result<MacBlock, ScpError> {
        let chain = chain.copied().unwrap_or_default();
        crypto::aes_cmac(&self.keys.mac, &[&chain, header, data])
    }

    fn encrypt_command(&self, counter: u128, data: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.encrypt(counter, false, data)
    }

    fn decrypt_command(&self, counter: u128, body: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.decrypt(counter, false, body)
    }

    /// AES-CMAC under S-RMAC over the command's C-MAC, the body and the SW (GP Amd D §6.2.5).
    fn response_mac(&self, chain: &MacBlock, body: &[u8], sw: u16) -> Result<MacBlock, ScpError> {
        crypto::aes_cmac(&self.keys.rmac, &[chain, body, &sw.to_be_bytes()])
    }

    fn encrypt_response(&self, counter: u128, data: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.encrypt(counter, true, data)
    }

    fn decrypt_response(&self, counter: u128, body: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.decrypt(counter, true, body)
    }

    /// Under the static K-DEK (AES-CBC, IV zero, GP Amd D §7.2.1).
    fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError> {
        encrypt_key(&self.dek, key)
    }

    fn decrypt_key(&self, block: &[u8], key_len: usize) -> Result<Zeroizing<Vec<u8>>, ScpError> {
        decrypt_key(&self.dek, block, key_len)
    }
}

impl super::CardSession<Scp03> {
    /// The S-mode the host asked for.
    pub fn mode(&self) -> SMode {
        self.protocol().mode
    }
}

impl super::HostSession<Scp03> {
    pub fn mode(&self) -> SMode {
        self.protocol().mode
    }
    /// The card's i parameter.
    pub fn i(&self) -> u8 {
        self.answer().i
    }
    /// The sequence counter, when the card announces it (pseudo-random challenges).
    pub fn sequence_counter(&self) -> Option<u32> {
        self.answer().sequence_counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{kcv_aes, GP_DEFAULT_KEY};
    use hex_literal::hex;

    fn session(keys: &StaticKeys, context: &[u8]) -> [Vec<u8>; 3] {
        let s = derive_session_keys(keys, context).unwrap();
        [s.enc.to_vec(), s.mac.to_vec(), s.rmac.to_vec()]
    }

    #[test]
    fn session_keys_from_gppro_test_plaintext_keys() {
        // martinpaljak/GlobalPlatformPro TestPlaintextKeys.testSessionKeys_SCP03: static 404142…4F,
        // context 00010203040506070809; KCVs C25559 / 0E12CC / 9ACB9C, full keys from protocols.md C.1.
        let [enc, mac, rmac] = session(&StaticKeys::gp_default(), &hex!("00010203040506070809"));
        assert_eq!(enc, hex!("6C858E63BABC4028EDC67DC9FDBCB04A"));
        assert_eq!(mac, hex!("036C5E747D9500229B7C99D225506DDD"));
        assert_eq!(rmac, hex!("AD97DA99A96DB51B765277D6E988B1D9"));
        let kcvs = [
            kcv_aes(&enc).unwrap(),
            kcv_aes(&mac).unwrap(),
            kcv_aes(&rmac).unwrap(),
        ];
        assert_eq!(kcvs, [hex!("C25559"), hex!("0E12CC"), hex!("9ACB9C")]);
        assert_eq!(kcv_aes(&GP_DEFAULT_KEY).unwrap(), hex!("504A77"));
    }

    #[test]
    fn session_keys_of_the_pysim_traces() {
        // osmocom/pysim tests/unittests/test_globalplatform.py, session keys as listed in
        // protocols.md C.3 (host challenge | card challenge from each trace).
        let k128 = StaticKeys::new(
            &hex!("000102030405060708090a0b0c0d0e0f"),
            &hex!("101112131415161718191a1b1c1d1e1f"),
            &hex!("202122232425262728292a2b2c2d2e2f"),
        )
        .unwrap();
        // SCP03_Test_AES128_11
        let [enc, mac, rmac] = session(&k128, &hex!("b13e5f938fc108c4 3EB51047495B249F"));
        assert_eq!(enc, hex!("C4E87149F2114DA66BB015A567D751F9"));
        assert_eq!(mac, hex!("8B2635556E987A6B84F43D9FFC197D3F"));
        assert_eq!(rmac, hex!("3F6B2CE3B3ABD9A99BD4453AFA54CC7B"));
        // SCP03_Test_AES128_03
        let [enc, mac, _] = session(&k128, &hex!("8e1552d0513c60f3 30760CD2C47C1DD3"));
        assert_eq!(enc, hex!("EE54985E150155E021725489F717D645"));
        assert_eq!(mac, hex!("59B76DDFF91DBA0515A9644DE3A48863"));
        // SCP03_Test_AES128_33
        let [enc, mac, rmac] = session(&k128, &hex!("fdf38259a1e0de44 3B1ACA81E821F219"));
        assert_eq!(enc, hex!("BC5689F3A0B783A9ED6DA1C5C6BC1F99"));
        assert_eq!(mac, hex!("0415F56CBB9E488BB171B2B66081F004"));
        assert_eq!(rmac, hex!("1EE185123244E047BC9D68B914BD1FBE"));
        // SCP03_Test_AES256_11
        let k256 = StaticKeys::new(
            &hex!("000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f"),
            &hex!("101112131415161718191a1b1c1d1e1f101112131415161718191a1b1c1d1e1f"),
            &hex!("202122232425262728292a2b2c2d2e2f202122232425262728292a2b2c2d2e2f"),
        )
        .unwrap();
        let [enc, mac, _] = session(&k256, &hex!("11666d57866c6f54 53EA8847EFA7674E"));
        assert_eq!(
            enc,
            hex!("DA77FFF6D3EBEAA1234F93F2B18E6F83BADA80ADB387428CE72779439AFCAF57")
        );
        assert_eq!(
            mac,
            hex!("80546FE2B8E72587EFA3F1BE7DF30B0FB0146B795F8F131D8B32AC5200F5DBEC")
        );
    }

    #[test]
    fn session_keys_of_the_samsung_trace() {
        // Samsung/OpenSCP-Java testdata/SmartCardScp03Aes128S8ModeEmulation.java, keys from
        // InputTestData.java; session keys as listed in protocols.md C.4.
        let keys = StaticKeys::new(
            &hex!("1D72CD9283FD55162722C6BEAA4DC187"),
            &hex!("F4932BA02FFC3098D172790099D28382"),
            &hex!("B4BDC610C3F6793708FF1132E2C5BF60"),
        )
        .unwrap();
        let [enc, mac, rmac] = session(&keys, &hex!("06F85B77251BF794 9CE033FA78E6B10D"));
        assert_eq!(enc, hex!("45AA38361C2D05306C4203B11A743AD9"));
        assert_eq!(mac, hex!("30BA0D745A51F10D717A086C11EE1FA0"));
        assert_eq!(rmac, hex!("B72AF42E308A2E2CAAB8983CA7228778"));
    }

    #[test]
    fn host_cryptogram_of_the_yubico_vector() {
        // Yubico .NET SDK vector via PeculiarVentures/scp scp03/yubico_vectors_test.go
        // (protocols.md C.5): KDF(key, 01, L=0040, host challenge | card challenge).
        let key = hex!("FC90AA67CDC5DABFD5051663045DFA23");
        let context = hex!("360CB43F4301B894 CAAFA4DAC615236A");
        let (_, host) = cryptograms(&key, &context, SMode::S8).unwrap();
        assert_eq!(host, hex!("45330AB30BB1A079"));
    }

    #[test]
    fn default_key_session_of_protocols_md_c7() {
        // protocols.md C.7 (DERIVED with the verified reference implementation, no public source).
        let context = hex!("0001020304050607 1011121314151617");
        let [enc, mac, rmac] = session(&StaticKeys::gp_default(), &context);
        assert_eq!(enc, hex!("8AAC6B39A7C426423400D8B5D9C0ADC3"));
        assert_eq!(mac, hex!("A2E96754F593E7E80E695BEC50A24283"));
        assert_eq!(rmac, hex!("983882695EE1AC61743415AB536CE1BE"));
        let (card, host) = cryptograms(&mac, &context, SMode::S8).unwrap();
        assert_eq!(
            (card, host),
            (
                hex!("A330F60B35761CBF").to_vec(),
                hex!("C28A6A8B99435E37").to_vec()
            )
        );
    }

    #[test]
    fn key_encryption_round_trips_under_the_static_dek() {
        // PUT KEY: AES-CBC, IV zero, under K-DEK; zero-padded to whole blocks.
        let dek = GP_DEFAULT_KEY;
        for len in 1..=48usize {
            let key: Vec<u8> = (0..len as u8).collect();
            let block = encrypt_key(&dek, &key).unwrap();
            assert_eq!(block.len(), len.div_ceil(16) * 16);
            assert_eq!(&*decrypt_key(&dek, &block, len).unwrap(), &key[..]);
        }
        // A 16-byte key is exactly one AES-CBC block with IV 0 = AES-ECB.
        let mut one = GP_DEFAULT_KEY;
        Aes::new(&dek).unwrap().encrypt_block(&mut one);
        assert_eq!(encrypt_key(&dek, &GP_DEFAULT_KEY).unwrap(), one);
        assert!(decrypt_key(&dek, &[0; 15], 15).is_err());
        assert!(decrypt_key(&dek, &[0; 16], 17).is_err());
        assert!(decrypt_key(&dek, &[], 0).is_err());
    }

    #[test]
    fn init_update_response_parser_never_panics_and_checks_lengths() {
        for len in 0..60 {
            let data = vec![0x03; len];
            let ok = matches!(len, 29 | 32 | 45 | 48);
            assert_eq!(InitUpdateResponse::parse(&data).is_ok(), ok, "length {len}");
        }
        let mut scp02 = vec![0u8; 29];
        scp02[11] = 0x02;
        assert!(matches!(
            InitUpdateResponse::parse(&scp02),
            Err(ScpError::Unsupported(_))
        ));
    }
}
