//! A human-readable report of a card state: file tree with sizes and PIN tries, never secrets.

use crate::fs;
use crate::state::{Access, CardState, FileBody, FileId};
use std::fmt::Write;

fn access(a: Access) -> String {
    match a {
        Access::Always => "always".into(),
        Access::Never => "never".into(),
        Access::Pin(r) => format!("pin:{r:02X}"),
    }
}

fn tree(files: &[crate::state::FileNode], id: FileId, depth: usize, out: &mut String) {
    let f = &files[id];
    let indent = "  ".repeat(depth);
    let kind = match &f.body {
        FileBody::Df { .. } => match &f.name {
            Some(n) => format!("DF  name {}", apdu_specs::hexfmt::upper(n)),
            None => "DF".into(),
        },
        FileBody::Transparent { data } => format!(
            "EF  transparent {} bytes  read {} update {}",
            data.len(),
            access(f.read),
            access(f.update)
        ),
        FileBody::Records {
            cyclic,
            record_length,
            max_records,
            records,
        } => format!(
            "EF  {} {}/{} records of {} bytes  read {} update {}",
            if *cyclic { "cyclic" } else { "linear-fixed" },
            records.len(),
            max_records,
            record_length,
            access(f.read),
            access(f.update)
        ),
    };
    let sfi = f.sfi.map(|s| format!("  sfi {s}")).unwrap_or_default();
    let _ = writeln!(out, "{indent}{:04X}  {kind}{sfi}", f.fid);
    for c in fs::children(files, id) {
        tree(files, *c, depth + 1, out);
    }
}

fn pins(list: &[crate::state::PinRecord], indent: &str, out: &mut String) {
    for p in list {
        let puk = p
            .puk
            .as_ref()
            .map(|k| format!(", PUK {}/{} tries left", k.tries_left, k.max_tries))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{indent}  PIN {:02X}  {}/{} tries left{}{}",
            p.reference,
            p.tries_left,
            p.max_tries,
            puk,
            if p.tries_left == 0 { "  BLOCKED" } else { "" }
        );
    }
}

/// The report printed by `card-emulator inspect`.
pub fn report(state: &CardState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "card: {}", state.label);
    let _ = writeln!(
        out,
        "ATR: {}",
        apdu_specs::hexfmt::spaced(&crate::atr::build(&state.historical_bytes))
    );
    let _ = writeln!(out, "PINs:");
    pins(&state.pins, "", &mut out);
    if !state.data_objects.is_empty() {
        let _ = writeln!(out, "data objects:");
        for d in &state.data_objects {
            let _ = writeln!(out, "  {:04X}  {} bytes", d.tag, d.value.len());
        }
    }
    let _ = writeln!(out, "files:");
    tree(&state.files, fs::MF, 1, &mut out);
    if !state.eid.is_empty() {
        let _ = writeln!(out, "EID: {}", apdu_specs::hexfmt::upper(&state.eid));
    }
    for (i, c) in state.containers.iter().enumerate() {
        let _ = writeln!(
            out,
            "container {i}: {}  ICCID {}  ISD-P {}",
            if c.enabled { "ENABLED" } else { "disabled" },
            apdu_specs::hexfmt::upper(&c.iccid),
            apdu_specs::hexfmt::upper(&c.isdp_aid)
        );
        let _ = writeln!(
            out,
            "  nickname {:?}, provider {:?}, profile {:?}, class {}",
            c.nickname, c.service_provider, c.profile_name, c.profile_class
        );
        pins(&c.pins, "  ", &mut out);
        tree(&c.files, 0, 1, &mut out);
    }
    out
}
