//! The session logic SCP02 and SCP03 share, written once: security level, MAC chaining, the command counter, wrapping and unwrapping, and the binding to one logical channel.

use crate::gp::{
    check_channel, check_protected_cla, has_sm, join_response, lc_field, mac_cla,
    plain_is_extended, sm_bit, wire_cla, CardChallenge, CardConfig, InitializeUpdate,
};
use crate::{ScpError, SecurityLevel, StaticKeys};
use apdu_specs::ins::gp::EXTERNAL_AUTHENTICATE;
use apdu_specs::Command;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A MAC and chaining value: SCP03 keeps the whole AES-CMAC block (its wire MAC is the first
/// 8 or 16 bytes), SCP02 uses the first 8 bytes and leaves the rest zero.
pub type MacBlock = [u8; 16];

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::super::scp02::Scp02 {}
    impl Sealed for super::super::scp03::Scp03 {}
}

/// What makes one secure channel protocol different from another: key derivation, the
/// handshake's cryptograms, padding, the cipher and the MAC. One value holds the session
/// keys of one session; [`crate::scp::CardSession`] and [`crate::scp::HostSession`] run the
/// shared state machine over it. Implemented by [`crate::scp02::Scp02`] and
/// [`crate::scp03::Scp03`] only.
pub trait Protocol: Sized + sealed::Sealed {
    /// `"SCP02"`, `"SCP03"`: for messages.
    const NAME: &'static str;
    /// The SCP identifier byte of the INITIALIZE UPDATE response.
    const SCP_ID: u8;
    /// Whether the C-MAC covers the plain command data, encrypted afterwards (SCP02, GP Card
    /// Spec E.4.4), instead of the encrypted data (SCP03, GP Amd D §6.2.4).
    const MAC_OVER_PLAIN: bool;
    /// Whether extended-length APDUs can be protected (SCP02: short APDUs only).
    const EXTENDED_APDUS: bool;
    /// The i parameter a host assumes when the card's answer does not carry it (SCP02).
    const ASSUMED_I: u8;
    /// The key set's sequence counter (SCP02: 2 bytes; SCP03: 3 bytes).
    type Counter: Copy;
    /// The parsed INITIALIZE UPDATE response data.
    type Answer: Clone;

    /// Length of the C-MAC and R-MAC on the wire, and of each half of EXTERNAL AUTHENTICATE.
    fn mac_len(&self) -> usize;

    /// Card: derive the session for INITIALIZE UPDATE; returns it, the host cryptogram it
    /// expects, and the response data.
    fn card_handshake(
        keys: &StaticKeys,
        config: &CardConfig,
        sequence_counter: Self::Counter,
        command: &InitializeUpdate,
        challenge: CardChallenge<'_>,
    ) -> Result<(Self, Vec<u8>, Vec<u8>), ScpError>;

    /// Host: refuse keys and a host challenge this protocol cannot use.
    fn check_host_setup(keys: &StaticKeys, host_challenge: &[u8]) -> Result<(), ScpError>;

    /// Host: check the card's answer to INITIALIZE UPDATE (data and SW) for `level`;
    /// returns the session, the parsed answer and the host cryptogram to send.
    fn host_handshake(
        keys: &StaticKeys,
        host_challenge: &[u8],
        i: u8,
        response: &[u8],
        level: SecurityLevel,
    ) -> Result<(Self, Self::Answer, Vec<u8>), ScpError>;

    /// Key version and key diversification data of an answer.
    fn answer_identity(answer: &Self::Answer) -> (u8, [u8; 10]);

    /// Card: whether EXTERNAL AUTHENTICATE may ask for `level` in this session.
    fn allows(&self, level: SecurityLevel) -> bool;

    /// The C-MAC over `header | data`, chained from the previous C-MAC (`None`: the first
    /// MAC of the session, EXTERNAL AUTHENTICATE's).
    fn command_mac(
        &self,
        chain: Option<&MacBlock>,
        header: &[u8],
        data: &[u8],
    ) -> Result<MacBlock, ScpError>;
    /// Pad and encrypt command data; `counter` numbers the command, from 1.
    fn encrypt_command(&self, counter: u128, data: &[u8]) -> Result<Vec<u8>, ScpError>;
    /// Decrypt command data and remove its padding.
    fn decrypt_command(&self, counter: u128, body: &[u8]) -> Result<Vec<u8>, ScpError>;
    /// The R-MAC over the response body and SW, chained from the command's C-MAC.
    fn response_mac(&self, chain: &MacBlock, body: &[u8], sw: u16) -> Result<MacBlock, ScpError>;
    /// Pad and encrypt response data of command number `counter`.
    fn encrypt_response(&self, counter: u128, data: &[u8]) -> Result<Vec<u8>, ScpError>;
    /// Decrypt response data and remove its padding.
    fn decrypt_response(&self, counter: u128, body: &[u8]) -> Result<Vec<u8>, ScpError>;

    /// Encrypt a key for PUT KEY.
    fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError>;
    /// Decrypt a PUT KEY key component and keep its first `key_len` bytes.
    fn decrypt_key(&self, block: &[u8], key_len: usize) -> Result<Zeroizing<Vec<u8>>, ScpError>;
}

pub(crate) fn malformed(e: apdu_specs::ApduError) -> ScpError {
    ScpError::MalformedApdu(e.to_string())
}

/// The head of every INITIALIZE UPDATE response: `KDD(10) | KVN | SCP identifier`; an answer
/// for another protocol is refused here. Returns KDD, KVN and the protocol's part.
pub(crate) fn split_identity<P: Protocol>(data: &[u8]) -> Result<([u8; 10], u8, &[u8]), ScpError> {
    let Some((kdd, [kvn, scp, rest @ ..])) = data.split_first_chunk::<10>() else {
        return Err(ScpError::MalformedResponse(format!(
            "INITIALIZE UPDATE response of {} bytes is too short",
            data.len()
        )));
    };
    if *scp != P::SCP_ID {
        return Err(ScpError::Unsupported(format!(
            "the card answered INITIALIZE UPDATE for SCP{scp:02X}, not {}",
            P::NAME
        )));
    }
    Ok((*kdd, *kvn, rest))
}

/// The header that enters a C-MAC: class byte without channel, INS, P1, P2 and Lc as the
/// wire shows it (never Le).
fn mac_header(
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    lc: usize,
    extended: bool,
) -> Result<Vec<u8>, ScpError> {
    if !extended && lc > 255 {
        return Err(ScpError::TooLong(lc));
    }
    let mut h = vec![mac_cla(cla), ins, p1, p2];
    h.extend(lc_field(lc, extended));
    Ok(h)
}

/// The state both ends keep once the session keys exist.
pub(crate) struct Channel<P> {
    pub(crate) protocol: P,
    pub(crate) level: SecurityLevel,
    /// The logical channel INITIALIZE UPDATE came on: its number is outside the C-MAC
    /// (GP Amd D §6.2.4), so the session binds it instead.
    pub(crate) number: u8,
    /// The last C-MAC; `None` until EXTERNAL AUTHENTICATE.
    chain: Option<MacBlock>,
    /// Commands protected so far; it counts also those without data (GP Amd D §6.2.6).
    counter: u128,
}

impl<P: Protocol> Channel<P> {
    pub(crate) fn new(protocol: P, number: u8) -> Channel<P> {
        Channel {
            protocol,
            level: SecurityLevel::NONE,
            number,
            chain: None,
            counter: 0,
        }
    }

    pub(crate) fn mac_len(&self) -> usize {
        self.protocol.mac_len()
    }

    pub(crate) fn wire_mac<'m>(&self, mac: &'m MacBlock) -> &'m [u8] {
        mac.get(..self.mac_len()).unwrap_or_default()
    }

    /// `body | MAC` → (body, MAC); `None` when the data is shorter than a MAC.
    fn split_mac<'d>(&self, data: &'d [u8]) -> Option<(&'d [u8], &'d [u8])> {
        data.split_at_checked(data.len().checked_sub(self.mac_len())?)
    }

    /// EXTERNAL AUTHENTICATE's C-MAC over its header and the host cryptogram, the first of
    /// the chain.
    pub(crate) fn authentication_mac(
        &self,
        cla: u8,
        p1: u8,
        cryptogram: &[u8],
        extended: bool,
    ) -> Result<MacBlock, ScpError> {
        let lc = cryptogram.len() + self.mac_len();
        let header = mac_header(cla, EXTERNAL_AUTHENTICATE, p1, 0x00, lc, extended)?;
        self.protocol.command_mac(None, &header, cryptogram)
    }

    /// EXTERNAL AUTHENTICATE succeeded: its MAC starts the chain.
    pub(crate) fn open(&mut self, level: SecurityLevel, mac: MacBlock) {
        self.level = level;
        self.chain = Some(mac);
        self.counter = 0;
    }

    /// Host: protect one plain C-APDU. Le is kept and never MACed; a command without data is
    /// not encrypted (like GPPro; the card side also accepts pysim's encrypted empty block).
    pub(crate) fn wrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        let cmd = Command::parse(command).map_err(malformed)?;
        check_channel(cmd.cla, self.number)?;
        let level = self.level;
        if level == SecurityLevel::NONE {
            return Ok(command.to_vec());
        }
        if has_sm(cmd.cla) {
            return Err(ScpError::MalformedApdu(format!(
                "CLA {:02X} already indicates secure messaging; pass the plain command",
                cmd.cla
            )));
        }
        if !P::EXTENDED_APDUS && cmd.is_extended() {
            return Err(ScpError::TooLong(cmd.data().len()));
        }
        let counter = self.counter.wrapping_add(1);
        let encrypt = |data: &[u8]| {
            if level.c_dec() && !data.is_empty() {
                self.protocol.encrypt_command(counter, data)
            } else {
                Ok(data.to_vec())
            }
        };
        let s = self.mac_len();
        let chain = self.chain.as_ref();
        let (mut body, mac, extended) = if P::MAC_OVER_PLAIN {
            let lc = cmd.data().len() + s;
            let header = mac_header(cmd.cla, cmd.ins, cmd.p1, cmd.p2, lc, false)?;
            let mac = self.protocol.command_mac(chain, &header, cmd.data())?;
            (encrypt(cmd.data())?, mac, false)
        } else {
            let body = encrypt(cmd.data())?;
            let lc = body.len() + s;
            if lc > apdu_specs::command::MAX_NC {
                return Err(ScpError::TooLong(lc));
            }
            let extended = cmd.is_extended() || lc > 255;
            let header = mac_header(cmd.cla, cmd.ins, cmd.p1, cmd.p2, lc, extended)?;
            let mac = self.protocol.command_mac(chain, &header, &body)?;
            (body, mac, extended)
        };
        body.extend_from_slice(self.wire_mac(&mac));
        if !extended && body.len() > 255 {
            return Err(ScpError::TooLong(body.len()));
        }
        let wire = Command::new(wire_cla(cmd.cla)?, cmd.ins, cmd.p1, cmd.p2)
            .with_data(body)
            .with_le(cmd.le())
            .extended(extended)
            .to_bytes()
            .map_err(malformed)?;
        self.chain = Some(mac);
        self.counter = counter;
        Ok(wire)
    }

    /// Card: verify the C-MAC of one command and decrypt its data; returns the plain C-APDU
    /// (SM bit cleared, Lc without MAC, Le kept).
    pub(crate) fn unwrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        let cmd = Command::parse(command).map_err(malformed)?;
        let level = self.level;
        if level == SecurityLevel::NONE {
            check_channel(cmd.cla, self.number)?;
            if has_sm(cmd.cla) {
                return Err(ScpError::MalformedApdu(
                    "secure messaging indicated in a session at level 00".into(),
                ));
            }
            return Ok(command.to_vec());
        }
        check_protected_cla(cmd.cla, self.number)?;
        if !P::EXTENDED_APDUS && cmd.is_extended() {
            return Err(ScpError::MalformedApdu(format!(
                "{} protects short APDUs only",
                P::NAME
            )));
        }
        let s = self.mac_len();
        let data = cmd.data();
        let (body, mac) = self.split_mac(data).ok_or_else(|| {
            ScpError::MalformedApdu(format!(
                "data of {} bytes cannot hold a {s}-byte C-MAC",
                data.len()
            ))
        })?;
        let counter = self.counter.wrapping_add(1);
        let decrypt = |body: &[u8]| {
            if level.c_dec() && !body.is_empty() {
                self.protocol.decrypt_command(counter, body)
            } else {
                Ok(body.to_vec())
            }
        };
        let chain = self.chain.as_ref();
        // Decrypting before the MAC is checked only where the MAC covers the plain data.
        let (plain, expected) = if P::MAC_OVER_PLAIN {
            let plain = decrypt(body)?;
            let header = mac_header(cmd.cla, cmd.ins, cmd.p1, cmd.p2, plain.len() + s, false)?;
            let expected = self.protocol.command_mac(chain, &header, &plain)?;
            (Some(plain), expected)
        } else {
            let header = mac_header(
                cmd.cla,
                cmd.ins,
                cmd.p1,
                cmd.p2,
                data.len(),
                cmd.is_extended(),
            )?;
            (None, self.protocol.command_mac(chain, &header, body)?)
        };
        if !bool::from(mac.ct_eq(self.wire_mac(&expected))) {
            return Err(ScpError::CommandMac);
        }
        let plain = match plain {
            Some(p) => p,
            None => decrypt(body)?,
        };
        self.chain = Some(expected);
        self.counter = counter;
        let extended = plain_is_extended(&cmd, plain.len());
        Command::new(cmd.cla & !sm_bit(cmd.cla), cmd.ins, cmd.p1, cmd.p2)
            .with_data(plain)
            .with_le(cmd.le())
            .extended(extended)
            .to_bytes()
            .map_err(malformed)
    }

    /// Card: R-ENC (non-empty data only) and R-MAC over the answer to the last command.
    pub(crate) fn protect_response(&self, data: &[u8], sw: u16) -> Result<Vec<u8>, ScpError> {
        let mut body = if self.level.r_enc() && !data.is_empty() {
            self.protocol.encrypt_response(self.counter, data)?
        } else {
            data.to_vec()
        };
        let chain = self.chain.unwrap_or_default();
        let rmac = self.protocol.response_mac(&chain, &body, sw)?;
        body.extend_from_slice(self.wire_mac(&rmac));
        Ok(join_response(&body, sw))
    }

    /// Host: verify the R-MAC of a protected answer and decrypt its R-ENC data.
    pub(crate) fn verify_response(&self, data: &[u8], sw: u16) -> Result<Vec<u8>, ScpError> {
        let (body, mac) = self.split_mac(data).ok_or_else(|| {
            ScpError::MalformedResponse(format!(
                "{} data byte(s) cannot hold a {}-byte R-MAC",
                data.len(),
                self.mac_len()
            ))
        })?;
        let chain = self.chain.unwrap_or_default();
        let rmac = self.protocol.response_mac(&chain, body, sw)?;
        if !bool::from(mac.ct_eq(self.wire_mac(&rmac))) {
            return Err(ScpError::ResponseMac);
        }
        if self.level.r_enc() && !body.is_empty() {
            self.protocol.decrypt_response(self.counter, body)
        } else {
            Ok(body.to_vec())
        }
    }
}
