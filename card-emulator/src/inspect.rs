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

/// The command that replaces every GlobalPlatform key set of a running card.
pub const ROTATE_KEYS: &str = "reader-client gp put-key --new-key $(openssl rand -hex 16)";

/// The GlobalPlatform key sets that hold a publicly known test key, as `KVN 30 (SCP03)`.
pub fn public_key_sets(state: &CardState) -> Vec<String> {
    state
        .gp
        .key_sets
        .iter()
        .filter(|k| k.is_publicly_known())
        .map(|k| format!("KVN {:02X} (SCP0{})", k.kvn, k.scp))
        .collect()
}

/// What to say while a GlobalPlatform key set is publicly known (`None` once none is): the
/// card refuses trust anchors until every set is secret.
pub fn test_keys_warning(state: &CardState) -> Option<String> {
    let public = public_key_sets(state);
    if public.is_empty() {
        return None;
    }
    Some(format!(
        "{} still use publicly known test keys: any terminal can open a secure channel, and the \
card refuses trust anchors (DGI A001, 6985) until every key set is secret. With the card \
running, rotate them all and keep the new key: {ROTATE_KEYS}",
        public.join(" and ")
    ))
}

/// The eUICC's SGP.22 certificate chain, CI first (public data; its private key is never
/// shown).
fn euicc_chain(state: &CardState, out: &mut String) {
    let Some(id) = state.euicc_identity() else {
        let _ = writeln!(
            out,
            "eUICC certificates: no eUICC certificate chain (card created before card-emulator \
made one; re-create it with card-emulator init --force)"
        );
        return;
    };
    let _ = writeln!(
        out,
        "eUICC certificates (SGP.22 TEST chain CI -> EUM -> eUICC; the trust anchor is the CI, \
exported by init as STATE.ci.pem):"
    );
    for c in id.summary() {
        let _ = writeln!(out, "  {:<5}  subject {}", c.role, c.subject);
        let _ = writeln!(out, "         issuer  {}", c.issuer);
        let _ = writeln!(out, "         serial  {}", c.serial);
        let _ = writeln!(out, "         valid   {} .. {}", c.not_before, c.not_after);
        let _ = writeln!(
            out,
            "         SKI     {}",
            if c.ski.is_empty() { "none" } else { &c.ski }
        );
        if !c.policies.is_empty() {
            let _ = writeln!(out, "         policy  {}", c.policies.join(", "));
        }
    }
}

/// The report printed by `card-emulator inspect`.
pub fn report(state: &CardState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "card: {}", state.label);
    let _ = writeln!(
        out,
        "ATR: {}",
        apdu_specs::hexfmt::spaced(&crate::atr::build(
            &state.historical_bytes,
            &state.atr_protocols
        ))
    );
    let _ = writeln!(out, "PINs:");
    pins(&state.pins, "", &mut out);
    if !state.data_objects.is_empty() {
        let _ = writeln!(out, "data objects:");
        for d in &state.data_objects {
            let _ = writeln!(out, "  {:04X}  {} bytes", d.tag, d.value.len());
        }
    }
    let _ = writeln!(out, "GlobalPlatform key sets:");
    for k in &state.gp.key_sets {
        let kcv = if k.scp == 3 {
            secure_channel::kcv_aes(&k.enc)
        } else {
            secure_channel::kcv_des3(&k.enc)
        }
        .map(|c| apdu_specs::hexfmt::upper(&c))
        .unwrap_or_else(|_| "?".into());
        let _ = writeln!(
            out,
            "  KVN {:02X}  SCP0{}  {}-byte keys  ENC KCV {}{}",
            k.kvn,
            k.scp,
            k.enc.len(),
            kcv,
            if k.is_default() {
                "  WARNING: the public default key 40..4F; replace it (PUT KEY) before any real use"
            } else if k.is_publicly_known() {
                "  WARNING: holds a publicly known test key; replace it (PUT KEY) before any real use"
            } else {
                ""
            }
        );
    }
    if let Some(warning) = test_keys_warning(state) {
        let _ = writeln!(out, "  WARNING: {warning}");
    }
    let _ = writeln!(
        out,
        "  SCP03 counter {}, SCP02 counter {}, failed authentications {}",
        state.gp.scp03_counter, state.gp.scp02_counter, state.gp.auth_failures
    );
    let _ = writeln!(out, "files:");
    tree(&state.files, fs::MF, 1, &mut out);
    if !state.eid.is_empty() {
        let _ = writeln!(out, "EID: {}", apdu_specs::hexfmt::upper(&state.eid));
    }
    euicc_chain(state, &mut out);
    for (i, c) in state.containers().iter().enumerate() {
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
        match apdu_specs::auth::Certificate::parse(&c.auth.certificate) {
            Ok(cert) => {
                let _ = writeln!(
                    out,
                    "    authentication applet: SE key certified by {:?} (serial {}), {} registration(s){}{}",
                    cert.issuer,
                    apdu_specs::hexfmt::upper(&cert.serial),
                    c.auth.counter,
                    if c.auth.pending.is_some() { ", one pending" } else { "" },
                    match &c.auth.connection {
                        Some(conn) => format!(", connection open for {:?}", conn.service_id()),
                        None => String::new(),
                    }
                );
            }
            Err(_) => {
                let _ = writeln!(
                    out,
                    "    authentication applet: not personalized (no SE certificate)"
                );
            }
        }
        for a in &c.trust_anchors {
            let _ = writeln!(
                out,
                "    trust anchor for {:?}: {}-byte public key",
                a.service,
                a.public_key.len()
            );
        }
        for f in &c.load_files {
            let _ = writeln!(
                out,
                "    load file {}: {}-byte WebAssembly module",
                apdu_specs::hexfmt::upper(&f.aid),
                f.module.len()
            );
        }
        for a in &c.applets {
            // The instance's key is never shown; its storage size only.
            let _ = writeln!(
                out,
                "    applet {} (from {}): {} bytes of storage",
                apdu_specs::hexfmt::upper(&a.aid),
                apdu_specs::hexfmt::upper(&a.load_file),
                a.storage.len()
            );
        }
        tree(&c.files, 0, 1, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile;

    #[test]
    fn default_keys_are_warned_about_and_no_secret_is_printed() {
        let text = profile::DEFAULT_PROFILE.replace("value = \"1234\"", "value = \"9876\"");
        let s = profile::build(&text).unwrap();
        let r = report(&s);
        assert!(r.contains("KVN 30  SCP03") && r.contains("WARNING: the public default key"));
        assert!(
            r.contains("KVN 30 (SCP03) and KVN 20 (SCP02) still use publicly known test keys")
                && r.contains("refuses trust anchors")
                && r.contains(ROTATE_KEYS),
            "{r}"
        );
        assert!(!r.contains("404142"), "a key appears in the report");
        assert!(!r.contains("9876"), "a PIN appears in the report");
        assert!(r.contains("container 1: disabled"));
    }

    #[test]
    fn the_eid_and_the_three_certificates_are_shown_never_the_euicc_key() {
        let s = profile::build(profile::DEFAULT_PROFILE).unwrap();
        let r = report(&s);
        assert!(r.contains(&format!("EID: {}", profile::DEFAULT_EID)), "{r}");
        for role in ["CI ", "EUM ", "eUICC "] {
            assert!(r.contains(&format!("  {role}")), "{role} missing: {r}");
        }
        assert!(r.contains("subject CN=vSE Test CI"), "{r}");
        assert!(r.contains(profile::DEFAULT_EID) && r.contains("9999-12-31T23:59:59Z"));
        let json = serde_json::to_value(s.euicc_identity().unwrap()).unwrap();
        let key = json["private_key"].as_str().unwrap();
        assert_eq!(key.len(), 64);
        assert!(
            !r.contains(key),
            "the eUICC private key appears in the report"
        );
    }

    #[test]
    fn a_card_without_the_chain_says_how_to_get_one() {
        let mut s = profile::build(profile::DEFAULT_PROFILE).unwrap();
        s.euicc = None;
        let r = report(&s);
        assert!(
            r.contains("no eUICC certificate chain") && r.contains("card-emulator init --force"),
            "{r}"
        );
    }

    #[test]
    fn own_keys_from_the_profile_carry_no_warning() {
        let text = format!(
            "{}\n[[key_set]]\nkvn = 0x31\nscp = 3\nkey = \"{}\"\n",
            profile::DEFAULT_PROFILE,
            "11".repeat(32)
        );
        let s = profile::build(&text).unwrap();
        assert_eq!(s.gp.key_sets.len(), 1);
        assert_eq!(s.gp.key_sets[0].enc.len(), 32);
        let r = report(&s);
        assert!(r.contains("KVN 31  SCP03  32-byte keys") && !r.contains("WARNING"));
        assert_eq!(test_keys_warning(&s), None);
    }

    #[test]
    fn a_set_with_one_published_key_is_warned_about() {
        let text = format!(
            "{}\n[[key_set]]\nkvn = 0x31\nscp = 3\nenc = \"{}\"\nmac = \"{}\"\ndek = \"{}\"\n",
            profile::DEFAULT_PROFILE,
            "11".repeat(16),
            "12".repeat(16),
            hex::encode(b"GEMXPRESSOSAMPLE")
        );
        let s = profile::build(&text).unwrap();
        let r = report(&s);
        assert!(r.contains("holds a publicly known test key"), "{r}");
        assert!(test_keys_warning(&s)
            .unwrap()
            .starts_with("KVN 31 (SCP03) still"));
    }
}
