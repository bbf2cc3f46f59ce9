//! `soak`: tearing and power-cut campaigns against a real `card-emulator` process (SIGKILL at random instants, vpcd power off), with invariant checks after every restart.
#![forbid(unsafe_code)]

#[allow(dead_code)] // shared with the integration tests, which use all of it
mod harness;
mod pin_cut;
mod tearing;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "soak",
    about = "Tearing and power-cut campaigns against card-emulator; exits 1 on any violated invariant."
)]
struct Cli {
    /// The card-emulator binary (default: the one next to this program).
    #[arg(long, global = true)]
    emulator: Option<PathBuf>,
    /// Where the card state lives (default: a new temporary directory, removed at the end).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// The card folds its journal into a fresh snapshot before it passes BYTES, so that kills
    /// also land in compactions (0: the card's own bound, 1 MiB or twice the snapshot).
    #[arg(long, global = true, value_name = "BYTES", default_value_t = 16_384)]
    compact_journal_after: u64,
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    tearing: TearingArgs,
}

#[derive(clap::Args, Clone)]
struct TearingArgs {
    /// SIGKILLs to deliver.
    #[arg(long, default_value_t = 1000)]
    kills: u32,
    /// Seed of the random instants and operations (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Longest delay before a kill, in microseconds after the restarted card first answers.
    #[arg(long, default_value_t = 80_000)]
    max_delay_us: u64,
}

#[derive(clap::Args, Clone)]
struct PinCutArgs {
    /// Cuts to deliver.
    #[arg(long, default_value_t = 1000)]
    cuts: u32,
    /// How the card is cut.
    #[arg(long, value_enum, default_value = "kill")]
    via: pin_cut::Via,
    /// Seed of the random cut instants (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Longest delay between sending the wrong PIN and the cut, in microseconds (half
    /// the cuts come at once, the others after a random delay up to this). 0: twice
    /// the wrong-PIN VERIFY time measured at start.
    #[arg(long, default_value_t = 0)]
    max_delay_us: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// SIGKILL during mixed write storms (the default): files, records, PIN tries, container
    /// switches (ES10c), SCP03 key rotation (PUT KEY), registrations, and a loaded applet's
    /// storage (echo.wat in container A: its counter, and writes it throws away).
    Tearing(TearingArgs),
    /// Send a wrong PIN and cut the card a random instant after, N times; the try counter
    /// must never come back.
    PinCut(PinCutArgs),
}

fn main() {
    let cli = Cli::parse();
    let emulator = cli.emulator.unwrap_or_else(harness::sibling_emulator);
    if !emulator.exists() {
        eprintln!(
            "soak: no card-emulator at {}; build it (cargo build -p card-emulator) or pass --emulator",
            emulator.display()
        );
        std::process::exit(2);
    }
    let (dir, temporary) = match cli.state_dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!(
                "vse-soak-{}-{:x}",
                std::process::id(),
                harness::clock_seed()
            )),
            true,
        ),
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("soak: cannot create {}: {e}", dir.display());
        std::process::exit(2);
    }
    let run_args = match cli.compact_journal_after {
        0 => Vec::new(),
        n => vec!["--compact-journal-after".to_string(), n.to_string()],
    };
    let code = match cli.command {
        Some(Cmd::PinCut(a)) => pin_cut_main(&emulator, &dir, a, &run_args),
        Some(Cmd::Tearing(a)) => tearing_main(&emulator, &dir, a, &run_args),
        None => tearing_main(&emulator, &dir, cli.tearing, &run_args),
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::process::exit(code);
}

fn tearing_main(
    emulator: &std::path::Path,
    dir: &std::path::Path,
    a: TearingArgs,
    run_args: &[String],
) -> i32 {
    let seed = a.seed.unwrap_or_else(harness::clock_seed);
    println!("tearing: seed {seed}");
    match tearing::run(emulator, dir, a.kills, seed, a.max_delay_us, run_args) {
        Ok(r) => {
            let list = |m: &std::collections::BTreeMap<&str, u32>| {
                m.iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "tearing: kills {}, in-flight kills {} ({}), violations {}, {:.1} s",
                r.kills,
                r.in_flight,
                list(&r.by_kind),
                r.violations.len(),
                r.seconds
            );
            println!(
                "tearing: store: {} snapshots written (compactions); kills that left a write of the store unfinished: {} ({})",
                r.snapshots,
                r.by_phase.values().sum::<u32>(),
                list(&r.by_phase)
            );
            report_violations(&r.violations)
        }
        Err(e) => {
            eprintln!("soak tearing: {e}");
            2
        }
    }
}

fn pin_cut_main(
    emulator: &std::path::Path,
    dir: &std::path::Path,
    a: PinCutArgs,
    run_args: &[String],
) -> i32 {
    let seed = a.seed.unwrap_or_else(harness::clock_seed);
    println!("pin-cut: seed {seed}");
    match pin_cut::run(emulator, dir, a.cuts, a.via, seed, a.max_delay_us, run_args) {
        Ok(r) => {
            println!(
                "pin-cut via {:?}: cuts {}, counted {} (answer already sent {}), unchanged {}, violations {}",
                a.via,
                r.cuts,
                r.counted,
                r.answered,
                r.unchanged,
                r.violations.len()
            );
            report_violations(&r.violations)
        }
        Err(e) => {
            eprintln!("soak pin-cut: {e}");
            2
        }
    }
}

/// Prints each violation; the exit code (1 if any).
fn report_violations(violations: &[String]) -> i32 {
    for v in violations {
        println!("  violation: {v}");
    }
    i32::from(!violations.is_empty())
}
