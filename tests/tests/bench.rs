//! APDU round trips per second through pcscd + vpcd (ignored by default; run with
//! `cargo test -p e2e-tests --release --test bench -- --ignored --nocapture`).

use e2e_tests::{vpcd_reader, wait_for_card, wait_for_no_card, Pcscd, Proc, CARD_TIMEOUT};
use reader_client::Transport;
use std::process::Command;
use std::time::{Duration, Instant};

const SLOT: u16 = 0;
const ROUNDS: usize = 3;
const APDUS_PER_ROUND: usize = 2000;

/// One measured round: (APDU/s, median round trip).
fn round(card_args: &[&str], apdu: &[u8]) -> (f64, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_e2e-card"));
    cmd.args(["--slot", &SLOT.to_string()]).args(card_args);
    let card = Proc::spawn(cmd, "e2e-card").unwrap_or_else(|e| panic!("{e}"));
    let reader = vpcd_reader(SLOT);
    wait_for_card(&reader, CARD_TIMEOUT).unwrap_or_else(|e| panic!("{e}\n{}", card.log_text()));
    let pcsc = reader_client::pcsc_reader::Pcsc::establish().unwrap_or_else(|e| panic!("{e}"));
    let mut t = pcsc.open(Some(&reader)).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..50 {
        t.transmit(apdu).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut times = Vec::with_capacity(APDUS_PER_ROUND);
    let start = Instant::now();
    for _ in 0..APDUS_PER_ROUND {
        let t0 = Instant::now();
        let r = t.transmit(apdu).unwrap_or_else(|e| panic!("{e}"));
        times.push(t0.elapsed());
        assert!(r.len() >= 2);
    }
    let rate = APDUS_PER_ROUND as f64 / start.elapsed().as_secs_f64();
    times.sort();
    drop(t);
    drop(card);
    wait_for_no_card(&reader, CARD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    (rate, times[times.len() / 2])
}

#[test]
#[ignore = "benchmark: run explicitly"]
fn apdu_round_trips_per_second_through_pcscd_and_vpcd() {
    let Some(_pcscd) = Pcscd::start("apdu_round_trips_per_second_through_pcscd_and_vpcd")
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    // SELECT MF by FID, no answer data: a real command for our card, ignored by the minimal one.
    let apdu = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];
    let mut ours = Vec::new();
    let mut minimal = Vec::new();
    for _ in 0..ROUNDS {
        ours.push(round(&[], &apdu));
        minimal.push(round(&["--minimal"], &apdu));
    }
    let best = |v: &[(f64, Duration)]| {
        v.iter()
            .cloned()
            .fold((0.0f64, Duration::MAX), |a, b| (a.0.max(b.0), a.1.min(b.1)))
    };
    let (o, m) = (best(&ours), best(&minimal));
    println!(
        "our card:          {:.0} APDU/s, median {:?}  (rounds {ours:?})",
        o.0, o.1
    );
    println!(
        "minimal responder: {:.0} APDU/s, median {:?}  (rounds {minimal:?})",
        m.0, m.1
    );
    println!("ratio: {:.3}", o.0 / m.0);
}
