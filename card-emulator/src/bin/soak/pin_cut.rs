//! The power-cut PIN attack: send a wrong VERIFY and cut the card a random instant after (SIGKILL of the process, or vpcd power off and hang-up), then prove the try counter never came back.
//!
//! The random delay (0..=`max_delay_us`) spreads the cuts over "before the card read the
//! command", "while it processes it" and "after it answered"; the report counts each.

use crate::harness::{self, hex, unhex, ListenCard, Rng, StdioCard, Vpcd};
use card_emulator::store::{FileStore, Store};
use std::path::Path;
use std::time::Duration;

const SELECT_APP: &str = "00A4040C08F056534544454D4F";
const WRONG_PIN: &str = "002000810439393939";
const RIGHT_PIN: &str = "002000810431323334";

/// How the card is cut after the wrong PIN is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// SIGKILL of `card-emulator run --stdio` after the line is written.
    Kill,
    /// vpcd power off (`00`) after the APDU frame, then hang up, over `run --listen`.
    PowerOff,
    /// SIGKILL of `card-emulator run --listen` after the APDU frame.
    VpcdKill,
}

/// Figures of one run.
#[derive(Debug, Default)]
pub struct Report {
    pub cuts: u32,
    /// Cuts after which the counter had gone down by one (the try was counted).
    pub counted: u32,
    /// Of those, cuts whose answer (63Cx) had already left the card (read after the cut).
    pub answered: u32,
    /// Cuts after which the counter was unchanged (the card never processed the APDU).
    pub unchanged: u32,
    pub violations: Vec<String>,
}

fn tries_in_state(state: &Path) -> Result<u8, String> {
    let st = FileStore::open(state)
        .and_then(|s| s.load())
        .map_err(|e| format!("the state file does not load: {e}"))?;
    Ok(st.pins[0].tries_left)
}

/// The VERIFY status answer (63Cx) as a try count; 9000 counts as "all tries" only when
/// the state says so, which the caller checks.
fn tries_from_sw(r: &[u8]) -> Option<u8> {
    match r {
        [0x63, x] if x & 0xF0 == 0xC0 => Some(x & 0x0F),
        _ => None,
    }
}

/// Sleeps a random 0..=`max_us` microseconds (half the cuts at once, so that some land
/// before the card has read the command).
fn random_pause(rng: &mut Rng, max_us: u64) {
    if max_us > 0 && rng.below(2) == 1 {
        std::thread::sleep(Duration::from_micros(rng.below(max_us + 1)));
    }
}

/// The longest of five wrong-PIN VERIFY round trips on this machine, each the first write
/// of a fresh card process as in a cut (where the store may fold the journal the last
/// process left into a snapshot first), each followed by the right PIN so the counter ends
/// where it started: what the cut instants are spread over.
fn verify_time(emulator: &Path, state: &Path, run_args: &[String]) -> Result<Duration, String> {
    let hx = |h: &str| unhex(h).unwrap_or_default();
    let mut longest = Duration::ZERO;
    for _ in 0..5 {
        let mut s = StdioCard::start_with(emulator, state, run_args)?;
        s.send(&hx(SELECT_APP)).ok_or("emulator died")?;
        let t = std::time::Instant::now();
        s.send(&hx(WRONG_PIN)).ok_or("emulator died")?;
        longest = longest.max(t.elapsed());
        s.send(&hx(RIGHT_PIN)).ok_or("emulator died")?;
        s.finish();
    }
    Ok(longest)
}

/// `max_delay_us` 0 means twice the measured VERIFY time, so that the cuts land before,
/// during and after the card's processing. `run_args` go to every `card-emulator run`.
pub fn run(
    emulator: &Path,
    dir: &Path,
    cuts: u32,
    via: Via,
    seed: u64,
    max_delay_us: u64,
    run_args: &[String],
) -> Result<Report, String> {
    let mut rng = Rng::new(seed);
    let state = dir.join("card.json");
    harness::init_state(emulator, &state)?;
    let max_delay_us = match max_delay_us {
        0 => {
            let t = verify_time(emulator, &state, run_args)?;
            let us = (t.as_micros() as u64 * 2).max(1);
            println!(
                "pin-cut: a wrong VERIFY takes up to {} us here; cuts within 0..={us} us",
                t.as_micros()
            );
            us
        }
        n => n,
    };
    let mut rep = Report::default();
    let mut prev = tries_in_state(&state)?;
    let max = prev;
    let hx = |h: &str| unhex(h).unwrap_or_default();
    let judge = |rep: &mut Report, before: u8, after_state: u8, after_sw: Option<u8>| {
        if after_sw != Some(after_state) {
            rep.violations.push(format!(
                "the card says {after_sw:?} tries, the state file {after_state}"
            ));
        }
        if after_state == before {
            rep.unchanged += 1;
        } else if after_state + 1 == before {
            rep.counted += 1;
        } else {
            rep.violations.push(format!(
                "PIN tries {after_state} after a cut; were {before}"
            ));
        }
    };
    let mut server: Option<ListenCard> = None;
    for _ in 0..cuts {
        // Keep two tries or more so that a counted wrong PIN never blocks it (reset with the right PIN, not cut).
        match via {
            Via::Kill => {
                let mut s = StdioCard::start_with(emulator, &state, run_args)?;
                s.send(&hx(SELECT_APP)).ok_or("emulator died")?;
                if prev < 2 {
                    let r = s.send(&hx(RIGHT_PIN)).ok_or("emulator died")?;
                    if r != [0x90, 0x00] {
                        return Err(format!("right PIN -> {}", hex(&r)));
                    }
                    prev = max;
                }
                // Write the wrong PIN and SIGKILL a random instant later.
                s.write_line_only(&hx(WRONG_PIN));
                random_pause(&mut rng, max_delay_us);
                s.kill();
                let after = tries_in_state(&state)?;
                // An answer the card wrote before it died is still in the pipe.
                if let Some(sw) = s.read_answer() {
                    match tries_from_sw(&sw) {
                        Some(n) if n == after => rep.answered += 1,
                        _ => rep.violations.push(format!(
                            "the card answered {} before the cut; the state file says {after} tries",
                            hex(&sw)
                        )),
                    }
                }
                let mut s = StdioCard::start_with(emulator, &state, run_args)?;
                s.send(&hx(SELECT_APP)).ok_or("emulator died")?;
                let sw = s.send(&hx("00200081")).ok_or("emulator died")?;
                s.finish();
                judge(&mut rep, prev, after, tries_from_sw(&sw));
                prev = after;
            }
            Via::PowerOff | Via::VpcdKill => {
                if server.is_none() {
                    server = Some(ListenCard::start_with(emulator, &state, run_args)?);
                }
                let srv = server.as_ref().ok_or("no server")?;
                let mut v = srv.connect()?;
                v.power_on().map_err(|e| e.to_string())?;
                tx(&mut v, SELECT_APP)?;
                if prev < 2 {
                    tx(&mut v, RIGHT_PIN)?;
                    prev = max;
                }
                v.send_frame(&hx(WRONG_PIN)).map_err(|e| e.to_string())?;
                random_pause(&mut rng, max_delay_us);
                if via == Via::PowerOff {
                    v.power_off().map_err(|e| e.to_string())?;
                    drop(v);
                } else {
                    drop(v);
                    if let Some(s) = server.take() {
                        s.kill();
                    }
                    server = Some(ListenCard::start_with(emulator, &state, run_args)?);
                }
                let srv = server.as_ref().ok_or("no server")?;
                // The next connection is served once the previous one is gone: the answer
                // to our status query is the signal that the cut request was handled.
                let mut v = srv.connect()?;
                v.power_on().map_err(|e| e.to_string())?;
                tx(&mut v, SELECT_APP)?;
                let sw = v.transmit(&hx("00200081")).map_err(|e| e.to_string())?;
                let after = tries_in_state(&state)?;
                judge(&mut rep, prev, after, tries_from_sw(&sw));
                prev = after;
            }
        }
        rep.cuts += 1;
    }
    Ok(rep)
}

fn tx(v: &mut Vpcd, apdu: &str) -> Result<Vec<u8>, String> {
    let r = v
        .transmit(&unhex(apdu)?)
        .map_err(|e| format!("vpcd {apdu}: {e}"))?;
    if r.len() < 2 {
        return Err(format!("{apdu} -> {}", hex(&r)));
    }
    Ok(r)
}
