//! `containers`: list, enable, disable, rename and delete containers over SGP.22 ES10c;
//! the eUICC's information and certificate chain, and its notifications (ES10b).

use super::CardSource;
use crate::cli::ContainersCmd;
use anyhow::{Context, Result};
use apdu_specs::es10::{GetCertsResponse, ProfileId};
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
        ContainersCmd::List | ContainersCmd::Info | ContainersCmd::Notifications { .. } => None,
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
        (
            ContainersCmd::Notifications {
                remove: Some(seq), ..
            },
            _,
        ) => Outcome::of(c.remove_notification(seq)?),
        (ContainersCmd::Notifications { signed, .. }, _) => {
            let rows = notifications(&mut c, signed)?;
            c.close()?;
            if json {
                writeln!(out, "{}", view::notifications_json(&rows))?;
            } else {
                write!(out, "{}", view::notifications_table(&rows))?;
            }
            return Ok(0);
        }
        (ContainersCmd::Info, _) => {
            let info = info(&mut c)?;
            c.close()?;
            if json {
                writeln!(out, "{}", view::info_json(&info))?;
            } else {
                write!(out, "{}", view::info_text(&info))?;
            }
            return Ok(0);
        }
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

/// The pending notifications, oldest first; with `signed`, each as the eUICC signed it.
fn notifications(c: &mut Es10Client, signed: bool) -> Result<Vec<view::NotificationRow>> {
    let list = c.list_notifications()?;
    let mut rows: Vec<view::NotificationRow> = list.iter().map(Into::into).collect();
    if signed {
        for n in c.retrieve_notifications(None)? {
            let seq = n.metadata().map(|m| m.seq);
            if let Some(row) = rows.iter_mut().find(|r| Some(r.seq) == seq) {
                row.signed = Some(apdu_specs::hexfmt::upper(&n.to_bytes()));
            }
        }
    }
    Ok(rows)
}

/// EID, EUICCInfo1, configured addresses and the certificate chain.
fn info(c: &mut Es10Client) -> Result<view::EuiccInfoView> {
    let eid = c.eid()?;
    let info1 = c.euicc_info1()?;
    let addresses = c.configured_addresses()?;
    let chain = match c.certificates()? {
        GetCertsResponse::Certs {
            eum_certificate,
            euicc_certificate,
        } => vec![
            view::CertRow::of("EUM", &eum_certificate),
            view::CertRow::of("eUICC", &euicc_certificate),
        ],
        GetCertsResponse::InvalidCiPkid | GetCertsResponse::UndefinedError => Vec::new(),
    };
    let hex_list = |ids: &[Vec<u8>]| ids.iter().map(|k| apdu_specs::hexfmt::upper(k)).collect();
    Ok(view::EuiccInfoView {
        eid: eid.to_string(),
        svn: info1.svn.to_string(),
        default_smdp_address: addresses.default_dp_address,
        root_smds_address: addresses.root_ds_address,
        ci_pkid_for_signing: hex_list(&info1.ci_pkid_for_signing),
        ci_pkid_for_verification: hex_list(&info1.ci_pkid_for_verification),
        chain,
    })
}
