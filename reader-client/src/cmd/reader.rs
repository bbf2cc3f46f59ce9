//! `readers`, `atr` and `send`: the PC/SC basics.

use super::CardSource;
use anyhow::{bail, Context, Result};
use apdu_specs::hexfmt;
use reader_client::atr::Atr;
use reader_client::pcsc_reader::Pcsc;
use reader_client::transmit_following;
use std::io::Write;

/// `readers`: index, name, and the card's ATR where one is present.
pub fn readers(out: &mut dyn Write) -> Result<i32> {
    let pcsc = Pcsc::establish()?;
    let readers = pcsc.readers()?;
    if readers.is_empty() {
        bail!(reader_client::ClientError::NoReaders);
    }
    for r in readers {
        let card = if r.card_present {
            format!("card {}", hexfmt::spaced(&r.atr))
        } else {
            "no card".to_string()
        };
        writeln!(out, "{}: {}  [{card}]", r.index, r.name)?;
    }
    Ok(0)
}

/// `atr`: decode the given ATR or the reader's; exit 1 when it is invalid or its TCK wrong.
pub fn atr(reader: Option<&str>, decode: Option<&str>, out: &mut dyn Write) -> Result<i32> {
    let raw = match decode {
        Some(h) => hexfmt::parse(h).with_context(|| format!("reading the ATR {h:?}"))?,
        None => {
            let pcsc = Pcsc::establish()?;
            let card = pcsc.open(reader)?;
            let (atr, proto) = card.status()?;
            writeln!(out, "Reader: {}", card.reader())?;
            if let Some(p) = proto {
                writeln!(out, "Active protocol: {p:?}")?;
            }
            atr
        }
    };
    match Atr::parse(&raw) {
        Ok(a) => {
            write!(out, "{}", a.describe())?;
            Ok(if a.tck_valid() == Some(false) { 1 } else { 0 })
        }
        Err(e) => {
            writeln!(out, "ATR: {}", hexfmt::spaced(&raw))?;
            writeln!(out, "  not a valid ISO 7816-3 ATR: {e}")?;
            Ok(1)
        }
    }
}

/// `send`: every APDU in one session; exit 1 if any final status word is not 9000.
pub fn send(
    reader: Option<&str>,
    raw: bool,
    apdus: &[String],
    trace: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    // All of them parsed before the card is touched: a typo sends nothing.
    let parsed: Vec<Vec<u8>> = apdus
        .iter()
        .map(|a| {
            let b = hexfmt::parse(a).with_context(|| format!("APDU {a:?} is not hex"))?;
            if b.len() < 4 {
                bail!(
                    "APDU {a:?} has {} byte(s); an APDU needs at least CLA INS P1 P2",
                    b.len()
                );
            }
            Ok(b)
        })
        .collect::<Result<_>>()?;
    let mut t = CardSource::pcsc(reader).open(trace)?;
    let mut code = 0;
    for apdu in parsed {
        let r = transmit_following(t.as_mut(), &apdu, !raw)?;
        if !r.data.is_empty() {
            writeln!(out, "{}", hexfmt::spaced(&r.data))?;
        }
        writeln!(out, "SW {}", r.status)?;
        if r.status != apdu_specs::Status::Success {
            code = 1;
        }
    }
    Ok(code)
}
