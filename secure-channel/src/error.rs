//! Why a secure-channel operation failed, and the status word a card answers for it.

use thiserror::Error;

/// Every way opening or using a secure channel can fail.
///
/// On the card, answer [`ScpError::status_word`]; a failed EXTERNAL AUTHENTICATE or unwrap also
/// aborts the session (GP Amd D §5.6: later commands are refused with a security error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScpError {
    /// Host side: the card's cryptogram in the INITIALIZE UPDATE response is wrong.
    #[error("card cryptogram mismatch: the card holds other keys than ours (check the key version and the key values) or it is not the card we expect")]
    CardCryptogram,
    /// Card side: the host cryptogram in EXTERNAL AUTHENTICATE is wrong.
    #[error("host cryptogram mismatch: the terminal uses other keys, or its EXTERNAL AUTHENTICATE belongs to another INITIALIZE UPDATE")]
    HostCryptogram,
    /// Card side: a C-MAC did not verify (also covers EXTERNAL AUTHENTICATE's MAC).
    #[error("C-MAC verification failed: the command was altered, replayed, or the MAC chain is out of step; open a new secure channel")]
    CommandMac,
    /// Card side: a command under a MAC-protected level arrived without the secure-messaging bit.
    #[error("command without secure messaging (CLA {0:02X}) while the session requires a C-MAC; wrap it or open a session at level 00")]
    MissingMac(u8),
    /// Host side: an R-MAC did not verify.
    #[error("R-MAC verification failed: the response was altered or does not belong to the last command; discard the session")]
    ResponseMac,
    /// Decrypted data does not end in ISO 9797-1 method 2 padding (`80 00..`).
    #[error(
        "bad padding after decryption: the cryptogram was altered or encrypted under another key"
    )]
    BadPadding,
    /// A command APDU that cannot be parsed or has the wrong shape for this step.
    #[error("malformed command APDU: {0}")]
    MalformedApdu(String),
    /// A response APDU that cannot be parsed or has the wrong shape for this step.
    #[error("malformed response APDU: {0}")]
    MalformedResponse(String),
    /// A command answered with a status word that stops the handshake.
    #[error("{step} refused with SW {sw:04X}")]
    Refused { step: &'static str, sw: u16 },
    /// A security level (EXTERNAL AUTHENTICATE P1) this protocol or card does not offer.
    #[error("security level {0:02X} is not supported here (SCP03: 00 01 03 11 13 33 as the card's i parameter allows; SCP02 i=15/55: 00 01 03)")]
    UnsupportedLevel(u8),
    /// Protocol options (i parameter, S-mode, key version) we do not implement.
    #[error("unsupported secure channel option: {0}")]
    Unsupported(String),
    /// A key of a length the algorithm cannot use.
    #[error("key of {0} bytes is not usable here (AES: 16, 24 or 32; 3DES: 16 or 24; SCP02 static keys: 16)")]
    KeyLength(usize),
    /// The session has not completed EXTERNAL AUTHENTICATE, or was terminated.
    #[error(
        "secure channel is not open: authenticate first (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE)"
    )]
    NotOpen,
    /// Card side: the session was aborted by a security error; GP Amd D §5.6 / GP Card Spec
    /// E.1.2: every later command is refused until the session is terminated.
    #[error("secure channel session aborted after a security error: commands are refused until a new INITIALIZE UPDATE, a new SELECT or a reset")]
    Aborted,
    /// The key set's sequence counter reached its maximum (GP Amd D §6.2.2.1).
    #[error("sequence counter exhausted for this key set: replace the keys with PUT KEY (which resets it)")]
    CounterExhausted,
    /// A handshake step out of order (a second EXTERNAL AUTHENTICATE, one after a failure).
    #[error("{0} is out of sequence: start again with INITIALIZE UPDATE")]
    OutOfSequence(&'static str),
    /// The protected command would not fit in an APDU.
    #[error("command too long for secure messaging: {0} bytes after padding and MAC")]
    TooLong(usize),
    /// The operating system's random generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}

impl ScpError {
    /// The status word a card answers for this error (GP Card Spec v2.3 §11, ISO 7816-4 §5.6).
    pub fn status_word(&self) -> u16 {
        match self {
            // GP Card Spec v2.3 §11.3.3.1 / Amd D §7.2: authentication of host cryptogram failed.
            ScpError::HostCryptogram => 0x6300,
            ScpError::CommandMac
            | ScpError::MissingMac(_)
            | ScpError::BadPadding
            | ScpError::Aborted => 0x6982,
            ScpError::MalformedApdu(_) | ScpError::TooLong(_) => 0x6700,
            ScpError::UnsupportedLevel(_) => 0x6A86,
            ScpError::Unsupported(_) => 0x6A88,
            ScpError::NotOpen | ScpError::OutOfSequence(_) | ScpError::CounterExhausted => 0x6985,
            ScpError::CardCryptogram
            | ScpError::ResponseMac
            | ScpError::MalformedResponse(_)
            | ScpError::Refused { .. }
            | ScpError::KeyLength(_)
            | ScpError::Random(_) => 0x6F00,
        }
    }
}
