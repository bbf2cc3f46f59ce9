//! `e2e-card`: a card served over vpcd for the end-to-end tests: the real card core in
//! memory (default profile), `--minimal` a responder that answers 9000 without parsing, or
//! `--echo` one that answers each command's data back (extended-length tests).
#![forbid(unsafe_code)]

use card_emulator::vpcd::{self, Endpoint, ServeOptions};
use card_emulator::VirtualCard;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

/// Answers 9000 to everything: the limit of the pcscd + vpcd stack.
struct Minimal;

const MINIMAL_ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];

/// Answers every command with its own data followed by 9000 (for extended-length tests).
struct Echo;

impl VirtualCard for Echo {
    fn atr(&self) -> Vec<u8> {
        MINIMAL_ATR.to_vec()
    }
    fn power_on(&mut self) -> Vec<u8> {
        self.atr()
    }
    fn power_off(&mut self) {}
    fn reset(&mut self) -> Vec<u8> {
        self.atr()
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let mut r = match apdu_specs::Command::parse(apdu) {
            Ok(c) => c.data().to_vec(),
            Err(_) => return vec![0x67, 0x00],
        };
        r.extend_from_slice(&[0x90, 0x00]);
        r
    }
}

impl VirtualCard for Minimal {
    fn atr(&self) -> Vec<u8> {
        MINIMAL_ATR.to_vec()
    }
    fn power_on(&mut self) -> Vec<u8> {
        self.atr()
    }
    fn power_off(&mut self) {}
    fn reset(&mut self) -> Vec<u8> {
        self.atr()
    }
    fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> {
        vec![0x90, 0x00]
    }
}

const USAGE: &str = "usage: e2e-card [--minimal | --echo] [--slot N | --vpcd HOST:PORT] [--trace]";

fn main() -> ExitCode {
    let mut minimal = false;
    let mut echo = false;
    let mut trace = false;
    let mut endpoint = Endpoint::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--minimal" => minimal = true,
            "--echo" => echo = true,
            "--trace" => trace = true,
            "--slot" => match args
                .next()
                .and_then(|n| n.parse::<u16>().ok())
                .map(Endpoint::slot)
            {
                Some(Ok(e)) => endpoint = e,
                _ => {
                    eprintln!("--slot needs a number\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--vpcd" => match args.next() {
                Some(addr) => endpoint = Endpoint::connect(addr),
                None => {
                    eprintln!("--vpcd needs HOST:PORT\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(if trace {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        })
        .init();
    let opts = ServeOptions {
        trace,
        ..ServeOptions::default()
    };
    let shutdown = AtomicBool::new(false);
    let result = if minimal {
        vpcd::serve(&mut Minimal, endpoint, &opts, &shutdown)
    } else if echo {
        vpcd::serve(&mut Echo, endpoint, &opts, &shutdown)
    } else {
        let state = match card_emulator::profile::build(card_emulator::profile::DEFAULT_PROFILE) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("e2e-card: cannot build the default profile: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut card = card_emulator::Card::in_memory(state);
        vpcd::serve(&mut card, endpoint, &opts, &shutdown)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e-card: {e}");
            ExitCode::FAILURE
        }
    }
}
