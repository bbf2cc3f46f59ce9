//! The library's error type: what failed, why, and what the user can do about it.

use thiserror::Error;

/// Everything that can go wrong between the terminal and a card.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach pcscd ({0}); start it: pcscd --foreground, or systemctl start pcscd")]
    NoService(pcsc::Error),
    #[error("pcscd lists no reader; install vsmartcard-vpcd and restart pcscd")]
    NoReaders,
    #[error(
        "no card is present in any reader ({0}); start the card: card-emulator run --state FILE"
    )]
    NoCard(String),
    #[error("no card in reader {0:?}; start the card: card-emulator run --state FILE (use --slot N for reader 00 0N)")]
    NoCardIn(String),
    #[error("no reader matches {wanted:?}; readers are: {available}")]
    NoSuchReader { wanted: String, available: String },
    #[error("PC/SC {op} failed on {reader:?}: {source}")]
    Pcsc {
        op: &'static str,
        reader: String,
        #[source]
        source: pcsc::Error,
    },
    #[error("the card answered {0} byte(s); a response needs at least the 2 status bytes")]
    ShortResponse(usize),
    #[error("the card kept answering 61xx after {0} GET RESPONSE commands; giving up")]
    EndlessGetResponse(usize),
    #[error("invalid APDU {text:?}: {reason}")]
    BadApdu { text: String, reason: String },
    #[error("secure channel: {step} failed: {source}")]
    Scp {
        step: &'static str,
        #[source]
        source: secure_channel::ScpError,
    },
    #[error("the secure channel has ended (card reset or a security error); open a new one")]
    ScpClosed,
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// Classify a PC/SC error, turning the ones users meet into advice.
    pub fn pcsc(op: &'static str, reader: &str, e: pcsc::Error) -> ClientError {
        match e {
            pcsc::Error::NoService | pcsc::Error::ServiceStopped => ClientError::NoService(e),
            pcsc::Error::NoReadersAvailable => ClientError::NoReaders,
            pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => {
                ClientError::NoCardIn(reader.to_string())
            }
            source => ClientError::Pcsc {
                op,
                reader: reader.to_string(),
                source,
            },
        }
    }
}

impl From<apdu_specs::ResponseError> for ClientError {
    fn from(e: apdu_specs::ResponseError) -> ClientError {
        match e {
            apdu_specs::ResponseError::TooShort(n) => ClientError::ShortResponse(n),
        }
    }
}
