//! One terminal of the load: an in-process card driven through the real reader-client code against the portal, retrying across server outages, recording what it was granted.

use crate::{Gate, SERVICE};
use apdu_specs::auth::{Call, CallStatus, ProtectedMessage};
use card_emulator::ca::IssuerCa;
use card_emulator::state::TrustAnchor;
use card_emulator::{profile, system_clock, Card};
use reader_client::auth_client::{self, AuthClientError};
use reader_client::portal_client::{PortalClient, PortalError};
use reader_client::InProcess;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PIN: &[u8] = b"1234";
/// How long one request may keep failing for want of a server before it is a violation.
const OUTAGE_LIMIT: Duration = Duration::from_secs(60);

/// A registration request exactly as it went to the portal (for the replays).
#[derive(Clone)]
pub struct SentR {
    /// The sealed R (`70`).
    pub r: Vec<u8>,
}

/// What one terminal did and saw.
#[derive(Default)]
pub struct Report {
    pub flows: u64,
    /// Every R sent (each ended with a definitive answer).
    pub sent: Vec<SentR>,
    /// The connection ids of the grants this terminal received (R' accepted by its card).
    pub granted: Vec<[u8; 16]>,
    /// Registrations whose first answer was lost in an outage and whose retry was then
    /// refused as a replay: committed, answer lost.
    pub lost_register_answers: u64,
    /// Messages sent again after an outage and answered (the server sends a lost answer
    /// again, so a committed call's result is not lost either).
    pub recovered_messages: u64,
    /// Requests sent again after an outage answer (502/504 or no connection).
    pub retries: u64,
    /// R sent again right after its grant (every `replay_every` flows): refused each time.
    pub midrun_replays: u64,
    pub provisions: u64,
    /// Flow durations in microseconds.
    pub latencies_us: Vec<u64>,
    pub violations: Vec<String>,
}

/// The terminal: its card, its portal client, what it saw.
pub struct Terminal {
    pub id: usize,
    pub card: InProcess<Card>,
    portal: PortalClient,
    gate: Arc<Gate>,
    pub report: Report,
}

/// A card of the default profile with its own EID, certified by `ca`, trusting `server_key`
/// for [`SERVICE`] in the enabled container. The trust anchor is written into the state
/// directly: a fixture, the product installs it over SCP03 (tests/tests/mutual_auth.rs).
pub fn card(ca: &IssuerCa, server_key: &[u8], n: usize) -> Result<InProcess<Card>, String> {
    let mut state = profile::build(profile::DEFAULT_PROFILE).map_err(|e| e.to_string())?;
    let len = state.eid.len();
    state.eid[len - 2..].copy_from_slice(&(n as u16).to_be_bytes());
    ca.personalize(&mut state, system_clock())
        .map_err(|e| e.to_string())?;
    let c = state
        .containers_mut()
        .iter_mut()
        .find(|c| c.enabled)
        .ok_or("the default profile has no enabled container")?;
    c.trust_anchors.push(TrustAnchor {
        service: SERVICE.into(),
        public_key: server_key.to_vec(),
    });
    Ok(InProcess::new(Card::in_memory(state)))
}

enum Answer<T> {
    Ok(T),
    /// Refused with this status and code.
    Refused(u16, String, String),
}

impl Terminal {
    pub fn new(id: usize, card: InProcess<Card>, portal_url: &str, gate: Arc<Gate>) -> Terminal {
        Terminal {
            id,
            card,
            portal: PortalClient::new(portal_url).expect("a loopback portal URL"),
            gate,
            report: Report::default(),
        }
    }

    fn violation(&mut self, what: String) {
        self.report
            .violations
            .push(format!("terminal {}: {what}", self.id));
    }

    /// Sends until a definitive answer (anything but an outage); `retried` tells whether an
    /// earlier attempt may have reached the server.
    fn until_answered<T>(
        &mut self,
        what: &str,
        mut send: impl FnMut(&PortalClient) -> Result<T, PortalError>,
    ) -> Result<(Answer<T>, bool), String> {
        let start = Instant::now();
        let mut retried = false;
        let mut pause = Duration::from_millis(2);
        loop {
            match send(&self.portal) {
                Ok(v) => return Ok((Answer::Ok(v), retried)),
                Err(e) if e.is_outage() => {
                    if start.elapsed() > OUTAGE_LIMIT {
                        return Err(format!("{what}: no answer for {OUTAGE_LIMIT:?}: {e}"));
                    }
                    retried = true;
                    self.report.retries += 1;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(PortalError::Refused {
                    status,
                    code,
                    message,
                    ..
                }) => return Ok((Answer::Refused(status, code, message), retried)),
                Err(e) => return Err(format!("{what}: {e}")),
            }
        }
    }

    /// One seed-1 flow: registration, then `echo` (or `provision`, every tenth flow).
    /// Returns false when the terminal must stop (a violation was recorded).
    pub fn flow(&mut self, replay_every: u64) -> bool {
        let started = Instant::now();
        match self.try_flow(replay_every) {
            Ok(()) => {
                self.report.flows += 1;
                self.gate.flows_done.fetch_add(1, Ordering::SeqCst);
                self.report
                    .latencies_us
                    .push(started.elapsed().as_micros() as u64);
                true
            }
            Err(v) => {
                self.violation(v);
                false
            }
        }
    }

    fn try_flow(&mut self, replay_every: u64) -> Result<(), String> {
        let card_err = |what: &str| {
            let what = what.to_string();
            move |e: AuthClientError| format!("{what}: {e}")
        };
        auth_client::select(&mut self.card).map_err(card_err("SELECT"))?;
        auth_client::verify_pin(&mut self.card, PIN).map_err(card_err("VERIFY"))?;
        let reg = auth_client::get_registration(&mut self.card, SERVICE)
            .map_err(card_err("GET REGISTRATION"))?;
        let sent = SentR { r: reg.r.clone() };
        self.report.sent.push(sent.clone());
        let (answer, retried) =
            self.until_answered("register", |p| p.register(SERVICE, &sent.r))?;
        let r_prime = match answer {
            Answer::Ok(a) => a,
            Answer::Refused(409, code, _) if retried && (code == "replay") => {
                // The attempt before the outage was committed; its answer was lost with the server.
                self.report.lost_register_answers += 1;
                return Ok(());
            }
            Answer::Refused(status, code, message) => {
                return Err(format!(
                    "a fresh R (retried: {retried}) was refused: {status} {code}: {message}"
                ))
            }
        };
        // R' is sealed to the SE: only the card reads the grant (9302 if refused).
        auth_client::verify_server(&mut self.card, &r_prime).map_err(card_err("VERIFY SERVER"))?;

        if replay_every > 0 && self.report.flows % replay_every == replay_every - 1 {
            self.replay(&sent, "mid-run")?;
            self.report.midrun_replays += 1;
        }

        let provision = self.report.flows % 10 == 9;
        let data = format!("t{} f{}", self.id, self.report.flows).into_bytes();
        let cid = self.call(if provision { "provision" } else { "echo" }, &data)?;
        self.report.granted.push(cid);
        if provision {
            self.report.provisions += 1;
        }
        Ok(())
    }

    /// SECURE SEND of one call, the up message through the portal (the same message again
    /// after an outage), SECURE RECEIVE of the answer; the connection id.
    pub fn call(&mut self, name: &str, data: &[u8]) -> Result<[u8; 16], String> {
        let call = Call {
            name: name.into(),
            data: data.to_vec(),
        };
        auth_client::select(&mut self.card).map_err(|e| format!("SELECT: {e}"))?;
        let up = auth_client::secure_send(&mut self.card, &call)
            .map_err(|e| format!("SECURE SEND: {e}"))?;
        let cid = ProtectedMessage::parse(&up)
            .map_err(|e| format!("up message parse: {e}"))?
            .cid;
        let (answer, retried) = self.until_answered("message", |p| p.message(SERVICE, &up))?;
        let down = match answer {
            Answer::Ok(d) => {
                if retried {
                    self.report.recovered_messages += 1;
                }
                d
            }
            Answer::Refused(404, code, message) if code == "unknown_connection" => {
                return Err(format!(
                    "a granted connection is gone from the server (committed grant lost): {message}"
                ))
            }
            Answer::Refused(status, code, message) => {
                return Err(format!(
                    "call {name} (sent again after an outage: {retried}) refused: {status} {code}: {message}"
                ))
            }
        };
        let result = auth_client::secure_receive(&mut self.card, &down)
            .map_err(|e| format!("SECURE RECEIVE: {e}"))?;
        if result.status != CallStatus::Ok {
            return Err(format!("call {name} answered {:?}", result.status));
        }
        if name == "echo" && result.data != data {
            return Err("echo answered other data".into());
        }
        Ok(cid)
    }

    /// Sends `r` again: it must be refused as a replay (409), never granted twice.
    pub fn replay(&mut self, r: &SentR, when: &str) -> Result<(), String> {
        let (answer, _) = self.until_answered("replay", |p| p.register(SERVICE, &r.r))?;
        match answer {
            Answer::Refused(409, code, _) if code == "replay" || code == "stale_counter" => Ok(()),
            Answer::Ok(_) => Err(format!("{when} replay of an R was granted a second time")),
            Answer::Refused(status, code, message) => Err(format!(
                "{when} replay answered {status} {code} instead of 409 replay: {message}"
            )),
        }
    }
}
