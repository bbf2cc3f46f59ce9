//! GlobalPlatform SCP02 (GP Card Spec v2.3 Appendix E), options i = 15 / 55: 3DES session keys, cryptograms, retail C-MAC with ICV encryption, C-DECRYPTION.
//!
//! Same flow as [`crate::scp03`]: card [`CardSession`], host [`HostHandshake`] → [`HostSession`].
//! R-MAC (i with b6 set, BEGIN R-MAC) is not offered: levels are 00, 01 and 03.

use crate::crypto::{self, Tdes, DES_BLOCK};
use crate::gp::{
    self, check_channel, check_protected_cla, has_sm, join_response, mac_cla, sm_bit,
    split_response, CardChallenge, CardConfig, CardSecureChannel, HostSecureChannel,
    InitializeUpdate, INS_EXTERNAL_AUTHENTICATE, INS_INITIALIZE_UPDATE,
};
use crate::{ScpError, SecurityLevel, StaticKeys};
use apdu_specs::Command;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The SCP identifier byte in the INITIALIZE UPDATE response.
pub const SCP_ID: u8 = 0x02;

/// i bit b1: three static keys (ENC, MAC, DEK). Required.
pub const I_THREE_KEYS: u8 = 0x01;
/// i bit b2: C-MAC on the unmodified APDU. Not supported (we MAC the modified APDU).
pub const I_MAC_UNMODIFIED: u8 = 0x02;
/// i bit b3: explicit initiation (INITIALIZE UPDATE). Required.
pub const I_EXPLICIT: u8 = 0x04;
/// i bit b4: ICV = MAC over the AID. Not supported (ICV starts at zero).
pub const I_ICV_AID: u8 = 0x08;
/// i bit b5: ICV encryption for every command after the first.
pub const I_ICV_ENCRYPTION: u8 = 0x10;
/// i bit b6: R-MAC. Not supported.
pub const I_R_MAC: u8 = 0x20;
/// i bit b7: well-known pseudo-random card challenge.
pub const I_PSEUDO_RANDOM: u8 = 0x40;

// Session key derivation constants (GP Card Spec E.4.1).
const DC_C_MAC: [u8; 2] = [0x01, 0x01];
const DC_R_MAC: [u8; 2] = [0x01, 0x02];
const DC_S_DEK: [u8; 2] = [0x01, 0x81];
const DC_S_ENC: [u8; 2] = [0x01, 0x82];

/// Refuse i parameters outside what we implement: `05 15 45 55`.
fn check_i(i: u8) -> Result<(), ScpError> {
    let required = I_THREE_KEYS | I_EXPLICIT;
    let refused = I_MAC_UNMODIFIED | I_ICV_AID | I_R_MAC | 0x80;
    if i & required != required || i & refused != 0 {
        return Err(ScpError::Unsupported(format!(
            "SCP02 i={i:02X}; supported: 15 and 55 (and 05/45 without ICV encryption)"
        )));
    }
    Ok(())
}

fn check_level(level: SecurityLevel) -> Result<(), ScpError> {
    if level.r_mac() || level.r_enc() {
        return Err(ScpError::UnsupportedLevel(level.bits()));
    }
    Ok(())
}

/// The four session keys (GP Card Spec E.4.1): `3DES-CBC(static key, IV 0, const | seq | 00×12)`.
pub(crate) struct SessionKeys {
    pub(crate) enc: Zeroizing<Vec<u8>>,
    pub(crate) cmac: Zeroizing<Vec<u8>>,
    /// Derived for completeness (and checked against GPPro's vectors); R-MAC is not offered.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) rmac: Zeroizing<Vec<u8>>,
    pub(crate) dek: Zeroizing<Vec<u8>>,
}

pub(crate) fn derive_session_keys(
    keys: &StaticKeys,
    sequence_counter: u16,
) -> Result<SessionKeys, ScpError> {
    let derive = |key: &[u8], constant: [u8; 2]| -> Result<Zeroizing<Vec<u8>>, ScpError> {
        if key.len() != 16 {
            return Err(ScpError::KeyLength(key.len()));
        }
        let mut data = [0u8; 16];
        data[..2].copy_from_slice(&constant);
        data[2..4].copy_from_slice(&sequence_counter.to_be_bytes());
        Ok(Zeroizing::new(
            Tdes::new(key)?.cbc_encrypt(&[0; DES_BLOCK], &data)?,
        ))
    };
    Ok(SessionKeys {
        enc: derive(keys.enc(), DC_S_ENC)?,
        cmac: derive(keys.mac(), DC_C_MAC)?,
        rmac: derive(keys.mac(), DC_R_MAC)?,
        dek: derive(keys.dek(), DC_S_DEK)?,
    })
}

/// (card cryptogram, host cryptogram): full 3DES MAC under S-ENC (GP Card Spec E.4.2).
fn cryptograms(
    s_enc: &[u8],
    host_challenge: &[u8; 8],
    sequence_counter: u16,
    card_challenge: &[u8; 6],
) -> Result<([u8; 8], [u8; 8]), ScpError> {
    let tdes = Tdes::new(s_enc)?;
    let seq = sequence_counter.to_be_bytes();
    let card = tdes.cbc_mac(&[&host_challenge[..], &seq, card_challenge].concat());
    let host = tdes.cbc_mac(&[&seq[..], card_challenge, host_challenge].concat());
    Ok((card, host))
}

/// The pseudo-random card challenge (GP Card Spec E.4.2.1, i bit b7): the first 6 bytes of the
/// retail MAC over the SD AID under the C-MAC session key, ICV zero.
pub fn pseudo_random_challenge(
    keys: &StaticKeys,
    sequence_counter: u16,
    sd_aid: &[u8],
) -> Result<[u8; 6], ScpError> {
    let session = derive_session_keys(keys, sequence_counter)?;
    let mac = crypto::retail_mac(&session.cmac, &[0; DES_BLOCK], sd_aid)?;
    Ok([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]])
}

/// PUT KEY key encryption: 3DES-ECB under S-DEK (GP Card Spec E.4.7), zero-padded to whole blocks.
pub(crate) fn encrypt_key(s_dek: &[u8], key: &[u8]) -> Result<Vec<u8>, ScpError> {
    let mut padded = Zeroizing::new(key.to_vec());
    padded.resize(key.len().div_ceil(DES_BLOCK).max(1) * DES_BLOCK, 0);
    Tdes::new(s_dek)?.ecb(&padded, true)
}

pub(crate) fn decrypt_key(
    s_dek: &[u8],
    block: &[u8],
    key_len: usize,
) -> Result<Zeroizing<Vec<u8>>, ScpError> {
    if block.is_empty() || block.len() % DES_BLOCK != 0 || key_len > block.len() {
        return Err(ScpError::MalformedApdu(format!(
            "key component of {} bytes cannot hold a {key_len}-byte key in whole DES blocks",
            block.len()
        )));
    }
    let mut clear = Zeroizing::new(Tdes::new(s_dek)?.ecb(block, false)?);
    clear.truncate(key_len);
    Ok(clear)
}

/// The 28-byte INITIALIZE UPDATE response data:
/// `KDD(10) | KVN | 02 | sequence counter(2) | card challenge(6) | card cryptogram(8)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitUpdateResponse {
    pub kdd: [u8; 10],
    pub kvn: u8,
    pub sequence_counter: u16,
    pub card_challenge: [u8; 6],
    pub card_cryptogram: [u8; 8],
}

impl InitUpdateResponse {
    /// Parse the response data (without SW).
    pub fn parse(data: &[u8]) -> Result<InitUpdateResponse, ScpError> {
        let short = || {
            ScpError::MalformedResponse(format!(
                "SCP02 INITIALIZE UPDATE response must be 28 bytes, got {}",
                data.len()
            ))
        };
        if data.len() != 28 {
            return Err(short());
        }
        let (kdd, rest) = data.split_first_chunk::<10>().ok_or_else(short)?;
        let ([kvn, scp, s1, s2], rest) = rest
            .split_first_chunk::<4>()
            .map(|(h, r)| (*h, r))
            .ok_or_else(short)?;
        if scp != SCP_ID {
            return Err(ScpError::Unsupported(format!(
                "the card answered INITIALIZE UPDATE for SCP{scp:02X}, not SCP02"
            )));
        }
        let (challenge, rest) = rest.split_first_chunk::<6>().ok_or_else(short)?;
        let cryptogram: &[u8; 8] = rest.try_into().map_err(|_| short())?;
        Ok(InitUpdateResponse {
            kdd: *kdd,
            kvn,
            sequence_counter: u16::from_be_bytes([s1, s2]),
            card_challenge: *challenge,
            card_cryptogram: *cryptogram,
        })
    }

    /// Serialise as the card answers (data only; the caller appends SW 9000).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28);
        out.extend_from_slice(&self.kdd);
        out.extend_from_slice(&[self.kvn, SCP_ID]);
        out.extend_from_slice(&self.sequence_counter.to_be_bytes());
        out.extend_from_slice(&self.card_challenge);
        out.extend_from_slice(&self.card_cryptogram);
        out
    }
}

/// What both sides keep after EXTERNAL AUTHENTICATE: keys, level, and the last C-MAC.
struct Channel {
    keys: SessionKeys,
    level: SecurityLevel,
    icv_encryption: bool,
    last_mac: [u8; DES_BLOCK],
}

impl Channel {
    /// ICV of the next command: the previous C-MAC, DES-encrypted under C-MAC[0..8] when the
    /// i parameter asks for ICV encryption (GP Card Spec E.4.4).
    fn next_icv(&self) -> Result<[u8; DES_BLOCK], ScpError> {
        if self.icv_encryption {
            crypto::des_encrypt(&self.keys.cmac, &self.last_mac)
        } else {
            Ok(self.last_mac)
        }
    }

    /// C-MAC over the modified APDU: `CLA|04 INS P1 P2 (Lc+8) plain data`.
    fn mac(
        &self,
        icv: &[u8; DES_BLOCK],
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        plain: &[u8],
    ) -> Result<[u8; DES_BLOCK], ScpError> {
        let lc = u8::try_from(plain.len() + DES_BLOCK)
            .map_err(|_| ScpError::TooLong(plain.len() + DES_BLOCK))?;
        let mut input = vec![mac_cla(cla), ins, p1, p2, lc];
        input.extend_from_slice(plain);
        crypto::retail_mac(&self.keys.cmac, icv, &input)
    }
}

fn malformed(e: apdu_specs::ApduError) -> ScpError {
    ScpError::MalformedApdu(e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CardState {
    AwaitingAuthentication,
    Open,
    /// A security error happened: refuse everything until terminated (GP Card Spec E.1.2).
    Aborted,
    Terminated,
}

/// The card's side of one SCP02 session on one logical channel.
pub struct CardSession {
    ch: Channel,
    state: CardState,
    /// The logical channel INITIALIZE UPDATE came on; every later command must use it.
    channel: u8,
    host_cryptogram: [u8; 8],
}

impl CardSession {
    /// Answer INITIALIZE UPDATE: derive session keys from `sequence_counter` and build the
    /// 28-byte response data (the caller answers it with SW 9000 and, once EXTERNAL
    /// AUTHENTICATE succeeds, increments and persists the counter).
    pub fn initialize_update(
        keys: &StaticKeys,
        config: &CardConfig,
        sequence_counter: u16,
        command: &InitializeUpdate,
        challenge: CardChallenge<'_>,
    ) -> Result<(CardSession, Vec<u8>), ScpError> {
        check_i(config.i)?;
        let host_challenge: &[u8; 8] =
            command.host_challenge.as_slice().try_into().map_err(|_| {
                ScpError::MalformedApdu(format!(
                    "SCP02 host challenge must be 8 bytes, got {}",
                    command.host_challenge.len()
                ))
            })?;
        let session = derive_session_keys(keys, sequence_counter)?;
        let card_challenge: [u8; 6] = match challenge {
            CardChallenge::Fixed(c) => c.try_into().map_err(|_| {
                ScpError::Unsupported(format!(
                    "fixed SCP02 card challenge of {} bytes (6 needed)",
                    c.len()
                ))
            })?,
            CardChallenge::FromConfig if config.i & I_PSEUDO_RANDOM != 0 => {
                if !(5..=16).contains(&config.sd_aid.len()) {
                    return Err(ScpError::Unsupported(format!(
                        "pseudo-random challenge needs the SD AID (5 to 16 bytes), got {} bytes",
                        config.sd_aid.len()
                    )));
                }
                pseudo_random_challenge(keys, sequence_counter, &config.sd_aid)?
            }
            CardChallenge::FromConfig => crypto::random::<6>()?,
        };
        let (card_cryptogram, host_cryptogram) = cryptograms(
            &session.enc,
            host_challenge,
            sequence_counter,
            &card_challenge,
        )?;
        let response = InitUpdateResponse {
            kdd: config.kdd,
            kvn: config.kvn,
            sequence_counter,
            card_challenge,
            card_cryptogram,
        };
        let card = CardSession {
            ch: Channel {
                keys: session,
                level: SecurityLevel::NONE,
                icv_encryption: config.i & I_ICV_ENCRYPTION != 0,
                last_mac: [0; DES_BLOCK],
            },
            state: CardState::AwaitingAuthentication,
            channel: command.channel,
            host_cryptogram,
        };
        Ok((card, response.to_bytes()))
    }

    /// Verify EXTERNAL AUTHENTICATE (`84 82 <level> 00 10 <host cryptogram> <C-MAC>`, C-MAC with
    /// ICV zero) and open the session; the caller answers SW 9000.
    pub fn external_authenticate(&mut self, command: &[u8]) -> Result<SecurityLevel, ScpError> {
        if self.state != CardState::AwaitingAuthentication {
            return Err(ScpError::OutOfSequence("EXTERNAL AUTHENTICATE"));
        }
        self.state = CardState::Aborted;
        let cmd = Command::parse(command).map_err(malformed)?;
        check_protected_cla(cmd.cla, self.channel)?;
        if cmd.ins != INS_EXTERNAL_AUTHENTICATE
            || cmd.cla & 0x80 == 0
            || cmd.p2 != 0
            || cmd.is_extended()
        {
            return Err(ScpError::MalformedApdu(format!(
                "expected EXTERNAL AUTHENTICATE 84 82 <level> 00 10, got {:02X} {:02X} {:02X} {:02X}",
                cmd.cla, cmd.ins, cmd.p1, cmd.p2
            )));
        }
        let level = SecurityLevel::from_p1(cmd.p1)?;
        check_level(level)?;
        let data: &[u8; 16] = cmd.data().try_into().map_err(|_| {
            ScpError::MalformedApdu(format!(
                "EXTERNAL AUTHENTICATE data must be 16 bytes, got {}",
                cmd.data().len()
            ))
        })?;
        let (cryptogram, mac) = data.split_at(8);
        let expected = self.ch.mac(
            &[0; DES_BLOCK],
            cmd.cla,
            cmd.ins,
            cmd.p1,
            cmd.p2,
            cryptogram,
        )?;
        if !bool::from(cryptogram.ct_eq(&self.host_cryptogram)) {
            return Err(ScpError::HostCryptogram);
        }
        if !bool::from(mac.ct_eq(&expected)) {
            return Err(ScpError::CommandMac);
        }
        self.ch.last_mac = expected;
        self.ch.level = level;
        self.state = CardState::Open;
        Ok(level)
    }

    pub fn security_level(&self) -> Option<SecurityLevel> {
        (self.state == CardState::Open).then_some(self.ch.level)
    }

    /// Decrypt (C-DEC) and verify the C-MAC of one command; returns the plain C-APDU.
    /// Any error aborts the session (GP Card Spec E.1.2): answer [`ScpError::status_word`], and
    /// every later command gets [`ScpError::Aborted`] until [`CardSession::close`].
    pub fn unwrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        match self.state {
            CardState::Open => {}
            CardState::Aborted => return Err(ScpError::Aborted),
            CardState::AwaitingAuthentication | CardState::Terminated => {
                return Err(ScpError::NotOpen)
            }
        }
        let result = self.unwrap_inner(command);
        if result.is_err() {
            self.state = CardState::Aborted;
        }
        result
    }

    fn unwrap_inner(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        let cmd = Command::parse(command).map_err(malformed)?;
        let level = self.ch.level;
        if level == SecurityLevel::NONE {
            check_channel(cmd.cla, self.channel)?;
            if has_sm(cmd.cla) {
                return Err(ScpError::MalformedApdu(
                    "secure messaging indicated in a session at level 00".into(),
                ));
            }
            return Ok(command.to_vec());
        }
        check_protected_cla(cmd.cla, self.channel)?;
        if cmd.is_extended() {
            return Err(ScpError::MalformedApdu(
                "SCP02 protects short APDUs only".into(),
            ));
        }
        let data = cmd.data();
        let (body, mac) = data
            .split_at_checked(data.len().saturating_sub(DES_BLOCK))
            .filter(|(_, m)| m.len() == DES_BLOCK)
            .ok_or_else(|| {
                ScpError::MalformedApdu(format!(
                    "data of {} bytes cannot hold an 8-byte C-MAC",
                    data.len()
                ))
            })?;
        let plain = if level.c_dec() && !body.is_empty() {
            let clear = Tdes::new(&self.ch.keys.enc)?.cbc_decrypt(&[0; DES_BLOCK], body)?;
            crypto::unpad80(&clear)?
        } else {
            body.to_vec()
        };
        let icv = self.ch.next_icv()?;
        let expected = self
            .ch
            .mac(&icv, cmd.cla, cmd.ins, cmd.p1, cmd.p2, &plain)?;
        if !bool::from(mac.ct_eq(&expected)) {
            return Err(ScpError::CommandMac);
        }
        self.ch.last_mac = expected;
        Command::new(cmd.cla & !sm_bit(cmd.cla), cmd.ins, cmd.p1, cmd.p2)
            .with_data(plain)
            .with_le(cmd.le())
            .to_bytes()
            .map_err(malformed)
    }

    /// Levels 00/01/03 protect no response: data and SW go out as they are.
    pub fn wrap_response(&mut self, data: &[u8], sw: u16) -> Vec<u8> {
        join_response(data, sw)
    }

    /// Decrypt a PUT KEY key component under S-DEK.
    pub fn decrypt_key(
        &self,
        block: &[u8],
        key_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, ScpError> {
        decrypt_key(&self.ch.keys.dek, block, key_len)
    }

    /// Encrypt a key under S-DEK.
    pub fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError> {
        encrypt_key(&self.ch.keys.dek, key)
    }

    /// Terminate the session (DESELECT, channel closed, reset, new INITIALIZE UPDATE); later
    /// unwraps fail with [`ScpError::NotOpen`].
    pub fn close(&mut self) {
        self.state = CardState::Terminated;
    }

    /// Whether a security error aborted the session: the SD refuses every command with
    /// `6982` until the session is terminated.
    pub fn is_aborted(&self) -> bool {
        self.state == CardState::Aborted
    }
}

impl CardSecureChannel for CardSession {
    fn security_level(&self) -> Option<SecurityLevel> {
        CardSession::security_level(self)
    }
    fn unwrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        CardSession::unwrap_command(self, command)
    }
    fn wrap_response(&mut self, data: &[u8], sw: u16) -> Vec<u8> {
        CardSession::wrap_response(self, data, sw)
    }
    fn close(&mut self) {
        CardSession::close(self)
    }
}

/// The host's first step: holds the host challenge until the card answers INITIALIZE UPDATE.
pub struct HostHandshake {
    keys: StaticKeys,
    channel: u8,
    kvn: u8,
    i: u8,
    host_challenge: [u8; 8],
}

impl HostHandshake {
    /// Handshake with a fresh random host challenge, assuming i = `55` (like GPPro).
    pub fn new(keys: &StaticKeys, kvn: u8) -> Result<HostHandshake, ScpError> {
        HostHandshake::with_challenge(keys, kvn, &crypto::random::<8>()?)
    }

    /// Handshake with a given 8-byte host challenge.
    pub fn with_challenge(
        keys: &StaticKeys,
        kvn: u8,
        host_challenge: &[u8; 8],
    ) -> Result<HostHandshake, ScpError> {
        for k in [keys.enc(), keys.mac(), keys.dek()] {
            if k.len() != 16 {
                return Err(ScpError::KeyLength(k.len()));
            }
        }
        Ok(HostHandshake {
            keys: keys.clone(),
            channel: 0,
            kvn,
            i: 0x55,
            host_challenge: *host_challenge,
        })
    }

    /// The card's i parameter when it is not `55` (SCP02 does not announce it).
    pub fn with_i_parameter(mut self, i: u8) -> Result<HostHandshake, ScpError> {
        check_i(i)?;
        self.i = i;
        Ok(self)
    }

    /// Run on a logical channel (0..=19) instead of the basic channel.
    pub fn on_channel(mut self, channel: u8) -> Result<HostHandshake, ScpError> {
        gp::channel_cla(channel, true)?;
        self.channel = channel;
        Ok(self)
    }

    /// The INITIALIZE UPDATE command to send.
    pub fn initialize_update(&self) -> Vec<u8> {
        let cla = gp::channel_cla(self.channel, false).unwrap_or(0x80);
        let mut out = vec![cla, INS_INITIALIZE_UPDATE, self.kvn, 0x00, 0x08];
        out.extend_from_slice(&self.host_challenge);
        out.push(0x00);
        out
    }

    /// Check the card's answer to INITIALIZE UPDATE (data and SW) and build EXTERNAL
    /// AUTHENTICATE for `level` (00, 01 or 03).
    pub fn authenticate(
        self,
        response: &[u8],
        level: SecurityLevel,
    ) -> Result<(HostSession, Vec<u8>), ScpError> {
        check_level(level)?;
        let (data, sw) = split_response(response)?;
        if sw != 0x9000 {
            return Err(ScpError::Refused {
                step: "INITIALIZE UPDATE",
                sw,
            });
        }
        let iu = InitUpdateResponse::parse(data)?;
        let session = derive_session_keys(&self.keys, iu.sequence_counter)?;
        let (card_cryptogram, host_cryptogram) = cryptograms(
            &session.enc,
            &self.host_challenge,
            iu.sequence_counter,
            &iu.card_challenge,
        )?;
        if !bool::from(card_cryptogram.ct_eq(&iu.card_cryptogram)) {
            return Err(ScpError::CardCryptogram);
        }
        let mut ch = Channel {
            keys: session,
            level,
            icv_encryption: self.i & I_ICV_ENCRYPTION != 0,
            last_mac: [0; DES_BLOCK],
        };
        let mac = ch.mac(
            &[0; DES_BLOCK],
            0x84,
            INS_EXTERNAL_AUTHENTICATE,
            level.bits(),
            0x00,
            &host_cryptogram,
        )?;
        ch.last_mac = mac;
        let cla = gp::channel_cla(self.channel, true)?;
        let mut command = vec![cla, INS_EXTERNAL_AUTHENTICATE, level.bits(), 0x00, 0x10];
        command.extend_from_slice(&host_cryptogram);
        command.extend_from_slice(&mac);
        let host = HostSession {
            ch,
            channel: self.channel,
            kvn: iu.kvn,
            kdd: iu.kdd,
            sequence_counter: iu.sequence_counter,
        };
        Ok((host, command))
    }
}

/// The host's side of an SCP02 session.
pub struct HostSession {
    ch: Channel,
    channel: u8,
    kvn: u8,
    kdd: [u8; 10],
    sequence_counter: u16,
}

impl HostSession {
    pub fn security_level(&self) -> SecurityLevel {
        self.ch.level
    }
    /// Check the card's answer to EXTERNAL AUTHENTICATE (a bare `9000`); on error, discard
    /// the session and start again with INITIALIZE UPDATE.
    pub fn confirm(&self, response: &[u8]) -> Result<(), ScpError> {
        gp::check_authentication_response(response)
    }

    /// Key version the card answered with.
    pub fn kvn(&self) -> u8 {
        self.kvn
    }
    pub fn kdd(&self) -> [u8; 10] {
        self.kdd
    }
    pub fn sequence_counter(&self) -> u16 {
        self.sequence_counter
    }

    /// C-MAC over the modified plain APDU, then encrypt the data (C-DEC); Le is kept (never
    /// MACed). SCP02 protects short APDUs only. A command without data is not encrypted
    /// (like GPPro; the card side also accepts pysim's encrypted empty padding block).
    pub fn wrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        let cmd = Command::parse(command).map_err(malformed)?;
        check_channel(cmd.cla, self.channel)?;
        let level = self.ch.level;
        if level == SecurityLevel::NONE {
            return Ok(command.to_vec());
        }
        if has_sm(cmd.cla) {
            return Err(ScpError::MalformedApdu(format!(
                "CLA {:02X} already indicates secure messaging; pass the plain command",
                cmd.cla
            )));
        }
        if cmd.is_extended() {
            return Err(ScpError::TooLong(cmd.data().len()));
        }
        let icv = self.ch.next_icv()?;
        let mac = self
            .ch
            .mac(&icv, cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data())?;
        let mut body = if level.c_dec() && !cmd.data().is_empty() {
            Tdes::new(&self.ch.keys.enc)?
                .cbc_encrypt(&[0; DES_BLOCK], &crypto::pad80(cmd.data(), DES_BLOCK))?
        } else {
            cmd.data().to_vec()
        };
        body.extend_from_slice(&mac);
        if body.len() > 255 {
            return Err(ScpError::TooLong(body.len()));
        }
        let wire = Command::new(gp::wire_cla(cmd.cla)?, cmd.ins, cmd.p1, cmd.p2)
            .with_data(body)
            .with_le(cmd.le())
            .to_bytes()
            .map_err(malformed)?;
        self.ch.last_mac = mac;
        Ok(wire)
    }

    /// Levels 00/01/03 protect no response: split data and SW.
    pub fn unwrap_response(&mut self, response: &[u8]) -> Result<(Vec<u8>, u16), ScpError> {
        split_response(response).map(|(d, sw)| (d.to_vec(), sw))
    }

    /// Encrypt a key for PUT KEY under S-DEK.
    pub fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError> {
        encrypt_key(&self.ch.keys.dek, key)
    }

    /// Decrypt a key component block under S-DEK.
    pub fn decrypt_key(
        &self,
        block: &[u8],
        key_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, ScpError> {
        decrypt_key(&self.ch.keys.dek, block, key_len)
    }
}

impl HostSecureChannel for HostSession {
    fn security_level(&self) -> SecurityLevel {
        HostSession::security_level(self)
    }
    fn wrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        HostSession::wrap_command(self, command)
    }
    fn unwrap_response(&mut self, response: &[u8]) -> Result<(Vec<u8>, u16), ScpError> {
        HostSession::unwrap_response(self, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::kcv_des3;
    use hex_literal::hex;

    fn pysim_keys() -> StaticKeys {
        // osmocom/pysim tests/unittests/test_globalplatform.py: KIC / KID / KIK.
        StaticKeys::new(
            &hex!("100102030405060708090a0b0c0d0e0f"),
            &hex!("101102030405060708090a0b0c0d0e0f"),
            &hex!("102102030405060708090a0b0c0d0e0f"),
        )
        .unwrap()
    }

    #[test]
    fn session_keys_from_gppro_test_plaintext_keys() {
        // martinpaljak/GlobalPlatformPro TestPlaintextKeys.testSessionKeys_SCP02: 404142…4F,
        // sequence counter 0000; KCVs, full keys from protocols.md C.1.
        let s = derive_session_keys(&StaticKeys::gp_default(), 0x0000).unwrap();
        assert_eq!(&s.enc[..], hex!("010B0371D78377B801F2D62AFC671D95"));
        assert_eq!(&s.cmac[..], hex!("D1C28C601652A4770D67AD82D2D2E1C4"));
        assert_eq!(&s.rmac[..], hex!("FFAEC7EC7FAD69F9FBFF093BF2F79C45"));
        assert_eq!(&s.dek[..], hex!("E11987EE331B417A5D67D760692F89D4"));
        let kcv = |k: &[u8]| kcv_des3(k).unwrap();
        assert_eq!(
            [kcv(&s.enc), kcv(&s.cmac), kcv(&s.dek), kcv(&s.rmac)],
            [
                hex!("F2DCDD"),
                hex!("5FCC69"),
                hex!("85272E"),
                hex!("9F749A")
            ]
        );
    }

    #[test]
    fn key_encryption_from_gppro_test_plaintext_keys() {
        // martinpaljak/GlobalPlatformPro TestPlaintextKeys.testKeyEncryption_SCP02: key 404142…4F
        // under S-DEK of sequence counter 0000, 3DES-ECB.
        let s = derive_session_keys(&StaticKeys::gp_default(), 0x0000).unwrap();
        let block = encrypt_key(&s.dek, &crate::keys::GP_DEFAULT_KEY).unwrap();
        assert_eq!(block, hex!("EFBEE6C6D99D7B70BDE9D7E927F020AF"));
        assert_eq!(
            decrypt_key(&s.dek, &block, 16).unwrap().as_slice(),
            crate::keys::GP_DEFAULT_KEY
        );
    }

    #[test]
    fn session_keys_of_the_pysim_trace() {
        // osmocom/pysim test_globalplatform.py SCP02_Test, sequence counter 0001; keys as listed
        // (DERIVED, consistent with the traced cryptograms and MACs) in protocols.md C.2.
        let s = derive_session_keys(&pysim_keys(), 0x0001).unwrap();
        assert_eq!(&s.enc[..], hex!("1BA074B31F72A6C44FE8F5D9AFE4DA2F"));
        assert_eq!(&s.cmac[..], hex!("29A69328E60494982632039DDD47A2F1"));
        assert_eq!(&s.rmac[..], hex!("FDF8A06C38FA7A54123C80AB9087BF25"));
        assert_eq!(&s.dek[..], hex!("511DB767812597722109C867F9D7257A"));
        let (card, host) = cryptograms(
            &s.enc,
            &hex!("40A62C37FA6304F8"),
            0x0001,
            &hex!("6B4524ABEE7C"),
        )
        .unwrap();
        assert_eq!(card, hex!("F32EA3838BC148F3"));
        assert_eq!(host, hex!("BA6961667737C5BC"));
    }

    #[test]
    fn default_key_session_of_protocols_md_c7() {
        // protocols.md C.7 (DERIVED with the verified reference implementation, no public source).
        let s = derive_session_keys(&StaticKeys::gp_default(), 0x0001).unwrap();
        assert_eq!(&s.enc[..], hex!("25C9794A1205FF244F5FA0378D2F8D59"));
        assert_eq!(&s.cmac[..], hex!("9BED98891580C3B245FE9EC58BFA8D2A"));
        assert_eq!(&s.dek[..], hex!("0E51FDF196141F227A57BD154012FD39"));
        assert_eq!(&s.rmac[..], hex!("8EB6CF25BA4DECD820BF4E9FA616C50A"));
        let (card, host) = cryptograms(
            &s.enc,
            &hex!("0001020304050607"),
            0x0001,
            &hex!("111213141516"),
        )
        .unwrap();
        assert_eq!(
            (card, host),
            (hex!("B42DC852AE170AD4"), hex!("3DB5CE382BFA8D41"))
        );
    }

    #[test]
    fn supported_i_parameters() {
        for i in 0..=255u8 {
            assert_eq!(
                check_i(i).is_ok(),
                matches!(i, 0x05 | 0x15 | 0x45 | 0x55),
                "i={i:02X}"
            );
        }
    }

    #[test]
    fn init_update_response_parser_never_panics_and_checks_lengths() {
        for len in 0..40 {
            let mut data = vec![0u8; len];
            if let Some(b) = data.get_mut(11) {
                *b = 0x02;
            }
            assert_eq!(
                InitUpdateResponse::parse(&data).is_ok(),
                len == 28,
                "length {len}"
            );
        }
    }
}
