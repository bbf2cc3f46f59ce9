//! The card's end of a secure channel: answers INITIALIZE UPDATE, checks EXTERNAL AUTHENTICATE, then unwraps each command and wraps its answer, for SCP02 and SCP03 alike.

use super::core::{malformed, Channel, Protocol};
use super::{scp02::Scp02, scp03::Scp03};
use crate::gp::{check_protected_cla, join_response, CardChallenge, CardConfig, InitializeUpdate};
use crate::{ScpError, SecurityLevel, StaticKeys};
use apdu_specs::ins::gp::EXTERNAL_AUTHENTICATE;
use apdu_specs::Command;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingAuthentication,
    Open,
    /// A security error happened: refuse everything until terminated (GP Amd D §5.6, GP Card
    /// Spec E.1.2).
    Aborted,
    Terminated,
}

/// The card's side of one session on one logical channel, for either protocol
/// ([`crate::scp02::CardSession`], [`crate::scp03::CardSession`]).
pub struct CardSession<P: Protocol> {
    ch: Channel<P>,
    state: State,
    host_cryptogram: Vec<u8>,
    /// A command was unwrapped and its response is not yet wrapped.
    pending: bool,
}

impl<P: Protocol> CardSession<P> {
    /// Answer INITIALIZE UPDATE: derive the session keys and build the response data (the
    /// caller answers it with SW 9000). The counter rules are the protocol's: see
    /// [`crate::scp02::Scp02`] and [`crate::scp03::Scp03`]'s `card_handshake`.
    pub fn initialize_update(
        keys: &StaticKeys,
        config: &CardConfig,
        sequence_counter: P::Counter,
        command: &InitializeUpdate,
        challenge: CardChallenge<'_>,
    ) -> Result<(CardSession<P>, Vec<u8>), ScpError> {
        let (protocol, host_cryptogram, response) =
            P::card_handshake(keys, config, sequence_counter, command, challenge)?;
        let card = CardSession {
            ch: Channel::new(protocol, command.channel),
            state: State::AwaitingAuthentication,
            host_cryptogram,
            pending: false,
        };
        Ok((card, response))
    }

    pub(crate) fn protocol(&self) -> &P {
        &self.ch.protocol
    }

    /// Verify EXTERNAL AUTHENTICATE (`84 82 <level> 00 <Lc> <host cryptogram> <C-MAC>`) and
    /// open the session; the caller answers SW 9000 (never protected). On error, answer
    /// [`ScpError::status_word`]; the session is then aborted (start again with INITIALIZE
    /// UPDATE).
    pub fn external_authenticate(&mut self, command: &[u8]) -> Result<SecurityLevel, ScpError> {
        if self.state != State::AwaitingAuthentication {
            return Err(ScpError::OutOfSequence("EXTERNAL AUTHENTICATE"));
        }
        self.state = State::Aborted;
        let cmd = Command::parse(command).map_err(malformed)?;
        check_protected_cla(cmd.cla, self.ch.number)?;
        if cmd.ins != EXTERNAL_AUTHENTICATE
            || cmd.cla & 0x80 == 0
            || cmd.p2 != 0
            || (!P::EXTENDED_APDUS && cmd.is_extended())
        {
            return Err(ScpError::MalformedApdu(format!(
                "expected EXTERNAL AUTHENTICATE 84 82 <level> 00 <Lc>, got {:02X} {:02X} {:02X} {:02X}",
                cmd.cla, cmd.ins, cmd.p1, cmd.p2
            )));
        }
        let level = SecurityLevel::from_p1(cmd.p1)?;
        if !self.ch.protocol.allows(level) {
            return Err(ScpError::UnsupportedLevel(cmd.p1));
        }
        let s = self.ch.mac_len();
        let data = cmd.data();
        let (cryptogram, mac) = data
            .split_at_checked(s)
            .filter(|(_, m)| m.len() == s)
            .ok_or_else(|| {
                ScpError::MalformedApdu(format!(
                    "EXTERNAL AUTHENTICATE data must be {} bytes, got {}",
                    2 * s,
                    data.len()
                ))
            })?;
        let expected =
            self.ch
                .authentication_mac(cmd.cla, cmd.p1, cryptogram, cmd.is_extended())?;
        if !bool::from(cryptogram.ct_eq(&self.host_cryptogram)) {
            return Err(ScpError::HostCryptogram);
        }
        if !bool::from(mac.ct_eq(self.ch.wire_mac(&expected))) {
            return Err(ScpError::CommandMac);
        }
        self.ch.open(level, expected);
        self.state = State::Open;
        Ok(level)
    }

    /// The negotiated level once open.
    pub fn security_level(&self) -> Option<SecurityLevel> {
        (self.state == State::Open).then_some(self.ch.level)
    }

    /// Verify the C-MAC of one command, decrypt its data if C-DECRYPTION is on, and return the
    /// plain C-APDU (SM bit cleared, Lc without MAC, Le kept). Any error aborts the session:
    /// answer [`ScpError::status_word`], and every later command gets [`ScpError::Aborted`]
    /// until [`CardSession::close`].
    pub fn unwrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        match self.state {
            State::Open => {}
            State::Aborted => return Err(ScpError::Aborted),
            State::AwaitingAuthentication | State::Terminated => return Err(ScpError::NotOpen),
        }
        self.pending = false;
        let result = self.ch.unwrap_command(command);
        match &result {
            Ok(_) => self.pending = self.ch.level != SecurityLevel::NONE,
            Err(_) => self.state = State::Aborted,
        }
        result
    }

    /// Protect the response to the last unwrapped command (GP Amd D §6.2.5-6.2.7): with R-ENC,
    /// non-empty data is encrypted; with R-MAC, `R-MAC` is appended. Error status words (all but
    /// `9000`, `62xx`, `63xx`) go out alone, without data or R-MAC. Without a pending command
    /// (after EXTERNAL AUTHENTICATE, after an error) or below R-MAC levels the response goes
    /// out as it is.
    pub fn wrap_response(&mut self, data: &[u8], sw: u16) -> Vec<u8> {
        let pending = std::mem::take(&mut self.pending);
        if !pending || self.state != State::Open || !self.ch.level.r_mac() {
            return join_response(data, sw);
        }
        if !crate::gp::is_protected_status(sw) {
            return join_response(&[], sw);
        }
        match self.ch.protect_response(data, sw) {
            Ok(r) => r,
            // Unreachable with validated keys; answer a bare error rather than unprotected data.
            Err(e) => {
                self.state = State::Aborted;
                join_response(&[], e.status_word())
            }
        }
    }

    /// Decrypt a PUT KEY key component (SCP03: static K-DEK; SCP02: session S-DEK).
    pub fn decrypt_key(
        &self,
        block: &[u8],
        key_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, ScpError> {
        self.ch.protocol.decrypt_key(block, key_len)
    }

    /// Encrypt a key as PUT KEY carries it.
    pub fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.ch.protocol.encrypt_key(key)
    }

    /// Terminate the session (DESELECT, channel closed, reset, new INITIALIZE UPDATE); later
    /// unwraps fail with [`ScpError::NotOpen`].
    pub fn close(&mut self) {
        self.state = State::Terminated;
        self.pending = false;
    }

    /// Whether a security error aborted the session: the SD refuses every command with
    /// `6982` until the session is terminated.
    pub fn is_aborted(&self) -> bool {
        self.state == State::Aborted
    }
}

/// The side that answers: the card. Implemented by both protocols' card sessions and by
/// [`AnySession`].
pub trait CardSecureChannel {
    /// The negotiated level, once EXTERNAL AUTHENTICATE succeeded.
    fn security_level(&self) -> Option<SecurityLevel>;
    /// Verify EXTERNAL AUTHENTICATE (the whole wire APDU) and open the session.
    fn external_authenticate(&mut self, command: &[u8]) -> Result<SecurityLevel, ScpError>;
    /// Verify (and decrypt) one wrapped C-APDU; returns the plain C-APDU.
    fn unwrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError>;
    /// Protect the response to the last unwrapped command; returns the R-APDU bytes.
    fn wrap_response(&mut self, data: &[u8], sw: u16) -> Vec<u8>;
    /// Decrypt a PUT KEY key component.
    fn decrypt_key(&self, block: &[u8], key_len: usize) -> Result<Zeroizing<Vec<u8>>, ScpError>;
    /// Encrypt a key as PUT KEY carries it.
    fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError>;
    /// Whether a security error aborted the session.
    fn is_aborted(&self) -> bool;
    /// End the session (after a security error, DESELECT, or a new INITIALIZE UPDATE).
    fn close(&mut self);
}

impl<P: Protocol> CardSecureChannel for CardSession<P> {
    fn security_level(&self) -> Option<SecurityLevel> {
        CardSession::security_level(self)
    }
    fn external_authenticate(&mut self, command: &[u8]) -> Result<SecurityLevel, ScpError> {
        CardSession::external_authenticate(self, command)
    }
    fn unwrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        CardSession::unwrap_command(self, command)
    }
    fn wrap_response(&mut self, data: &[u8], sw: u16) -> Vec<u8> {
        CardSession::wrap_response(self, data, sw)
    }
    fn decrypt_key(&self, block: &[u8], key_len: usize) -> Result<Zeroizing<Vec<u8>>, ScpError> {
        CardSession::decrypt_key(self, block, key_len)
    }
    fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError> {
        CardSession::encrypt_key(self, key)
    }
    fn is_aborted(&self) -> bool {
        CardSession::is_aborted(self)
    }
    fn close(&mut self) {
        CardSession::close(self)
    }
}

either_protocol!(
    /// A card session of either protocol: what a security domain keeps per logical channel.
    AnySession,
    CardSession,
    CardSecureChannel
);

impl std::fmt::Debug for AnySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SCP0{} card session", self.scp())
    }
}

impl CardSecureChannel for AnySession {
    fn security_level(&self) -> Option<SecurityLevel> {
        self.session().security_level()
    }
    fn external_authenticate(&mut self, command: &[u8]) -> Result<SecurityLevel, ScpError> {
        self.session_mut().external_authenticate(command)
    }
    fn unwrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.session_mut().unwrap_command(command)
    }
    fn wrap_response(&mut self, data: &[u8], sw: u16) -> Vec<u8> {
        self.session_mut().wrap_response(data, sw)
    }
    fn decrypt_key(&self, block: &[u8], key_len: usize) -> Result<Zeroizing<Vec<u8>>, ScpError> {
        self.session().decrypt_key(block, key_len)
    }
    fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.session().encrypt_key(key)
    }
    fn is_aborted(&self) -> bool {
        self.session().is_aborted()
    }
    fn close(&mut self) {
        self.session_mut().close()
    }
}
