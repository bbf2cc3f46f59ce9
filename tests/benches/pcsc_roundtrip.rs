//! APDU round trips per second through pcscd + vpcd with a Rust pcsc client: our card vs a minimal responder vs Debian's vicc.
//!
//! Run: `cargo bench -p e2e-tests --bench pcsc_roundtrip` (as root, with pcscd and
//! vsmartcard-vpcd installed; the harness starts its own pcscd). Three targets take turns on
//! vpcd slot 0, round after round, so drift on the machine hits them alike:
//!
//! - **ours**: the real `card-emulator run` (release build) on a fresh `card-emulator init` state;
//! - **minimal**: `e2e-card --minimal`, which answers 9000 without parsing (the stack's limit);
//! - **vicc**: Debian's vsmartcard-vpicc (`vicc -t iso7816`), when installed.
//!
//! Every target gets the same APDU, SELECT MF by FID without answer data
//! (`00 A4 00 0C 02 3F 00`): a real command for our card, one vicc survives (it crashes on a
//! SELECT that returns an FCI), ignored by the minimal responder. Each run sends it for a
//! fixed time after a warm-up; the report gives each target's median rate over its runs, the
//! median round-trip latency over all its APDUs, and the ratio ours / minimal (target ≥ 0.95).
#![forbid(unsafe_code)]

use e2e_tests::{
    skipped, vpcd_reader, wait_for_card, wait_for_no_card, which, Pcscd, Proc, RunningCard,
    CARD_TIMEOUT,
};
use reader_client::pcsc_reader::Pcsc;
use reader_client::Transport;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const SLOT: u16 = 0;
const ROUNDS: usize = 5;
const WARMUP: usize = 200;
const RUN_TIME: Duration = Duration::from_millis(1500);
const APDU: [u8; 7] = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00];
const VICC_INSTALL: &str =
    "apt-get install -y --no-install-recommends vsmartcard-vpicc python3-pycryptodome";

/// What is plugged into the slot for one run.
enum Target {
    Ours,
    Minimal,
    Vicc(ViccEnv),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Ours => "ours (card-emulator run)",
            Target::Minimal => "minimal responder",
            Target::Vicc(_) => "vicc (Debian vsmartcard-vpicc)",
        }
    }
}

/// How to start Debian's vicc: its module directory is not on python's path, and it imports
/// `Crypto` where Debian ships `Cryptodome`.
struct ViccEnv {
    vicc: PathBuf,
    pythonpath: String,
    shim: PathBuf,
}

impl Drop for ViccEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.shim);
    }
}

fn command_stdout(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The vicc launcher, or why vicc (or what it needs) is not installed.
fn vicc_env() -> Result<ViccEnv, String> {
    let vicc = which("vicc").ok_or(format!("vicc is not installed ({VICC_INSTALL})"))?;
    // The directory that holds the `virtualsmartcard` package, from the Debian file list.
    let files = command_stdout("dpkg", &["-L", "python3-virtualsmartcard"]).ok_or(format!(
        "python3-virtualsmartcard is not installed ({VICC_INSTALL})"
    ))?;
    let module_dir = files
        .lines()
        .find(|l| l.ends_with("/virtualsmartcard/VirtualSmartcard.py"))
        .and_then(|l| Path::new(l).parent()?.parent().map(Path::to_path_buf))
        .ok_or("python3-virtualsmartcard has no VirtualSmartcard.py")?;
    let cryptodome = command_stdout(
        "/usr/bin/python3",
        &[
            "-c",
            "import Cryptodome, os; print(os.path.dirname(Cryptodome.__file__))",
        ],
    )
    .ok_or(format!(
        "python3-pycryptodome is not installed ({VICC_INSTALL})"
    ))?;
    let shim = e2e_tests::fresh_dir("vicc-shim")?;
    std::os::unix::fs::symlink(cryptodome.trim(), shim.join("Crypto"))
        .map_err(|e| format!("cannot create the Crypto shim: {e}"))?;
    Ok(ViccEnv {
        vicc,
        pythonpath: format!("{}:{}", module_dir.display(), shim.display()),
        shim,
    })
}

/// The card of one run, unplugged when dropped.
struct Plugged {
    _ours: Option<RunningCard>,
    _proc: Option<Proc>,
}

fn plug(target: &Target) -> Result<Plugged, String> {
    let reader = vpcd_reader(SLOT);
    let p = match target {
        Target::Ours => {
            return RunningCard::start(SLOT).map(|c| Plugged {
                _ours: Some(c),
                _proc: None,
            })
        }
        Target::Minimal => {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_e2e-card"));
            cmd.args(["--minimal", "--slot", &SLOT.to_string()]);
            Proc::spawn(cmd, "e2e-card")?
        }
        Target::Vicc(env) => {
            let mut cmd = Command::new(&env.vicc);
            cmd.env("PYTHONPATH", &env.pythonpath).args([
                "-t",
                "iso7816",
                "-H",
                "127.0.0.1",
                "-P",
                &vpcd_port().to_string(),
            ]);
            Proc::spawn(cmd, "vicc")?
        }
    };
    wait_for_card(&reader, CARD_TIMEOUT).map_err(|e| format!("{e}\n{}", p.log_text()))?;
    Ok(Plugged {
        _ours: None,
        _proc: Some(p),
    })
}

fn vpcd_port() -> u16 {
    card_emulator::vpcd::DEFAULT_PORT + SLOT
}

/// One timed run: (APDU/s, every round-trip time).
fn measure(target: &Target) -> Result<(f64, Vec<Duration>), String> {
    let plugged = plug(target)?;
    let reader = vpcd_reader(SLOT);
    let result = (|| {
        let pcsc = Pcsc::establish().map_err(|e| e.to_string())?;
        let mut card = pcsc.open(Some(&reader)).map_err(|e| e.to_string())?;
        let send = |card: &mut dyn Transport| -> Result<(), String> {
            let r = card.transmit(&APDU).map_err(|e| e.to_string())?;
            if r.ends_with(&[0x90, 0x00]) {
                Ok(())
            } else {
                Err(format!("{} answered {:02X?}", target.name(), r))
            }
        };
        // vicc manages ~20 APDU/s (delayed ACKs): a short warm-up is enough there.
        let warmup = if matches!(target, Target::Vicc(_)) {
            5
        } else {
            WARMUP
        };
        for _ in 0..warmup {
            send(&mut card)?;
        }
        let mut times = Vec::with_capacity(20_000);
        let start = Instant::now();
        while start.elapsed() < RUN_TIME {
            let t0 = Instant::now();
            send(&mut card)?;
            times.push(t0.elapsed());
        }
        let rate = times.len() as f64 / start.elapsed().as_secs_f64();
        Ok((rate, times))
    })();
    drop(plugged);
    wait_for_no_card(&reader, CARD_TIMEOUT)?;
    result
}

fn median<T: Copy + PartialOrd>(v: &mut [T]) -> Option<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied()
}

fn fmt_us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() -> ExitCode {
    let Some(_pcscd) = (match Pcscd::start("pcsc_roundtrip bench") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pcsc_roundtrip: {e}");
            return ExitCode::FAILURE;
        }
    }) else {
        return ExitCode::SUCCESS;
    };
    let mut targets = vec![Target::Ours, Target::Minimal];
    match vicc_env() {
        Ok(env) => targets.push(Target::Vicc(env)),
        Err(why) => skipped("pcsc_roundtrip vicc target", &why),
    }
    println!(
        "APDU 00A4000C023F00 through pcscd + vpcd slot {SLOT}, {ROUNDS} alternating rounds of {RUN_TIME:?} per target"
    );
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); targets.len()];
    for round in 1..=ROUNDS {
        for (i, t) in targets.iter().enumerate() {
            match measure(t) {
                Ok((rate, mut ts)) => {
                    let med = median(&mut ts).unwrap_or_default();
                    println!(
                        "round {round}  {:<32} {rate:>9.0} APDU/s  median {}",
                        t.name(),
                        fmt_us(med)
                    );
                    rates[i].push(rate);
                    times[i].extend(ts);
                }
                Err(e) => {
                    eprintln!("pcsc_roundtrip: {}: {e}", t.name());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    println!();
    let mut medians = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let rate = median(&mut rates[i]).unwrap_or(0.0);
        let lat = median(&mut times[i]).unwrap_or_default();
        println!(
            "{:<32} {rate:>9.0} APDU/s (median of {} runs)  median latency {} over {} APDUs",
            t.name(),
            rates[i].len(),
            fmt_us(lat),
            times[i].len()
        );
        medians.push(rate);
    }
    let ratio = medians[0] / medians[1];
    println!(
        "ratio ours / minimal: {ratio:.3} (target >= 0.95: {})",
        if ratio >= 0.95 { "met" } else { "NOT met" }
    );
    if let Some(v) = medians.get(2) {
        println!("ratio ours / vicc: {:.1}", medians[0] / v);
    }
    ExitCode::SUCCESS
}
