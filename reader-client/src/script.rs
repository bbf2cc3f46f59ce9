//! Script files in scriptor's format (pcsc-tools): hex APDU lines, `reset`, `#` comments,
//! `exit`, `\` continuation; a strict dialect that accepts exactly what scriptor accepts.
//!
//! scriptor 1.6 reads a line, then: stops at any line containing `exit` (anywhere, any
//! case, even in a comment); skips blank lines and lines starting with `#` in column 1;
//! resets on any other line containing `reset`; otherwise, if the line has no space,
//! splits it into pairs; a trailing `\` continues the APDU on the next line; the APDU
//! must then be 2-digit hex tokens separated by single spaces (Chipcard::PCSC ascii_to_array).

use crate::exchange::transmit_following;
use crate::{ClientError, Transport};
use apdu_specs::hexfmt;
use std::io::Write;
use thiserror::Error;

/// How strictly to read a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Exactly what scriptor accepts (conformance files must run under scriptor unchanged).
    Scriptor,
    /// A superset for humans: indented comments, `#` after an APDU, any hex spacing.
    Lenient,
}

/// What one meaningful line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Apdu(Vec<u8>),
    Reset,
    Exit,
    /// The text after `#` (for conformance directives).
    Comment(String),
}

/// A meaningful line and its 1-based line number (the first line of a continued APDU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub line: usize,
    pub kind: Line,
}

/// A line scriptor (or we) cannot read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {reason}: {text:?}")]
pub struct ScriptError {
    pub line: usize,
    pub text: String,
    pub reason: String,
}

fn err(line: usize, text: &str, reason: impl Into<String>) -> ScriptError {
    ScriptError {
        line,
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// scriptor's `s/(..)/$1 /g`: a space after every pair of characters.
fn expand_pairs(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() * 3 / 2 + 1);
    for pair in chars.chunks(2) {
        out.extend(pair);
        if pair.len() == 2 {
            out.push(' ');
        }
    }
    out
}

/// Chipcard::PCSC::ascii_to_array: `split / /` (trailing empty fields dropped), each field
/// exactly two hex digits.
fn scriptor_tokens(cmd: &str) -> Result<Vec<u8>, String> {
    let mut fields: Vec<&str> = cmd.split(' ').collect();
    while fields.last().is_some_and(|f| f.is_empty()) {
        fields.pop();
    }
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let ok = f.len() == 2 && f.chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            return Err(format!(
                "scriptor rejects the field {f:?}: APDU bytes must be two hex digits separated by single spaces, or all digits without spaces"
            ));
        }
        out.push(hexfmt::parse(f).map_err(|e| e.to_string())?[0]);
    }
    Ok(out)
}

/// Read a script.
pub fn parse(text: &str, dialect: Dialect) -> Result<Vec<Item>, ScriptError> {
    let mut items = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (idx, raw) in text.split_inclusive('\n').enumerate() {
        let n = idx + 1;
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        match dialect {
            Dialect::Scriptor => {
                if line.ends_with('\r') {
                    return Err(err(n, line, "CRLF line ending; scriptor reads the CR as part of the APDU (save with LF endings)"));
                }
                if line.to_ascii_lowercase().contains("exit") {
                    if line.trim().eq_ignore_ascii_case("exit") {
                        items.push(Item {
                            line: n,
                            kind: Line::Exit,
                        });
                        return finish(items, pending);
                    }
                    return Err(err(
                        n,
                        line,
                        "scriptor stops at any line containing \"exit\", even a comment; reword it",
                    ));
                }
                if line.trim().is_empty() {
                    continue;
                }
                if let Some(c) = line.strip_prefix('#') {
                    items.push(Item {
                        line: n,
                        kind: Line::Comment(c.to_string()),
                    });
                    continue;
                }
                if line.to_ascii_lowercase().contains("reset") {
                    if line.trim().eq_ignore_ascii_case("reset") && pending.is_none() {
                        items.push(Item {
                            line: n,
                            kind: Line::Reset,
                        });
                        continue;
                    }
                    return Err(err(n, line, "scriptor treats any line containing \"reset\" as a reset; put it alone on its line"));
                }
                if line.trim_start().starts_with('#') {
                    return Err(err(
                        n,
                        line,
                        "scriptor only knows comments with # in the first column",
                    ));
                }
                let mut l = if line.contains(' ') {
                    line.to_string()
                } else {
                    expand_pairs(line)
                };
                let (first, mut cmd) = pending.take().unwrap_or((n, String::new()));
                if l.ends_with('\\') {
                    l.pop();
                    let trimmed = l.trim_end_matches(' ').len();
                    l.truncate(trimmed);
                    l.push(' ');
                    cmd.push_str(&l);
                    pending = Some((first, cmd));
                    continue;
                }
                cmd.push_str(&l);
                let bytes = scriptor_tokens(&cmd).map_err(|r| err(first, &cmd, r))?;
                if bytes.is_empty() {
                    return Err(err(first, &cmd, "empty APDU"));
                }
                items.push(Item {
                    line: first,
                    kind: Line::Apdu(bytes),
                });
            }
            Dialect::Lenient => {
                let t = line.trim();
                if pending.is_none() {
                    if t.is_empty() {
                        continue;
                    }
                    if t.eq_ignore_ascii_case("exit") {
                        items.push(Item {
                            line: n,
                            kind: Line::Exit,
                        });
                        return finish(items, None);
                    }
                    if t.eq_ignore_ascii_case("reset") {
                        items.push(Item {
                            line: n,
                            kind: Line::Reset,
                        });
                        continue;
                    }
                    if let Some(c) = t.strip_prefix('#') {
                        items.push(Item {
                            line: n,
                            kind: Line::Comment(c.to_string()),
                        });
                        continue;
                    }
                }
                let code = t.split('#').next().unwrap_or("").trim();
                let (first, mut cmd) = pending.take().unwrap_or((n, String::new()));
                if let Some(head) = code.strip_suffix('\\') {
                    cmd.push_str(head);
                    cmd.push(' ');
                    pending = Some((first, cmd));
                    continue;
                }
                cmd.push_str(code);
                let bytes = hexfmt::parse(&cmd).map_err(|e| err(first, &cmd, e.to_string()))?;
                if bytes.is_empty() {
                    return Err(err(first, line, "empty APDU"));
                }
                items.push(Item {
                    line: first,
                    kind: Line::Apdu(bytes),
                });
            }
        }
    }
    finish(items, pending)
}

fn finish(items: Vec<Item>, pending: Option<(usize, String)>) -> Result<Vec<Item>, ScriptError> {
    match pending {
        Some((line, cmd)) => Err(err(
            line,
            &cmd,
            "the APDU continues (\\) past the end of the script",
        )),
        None => Ok(items),
    }
}

/// Run a script like scriptor does, printing `> APDU` and `< DATA SW : meaning` lines.
/// With `follow`, 61xx/6Cxx are chased (see [`transmit_following`]). Stops at `exit`.
pub fn run(
    t: &mut dyn Transport,
    items: &[Item],
    follow: bool,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::Io {
        path: "stdout".into(),
        source: e,
    };
    for item in items {
        match &item.kind {
            Line::Comment(_) => {}
            Line::Exit => break,
            Line::Reset => {
                writeln!(out, "> RESET").map_err(io)?;
                let atr = t.reset()?;
                writeln!(out, "< OK: {}", hexfmt::spaced(&atr)).map_err(io)?;
            }
            Line::Apdu(apdu) => {
                writeln!(out, "> {}", hexfmt::spaced(apdu)).map_err(io)?;
                let r = transmit_following(t, apdu, follow)?;
                let mut text = hexfmt::spaced(&r.data);
                if !text.is_empty() {
                    text.push(' ');
                }
                writeln!(
                    out,
                    "< {text}{} : {}",
                    hexfmt::spaced(&r.status.to_bytes()),
                    r.status.meaning()
                )
                .map_err(io)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tests::fn_card;

    fn apdus(items: &[Item]) -> Vec<Line> {
        items.iter().map(|i| i.kind.clone()).collect()
    }

    #[test]
    fn scriptor_dialect_reads_what_scriptor_reads() {
        let text = "# reset the card\nreset\n\n00A4040000\n00 A4 00 0C 02 3F 00\n00 B0 \\\n00 00 \\\n04\nexit\n00 00 00 00\n";
        let items = parse(text, Dialect::Scriptor).unwrap();
        assert_eq!(
            apdus(&items),
            vec![
                Line::Comment(" reset the card".into()),
                Line::Reset,
                Line::Apdu(vec![0, 0xA4, 4, 0, 0]),
                Line::Apdu(vec![0, 0xA4, 0, 0x0C, 2, 0x3F, 0]),
                Line::Apdu(vec![0, 0xB0, 0, 0, 4]),
                Line::Exit,
            ]
        );
        assert_eq!(items[4].line, 6);
    }

    #[test]
    fn scriptor_dialect_rejects_what_scriptor_chokes_on() {
        for (text, why) in [
            ("  # indented\n", "first column"),
            ("00  A4 04 00\n", "single spaces"),
            ("00 A404 00\n", "two hex digits"),
            (" 00 A4 04 00\n", "single spaces"),
            ("00A4040\n", "two hex digits"),
            ("00 A4\t04 00\n", "two hex digits"),
            ("00A4040000\r\n", "CRLF"),
            ("# do not exit early\n", "exit"),
            ("00 A4 04 00 # reset\n", "reset"),
            ("00 A4 \\\n", "past the end"),
        ] {
            let e = parse(text, Dialect::Scriptor).unwrap_err();
            assert!(e.to_string().contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn lenient_dialect_takes_indentation_and_trailing_comments() {
        let text = "  # hello\n  00a4 0400 00   # select\n\tRESET\n00:B0:00:00:00\nEXIT\n";
        let items = parse(text, Dialect::Lenient).unwrap();
        assert_eq!(
            apdus(&items),
            vec![
                Line::Comment(" hello".into()),
                Line::Apdu(vec![0, 0xA4, 4, 0, 0]),
                Line::Reset,
                Line::Apdu(vec![0, 0xB0, 0, 0, 0]),
                Line::Exit,
            ]
        );
        assert!(parse("00 A4 0\n", Dialect::Lenient).is_err());
    }

    #[test]
    fn run_prints_scriptor_style_and_stops_at_exit() {
        let items = parse("reset\n00A4040000\nexit\n00B0000000\n", Dialect::Scriptor).unwrap();
        let mut t = fn_card(|a| {
            if a[1] == 0xA4 {
                vec![0x6F, 0x00, 0x90, 0x00]
            } else {
                vec![0x6D, 0x00]
            }
        });
        let mut out = Vec::new();
        run(&mut t, &items, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "> RESET\n< OK: 3B 00\n> 00 A4 04 00 00\n< 6F 00 90 00 : normal processing\n"
        );
    }
}
