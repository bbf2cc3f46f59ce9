//! The GlobalPlatform secure channel of one logical channel: a layer around the dispatcher
//! (unwrap, dispatch, wrap), so every card manager command also works inside a channel.
//! The cryptography is the `secure-channel` crate's, shared with the terminal.

use secure_channel::{scp02, scp03, CardSecureChannel, ScpError, SecurityLevel};
use zeroize::Zeroizing;

/// The session of one SCP.
pub enum Session {
    Scp03(scp03::CardSession),
    Scp02(scp02::CardSession),
}

/// A secure channel session on one logical channel: opened by INITIALIZE UPDATE,
/// authenticated by EXTERNAL AUTHENTICATE, ended by a security error or a SELECT.
pub struct ChannelScp {
    session: Session,
    /// The level EXTERNAL AUTHENTICATE negotiated; `None` until then.
    pub level: Option<SecurityLevel>,
    /// The KVN of the key set in use (PUT KEY needs it).
    pub kvn: u8,
}

impl std::fmt::Debug for ChannelScp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChannelScp(SCP0{}, KVN {:02X}, {:?})",
            self.scp(),
            self.kvn,
            self.level
        )
    }
}

impl ChannelScp {
    pub fn new(session: Session, kvn: u8) -> ChannelScp {
        ChannelScp {
            session,
            level: None,
            kvn,
        }
    }

    pub fn scp(&self) -> u8 {
        match self.session {
            Session::Scp03(_) => 3,
            Session::Scp02(_) => 2,
        }
    }

    /// EXTERNAL AUTHENTICATE (the whole wire APDU).
    pub fn external_authenticate(&mut self, apdu: &[u8]) -> Result<SecurityLevel, ScpError> {
        let level = match &mut self.session {
            Session::Scp03(s) => s.external_authenticate(apdu),
            Session::Scp02(s) => s.external_authenticate(apdu),
        }?;
        self.level = Some(level);
        Ok(level)
    }

    fn channel(&mut self) -> &mut dyn CardSecureChannel {
        match &mut self.session {
            Session::Scp03(s) => s,
            Session::Scp02(s) => s,
        }
    }

    pub fn unwrap_command(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ScpError> {
        self.channel().unwrap_command(apdu)
    }

    pub fn wrap_response(&mut self, data: &[u8], sw: u16) -> Vec<u8> {
        self.channel().wrap_response(data, sw)
    }

    /// Decrypt a PUT KEY key component (SCP03: static DEK; SCP02: session DEK).
    pub fn decrypt_key(
        &self,
        block: &[u8],
        key_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, ScpError> {
        match &self.session {
            Session::Scp03(s) => s.decrypt_key(block, key_len),
            Session::Scp02(s) => s.decrypt_key(block, key_len),
        }
    }
}
