//! `script` (scriptor files) and `conform` (suites with expected answers).

use super::CardSource;
use anyhow::{bail, Context, Result};
use reader_client::conform::{self, RunOptions};
use reader_client::script::{self, Dialect};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `script FILE`: run a scriptor script, printing the answers as they come.
pub fn script(
    reader: Option<&str>,
    follow: bool,
    strict: bool,
    file: &Path,
    trace: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the script from stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let dialect = if strict {
        Dialect::Scriptor
    } else {
        Dialect::Lenient
    };
    // Parsed whole before the card is opened: a bad line sends nothing.
    let items = script::parse(&text, dialect).with_context(|| format!("in {}", file.display()))?;
    let mut t = CardSource::pcsc(reader).open(trace)?;
    script::run(t.as_mut(), &items, follow, out)?;
    Ok(0)
}

/// `conform PATH...`: a table per file and a TOTAL line; exit 1 on any mismatch.
pub fn conform(
    card: &CardSource,
    junit: Option<&Path>,
    paths: &[PathBuf],
    trace: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    let files = conform::collect_files(paths)?;
    if files.is_empty() {
        bail!("no .apdu files under {paths:?}");
    }
    let mut t = card.open(trace)?;
    let mut reports = Vec::new();
    for f in &files {
        let r = conform::run_file(t.as_mut(), f, &RunOptions::default());
        write!(out, "{}", conform::render_table(&r))?;
        out.flush()?;
        reports.push(r);
    }
    writeln!(out, "{}", conform::render_summary(&reports))?;
    if let Some(j) = junit {
        std::fs::write(j, conform::junit_xml(&reports))
            .with_context(|| format!("writing JUnit XML to {}", j.display()))?;
    }
    Ok(if reports.iter().all(|r| r.passed()) {
        0
    } else {
        1
    })
}
