//! What `reader-client containers` prints: the profile list as a table or JSON, and results.

use crate::es10_client::{class_name, state_name, Outcome};
use apdu_specs::es10::{cert, NotificationMetadata, ProfileInfo};
use serde::{Deserialize, Serialize};

/// One container (SGP.22 profile) as shown to people and scripts. Absent fields are `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRow {
    pub iccid: Option<String>,
    /// `enabled` or `disabled`.
    pub state: Option<String>,
    pub nickname: Option<String>,
    pub provider: Option<String>,
    pub profile_name: Option<String>,
    /// `test`, `provisioning` or `operational`.
    pub class: Option<String>,
    pub isdp_aid: Option<String>,
}

impl From<&ProfileInfo> for ContainerRow {
    fn from(p: &ProfileInfo) -> ContainerRow {
        ContainerRow {
            iccid: p.iccid.map(|i| i.to_string()),
            state: p.state.map(|s| state_name(s).to_string()),
            nickname: p.nickname.clone(),
            provider: p.service_provider_name.clone(),
            profile_name: p.profile_name.clone(),
            class: p.profile_class.map(|c| class_name(c).to_string()),
            isdp_aid: p.isdp_aid.as_ref().map(|a| a.to_string()),
        }
    }
}

/// `{"containers": [...]}`.
#[derive(Serialize)]
struct ListJson<'a> {
    containers: &'a [ContainerRow],
}

#[derive(Deserialize)]
struct ListJsonOwned {
    containers: Vec<ContainerRow>,
}

/// Read back what [`list_json`] printed (for Rust scripts and tests driving the binary).
pub fn parse_list_json(text: &str) -> Result<Vec<ContainerRow>, serde_json::Error> {
    serde_json::from_str::<ListJsonOwned>(text).map(|l| l.containers)
}

/// The list as pretty JSON (one object with a `containers` array).
pub fn list_json(list: &[ProfileInfo]) -> String {
    let rows: Vec<ContainerRow> = list.iter().map(ContainerRow::from).collect();
    // Serialising plain strings and options cannot fail.
    serde_json::to_string_pretty(&ListJson { containers: &rows }).unwrap_or_default()
}

/// The list as an aligned text table, one line per container.
pub fn list_table(list: &[ProfileInfo]) -> String {
    const HEADERS: [&str; 7] = [
        "ICCID",
        "STATE",
        "NICKNAME",
        "PROVIDER",
        "PROFILE NAME",
        "CLASS",
        "ISD-P AID",
    ];
    if list.is_empty() {
        return "no containers on this card\n".to_string();
    }
    let dash = || "-".to_string();
    let cells: Vec<[String; 7]> = list
        .iter()
        .map(ContainerRow::from)
        .map(|r| {
            [
                r.iccid.unwrap_or_else(dash),
                r.state.unwrap_or_else(dash),
                r.nickname.filter(|n| !n.is_empty()).unwrap_or_else(dash),
                r.provider.filter(|n| !n.is_empty()).unwrap_or_else(dash),
                r.profile_name
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(dash),
                r.class.unwrap_or_else(dash),
                r.isdp_aid.unwrap_or_else(dash),
            ]
        })
        .collect();
    table(&HEADERS, &cells)
}

/// Rows under headers, each column as wide as its widest cell, two spaces apart.
fn table<const N: usize>(headers: &[&str; N], cells: &[[String; N]]) -> String {
    let mut widths = headers.map(|h| h.chars().count());
    for row in cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                s.push_str(c);
            } else {
                let pad = w.saturating_sub(c.chars().count());
                s.push_str(c);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&headers.map(str::to_string));
    for row in cells {
        out.push_str(&line(row));
    }
    out
}

/// One pending SGP.22 notification as shown to people and scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRow {
    pub seq: u32,
    /// `install`, `enable`, `disable` or `delete`.
    pub operation: String,
    /// Where an LPA sends it (the SM-DP+).
    pub address: String,
    pub iccid: Option<String>,
    /// The signed notification (`OtherSignedNotification` DER, hex), with `--signed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<String>,
}

impl From<&NotificationMetadata> for NotificationRow {
    fn from(m: &NotificationMetadata) -> NotificationRow {
        NotificationRow {
            seq: m.seq,
            operation: m.event.name().to_string(),
            address: m.address.clone(),
            iccid: m.iccid.map(|i| i.to_string()),
            signed: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct NotificationsJson {
    notifications: Vec<NotificationRow>,
}

/// `{"notifications": [...]}`.
pub fn notifications_json(rows: &[NotificationRow]) -> String {
    serde_json::to_string_pretty(&NotificationsJson {
        notifications: rows.to_vec(),
    })
    .unwrap_or_default()
}

/// Read back what [`notifications_json`] printed.
pub fn parse_notifications_json(text: &str) -> Result<Vec<NotificationRow>, serde_json::Error> {
    serde_json::from_str::<NotificationsJson>(text).map(|n| n.notifications)
}

/// The notifications as a table, oldest first.
pub fn notifications_table(rows: &[NotificationRow]) -> String {
    if rows.is_empty() {
        return "no pending notifications\n".to_string();
    }
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.seq.to_string(),
                r.operation.clone(),
                r.iccid.clone().unwrap_or_else(|| "-".into()),
                r.address.clone(),
            ]
        })
        .collect();
    let mut out = table(&["SEQ", "OPERATION", "ICCID", "ADDRESS"], &cells);
    for r in rows {
        if let Some(signed) = &r.signed {
            out.push_str(&format!("signed {}: {signed}\n", r.seq));
        }
    }
    out
}

/// One certificate of the eUICC's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRow {
    /// `EUM` or `eUICC`.
    pub role: String,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub subject_key_id: String,
    /// The certificate, DER as hex (`xxd -r -p | openssl x509 -inform der` reads it).
    pub der: String,
}

impl CertRow {
    /// From a DER certificate; one that does not parse shows why as its subject.
    pub fn of(role: &str, der: &[u8]) -> CertRow {
        let c = cert::summary_or_reason(role, der);
        CertRow {
            role: c.role,
            subject: c.subject,
            issuer: c.issuer,
            serial: c.serial,
            not_before: c.not_before,
            not_after: c.not_after,
            subject_key_id: c.ski,
            der: apdu_specs::hexfmt::upper(der),
        }
    }
}

/// What `reader-client containers info` shows about the eUICC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EuiccInfoView {
    pub eid: String,
    /// SGP.22 version the eUICC implements.
    pub svn: String,
    pub default_smdp_address: Option<String>,
    pub root_smds_address: String,
    /// CI public key identifiers (hex) the eUICC signs with / verifies.
    pub ci_pkid_for_signing: Vec<String>,
    pub ci_pkid_for_verification: Vec<String>,
    /// EUM then eUICC certificate (GetCerts); empty when the card has none.
    pub chain: Vec<CertRow>,
}

/// The information as pretty JSON.
pub fn info_json(info: &EuiccInfoView) -> String {
    serde_json::to_string_pretty(info).unwrap_or_default()
}

/// The information as text, one field per line, then the chain.
pub fn info_text(info: &EuiccInfoView) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut out = format!(
        "EID                {}\nSGP.22 version     {}\ndefault SM-DP+     {}\nroot SM-DS         {}\nCI keys (signing)  {}\nCI keys (verify)   {}\n",
        info.eid,
        info.svn,
        info.default_smdp_address.as_deref().unwrap_or("-"),
        info.root_smds_address,
        list(&info.ci_pkid_for_signing),
        list(&info.ci_pkid_for_verification),
    );
    if info.chain.is_empty() {
        out.push_str("certificate chain  none (GetCerts answered no certificates)\n");
    }
    for c in &info.chain {
        out.push_str(&format!(
            "{} certificate\n  subject  {}\n  issuer   {}\n  serial   {}\n  valid    {} .. {}\n  key id   {}\n",
            c.role,
            c.subject,
            c.issuer,
            c.serial,
            c.not_before,
            c.not_after,
            if c.subject_key_id.is_empty() { "-" } else { &c.subject_key_id },
        ));
    }
    out
}

/// A management result for scripts: `{"function", "code", "result", "ok"}`.
#[derive(Debug, Serialize)]
pub struct OutcomeJson<'a> {
    pub function: &'a str,
    pub code: u8,
    /// SGP.22 name: `ok`, `iccidOrAidNotFound`, …
    pub result: &'a str,
    pub ok: bool,
}

/// The outcome as one JSON line.
pub fn outcome_json(o: &Outcome) -> String {
    serde_json::to_string(&OutcomeJson {
        function: o.function,
        code: o.code,
        result: &o.name,
        ok: o.is_ok(),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use apdu_specs::es10::{Aid, ProfileClass, ProfileState};

    fn sample() -> Vec<ProfileInfo> {
        vec![
            ProfileInfo {
                iccid: Some("8944476500001224158".parse().unwrap()),
                isdp_aid: Aid::isdp(0),
                state: Some(ProfileState::Enabled),
                nickname: Some(String::new()),
                service_provider_name: Some("vSE".into()),
                profile_name: Some("Container A".into()),
                profile_class: Some(ProfileClass::Operational),
            },
            ProfileInfo {
                iccid: Some("89000123456789012341".parse().unwrap()),
                state: Some(ProfileState::Disabled),
                ..ProfileInfo::default()
            },
        ]
    }

    #[test]
    fn table_aligns_columns_and_dashes_missing_fields() {
        let t = list_table(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[0].starts_with("ICCID                 STATE     NICKNAME"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("8944476500001224158   enabled   -"),
            "{t}"
        );
        assert!(
            lines[1].ends_with("A0000005591010FFFFFFFF8900001000"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("89000123456789012341  disabled  -"),
            "{t}"
        );
        assert_eq!(list_table(&[]), "no containers on this card\n");
    }

    #[test]
    fn json_has_every_field_with_nulls() {
        let v: serde_json::Value = serde_json::from_str(&list_json(&sample())).unwrap();
        let c = &v["containers"];
        assert_eq!(c[0]["iccid"], "8944476500001224158");
        assert_eq!(c[0]["state"], "enabled");
        assert_eq!(c[0]["class"], "operational");
        assert_eq!(c[0]["isdp_aid"], "A0000005591010FFFFFFFF8900001000");
        assert_eq!(c[1]["state"], "disabled");
        assert!(c[1]["nickname"].is_null());
        let rows = parse_list_json(&list_json(&sample())).unwrap();
        assert_eq!(rows[1].state.as_deref(), Some("disabled"));
        assert_eq!(rows[1].nickname, None);
    }
}
