//! `register` and `service`: the seed's mutual authentication, steps 1-6, with a transcript.

use super::{CardSource, StateChanges};
use crate::cli::AuthArgs;
use anyhow::{bail, Context, Result};
use apdu_specs::hexfmt;
use reader_client::flow;
use reader_client::portal_client::PortalClient;
use std::io::Write;

/// `register`, `service`: print the transcript; a refusal exits 1 with the reason.
///
/// `call` is `service`'s `--call NAME` and `--data HEX`; `None` is `register`.
pub fn run(
    common: AuthArgs,
    call: Option<(String, String)>,
    trace: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    let call = match call {
        None => None,
        Some((name, data)) => {
            let data =
                hexfmt::parse(&data).with_context(|| format!("--data {data:?} is not hex"))?;
            Some(apdu_specs::auth::Call { name, data })
        }
    };
    let portal = PortalClient::with_ca_file(&common.portal, common.ca_file.as_deref())?;
    // Registration and every call need the container PIN (the cardholder gates the SE).
    let pin = Some(read_pin(common.pin_stdin)?);
    let card = CardSource::new(
        common.reader.clone(),
        common.in_process.clone(),
        StateChanges::WrittenBack,
    );
    let mut t = card.open(trace)?;
    writeln!(out, "reader: {}", t.name())?;
    let r = match &call {
        None => {
            writeln!(
                out,
                "register with service `{}` via {}",
                common.service, common.portal
            )?;
            flow::register(
                t.as_mut(),
                &portal,
                &common.service,
                pin.as_deref().map(String::as_bytes).unwrap_or_default(),
                out,
            )
            .map(|reg| {
                format!(
                    "registered: secure connection open for `{}` until {}",
                    reg.scope.join(","),
                    reg.expiry
                )
            })
        }
        Some(call) => {
            writeln!(
                out,
                "service `{}` call `{}` via {}",
                common.service, call.name, common.portal
            )?;
            flow::service(
                t.as_mut(),
                &portal,
                &common.service,
                call,
                pin.as_deref().map(String::as_bytes),
                out,
            )
            .map(|s| match (call.name.as_str(), s.credential_ef) {
                ("echo", _) => format!("echo: {}", hexfmt::upper(&s.result.data)),
                ("provision", Some(_)) => {
                    "provision: credential stored in EF 6F10 and read back".to_string()
                }
                (name, _) => format!("{name}: ok, result {}", hexfmt::upper(&s.result.data)),
            })
        }
    };
    match r {
        Ok(summary) => {
            writeln!(out, "{summary}")?;
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
        }
    }
}

/// The container PIN: one stdin line with --pin-stdin, else VSE_PIN, else a prompt without echo.
fn read_pin(pin_stdin: bool) -> Result<zeroize::Zeroizing<String>> {
    let pin = if pin_stdin {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the PIN from standard input")?;
        zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string())
    } else if let Ok(p) = std::env::var("VSE_PIN") {
        zeroize::Zeroizing::new(p)
    } else {
        zeroize::Zeroizing::new(rpassword::prompt_password("Container PIN: ").context(
            "no terminal to ask the PIN on: pass --pin-stdin (PIN on standard input) or set VSE_PIN",
        )?)
    };
    if pin.is_empty() {
        bail!("the PIN is empty");
    }
    Ok(pin)
}
