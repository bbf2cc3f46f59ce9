//! Answer-to-reset decoding (ISO 7816-3 §8): TS, T0, interface bytes per level, protocols,
//! historical bytes and the TCK check.

use std::fmt::Write as _;
use thiserror::Error;

/// Why bytes are not an ATR.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AtrError {
    #[error("an ATR needs at least TS and T0, got {0} byte(s)")]
    TooShort(usize),
    #[error("TS {0:02X} is neither 3B (direct convention) nor 3F (inverse convention)")]
    BadTs(u8),
    #[error("the ATR ends inside the interface bytes of level {0}")]
    TruncatedInterface(usize),
    #[error("T0 announces {want} historical byte(s), only {have} present")]
    TruncatedHistorical { want: usize, have: usize },
    #[error("the ATR has {0} byte(s) after the historical bytes and TCK")]
    TrailingBytes(usize),
    #[error("the ATR is {0} bytes long; ISO 7816-3 allows at most 33")]
    TooLong(usize),
}

/// The interface bytes of one level i (TAi, TBi, TCi, TDi).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Level {
    pub ta: Option<u8>,
    pub tb: Option<u8>,
    pub tc: Option<u8>,
    pub td: Option<u8>,
}

/// A decoded ATR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atr {
    pub raw: Vec<u8>,
    pub ts: u8,
    pub t0: u8,
    /// Level 1 first.
    pub levels: Vec<Level>,
    pub historical: Vec<u8>,
    pub tck: Option<u8>,
}

/// Fi by FI (ISO 7816-3 Table 7); `None` = RFU.
const FI: [Option<u16>; 16] = [
    Some(372),
    Some(372),
    Some(558),
    Some(744),
    Some(1116),
    Some(1488),
    Some(1860),
    None,
    None,
    Some(512),
    Some(768),
    Some(1024),
    Some(1536),
    Some(2048),
    None,
    None,
];
/// f(max) in kHz by FI.
const FMAX_KHZ: [Option<u16>; 16] = [
    Some(4000),
    Some(5000),
    Some(6000),
    Some(8000),
    Some(12000),
    Some(16000),
    Some(20000),
    None,
    None,
    Some(5000),
    Some(7500),
    Some(10000),
    Some(15000),
    Some(20000),
    None,
    None,
];
/// Di by DI (ISO 7816-3 Table 8).
const DI: [Option<u8>; 16] = [
    None,
    Some(1),
    Some(2),
    Some(4),
    Some(8),
    Some(16),
    Some(32),
    Some(64),
    Some(12),
    Some(20),
    None,
    None,
    None,
    None,
    None,
    None,
];

impl Atr {
    /// Decode; total: any bytes give an `Atr` or a typed error.
    pub fn parse(raw: &[u8]) -> Result<Atr, AtrError> {
        let [ts, t0, rest @ ..] = raw else {
            return Err(AtrError::TooShort(raw.len()));
        };
        if *ts != 0x3B && *ts != 0x3F {
            return Err(AtrError::BadTs(*ts));
        }
        if raw.len() > 33 {
            return Err(AtrError::TooLong(raw.len()));
        }
        let mut pos = 0usize;
        let mut y = t0 >> 4;
        let mut levels = Vec::new();
        loop {
            let level_no = levels.len() + 1;
            let mut lv = Level::default();
            let mut take = |bit: u8| -> Result<Option<u8>, AtrError> {
                if y & bit == 0 {
                    return Ok(None);
                }
                let b = rest
                    .get(pos)
                    .copied()
                    .ok_or(AtrError::TruncatedInterface(level_no))?;
                pos += 1;
                Ok(Some(b))
            };
            lv.ta = take(0x1)?;
            lv.tb = take(0x2)?;
            lv.tc = take(0x4)?;
            lv.td = take(0x8)?;
            levels.push(lv);
            match lv.td {
                Some(td) => y = td >> 4,
                None => break,
            }
        }
        let k = (t0 & 0x0F) as usize;
        let hist_end = pos + k;
        let historical = rest
            .get(pos..hist_end)
            .ok_or(AtrError::TruncatedHistorical {
                want: k,
                have: rest.len().saturating_sub(pos),
            })?
            .to_vec();
        let needs_tck = levels.iter().filter_map(|l| l.td).any(|td| td & 0x0F != 0);
        let tck = if needs_tck {
            rest.get(hist_end).copied()
        } else {
            None
        };
        let used = hist_end + usize::from(tck.is_some());
        if rest.len() > used {
            return Err(AtrError::TrailingBytes(rest.len() - used));
        }
        Ok(Atr {
            raw: raw.to_vec(),
            ts: *ts,
            t0: *t0,
            levels,
            historical,
            tck,
        })
    }

    /// Protocols offered, in order of appearance (T=0 implicit when TD1 is absent).
    pub fn protocols(&self) -> Vec<u8> {
        let mut v: Vec<u8> = Vec::new();
        for td in self.levels.iter().filter_map(|l| l.td) {
            let t = td & 0x0F;
            if !v.contains(&t) {
                v.push(t);
            }
        }
        if v.is_empty() {
            v.push(0);
        }
        v
    }

    /// Whether TCK is required (a protocol other than T=0 is indicated).
    pub fn tck_required(&self) -> bool {
        self.levels
            .iter()
            .filter_map(|l| l.td)
            .any(|td| td & 0x0F != 0)
    }

    /// `Some(true)` when T0..TCK XOR to zero; `None` when there is no TCK.
    pub fn tck_valid(&self) -> Option<bool> {
        self.tck?;
        Some(self.raw[1..].iter().fold(0u8, |a, b| a ^ b) == 0)
    }

    /// The protocol a level's bytes belong to: level 1 and 2 are global, level i > 2 is
    /// specific to the protocol TD(i-1) announced.
    fn level_protocol(&self, i: usize) -> Option<u8> {
        if i < 2 {
            return None;
        }
        self.levels
            .get(i - 2)
            .and_then(|l| l.td)
            .map(|td| td & 0x0F)
    }

    /// A multi-line human description, as `reader-client atr` prints it.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "ATR: {}", apdu_specs::hexfmt::spaced(&self.raw));
        let conv = if self.ts == 0x3B { "direct" } else { "inverse" };
        let _ = writeln!(s, "  TS  = {:02X}  {conv} convention", self.ts);
        let _ = writeln!(
            s,
            "  T0  = {:02X}  Y1 = {:X} (interface bytes of level 1: {}), K = {} historical byte(s)",
            self.t0,
            self.t0 >> 4,
            present_names(self.t0 >> 4, 1),
            self.t0 & 0x0F
        );
        for (idx, lv) in self.levels.iter().enumerate() {
            let i = idx + 1;
            let proto = self.level_protocol(idx + 1);
            if let Some(ta) = lv.ta {
                let _ = writeln!(s, "  TA{i} = {ta:02X}  {}", explain_ta(i, proto, ta));
            }
            if let Some(tb) = lv.tb {
                let _ = writeln!(s, "  TB{i} = {tb:02X}  {}", explain_tb(i, proto, tb));
            }
            if let Some(tc) = lv.tc {
                let _ = writeln!(s, "  TC{i} = {tc:02X}  {}", explain_tc(i, proto, tc));
            }
            if let Some(td) = lv.td {
                let _ = writeln!(
                    s,
                    "  TD{i} = {td:02X}  protocol T={}, interface bytes of level {}: {}",
                    td & 0x0F,
                    i + 1,
                    present_names(td >> 4, i + 1)
                );
            }
        }
        let protos: Vec<String> = self.protocols().iter().map(|t| format!("T={t}")).collect();
        let _ = writeln!(s, "  Protocols offered: {}", protos.join(", "));
        if self.historical.is_empty() {
            let _ = writeln!(s, "  Historical bytes: none");
        } else {
            let _ = writeln!(
                s,
                "  Historical bytes: {}  \"{}\"",
                apdu_specs::hexfmt::spaced(&self.historical),
                printable(&self.historical)
            );
            for line in describe_historical(&self.historical) {
                let _ = writeln!(s, "    {line}");
            }
        }
        match (self.tck, self.tck_valid()) {
            (Some(tck), Some(true)) => {
                let _ = writeln!(s, "  TCK = {tck:02X}  correct (T0..TCK XOR to 00)");
            }
            (Some(tck), _) => {
                let x = self.raw[1..self.raw.len() - 1]
                    .iter()
                    .fold(0u8, |a, b| a ^ b);
                let _ = writeln!(s, "  TCK = {tck:02X}  WRONG: should be {x:02X}");
            }
            (None, _) if self.tck_required() => {
                let _ = writeln!(
                    s,
                    "  TCK missing, but required because a protocol other than T=0 is indicated"
                );
            }
            (None, _) => {
                let _ = writeln!(s, "  TCK absent (only T=0 indicated, none required)");
            }
        }
        s
    }
}

fn present_names(y: u8, i: usize) -> String {
    let mut v = Vec::new();
    for (bit, n) in [(1u8, "TA"), (2, "TB"), (4, "TC"), (8, "TD")] {
        if y & bit != 0 {
            v.push(format!("{n}{i}"));
        }
    }
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(" ")
    }
}

fn explain_ta(i: usize, proto: Option<u8>, b: u8) -> String {
    match (i, proto) {
        (1, _) => {
            let (fi, di) = ((b >> 4) as usize, (b & 0x0F) as usize);
            let f = FI[fi].map_or("RFU".to_string(), |v| v.to_string());
            let fmax = FMAX_KHZ[fi].map_or("RFU".to_string(), |v| {
                format!("{} MHz", f64::from(v) / 1000.0)
            });
            let d = DI[di].map_or("RFU".to_string(), |v| v.to_string());
            format!("Fi = {f}, Di = {d} (f max {fmax})")
        }
        (2, _) => format!(
            "specific mode: protocol T={}, {}",
            b & 0x0F,
            if b & 0x10 != 0 {
                "implicit Fi/Di"
            } else {
                "Fi/Di from TA1"
            }
        ),
        (_, Some(1)) => format!("IFSC = {b}"),
        (_, Some(15)) => {
            let clock = match b >> 6 {
                0 => "clock stop not supported",
                1 => "clock stop in state L",
                2 => "clock stop in state H",
                _ => "clock stop, no preference",
            };
            let mut classes = Vec::new();
            for (bit, c) in [(1u8, "A (5 V)"), (2, "B (3 V)"), (4, "C (1.8 V)")] {
                if b & bit != 0 {
                    classes.push(c);
                }
            }
            format!("{clock}; classes {}", classes.join(", "))
        }
        _ => "protocol-specific".to_string(),
    }
}

fn explain_tb(i: usize, proto: Option<u8>, b: u8) -> String {
    match (i, proto) {
        (1 | 2, _) => "VPP (deprecated by ISO 7816-3:2006)".to_string(),
        (_, Some(1)) => format!("BWI = {}, CWI = {}", b >> 4, b & 0x0F),
        (_, Some(15)) => "SPU (standard or proprietary use of contact C6)".to_string(),
        _ => "protocol-specific".to_string(),
    }
}

fn explain_tc(i: usize, proto: Option<u8>, b: u8) -> String {
    match (i, proto) {
        (1, _) => format!("extra guard time N = {b}"),
        (2, _) => format!("WI = {b} (T=0 waiting time integer)"),
        (_, Some(1)) => format!(
            "error detection: {}",
            if b & 1 != 0 { "CRC" } else { "LRC" }
        ),
        _ => "protocol-specific".to_string(),
    }
}

fn printable(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if (0x20..0x7F).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}

/// Historical bytes (ISO 7816-4 §8.1.1): category indicator and COMPACT-TLV objects.
fn describe_historical(h: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some((&cat, body)) = h.split_first() else {
        return out;
    };
    let objects = match cat {
        0x00 => {
            out.push(
                "category 00: COMPACT-TLV objects, then a 3-byte status indicator".to_string(),
            );
            body.get(..body.len().saturating_sub(3)).unwrap_or(&[])
        }
        0x80 => {
            out.push(
                "category 80: COMPACT-TLV objects (status indicator may be included)".to_string(),
            );
            body
        }
        0x10 => {
            out.push("category 10: DIR data reference follows".to_string());
            return out;
        }
        _ => {
            out.push(format!("category {cat:02X}: proprietary format"));
            return out;
        }
    };
    let mut rest = objects;
    while let Some((&tl, tail)) = rest.split_first() {
        let (tag, len) = (tl >> 4, (tl & 0x0F) as usize);
        let Some(value) = tail.get(..len) else {
            out.push(format!("truncated COMPACT-TLV object {tl:02X}"));
            break;
        };
        let name = match tag {
            0x1 => "country code",
            0x2 => "issuer identification number",
            0x3 => "card service data",
            0x4 => "initial access data",
            0x5 => "card issuer's data",
            0x6 => "pre-issuing data",
            0x7 => "card capabilities",
            0x8 => "status indicator",
            0xF => "application identifier",
            _ => "RFU tag",
        };
        out.push(format!(
            "{tl:02X}: {name}: {} \"{}\"",
            apdu_specs::hexfmt::spaced(value),
            printable(value)
        ));
        rest = &tail[len..];
    }
    if cat == 0x00 && body.len() >= 3 {
        out.push(format!(
            "status indicator: {}",
            apdu_specs::hexfmt::spaced(&body[body.len() - 3..])
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        apdu_specs::hexfmt::parse(s).unwrap()
    }

    #[test]
    fn decodes_a_t0_t1_atr_with_tck() {
        // Yubikey-like: 3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4
        let a = Atr::parse(&h("3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4")).unwrap();
        assert_eq!(a.levels.len(), 3);
        assert_eq!(a.levels[0].ta, Some(0x13));
        assert_eq!(a.levels[0].td, Some(0x81));
        assert_eq!(a.levels[1].td, Some(0x31));
        assert_eq!(a.levels[2].ta, Some(0xFE));
        assert_eq!(a.protocols(), vec![1]);
        assert_eq!(a.historical, b"Yubikey4".to_vec());
        assert_eq!(a.tck_valid(), Some(true));
        let d = a.describe();
        assert!(d.contains("TA3 = FE  IFSC = 254"), "{d}");
        assert!(d.contains("TB3 = 15  BWI = 1, CWI = 5"), "{d}");
        assert!(d.contains("Fi = 372, Di = 4"), "{d}");
        assert!(d.contains("correct"), "{d}");
    }

    #[test]
    fn t0_only_atr_needs_no_tck() {
        let a = Atr::parse(&h("3B 02 14 50")).unwrap();
        assert_eq!(a.protocols(), vec![0]);
        assert_eq!(a.tck, None);
        assert!(a.describe().contains("TCK absent"));
    }

    #[test]
    fn wrong_tck_is_reported() {
        let a = Atr::parse(&h("3B 80 80 01 00")).unwrap();
        assert_eq!(a.tck_valid(), Some(false));
        assert!(a.describe().contains("WRONG: should be 01"));
        assert_eq!(
            Atr::parse(&h("3B 80 80 01 01")).unwrap().tck_valid(),
            Some(true)
        );
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        assert_eq!(Atr::parse(&[0x3B]), Err(AtrError::TooShort(1)));
        assert_eq!(Atr::parse(&[0x12, 0x00]), Err(AtrError::BadTs(0x12)));
        assert_eq!(
            Atr::parse(&h("3B 90")),
            Err(AtrError::TruncatedInterface(1))
        );
        assert_eq!(
            Atr::parse(&h("3B 05 41 42")),
            Err(AtrError::TruncatedHistorical { want: 5, have: 2 })
        );
        assert_eq!(Atr::parse(&h("3B 00 00")), Err(AtrError::TrailingBytes(1)));
        for len in 0..40 {
            for fill in [0x00u8, 0xFF, 0x8F] {
                let mut v = vec![0x3B];
                v.extend(std::iter::repeat_n(fill, len));
                let _ = Atr::parse(&v).map(|a| a.describe());
            }
        }
    }

    #[test]
    fn compact_tlv_historical_bytes_are_named() {
        let a = Atr::parse(&h("3B 88 80 01 80 73 C0 21 C0 52 56 43 9C")).unwrap();
        assert_eq!(a.tck_valid(), Some(true));
        let d = a.describe();
        assert!(d.contains("73: card capabilities: C0 21 C0"), "{d}");
        assert!(d.contains("52: card issuer's data: 56 43 \"VC\""), "{d}");
    }
}
