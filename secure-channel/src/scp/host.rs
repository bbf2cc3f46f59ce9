//! The host's end of a secure channel: builds INITIALIZE UPDATE, checks the card's cryptogram, sends EXTERNAL AUTHENTICATE, then wraps each command and unwraps its answer, for SCP02 and SCP03 alike.

use super::core::{Channel, Protocol};
use super::{scp02::Scp02, scp03::Scp03};
use crate::gp::{self, split_response};
use crate::{crypto, ScpError, SecurityLevel, StaticKeys};
use apdu_specs::ins::gp::EXTERNAL_AUTHENTICATE;
use std::marker::PhantomData;
use zeroize::Zeroizing;

/// The host's first step: holds the host challenge until the card answers INITIALIZE UPDATE
/// ([`crate::scp02::HostHandshake`], [`crate::scp03::HostHandshake`]).
pub struct HostHandshake<P: Protocol> {
    keys: StaticKeys,
    channel: u8,
    kvn: u8,
    /// The card's i parameter where its answer does not carry it (SCP02).
    pub(super) i: u8,
    host_challenge: Vec<u8>,
    protocol: PhantomData<P>,
}

impl<P: Protocol> HostHandshake<P> {
    /// Handshake with a fresh random 8-byte host challenge (SCP03: S8); `kvn` 00 asks for
    /// the first key set.
    pub fn new(keys: &StaticKeys, kvn: u8) -> Result<HostHandshake<P>, ScpError> {
        HostHandshake::with_challenge(keys, kvn, &crypto::random::<8>()?)
    }

    /// Handshake with a given host challenge: 8 bytes (SCP02, SCP03 S8) or 16 (SCP03 S16).
    pub fn with_challenge(
        keys: &StaticKeys,
        kvn: u8,
        host_challenge: &[u8],
    ) -> Result<HostHandshake<P>, ScpError> {
        P::check_host_setup(keys, host_challenge)?;
        Ok(HostHandshake {
            keys: keys.clone(),
            channel: 0,
            kvn,
            i: P::ASSUMED_I,
            host_challenge: host_challenge.to_vec(),
            protocol: PhantomData,
        })
    }

    /// Run on a logical channel (0..=19) instead of the basic channel.
    pub fn on_channel(mut self, channel: u8) -> Result<HostHandshake<P>, ScpError> {
        gp::channel_cla(channel, true)?;
        self.channel = channel;
        Ok(self)
    }

    /// The INITIALIZE UPDATE command to send.
    pub fn initialize_update(&self) -> Vec<u8> {
        let mut cmd = apdu_specs::gp::InitializeUpdate {
            kvn: self.kvn,
            host_challenge: self.host_challenge.clone(),
        }
        .to_command();
        // `on_channel` checked the channel, and the challenge is 8 or 16 bytes: both hold.
        cmd.cla = gp::channel_cla(self.channel, false).unwrap_or(0x80);
        cmd.to_bytes().unwrap_or_default()
    }

    /// Check the card's answer to INITIALIZE UPDATE (data and SW) and build EXTERNAL
    /// AUTHENTICATE for `level`. Send the returned command; if the card does not answer `9000`
    /// ([`HostSession::confirm`]), discard the session.
    pub fn authenticate(
        self,
        response: &[u8],
        level: SecurityLevel,
    ) -> Result<(HostSession<P>, Vec<u8>), ScpError> {
        let (protocol, answer, host_cryptogram) =
            P::host_handshake(&self.keys, &self.host_challenge, self.i, response, level)?;
        let mut ch = Channel::new(protocol, self.channel);
        let cla = gp::channel_cla(self.channel, true)?;
        let mac = ch.authentication_mac(cla, level.bits(), &host_cryptogram, false)?;
        let lc = host_cryptogram.len() + ch.mac_len();
        let mut command = vec![
            cla,
            EXTERNAL_AUTHENTICATE,
            level.bits(),
            0x00,
            u8::try_from(lc).map_err(|_| ScpError::TooLong(lc))?,
        ];
        command.extend_from_slice(&host_cryptogram);
        command.extend_from_slice(ch.wire_mac(&mac));
        ch.open(level, mac);
        let host = HostSession {
            ch,
            aborted: false,
            answer,
        };
        Ok((host, command))
    }
}

/// The host's side of an open session, for either protocol ([`crate::scp02::HostSession`],
/// [`crate::scp03::HostSession`]).
pub struct HostSession<P: Protocol> {
    ch: Channel<P>,
    /// An answer failed its R-MAC: nothing more is trusted.
    aborted: bool,
    answer: P::Answer,
}

impl<P: Protocol> HostSession<P> {
    pub(crate) fn protocol(&self) -> &P {
        &self.ch.protocol
    }

    /// The card's answer to INITIALIZE UPDATE.
    pub fn answer(&self) -> &P::Answer {
        &self.answer
    }

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
        P::answer_identity(&self.answer).0
    }

    /// Key diversification data the card answered with.
    pub fn kdd(&self) -> [u8; 10] {
        P::answer_identity(&self.answer).1
    }

    /// Protect one plain C-APDU: SCP03 encrypts (C-DEC), then MACs; SCP02 MACs the plain
    /// command, then encrypts. Le is kept (never MACed); an SCP03 command that outgrows short
    /// Lc is sent in extended form. The CLA must address the session's channel.
    pub fn wrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        if self.aborted {
            return Err(ScpError::Aborted);
        }
        self.ch.wrap_command(command)
    }

    /// Verify the R-MAC and decrypt R-ENC data of the response to the last wrapped command.
    /// Error status words carry neither data nor R-MAC. An R-MAC failure aborts the session.
    pub fn unwrap_response(&mut self, response: &[u8]) -> Result<(Vec<u8>, u16), ScpError> {
        if self.aborted {
            return Err(ScpError::Aborted);
        }
        let (data, sw) = split_response(response)?;
        if !self.ch.level.r_mac() {
            return Ok((data.to_vec(), sw));
        }
        if !gp::is_protected_status(sw) {
            if !data.is_empty() {
                return Err(ScpError::MalformedResponse(format!(
                    "{} data byte(s) with error SW {sw:04X} carry no R-MAC and cannot be trusted",
                    data.len()
                )));
            }
            return Ok((Vec::new(), sw));
        }
        let result = self.ch.verify_response(data, sw);
        if result.is_err() {
            self.aborted = true;
        }
        result.map(|d| (d, sw))
    }

    /// Encrypt a key for PUT KEY (SCP03: static K-DEK; SCP02: session S-DEK).
    pub fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.ch.protocol.encrypt_key(key)
    }

    /// Decrypt a key component block.
    pub fn decrypt_key(
        &self,
        block: &[u8],
        key_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, ScpError> {
        self.ch.protocol.decrypt_key(block, key_len)
    }
}

/// The side that asks: the host. Implemented by both protocols' host sessions and by
/// [`AnyHostSession`].
pub trait HostSecureChannel {
    fn security_level(&self) -> SecurityLevel;
    /// Key version the card answered INITIALIZE UPDATE with.
    fn kvn(&self) -> u8;
    /// Protect one plain C-APDU for the wire.
    fn wrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError>;
    /// Verify (and decrypt) the R-APDU answering the last wrapped command.
    fn unwrap_response(&mut self, response: &[u8]) -> Result<(Vec<u8>, u16), ScpError>;
    /// Encrypt a key for PUT KEY.
    fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError>;
}

impl<P: Protocol> HostSecureChannel for HostSession<P> {
    fn security_level(&self) -> SecurityLevel {
        HostSession::security_level(self)
    }
    fn kvn(&self) -> u8 {
        HostSession::kvn(self)
    }
    fn wrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        HostSession::wrap_command(self, command)
    }
    fn unwrap_response(&mut self, response: &[u8]) -> Result<(Vec<u8>, u16), ScpError> {
        HostSession::unwrap_response(self, response)
    }
    fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError> {
        HostSession::encrypt_key(self, key)
    }
}

either_protocol!(
    /// A host session of either protocol: what a terminal keeps for one open channel.
    AnyHostSession,
    HostSession,
    HostSecureChannel
);

impl HostSecureChannel for AnyHostSession {
    fn security_level(&self) -> SecurityLevel {
        self.session().security_level()
    }
    fn kvn(&self) -> u8 {
        self.session().kvn()
    }
    fn wrap_command(&mut self, command: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.session_mut().wrap_command(command)
    }
    fn unwrap_response(&mut self, response: &[u8]) -> Result<(Vec<u8>, u16), ScpError> {
        self.session_mut().unwrap_response(response)
    }
    fn encrypt_key(&self, key: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.session().encrypt_key(key)
    }
}
