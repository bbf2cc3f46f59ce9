//! `containers`: list, enable, disable, rename and delete containers over SGP.22 ES10c.

use super::CardSource;
use crate::cli::ContainersCmd;
use anyhow::{Context, Result};
use apdu_specs::es10::ProfileId;
use reader_client::containers as view;
use reader_client::es10_client::{Es10Client, Outcome};
use std::io::Write;

fn parse_id(id: &str) -> Result<ProfileId> {
    id.parse().map_err(|e| {
        anyhow::anyhow!(
            "{id:?} is neither an ICCID (19 or 20 digits) nor an ISD-P AID (32 hex digits): {e}; \
             `reader-client containers list` shows both"
        )
    })
}

/// `reader-client containers ...`: one ES10c session, one function.
pub fn run(
    card: &CardSource,
    action: ContainersCmd,
    json: bool,
    trace: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    // Parse the ID before touching the card.
    let id = match &action {
        ContainersCmd::List => None,
        ContainersCmd::Enable { id }
        | ContainersCmd::Disable { id }
        | ContainersCmd::Nickname { id, .. }
        | ContainersCmd::Delete { id } => Some(parse_id(id)?),
    };
    let mut t = card.open(trace)?;
    let mut c =
        Es10Client::open(t.as_mut()).context("opening the card manager (ISD-R) over ES10c")?;
    let outcome = match (action, id) {
        (ContainersCmd::Enable { .. }, Some(id)) => Outcome::of(c.enable(&id)?),
        (ContainersCmd::Disable { .. }, Some(id)) => Outcome::of(c.disable(&id)?),
        (ContainersCmd::Nickname { name, .. }, Some(id)) => {
            Outcome::of(c.set_nickname(&id, &name)?)
        }
        (ContainersCmd::Delete { .. }, Some(id)) => Outcome::of(c.delete(&id)?),
        _ => {
            let list = c.list_profiles()?;
            c.close()?;
            if json {
                writeln!(out, "{}", view::list_json(&list))?;
            } else {
                write!(out, "{}", view::list_table(&list))?;
            }
            return Ok(0);
        }
    };
    c.close()?;
    if json {
        writeln!(out, "{}", view::outcome_json(&outcome))?;
    } else {
        writeln!(out, "{}: {}", outcome.function, outcome.name)?;
    }
    if outcome.is_ok() {
        Ok(0)
    } else {
        eprintln!(
            "error: {} answered {}: {}",
            outcome.function,
            outcome.name,
            outcome.advice()
        );
        Ok(1)
    }
}
