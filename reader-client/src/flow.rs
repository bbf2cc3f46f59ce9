//! The seed steps as a terminal runs them: [`register`] (steps 1-5 on one card connection) and [`service`] (step 6), each step printed.
//!
//! Steps (seed document 1): 1 R to the server via the portal; 2 the server authenticates
//! the SE; 3 R' back via the portal; 4 VERIFY SERVER request to the SE; 5 the SE verifies
//! the server's signature and the grant; 6 secure connection and service call.

use crate::auth_client::{self, AuthClientError};
use crate::portal_client::{PortalClient, PortalError};
use crate::Transport;
use apdu_specs::auth::{Call, CallResult, CallStatus, ProtectedMessage};
use apdu_specs::hexfmt;
use std::io::Write;

/// Why a flow stopped: which stage, and the card's or the server's reason.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{stage}: {source}")]
    Card {
        stage: &'static str,
        #[source]
        source: AuthClientError,
    },
    #[error("{stage}: {source}{advice}")]
    Portal {
        stage: &'static str,
        #[source]
        source: PortalError,
        advice: &'static str,
    },
    #[error("step 6: the server answered the call `{call}` with {status:?}: {message}")]
    CallNotOk {
        call: String,
        status: CallStatus,
        message: String,
    },
    #[error("writing the transcript: {0}")]
    Output(#[from] std::io::Error),
}

impl FlowError {
    /// The card's status word, when the card refused.
    pub fn card_status(&self) -> Option<apdu_specs::Status> {
        match self {
            FlowError::Card { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The server's JSON error code, when the server (or portal) refused.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            FlowError::Portal { source, .. } => source.code(),
            _ => None,
        }
    }
}

fn card(stage: &'static str) -> impl Fn(AuthClientError) -> FlowError {
    move |source| FlowError::Card { stage, source }
}

fn portal(stage: &'static str) -> impl Fn(PortalError) -> FlowError {
    move |source| {
        let advice = match source.code() {
            Some("bad_certificate") => "; the server does not trust this card's issuer CA: configure issuer_ca_public_key with `card-emulator ca public-key --ca FILE`",
            Some("certificate_expired") => "; the SE certificate expired: personalize the card again",
            Some("unknown_service") => "; the server offers no such service: check --service",
            Some("service_mismatch") => "; R (or the connection) names another service than the URL",
            Some("replay") | Some("stale_counter") => "; an old or replayed message: run the step again for a fresh one",
            Some("unknown_connection") => "; the server knows no such connection: run reader-client register first",
            Some("expired") => "; the secure connection expired: run reader-client register again",
            Some("authentication_failed") => "; the message was modified, replayed or reordered on the way",
            Some("unknown_service_at_portal") | Some("not_found") => "; check --service and the portal's service table",
            _ => "",
        };
        FlowError::Portal {
            stage,
            source,
            advice,
        }
    }
}

/// One transcript line: `  [step N] text` for a seed step, `  [card]   text` otherwise.
pub fn say(out: &mut dyn Write, step: Option<u8>, text: &str) -> std::io::Result<()> {
    match step {
        Some(n) => writeln!(out, "  [step {n}] {text}"),
        None => writeln!(out, "  [card]   {text}"),
    }
}

/// An ICCID in its BCD form (nibbles swapped, `F` padding) as digits.
pub fn iccid_digits(bcd: &[u8]) -> String {
    bcd.iter()
        .flat_map(|b| [b & 0x0F, b >> 4])
        .filter(|n| *n <= 9)
        .map(|n| char::from(b'0' + n))
        .collect()
}

/// What the SE accepted at step 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The calls granted (as R' said and the SE verified).
    pub scope: Vec<String>,
    /// Expiry of the grant and the connection (Unix seconds).
    pub expiry: u64,
}

/// Seed steps 1-5 on one card connection: SELECT, VERIFY of the container PIN, GET
/// REGISTRATION, R to the portal, R' back, VERIFY SERVER. On success the SE holds an open
/// secure connection (durable, in the enabled container).
pub fn register(
    t: &mut dyn Transport,
    portal_client: &PortalClient,
    service: &str,
    pin: &[u8],
    out: &mut dyn Write,
) -> Result<Registered, FlowError> {
    auth_client::select(t).map_err(card("SELECT of the authentication applet"))?;
    say(
        out,
        None,
        &format!(
            "SELECT authentication applet {}: ok",
            hexfmt::upper(&apdu_specs::auth::AID)
        ),
    )?;
    verify_cardholder(t, pin, out)?;
    let reg = auth_client::get_registration(t, service).map_err(card("GET REGISTRATION"))?;
    say(
        out,
        None,
        &format!(
            "GET REGISTRATION `{service}`: sealed R, {} bytes (certificate, EID, ICCID, counter and signature are encrypted to the server's key; the terminal and the portal cannot read them)",
            reg.r.len(),
        ),
    )?;
    say(
        out,
        Some(1),
        &format!(
            "R to the server via the portal: POST {} ({} bytes)",
            portal_client.url(service, "register"),
            reg.r.len(),
        ),
    )?;
    let r_prime = match portal_client.register(service, &reg.r) {
        Ok(a) => a,
        Err(e) => {
            say(out, Some(2), &format!("the server refused the SE: {e}"))?;
            return Err(portal("step 2 (the server authenticates the SE)")(e));
        }
    };
    say(
        out,
        Some(2),
        "the server opened R, authenticated the SE (issuer CA certificate, SE signature, fresh nonce, counter) and signed and sealed its answer",
    )?;
    say(
        out,
        Some(3),
        &format!(
            "sealed R' back via the portal: {} bytes (grant, scope and expiry are encrypted to this R's handshake keys)",
            r_prime.len(),
        ),
    )?;
    say(
        out,
        Some(4),
        &format!(
            "VERIFY SERVER request to the SE with the sealed R' ({} bytes)",
            r_prime.len()
        ),
    )?;
    let summary = match auth_client::verify_server(t, &r_prime) {
        Ok(s) => s,
        Err(e) => {
            say(out, Some(5), &format!("the SE refused R': {e}"))?;
            return Err(card(
                "step 5 (the SE verifies the server's signature and the grant)",
            )(e));
        }
    };
    say(
        out,
        Some(5),
        &format!(
            "the SE opened R' (the server derived the same keys), verified the server signature, that R' answers this very R, the grant and the expiry: secure connection open (scope `{}`, until {})",
            summary.scope.join(","),
            summary.expiry
        ),
    )?;
    Ok(Registered {
        scope: summary.scope,
        expiry: summary.expiry,
    })
}

/// VERIFY of the container PIN, reported without the PIN: the SE serves nothing without it.
fn verify_cardholder(
    t: &mut dyn Transport,
    pin: &[u8],
    out: &mut dyn Write,
) -> Result<(), FlowError> {
    auth_client::verify_pin(t, pin).map_err(card("VERIFY of the container PIN"))?;
    say(
        out,
        None,
        "VERIFY container PIN: ok (the PIN is never printed)",
    )?;
    Ok(())
}

/// How often step 6 sends one up message when the portal or the server is out.
pub const MESSAGE_ATTEMPTS: u32 = 3;
/// The pause before sending it again.
pub const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// The result of a service call, and the credential EF read back after `provision`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub result: CallResult,
    /// EF 6F10 after VERIFY (when a PIN was given and the call was `provision`).
    pub credential_ef: Option<Vec<u8>>,
}

/// Seed step 6 on a (new) card connection: SECURE SEND of the call, the up message to
/// the server via the portal, the down message to SECURE RECEIVE. After `provision`,
/// with `pin`, EF 6F10 is read back (VERIFY + READ BINARY) to show the credential.
pub fn service(
    t: &mut dyn Transport,
    portal_client: &PortalClient,
    service: &str,
    call: &Call,
    pin: Option<&[u8]>,
    out: &mut dyn Write,
) -> Result<Served, FlowError> {
    auth_client::select(t).map_err(card("SELECT of the authentication applet"))?;
    // The cardholder gates every use of the connection (SECURE SEND and SECURE RECEIVE
    // answer 6982 without the container PIN verified since the last reset).
    if let Some(pin) = pin {
        verify_cardholder(t, pin, out)?;
    }
    let up = auth_client::secure_send(t, call).map_err(card("step 6 (SECURE SEND)"))?;
    let counter = ProtectedMessage::parse(&up)
        .map(|m| m.counter.to_string())
        .unwrap_or_else(|_| "?".into());
    say(
        out,
        Some(6),
        &format!(
            "SECURE SEND `{}` ({} bytes of data): protected message {} bytes, counter {counter}",
            call.name,
            call.data.len(),
            up.len()
        ),
    )?;
    // The server sends a lost answer again for the same message, so after an outage the
    // same bytes go again (a new SECURE SEND would leave the SE and the server out of step).
    let mut attempt = 1;
    let sent = loop {
        match portal_client.message(service, &up) {
            Err(e) if e.is_outage() && attempt < MESSAGE_ATTEMPTS => {
                say(
                    out,
                    Some(6),
                    &format!("{e}; sending the same message again in {RETRY_PAUSE:?}"),
                )?;
                std::thread::sleep(RETRY_PAUSE);
                attempt += 1;
            }
            r => break r,
        }
    };
    let down = match sent {
        Ok(d) => d,
        Err(e) => {
            say(
                out,
                Some(6),
                &format!("the server refused the message: {e}"),
            )?;
            return Err(portal("step 6 (the server opens the call)")(e));
        }
    };
    say(
        out,
        Some(6),
        &format!(
            "via the portal: POST {} -> protected answer {} bytes",
            portal_client.url(service, "messages"),
            down.len()
        ),
    )?;
    let result = match auth_client::secure_receive(t, &down) {
        Ok(r) => r,
        Err(e) => {
            say(out, Some(6), &format!("the SE refused the answer: {e}"))?;
            return Err(card("step 6 (SECURE RECEIVE)")(e));
        }
    };
    if result.status != CallStatus::Ok {
        let message = String::from_utf8_lossy(&result.data).into_owned();
        say(
            out,
            Some(6),
            &format!(
                "SECURE RECEIVE: the server answered {:?}: {message}",
                result.status
            ),
        )?;
        return Err(FlowError::CallNotOk {
            call: call.name.clone(),
            status: result.status,
            message,
        });
    }
    let shown = match std::str::from_utf8(&result.data) {
        Ok(s) if !s.is_empty() => format!(" {:?}", s),
        _ => String::new(),
    };
    say(
        out,
        Some(6),
        &format!(
            "SECURE RECEIVE: the SE authenticated the answer: ok, {} bytes of result data{shown}",
            result.data.len()
        ),
    )?;
    let mut credential_ef = None;
    if call.name == "provision" {
        say(
            out,
            Some(6),
            "the SE stored the issued credential in EF 6F10 of the enabled container (it crossed the terminal and the portal encrypted)",
        )?;
        if let Some(pin) = pin {
            let ef = auth_client::read_credential(t, pin)
                .map_err(card("reading EF 6F10 after VERIFY"))?;
            say(
                out,
                None,
                &format!(
                    "VERIFY + READ BINARY EF 6F10: {} bytes: {}",
                    ef.len(),
                    hexfmt::upper(&ef)
                ),
            )?;
            credential_ef = Some(ef);
        }
    }
    Ok(Served {
        result,
        credential_ef,
    })
}
