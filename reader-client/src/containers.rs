//! What `reader-client containers` prints: the profile list as a table or JSON, and results.

use crate::es10_client::{class_name, state_name, Outcome};
use apdu_specs::es10::ProfileInfo;
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
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &cells {
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
    let mut out = line(&HEADERS.map(str::to_string));
    for row in &cells {
        out.push_str(&line(row));
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
