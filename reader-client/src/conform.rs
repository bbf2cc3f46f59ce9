//! Conformance suites: scriptor-compatible `.apdu` files with expected answers in comments,
//! the runner that checks a card against them, and the table and JUnit reports.
//!
//! The format is specified in `apdu-specs/conformance/FORMAT.md`. In short:
//! `# case: NAME` starts a case, `# expect: PATTERN` checks the answer to the APDU (or the
//! ATR after `reset`) just above it, `# follow: on` makes the rest of the case chase
//! 61xx/6Cxx like `reader-client send` does. Patterns are hex bytes, `XX` (or a single `X`
//! nibble) wildcards, `..` or `*` for any run of bytes, and `|` between alternatives.

use crate::exchange::transmit_following;
use crate::script::{self, Dialect, Line, ScriptError};
use crate::transport::fmt_duration;
use crate::Transport;
use apdu_specs::{hexfmt, Status};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a suite cannot be run at all.
#[derive(Debug, Error)]
pub enum ConformError {
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("line {line}: {reason}")]
    Format { line: usize, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn format_err(line: usize, reason: impl Into<String>) -> ConformError {
    ConformError::Format {
        line,
        reason: reason.into(),
    }
}

/// One element of an expected answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// A byte whose bits under `mask` must equal `value` (`XX` has mask 00, `6X` has F0).
    Byte { value: u8, mask: u8 },
    /// Any run of bytes, possibly empty (`..` or `*`).
    Any,
}

impl Tok {
    fn is_byte(&self) -> bool {
        matches!(self, Tok::Byte { .. })
    }
}

/// An expected answer: alternatives of byte patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    alts: Vec<Vec<Tok>>,
    text: String,
}

impl Pattern {
    /// Read a pattern (`6F XX .. 9000`, `61XX | 9000`, `63CX`).
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let mut alts = vec![Vec::new()];
        for word in text.split_whitespace() {
            match word {
                "|" => alts.push(Vec::new()),
                ".." | "*" => alts.last_mut().map_or((), |a| a.push(Tok::Any)),
                w => {
                    let chars: Vec<char> = w.chars().collect();
                    if chars.len() & 1 == 1 {
                        return Err(format!(
                            "{w:?} has an odd number of digits; every byte needs two (XX for any byte)"
                        ));
                    }
                    for pair in chars.chunks(2) {
                        let mut value = 0u8;
                        let mut mask = 0u8;
                        for &c in pair {
                            value <<= 4;
                            mask <<= 4;
                            if c == 'X' || c == 'x' {
                                continue;
                            }
                            let d = c.to_digit(16).ok_or_else(|| {
                                format!("{w:?}: {c:?} is not a hex digit, X, .. or *")
                            })?;
                            value |= d as u8;
                            mask |= 0x0F;
                        }
                        if let Some(a) = alts.last_mut() {
                            a.push(Tok::Byte { value, mask });
                        }
                    }
                }
            }
        }
        if alts.iter().any(Vec::is_empty) {
            return Err("empty pattern (or an empty side of |)".to_string());
        }
        Ok(Pattern {
            alts,
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
        })
    }

    /// Whether every alternative ends with two single-byte elements (the status word).
    fn ends_with_sw(&self) -> bool {
        self.alts
            .iter()
            .all(|a| a.len() >= 2 && a[a.len() - 2..].iter().all(Tok::is_byte))
    }

    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.alts.iter().any(|a| glob(a, bytes))
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Wildcard matching where `Any` takes any run and `Byte` exactly one byte.
fn glob(p: &[Tok], s: &[u8]) -> bool {
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        match p.get(i) {
            Some(Tok::Byte { value, mask }) if s[j] & mask == *value => {
                i += 1;
                j += 1;
            }
            Some(Tok::Any) => {
                star = Some((i, j));
                i += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i.min(p.len())..].iter().all(|t| *t == Tok::Any)
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Apdu(Vec<u8>),
    Reset,
}

/// One command of a case, with its expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    pub action: Action,
    pub expect: Option<Pattern>,
    /// Chase 61xx with GET RESPONSE and 6Cxx with the corrected Le.
    pub follow: bool,
}

/// A named group of steps that passes or fails together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub line: usize,
    pub steps: Vec<Step>,
}

/// A parsed `.apdu` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    pub name: String,
    pub cases: Vec<Case>,
}

/// The name of the steps before the first `# case:`.
pub const SETUP_CASE: &str = "(setup)";

fn directive(comment: &str) -> Option<(String, &str)> {
    let t = comment.trim();
    let (key, value) = t.split_once(':')?;
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim()))
}

/// Parse a suite; `name` is used unless the file has a `# suite:` line.
pub fn parse_suite(name: &str, text: &str) -> Result<Suite, ConformError> {
    let items = script::parse(text, Dialect::Scriptor)?;
    let mut suite = Suite {
        name: name.to_string(),
        cases: Vec::new(),
    };
    let mut current = Case {
        name: SETUP_CASE.to_string(),
        line: 1,
        steps: Vec::new(),
    };
    let mut follow = false;
    for item in items {
        match item.kind {
            Line::Exit => break,
            Line::Apdu(bytes) => current.steps.push(Step {
                line: item.line,
                action: Action::Apdu(bytes),
                expect: None,
                follow,
            }),
            Line::Reset => current.steps.push(Step {
                line: item.line,
                action: Action::Reset,
                expect: None,
                follow,
            }),
            Line::Comment(c) => {
                let Some((key, value)) = directive(&c) else {
                    continue;
                };
                match key.as_str() {
                    "suite" => suite.name = value.to_string(),
                    "case" => {
                        if value.is_empty() {
                            return Err(format_err(item.line, "a case needs a name: # case: NAME"));
                        }
                        let next = Case {
                            name: value.to_string(),
                            line: item.line,
                            steps: Vec::new(),
                        };
                        let done = std::mem::replace(&mut current, next);
                        if done.name != SETUP_CASE || !done.steps.is_empty() {
                            suite.cases.push(done);
                        }
                        follow = false;
                    }
                    "follow" => {
                        follow = match value.to_ascii_lowercase().as_str() {
                            "on" | "yes" | "true" => true,
                            "off" | "no" | "false" => false,
                            v => {
                                return Err(format_err(
                                    item.line,
                                    format!("# follow: takes on or off, not {v:?}"),
                                ))
                            }
                        }
                    }
                    "expect" => {
                        let pattern =
                            Pattern::parse(value).map_err(|r| format_err(item.line, r))?;
                        let Some(step) = current.steps.last_mut() else {
                            return Err(format_err(
                                item.line,
                                "# expect: must follow the APDU or reset it checks (in the same case)",
                            ));
                        };
                        if step.expect.is_some() {
                            return Err(format_err(
                                item.line,
                                "a second # expect: for the same APDU; write alternatives as A | B",
                            ));
                        }
                        if step.action != Action::Reset && !pattern.ends_with_sw() {
                            return Err(format_err(
                                item.line,
                                "an APDU expectation must end with the status word (two bytes such as 9000, 61XX, 63CX)",
                            ));
                        }
                        step.expect = Some(pattern);
                    }
                    "expected" | "expects" | "exp" | "except" => {
                        return Err(format_err(
                            item.line,
                            format!("unknown directive {key:?}; did you mean # expect:?"),
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    if current.name != SETUP_CASE || !current.steps.is_empty() {
        suite.cases.push(current);
    }
    Ok(suite)
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Ran, no expectation to check.
    Unchecked,
    /// The answer did not match: the explanation.
    Mismatch(String),
    /// The transport failed.
    Error(String),
}

/// A step that was run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub line: usize,
    pub command: String,
    /// The (joined, when following) answer; the ATR for a reset.
    pub response: Vec<u8>,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// A case that was run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    pub name: String,
    pub line: usize,
    pub steps: Vec<StepReport>,
    pub elapsed: Duration,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Pass | Outcome::Unchecked))
    }
    /// The first problem, for the table and JUnit.
    pub fn failure(&self) -> Option<String> {
        self.steps.iter().find_map(|s| match &s.outcome {
            Outcome::Mismatch(m) | Outcome::Error(m) => Some(format!("line {}: {m}", s.line)),
            _ => None,
        })
    }
    pub fn checked(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.outcome != Outcome::Unchecked)
            .count()
    }
}

/// A file that was run (or could not be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub path: String,
    pub suite: String,
    pub cases: Vec<CaseReport>,
    /// The file could not be parsed, or the transport failed and the rest was skipped.
    pub error: Option<String>,
    pub elapsed: Duration,
}

impl FileReport {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.cases.iter().all(CaseReport::passed)
    }
    pub fn failed_cases(&self) -> usize {
        self.cases.iter().filter(|c| !c.passed()).count()
    }
}

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Warm-reset the card before each file, so files do not depend on each other's state.
    pub reset_before_file: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            reset_before_file: true,
        }
    }
}

fn describe_bytes(b: &[u8], is_sw: bool) -> String {
    const SHOW: usize = 48;
    let shown = if b.len() > SHOW + 2 {
        format!(
            "{} .. {} ({} bytes)",
            hexfmt::spaced(&b[..SHOW]),
            hexfmt::spaced(&b[b.len() - 2..]),
            b.len()
        )
    } else {
        hexfmt::spaced(b)
    };
    match (is_sw, b.len()) {
        (true, n) if n >= 2 => {
            let st = Status::from_u16(u16::from_be_bytes([b[n - 2], b[n - 1]]));
            format!("{shown} ({})", st.meaning())
        }
        _ => shown,
    }
}

/// Run one parsed suite against a card.
pub fn run_suite(
    t: &mut dyn Transport,
    path: &str,
    suite: &Suite,
    opts: &RunOptions,
) -> FileReport {
    let start = Instant::now();
    let mut report = FileReport {
        path: path.to_string(),
        suite: suite.name.clone(),
        cases: Vec::new(),
        error: None,
        elapsed: Duration::ZERO,
    };
    if opts.reset_before_file {
        if let Err(e) = t.reset() {
            report.error = Some(format!("reset before the suite failed: {e}"));
            report.elapsed = start.elapsed();
            return report;
        }
    }
    'cases: for case in &suite.cases {
        let case_start = Instant::now();
        let mut cr = CaseReport {
            name: case.name.clone(),
            line: case.line,
            steps: Vec::new(),
            elapsed: Duration::ZERO,
        };
        for step in &case.steps {
            let t0 = Instant::now();
            let (command, result) = match &step.action {
                Action::Reset => ("RESET".to_string(), t.reset()),
                Action::Apdu(a) => (
                    hexfmt::spaced(a),
                    transmit_following(t, a, step.follow).map(|r| r.to_bytes()),
                ),
            };
            let elapsed = t0.elapsed();
            let (response, outcome) = match result {
                Err(e) => (Vec::new(), Outcome::Error(format!("{command}: {e}"))),
                Ok(resp) => {
                    let outcome = match &step.expect {
                        None => Outcome::Unchecked,
                        Some(p) if p.matches(&resp) => Outcome::Pass,
                        Some(p) => Outcome::Mismatch(format!(
                            "{command} -> {}; expected {}",
                            describe_bytes(&resp, step.action != Action::Reset),
                            p.text()
                        )),
                    };
                    (resp, outcome)
                }
            };
            let fatal = matches!(outcome, Outcome::Error(_));
            cr.steps.push(StepReport {
                line: step.line,
                command,
                response,
                outcome,
                elapsed,
            });
            if fatal {
                cr.elapsed = case_start.elapsed();
                report.error = Some(format!(
                    "the transport failed in case {:?}; the rest of the file was skipped",
                    case.name
                ));
                report.cases.push(cr);
                break 'cases;
            }
        }
        cr.elapsed = case_start.elapsed();
        report.cases.push(cr);
    }
    report.elapsed = start.elapsed();
    report
}

/// Read, parse and run one file; a parse error becomes a failed report, not an `Err`.
pub fn run_file(t: &mut dyn Transport, path: &Path, opts: &RunOptions) -> FileReport {
    let shown = path.display().to_string();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.clone());
    let failed = |error: String| FileReport {
        path: shown.clone(),
        suite: stem.clone(),
        cases: Vec::new(),
        error: Some(error),
        elapsed: Duration::ZERO,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return failed(format!("cannot read: {e}")),
    };
    match parse_suite(&stem, &text) {
        Ok(suite) => run_suite(t, &shown, &suite, opts),
        Err(e) => failed(format!("not a valid conformance file: {e}")),
    }
}

/// Files to run: each file as given, each directory's `*.apdu` (recursively), sorted.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConformError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ConformError> {
        let io = |source| ConformError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|e| e == "apdu") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(ConformError::Io {
                path: p.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            });
        }
    }
    Ok(out)
}

/// Run files and directories; one report per file.
pub fn run_paths(
    t: &mut dyn Transport,
    paths: &[PathBuf],
    opts: &RunOptions,
) -> Result<Vec<FileReport>, ConformError> {
    Ok(collect_files(paths)?
        .iter()
        .map(|p| run_file(t, p, opts))
        .collect())
}

/// The per-file table with a line per case and the reason of each failure.
pub fn render_table(r: &FileReport) -> String {
    let mut s = String::new();
    let passed = r.cases.iter().filter(|c| c.passed()).count();
    let _ = writeln!(
        s,
        "== {} [{}]: {} case(s), {} passed, {} failed, {}",
        r.path,
        r.suite,
        r.cases.len(),
        passed,
        r.cases.len() - passed,
        fmt_duration(r.elapsed)
    );
    if let Some(e) = &r.error {
        let _ = writeln!(s, "   ERROR: {e}");
    }
    if r.cases.is_empty() {
        return s;
    }
    let width = r
        .cases
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    let _ = writeln!(
        s,
        "   {:<3} {:<width$}  {:>5}  {:>12}  RESULT",
        "#", "CASE", "CHECK", "TIME"
    );
    for (i, c) in r.cases.iter().enumerate() {
        let _ = writeln!(
            s,
            "   {:<3} {:<width$}  {:>5}  {:>12}  {}",
            i + 1,
            c.name,
            format!("{}/{}", c.checked(), c.steps.len()),
            fmt_duration(c.elapsed),
            if c.passed() { "pass" } else { "FAIL" }
        );
        if let Some(f) = c.failure() {
            let _ = writeln!(s, "       {f}");
        }
    }
    s
}

/// One line over all files: what CI logs grep for.
pub fn render_summary(reports: &[FileReport]) -> String {
    let cases: usize = reports.iter().map(|r| r.cases.len()).sum();
    let failed: usize = reports.iter().map(FileReport::failed_cases).sum();
    let broken = reports.iter().filter(|r| r.error.is_some()).count();
    format!(
        "TOTAL: {} file(s), {cases} case(s), {} passed, {failed} failed, {broken} file error(s) -> {}",
        reports.len(),
        cases - failed,
        if reports.iter().all(FileReport::passed) {
            "PASS"
        } else {
            "FAIL"
        }
    )
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML (one `testsuite` per file, one `testcase` per case) for CI dashboards.
pub fn junit_xml(reports: &[FileReport]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = reports.iter().map(|r| r.cases.len().max(1)).sum();
    let failures: usize = reports.iter().map(FileReport::failed_cases).sum();
    let errors = reports.iter().filter(|r| r.error.is_some()).count();
    let _ = writeln!(
        s,
        "<testsuites name=\"conformance\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    for r in reports {
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.6}\">",
            xml_escape(&r.suite),
            r.cases.len().max(1),
            r.failed_cases(),
            usize::from(r.error.is_some()),
            r.elapsed.as_secs_f64()
        );
        let classname = xml_escape(&r.path);
        if let Some(e) = &r.error {
            let _ = writeln!(
                s,
                "    <testcase name=\"(file)\" classname=\"{classname}\"><error message=\"{}\"/></testcase>",
                xml_escape(e)
            );
        }
        for c in &r.cases {
            let _ = write!(
                s,
                "    <testcase name=\"{}\" classname=\"{classname}\" time=\"{:.6}\"",
                xml_escape(&c.name),
                c.elapsed.as_secs_f64()
            );
            match c.failure() {
                None => s.push_str("/>\n"),
                Some(f) => {
                    let mut detail = String::new();
                    for st in &c.steps {
                        let _ = writeln!(
                            detail,
                            "line {}: {} -> {}",
                            st.line,
                            st.command,
                            hexfmt::spaced(&st.response)
                        );
                    }
                    let _ = writeln!(
                        s,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(&f),
                        xml_escape(&detail)
                    );
                }
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tests::fn_card;
    use crate::ClientError;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }
    fn h(s: &str) -> Vec<u8> {
        hexfmt::parse(s).unwrap()
    }

    #[test]
    fn patterns_match_exact_bytes_wildcards_and_runs() {
        assert!(p("90 00").matches(&h("9000")));
        assert!(p("9000").matches(&h("9000")));
        assert!(!p("9000").matches(&h("6A82")));
        assert!(p("61XX").matches(&h("6110")));
        assert!(p("63CX").matches(&h("63C2")));
        assert!(!p("63CX").matches(&h("6302")));
        assert!(p("6F XX .. 9000").matches(&h("6F 05 01 02 03 04 05 9000")));
        assert!(p("6F XX .. 9000").matches(&h("6F 00 9000")));
        assert!(!p("6F XX .. 9000").matches(&h("6F 9000")));
        assert!(p("* 9000").matches(&h("9000")));
        assert!(p("* 9000").matches(&h("01 02 9000")));
        assert!(p(".. 84 08 .. 9000").matches(&h("6F 0A 84 08 11 9000")));
        assert!(p("9000 | 6A82").matches(&h("6A82")));
        assert!(!p("9000 | 6A82").matches(&h("6A80")));
        assert!(p("3B ..").matches(&h("3B 88 80 01")));
    }

    #[test]
    fn bad_patterns_are_explained() {
        assert!(Pattern::parse("900").unwrap_err().contains("odd"));
        assert!(Pattern::parse("9G00").unwrap_err().contains("hex digit"));
        assert!(Pattern::parse("").is_err());
        assert!(Pattern::parse("9000 |").is_err());
    }

    const SUITE: &str = "\
# suite: example
reset
# expect: 3B ..
# case: select MF
00 A4 00 0C 02 3F 00
# expect: 9000
# case: long answer, followed
# follow: on
00 CA 00 FE 00
# expect: 01 02 03 9000
# case: raw again, sees 61xx
00 CA 00 FE 00
# expect: 61XX
00 B0 00 00 01
";

    fn card() -> crate::InProcess<crate::transport::tests::FnCard<impl FnMut(&[u8]) -> Vec<u8>>> {
        fn_card(|a: &[u8]| match a {
            [0, 0xA4, 0, 0x0C, 2, 0x3F, 0] => h("9000"),
            [0, 0xCA, 0, 0xFE, 0] => h("61 03"),
            [0, 0xC0, 0, 0, 3] => h("010203 9000"),
            _ => h("6A82"),
        })
    }

    #[test]
    fn parses_cases_setup_expectations_and_follow_scope() {
        let s = parse_suite("file", SUITE).unwrap();
        assert_eq!(s.name, "example");
        let names: Vec<&str> = s.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                SETUP_CASE,
                "select MF",
                "long answer, followed",
                "raw again, sees 61xx"
            ]
        );
        assert!(s.cases[2].steps[0].follow);
        assert!(!s.cases[3].steps[0].follow);
        assert_eq!(s.cases[3].steps[1].expect, None);
    }

    #[test]
    fn runs_and_reports_every_case_passing() {
        let s = parse_suite("file", SUITE).unwrap();
        let mut t = card();
        let r = run_suite(&mut t, "example.apdu", &s, &RunOptions::default());
        assert!(r.passed(), "{}", render_table(&r));
        let table = render_table(&r);
        assert!(table.contains("4 case(s), 4 passed, 0 failed"), "{table}");
        assert_eq!(t.card().resets, 2);
    }

    #[test]
    fn mismatch_names_line_answer_and_expectation() {
        let text = "# case: wrong\n00 A4 00 0C 02 3F 00\n# expect: 6A82\n# case: fine\n00A4000C023F00\n# expect: 9000\n";
        let s = parse_suite("f", text).unwrap();
        let mut t = card();
        let r = run_suite(&mut t, "f.apdu", &s, &RunOptions::default());
        assert!(!r.passed());
        assert_eq!(r.failed_cases(), 1);
        let f = r.cases[0].failure().unwrap();
        assert_eq!(
            f,
            "line 2: 00 A4 00 0C 02 3F 00 -> 90 00 (normal processing); expected 6A82"
        );
        let xml = junit_xml(&[r]);
        assert!(
            xml.contains("<testsuite name=\"f\" tests=\"2\" failures=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("<failure message=\"line 2: 00 A4"), "{xml}");
        assert!(render_summary(&[]).ends_with("PASS"));
    }

    #[test]
    fn format_errors_point_at_the_line() {
        for (text, why) in [
            ("# expect: 9000\n", "must follow"),
            (
                "00A4040000\n# expect: 9000\n# expect: 6A82\n",
                "alternatives",
            ),
            ("00A4040000\n# expect: 6F ..\n", "status word"),
            ("00A4040000\n# expected: 9000\n", "did you mean"),
            ("# case:\n", "needs a name"),
            ("# follow: maybe\n", "on or off"),
            ("# case: exit codes\n", "exit"),
        ] {
            let e = parse_suite("f", text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn transport_errors_stop_the_file() {
        struct Broken;
        impl Transport for Broken {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, ClientError> {
                Err(ClientError::NoCardIn("Virtual PCD 00 00".into()))
            }
            fn reset(&mut self) -> Result<Vec<u8>, ClientError> {
                Ok(vec![0x3B, 0])
            }
            fn name(&self) -> String {
                "broken".into()
            }
        }
        let s = parse_suite("f", SUITE).unwrap();
        let r = run_suite(&mut Broken, "f.apdu", &s, &RunOptions::default());
        assert!(!r.passed());
        assert!(r.error.as_deref().unwrap_or("").contains("skipped"));
        assert_eq!(r.cases.len(), 2);
    }

    #[test]
    fn the_shipped_example_suites_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apdu-specs/conformance");
        let files = collect_files(&[dir]).unwrap();
        assert!(!files.is_empty());
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            if let Err(e) = parse_suite("x", &text) {
                panic!("{}: {e}", f.display());
            }
        }
    }
}
