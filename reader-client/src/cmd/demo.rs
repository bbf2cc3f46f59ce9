//! `demo`: server, portal and card started here, the whole mutual authentication run.

use anyhow::{Context, Result};
use reader_client::demo::{self, CardMode, DemoOptions};
use std::io::Write;
use std::path::PathBuf;

/// Exit 0 only when every step worked; a failure is reported and exits 1.
pub fn run(
    in_process: bool,
    pcsc: bool,
    bin_dir: Option<PathBuf>,
    out: &mut dyn Write,
) -> Result<i32> {
    let bin_dir = match bin_dir {
        Some(d) => d,
        None => std::env::current_exe()
            .context("locating reader-client")?
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
    };
    let mode = match (in_process, pcsc) {
        (true, _) => CardMode::InProcess,
        (_, true) => CardMode::Pcsc,
        _ => CardMode::Auto,
    };
    match demo::run(&DemoOptions { bin_dir, mode }, out) {
        Ok(()) => Ok(0),
        Err(e) => {
            out.flush()?;
            eprintln!("demo failed: {e}");
            Ok(1)
        }
    }
}
