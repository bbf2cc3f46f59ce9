//! The authentication applet (seed document 1), terminal side: SELECT, VERIFY of the container PIN, GET REGISTRATION, VERIFY SERVER, SECURE SEND / RECEIVE, and the credential EF.
//!
//! The terminal relays what it cannot check: R' and down messages go to the card as the
//! portal delivered them (the card is the judge, with its documented status words), so a
//! modified message is refused by the SE and not silently "fixed" here.

use crate::exchange::transmit_following;
use crate::{ClientError, Transport};
use apdu_specs::auth::{
    self, AuthCommand, Call, CallResult, ConnectionSummary, GetRegistration, SealedRegistration,
};
use apdu_specs::{Command, Status};

/// Reference of the container PIN (VERIFY P2), as in the default profile.
pub const CONTAINER_PIN_REF: u8 = 0x81;
/// The EF that a `provision` call's credential is written to.
pub const CREDENTIAL_EF: u16 = 0x6F10;

/// Why a command to the authentication applet failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthClientError {
    #[error(transparent)]
    Transport(#[from] ClientError),
    #[error("{command} answered {status}: {advice}")]
    Refused {
        command: &'static str,
        status: Status,
        advice: String,
    },
    #[error("{what} from the card is malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("cannot build {command}: {reason}")]
    Build {
        command: &'static str,
        reason: String,
    },
}

impl AuthClientError {
    /// The card's status word, when the card refused.
    pub fn status(&self) -> Option<Status> {
        match self {
            AuthClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What to tell a user about `status` answered to `command` (mutual-auth.md, card commands).
pub fn advice(command: &str, status: Status) -> String {
    let sw = status.to_u16();
    let text = match (command, sw) {
        ("SELECT", 0x6A82) => "no enabled container holds the authentication applet; enable one: reader-client containers enable ID",
        ("VERIFY", 0x6983) => "the container PIN is blocked; unblock it with the PUK (RESET RETRY COUNTER)",
        ("VERIFY", s) if s & 0xFFF0 == 0x63C0 => {
            return format!("wrong container PIN, {} tries left", s & 0x0F)
        }
        (_, 0x6982) => "the container PIN is not verified (VERIFY first, on the same connection)",
        (_, 0x9306) => "the enabled container trusts no server key for this service; install it: reader-client gp install-anchor --container ISDP_AID --service ID --server-key HEX",
        (_, 0x6985) => "no pending registration (already answered, or the container was switched): run reader-client register again",
        (_, 0x9301) => "the server's answer is not signed by the trusted server key, or does not answer this registration (modified or foreign R')",
        ("SECURE SEND", 0x9302) => "the call is outside the scope the server granted",
        (_, 0x9302) => "the server did not grant this service: check its grant policy",
        (_, 0x9303) => "the grant or the secure connection expired: run reader-client register again",
        (_, 0x9304) => "no secure connection in the enabled container: run reader-client register first (a container switch discards it)",
        (_, 0x9305) => "the server's message failed authentication (modified, replayed, reordered or truncated): nothing was accepted",
        (_, 0x6A80) => "the card refused the command data as malformed",
        (_, 0x6A84) => "not enough memory on the card for the credential",
        _ => "see the status word",
    };
    text.to_string()
}

fn refused(command: &'static str, status: Status) -> AuthClientError {
    AuthClientError::Refused {
        command,
        status,
        advice: advice(command, status),
    }
}

/// Send `apdu` (following `61xx`), require `9000` (or one of `also_ok`), return the data.
fn run(
    t: &mut dyn Transport,
    command: &'static str,
    apdu: &[u8],
    also_ok: &[Status],
) -> Result<Vec<u8>, AuthClientError> {
    let r = transmit_following(t, apdu, true)?;
    if r.status == Status::Success || also_ok.contains(&r.status) {
        Ok(r.data)
    } else {
        Err(refused(command, r.status))
    }
}

fn bytes(command: &'static str, cmd: &Command<'_>) -> Result<Vec<u8>, AuthClientError> {
    cmd.to_bytes().map_err(|e| AuthClientError::Build {
        command,
        reason: e.to_string(),
    })
}

/// SELECT the authentication applet of the enabled container (`00 A4 04 00 07 <AID> 00`).
pub fn select(t: &mut dyn Transport) -> Result<(), AuthClientError> {
    let cmd = Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(auth::AID.to_vec())
        .with_le(256);
    run(t, "SELECT", &bytes("SELECT", &cmd)?, &[])?;
    Ok(())
}

/// VERIFY of the container PIN (`00 20 00 81`). The PIN travels only in this APDU; the
/// tracer redacts VERIFY data.
pub fn verify_pin(t: &mut dyn Transport, pin: &[u8]) -> Result<(), AuthClientError> {
    let cmd = Command::new(0x00, 0x20, 0x00, CONTAINER_PIN_REF).with_data(pin.to_vec());
    let mut apdu = bytes("VERIFY", &cmd)?;
    let r = run(t, "VERIFY", &apdu, &[]);
    apdu.fill(0);
    r.map(|_| ())
}

/// The sealed R as the card returned it (the terminal relays it; it cannot read the SE's
/// identity, counter or signature inside), with its clear fields for reports.
#[derive(Debug, Clone)]
pub struct Registration {
    /// `70` TLV.
    pub r: Vec<u8>,
    pub parsed: SealedRegistration,
}

/// GET REGISTRATION for `service` (`80 10 00 00 Lc {81 service} 00`, `61xx` followed).
pub fn get_registration(
    t: &mut dyn Transport,
    service: &str,
) -> Result<Registration, AuthClientError> {
    const NAME: &str = "GET REGISTRATION";
    let cmd = AuthCommand::GetRegistration(GetRegistration {
        service_id: service.to_string(),
    })
    .to_command();
    let data = run(t, NAME, &bytes(NAME, &cmd)?, &[])?;
    let parsed = SealedRegistration::parse(&data).map_err(|e| AuthClientError::Malformed {
        what: "sealed R (GET REGISTRATION)",
        reason: e.to_string(),
    })?;
    Ok(Registration { r: data, parsed })
}

/// A command of the applet with raw data (what the portal delivered, unparsed).
fn raw_command(ins: u8, data: &[u8], le: bool) -> Command<'static> {
    let le = le.then_some(if data.len() > 255 { 65_536 } else { 256 });
    Command::new(auth::CLA, ins, 0x00, 0x00)
        .with_data(data.to_vec())
        .with_le(le)
}

/// VERIFY SERVER with the sealed R' (`78`) exactly as relayed; the scope and expiry of
/// the connection the SE opened.
pub fn verify_server(
    t: &mut dyn Transport,
    sealed_r_prime: &[u8],
) -> Result<ConnectionSummary, AuthClientError> {
    const NAME: &str = "VERIFY SERVER";
    let cmd = raw_command(auth::ins::VERIFY_SERVER, sealed_r_prime, true);
    let data = run(t, NAME, &bytes(NAME, &cmd)?, &[])?;
    ConnectionSummary::parse(&data).map_err(|e| AuthClientError::Malformed {
        what: "VERIFY SERVER answer",
        reason: e.to_string(),
    })
}

/// SECURE SEND of `call`: the protected up message (`73`) for the server.
pub fn secure_send(t: &mut dyn Transport, call: &Call) -> Result<Vec<u8>, AuthClientError> {
    const NAME: &str = "SECURE SEND";
    let cmd = AuthCommand::SecureSend(call.clone()).to_command();
    run(t, NAME, &bytes(NAME, &cmd)?, &[])
}

/// SECURE RECEIVE of the down message exactly as relayed: the result (`75`, without the
/// credential, which the card keeps in EF 6F10).
pub fn secure_receive(t: &mut dyn Transport, down: &[u8]) -> Result<CallResult, AuthClientError> {
    const NAME: &str = "SECURE RECEIVE";
    let cmd = raw_command(auth::ins::SECURE_RECEIVE, down, true);
    let data = run(t, NAME, &bytes(NAME, &cmd)?, &[])?;
    CallResult::parse(&data).map_err(|e| AuthClientError::Malformed {
        what: "call result (SECURE RECEIVE)",
        reason: e.to_string(),
    })
}

/// READ BINARY of the credential EF 6F10 of the enabled container; VERIFY of the
/// container PIN first (the EF is readable after it only).
pub fn read_credential(t: &mut dyn Transport, pin: &[u8]) -> Result<Vec<u8>, AuthClientError> {
    select(t)?;
    verify_pin(t, pin)?;
    let [hi, lo] = CREDENTIAL_EF.to_be_bytes();
    run(
        t,
        "SELECT EF 6F10",
        &[0x00, 0xA4, 0x02, 0x0C, 0x02, hi, lo],
        &[],
    )?;
    run(
        t,
        "READ BINARY",
        &[0x00, 0xB0, 0x00, 0x00, 0x00],
        &[Status::EndOfFile],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_names_the_fix_for_each_documented_status() {
        assert!(advice("VERIFY SERVER", Status::ServiceNotGranted).contains("grant policy"));
        assert!(advice("SECURE SEND", Status::ServiceNotGranted).contains("scope"));
        assert!(advice("GET REGISTRATION", Status::NoTrustAnchor).contains("install-anchor"));
        assert!(advice("VERIFY", Status::from_u16(0x63C2)).contains("2 tries left"));
        assert!(advice("SELECT", Status::FileNotFound).contains("containers enable"));
    }

    #[test]
    fn raw_commands_go_extended_above_255_bytes() {
        let c = raw_command(auth::ins::SECURE_RECEIVE, &[0; 300], true);
        let b = c.to_bytes().unwrap();
        assert_eq!(&b[..7], &[0x80, 0x16, 0, 0, 0, 0x01, 0x2C]);
        assert_eq!(&b[b.len() - 2..], &[0, 0]);
        let c = raw_command(auth::ins::VERIFY_SERVER, &[0; 10], false);
        assert_eq!(c.to_bytes().unwrap().len(), 15);
    }
}
