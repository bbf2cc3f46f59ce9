//! `gp`: GlobalPlatform card management (info, status, put-key, install-anchor, and the
//! applets: load, install, delete) inside an SCP02/SCP03 secure channel.

use super::{parse_byte, CardSource, StateChanges};
use crate::cli::{GpArgs, GpCmd};
use anyhow::{bail, Context, Result};
use apdu_specs::hexfmt;
use reader_client::gp::{self, StatusScope};
use reader_client::scp::{self, Scp, ScpOptions, ScpVersion};
use reader_client::Transport;
use secure_channel::{SecurityLevel, StaticKeys};
use std::io::Write;
use std::path::Path;

/// `gp ...`: select the security domain, open the secure channel, run the action.
pub fn run(args: GpArgs, trace: bool, out: &mut dyn Write) -> Result<i32> {
    let GpArgs {
        reader,
        in_process,
        scp,
        key,
        enc,
        mac,
        dek,
        kvn,
        level,
        sd,
        json,
        action,
    } = args;
    let keys = static_keys(
        key.as_deref(),
        enc.as_deref(),
        mac.as_deref(),
        dek.as_deref(),
    )?;
    let mut options = ScpOptions::new(
        scp,
        match level {
            Some(l) => scp::parse_level(&l).map_err(anyhow::Error::msg)?,
            None if scp == ScpVersion::Scp02 => SecurityLevel::C_DEC_C_MAC,
            None => SecurityLevel::FULL,
        },
    );
    if let Some(k) = kvn {
        options.kvn = parse_byte(&k, "--kvn")?;
    }
    let sd = hexfmt::parse(&sd).with_context(|| format!("--sd {sd:?} is not hex"))?;
    // Files and AIDs are checked before the card is touched.
    let applet = applet_request(&action)?;
    let mut t = CardSource::new(reader, in_process, StateChanges::Discarded).open(trace)?;
    let fci = gp::select(t.as_mut(), &sd, 0).with_context(|| {
        format!(
            "selecting the security domain {} (use --sd AID for another one)",
            hexfmt::upper(&sd)
        )
    })?;
    if let GpCmd::Info { plain: true } = action {
        return gp_info(t.as_mut(), &fci, json, out);
    }
    if let GpCmd::PutKey { add: false, .. } = action {
        return gp_rotate(t.as_mut(), &sd, &keys, &options, action, json, out);
    }
    let mut session = Scp::open(t, &keys, &options).context(
            "opening the secure channel (check --scp, --kvn and the keys; the card counts failed attempts)",
        )?;
    eprintln!(
        "Secure channel: {} KVN {:02X}, level {}",
        session.version(),
        session.card_kvn(),
        options.level
    );
    match action {
        GpCmd::InstallAnchor {
            container,
            service,
            server_key,
        } => {
            let aid = hexfmt::parse(&container)
                .with_context(|| format!("--container {container:?} is not hex"))?;
            let anchor = trust_anchor(&service, &server_key)?;
            let channel = session.channel();
            gp::install_anchor(&mut session, &aid, &anchor, channel)
                .context("installing the trust anchor")?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"installed": true, "container": hexfmt::upper(&aid), "service": service})
                )?;
            } else {
                writeln!(
                    out,
                    "trust anchor for service `{service}` installed into container {} (DGI A001)",
                    hexfmt::upper(&aid)
                )?;
            }
            Ok(0)
        }
        GpCmd::Load { .. } | GpCmd::Install { .. } | GpCmd::Delete { .. } => {
            let request = applet.context("applet request")?;
            let channel = session.channel();
            applet_run(&mut session, request, channel, json, out)
        }
        GpCmd::Info { .. } => gp_info(&mut session, &fci, json, out),
        GpCmd::Status => gp_status(&mut session, json, out),
        GpCmd::PutKey {
            new_key,
            new_enc,
            new_mac,
            new_dek,
            new_kvn,
            add,
        } => {
            let new_keys = static_keys(
                new_key.as_deref(),
                new_enc.as_deref(),
                new_mac.as_deref(),
                new_dek.as_deref(),
            )?;
            let current = session.card_kvn();
            let new_kvn = match new_kvn {
                Some(k) => parse_byte(&k, "--new-kvn")?,
                None => current,
            };
            let replace = if add { None } else { Some(current) };
            let confirmed = gp::put_key(&mut session, replace, new_kvn, &new_keys)?;
            let what = match replace {
                Some(old) => format!("key set {old:02X} replaced by key set {new_kvn:02X}"),
                None => format!("key set {new_kvn:02X} added"),
            };
            let mut t = session.into_inner();
            let public = gp::sets_with_test_keys(t.as_mut(), &sd)?;
            if !public.is_empty() {
                eprintln!("{}", still_public_warning(&public));
            }
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"put_key": what, "kvn": new_kvn, "confirmed": confirmed})
                )?;
            } else if confirmed {
                writeln!(
                    out,
                    "{what}; the card confirmed the KVN and key check values"
                )?;
            } else {
                writeln!(
                    out,
                    "{what}; the card answered 9000 without confirming the key check values"
                )?;
            }
            Ok(0)
        }
    }
}

/// What to say about key sets the public test keys still open.
fn still_public_warning(public: &[gp::KeySet]) -> String {
    let names: Vec<String> = public.iter().map(ToString::to_string).collect();
    format!(
        "WARNING: {} still {} with the public GlobalPlatform test keys 40..4F: any terminal can \
administer the card, and it refuses trust anchors (6985) until every key set is rotated: \
reader-client gp put-key --new-key HEX",
        names.join(" and "),
        if names.len() == 1 { "opens" } else { "open" }
    )
}

/// `gp put-key` without --add: rotate every SCP03/SCP02 key set of the card, then say which
/// sets the public test keys still open (exit 1 if any).
fn gp_rotate(
    t: &mut dyn Transport,
    sd: &[u8],
    keys: &StaticKeys,
    options: &ScpOptions,
    action: GpCmd,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    let GpCmd::PutKey {
        new_key,
        new_enc,
        new_mac,
        new_dek,
        new_kvn,
        ..
    } = action
    else {
        bail!("not put-key");
    };
    let new_keys = static_keys(
        new_key.as_deref(),
        new_enc.as_deref(),
        new_mac.as_deref(),
        new_dek.as_deref(),
    )?;
    if new_keys.is_publicly_known() {
        bail!("the new keys are publicly known test keys; choose secret ones, e.g. --new-key $(openssl rand -hex 16)");
    }
    let renumber = match new_kvn {
        Some(k) => {
            let new = parse_byte(&k, "--new-kvn")?;
            let sets = gp::key_sets(t, sd)?;
            let old = sets
                .iter()
                .find(|s| {
                    s.version == options.version && (options.kvn == 0 || s.kvn == options.kvn)
                })
                .with_context(|| {
                    format!(
                        "the card has no {} key set with KVN {:02X} for --new-kvn (see `reader-client gp info`)",
                        options.version, options.kvn
                    )
                })?;
            Some((old.kvn, new))
        }
        None => None,
    };
    let report = gp::rotate_key_sets(t, sd, keys, &new_keys, options.level, renumber)
        .context("rotating the key sets")?;
    let public: Vec<gp::KeySet> = report.iter().filter(|r| r.public).map(|r| r.set).collect();
    if json {
        let sets: Vec<serde_json::Value> = report
            .iter()
            .map(|r| {
                let (result, new_kvn, confirmed, reason) = match &r.rotation {
                    gp::Rotation::Rotated { new_kvn, confirmed } => {
                        ("rotated", Some(*new_kvn), Some(*confirmed), None)
                    }
                    gp::Rotation::AlreadyRotated => ("already rotated", None, None, None),
                    gp::Rotation::Kept { reason } => ("kept", None, None, Some(reason.clone())),
                };
                serde_json::json!({
                    "kvn": format!("{:02X}", r.set.kvn),
                    "scp": r.set.version.to_string(),
                    "result": result,
                    "new_kvn": new_kvn.map(|k| format!("{k:02X}")),
                    "confirmed": confirmed,
                    "reason": reason,
                    "public_test_keys": r.public,
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({"key_sets": sets, "all_rotated": public.is_empty()})
        )?;
    } else {
        for r in &report {
            let what = match &r.rotation {
                gp::Rotation::Rotated { new_kvn, confirmed } => format!(
                    "rotated: key set {:02X} replaced by key set {new_kvn:02X}{}",
                    r.set.kvn,
                    if *confirmed {
                        "; the card confirmed the KVN and key check values"
                    } else {
                        "; the card answered 9000 without confirming the key check values"
                    }
                ),
                gp::Rotation::AlreadyRotated => "already rotated: the new keys open it".into(),
                gp::Rotation::Kept { reason } => format!("NOT rotated: {reason}"),
            };
            writeln!(out, "{}: {what}", r.set)?;
        }
        if public.is_empty() {
            writeln!(
                out,
                "no key set opens with the public test keys any more; keep the new keys, they are the card's admin keys now"
            )?;
        }
    }
    if public.is_empty() {
        Ok(0)
    } else {
        eprintln!("{}", still_public_warning(&public));
        Ok(1)
    }
}

fn trust_anchor(service: &str, key: &str) -> Result<apdu_specs::auth::TrustAnchor> {
    let bytes = hexfmt::parse(key).with_context(|| "--server-key is not hex".to_string())?;
    let server_public_key: [u8; 65] = bytes.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!(
            "--server-key has {} bytes; a P-256 public key is 65 (04 || X || Y), as `server public-key` prints it",
            bytes.len()
        )
    })?;
    if service.is_empty() || service.len() > apdu_specs::auth::MAX_ID_LEN {
        bail!("--service must have 1..32 bytes");
    }
    Ok(apdu_specs::auth::TrustAnchor {
        service_id: service.to_string(),
        server_public_key,
    })
}

/// The static keys from --key or --enc/--mac/--dek; the GP test keys when none is given.
fn static_keys(
    key: Option<&str>,
    enc: Option<&str>,
    mac: Option<&str>,
    dek: Option<&str>,
) -> Result<StaticKeys> {
    let hex = |h: &str, what: &str| -> Result<Vec<u8>> {
        hexfmt::parse(h).with_context(|| format!("{what} is not hex"))
    };
    let keys = match (key, enc, mac, dek) {
        (Some(k), ..) => StaticKeys::from_single(&hex(k, "the key")?),
        (None, Some(e), Some(m), Some(d)) => StaticKeys::new(
            &hex(e, "the ENC key")?,
            &hex(m, "the MAC key")?,
            &hex(d, "the DEK key")?,
        ),
        _ => {
            eprintln!("Using the GlobalPlatform test keys 404142...4F (give --key or --enc/--mac/--dek for others)");
            return Ok(StaticKeys::gp_default());
        }
    };
    keys.context("keys are 16, 24 or 32 bytes (SCP02: 16)")
}

/// `gp info`: FCI, card data, CPLC and key information; objects the card lacks are reported, not fatal.
fn gp_info(t: &mut dyn Transport, fci: &[u8], json: bool, out: &mut dyn Write) -> Result<i32> {
    use apdu_specs::es10::der;
    let aid = der::read_expected(fci, 0x6F)
        .ok()
        .and_then(|v| der::read_all(v).ok())
        .and_then(|c| der::find(&c, 0x84).map(hexfmt::upper));
    let card_data = gp::get_data(t, gp::object::CARD_DATA, 0).and_then(|d| gp::parse_card_data(&d));
    let cplc = gp::get_data(t, gp::object::CPLC, 0).and_then(|d| gp::parse_cplc(&d));
    let keys = gp::get_data(t, gp::object::KEY_INFORMATION, 0).and_then(|d| gp::parse_key_info(&d));
    if json {
        let v = serde_json::json!({
            "aid": aid,
            "card_data": card_data.as_ref().ok(),
            "cplc": cplc.as_ref().ok().map(|f| f.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<std::collections::BTreeMap<_, _>>()),
            "keys": keys.as_ref().ok(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    writeln!(
        out,
        "Security domain: {}",
        aid.as_deref().unwrap_or("(no AID in the FCI)")
    )?;
    match card_data {
        Ok(c) => {
            writeln!(out, "Card data:")?;
            writeln!(
                out,
                "  GlobalPlatform version: {}",
                c.gp_version.as_deref().unwrap_or("-")
            )?;
            for (scp, i) in &c.scp {
                writeln!(out, "  secure channel: SCP{scp:02} i={i:02X}")?;
            }
            for (tag, oid) in &c.oids {
                writeln!(out, "  {tag}: {oid}")?;
            }
        }
        Err(e) => writeln!(out, "Card data: not available ({e})")?,
    }
    match cplc {
        Ok(fields) => {
            writeln!(out, "CPLC:")?;
            for (name, value) in fields {
                writeln!(out, "  {name}: {value}")?;
            }
        }
        Err(e) => writeln!(out, "CPLC: not available ({e})")?,
    }
    match keys {
        Ok(keys) => {
            writeln!(out, "Keys:")?;
            for k in keys {
                let comps: Vec<String> = k
                    .components
                    .iter()
                    .map(|(t, len)| {
                        format!("{} {}-bit", gp::key_type_name(*t), u32::from(*len) * 8)
                    })
                    .collect();
                writeln!(
                    out,
                    "  KVN {:02X} ID {:02X}: {}",
                    k.version,
                    k.id,
                    comps.join(", ")
                )?;
            }
        }
        Err(e) => writeln!(out, "Keys: not available ({e})")?,
    }
    Ok(0)
}

/// `gp status`: ISD, load files (packages) with their modules, then applications and
/// security domains (with the package and container of each applet).
fn gp_status(t: &mut dyn Transport, json: bool, out: &mut dyn Write) -> Result<i32> {
    let isd = gp::get_status(t, StatusScope::Isd, 0).context("GET STATUS of the ISD")?;
    let packages = gp::get_load_files(t, 0).context("GET STATUS of the load files")?;
    let apps = gp::get_status(t, StatusScope::Applications, 0)
        .context("GET STATUS of the applications and security domains")?;
    if json {
        let v = serde_json::json!({ "isd": isd, "load_files": packages, "applications": apps });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    for (label, scope, entries) in [
        ("ISD", StatusScope::Isd, &isd),
        ("PKG", StatusScope::LoadFiles, &packages),
        ("APP", StatusScope::Applications, &apps),
    ] {
        for e in entries {
            writeln!(out, "{}", status_line(label, scope, e))?;
        }
    }
    Ok(0)
}

/// One line of `gp status`: `APP: <AID>  <life cycle>  privileges <hex>  package <AID>
/// container <AID>`, `PKG: <AID>  LOADED (01)  modules <AID>, …`; absent fields are left out.
fn status_line(label: &str, scope: StatusScope, e: &gp::StatusEntry) -> String {
    let mut line = format!(
        "{label}: {}  {}",
        hexfmt::upper(&e.aid),
        gp::life_cycle_name(scope, e.life_cycle)
    );
    if let Some(p) = e.privileges.as_deref().filter(|p| !p.is_empty()) {
        line.push_str(&format!("  privileges {}", hexfmt::upper(p)));
    }
    if !e.modules.is_empty() {
        let modules: Vec<String> = e.modules.iter().map(|m| hexfmt::upper(m)).collect();
        line.push_str(&format!("  modules {}", modules.join(", ")));
    }
    if let Some(f) = e.load_file.as_deref().filter(|f| !f.is_empty()) {
        line.push_str(&format!("  package {}", hexfmt::upper(f)));
    }
    if let Some(sd) = e.associated_sd.as_deref().filter(|sd| !sd.is_empty()) {
        line.push_str(&format!("  container {}", hexfmt::upper(sd)));
    }
    line
}

/// `gp load`, `gp install`, `gp delete`, checked and ready to send.
#[derive(Debug)]
enum AppletRequest {
    Load {
        module: Vec<u8>,
        package: Vec<u8>,
        container: Vec<u8>,
        block_size: usize,
    },
    Install(gp::AppletInstall),
    Delete {
        aid: Vec<u8>,
        related: bool,
    },
}

/// An AID option: hex of 5..16 bytes.
fn parse_aid(value: &str, what: &str) -> Result<Vec<u8>> {
    let aid = hexfmt::parse(value).with_context(|| format!("{what} {value:?} is not hex"))?;
    if !(5..=16).contains(&aid.len()) {
        bail!(
            "{what} has {} bytes; an AID has 5..16 bytes (10..32 hex digits)",
            aid.len()
        );
    }
    Ok(aid)
}

/// The module bytes of `gp load FILE`: a binary module, or WebAssembly text (`.wat`) compiled.
fn read_module(file: &Path) -> Result<Vec<u8>> {
    let is_text = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("wat"));
    if is_text {
        return wat::parse_file(file)
            .with_context(|| format!("compiling the WebAssembly text {}", file.display()));
    }
    let module = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if !module.starts_with(b"\0asm") {
        bail!(
            "{} is not a binary WebAssembly module (it does not start with \\0asm); a text module must be named *.wat",
            file.display()
        );
    }
    Ok(module)
}

/// The applet subcommands' arguments checked (files read, hex parsed) before the card is
/// touched; `None` for the other subcommands.
fn applet_request(action: &GpCmd) -> Result<Option<AppletRequest>> {
    Ok(Some(match action {
        GpCmd::Load {
            file,
            container,
            package_aid,
            block_size,
        } => AppletRequest::Load {
            module: read_module(file)?,
            package: parse_aid(package_aid, "--package-aid")?,
            container: parse_aid(container, "--container")?,
            block_size: usize::from(*block_size),
        },
        GpCmd::Install {
            package_aid,
            applet_aid,
            module_aid,
            params,
            storage,
        } => {
            let package_aid = parse_aid(package_aid, "--package-aid")?;
            let module_aid = match module_aid {
                Some(m) => parse_aid(m, "--module-aid")?,
                None => package_aid.clone(),
            };
            AppletRequest::Install(gp::AppletInstall {
                package_aid,
                module_aid,
                applet_aid: parse_aid(applet_aid, "--applet-aid")?,
                params: hexfmt::parse(params)
                    .with_context(|| format!("--params {params:?} is not hex"))?,
                storage: *storage,
            })
        }
        GpCmd::Delete { aid, related } => AppletRequest::Delete {
            aid: parse_aid(aid, "the AID to delete")?,
            related: *related,
        },
        _ => return Ok(None),
    }))
}

/// Send a checked applet request inside the secure channel and report it.
fn applet_run(
    t: &mut dyn Transport,
    request: AppletRequest,
    channel: u8,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    match request {
        AppletRequest::Load {
            module,
            package,
            container,
            block_size,
        } => {
            let blocks = gp::load(t, &package, &container, &module, block_size, channel)
                .with_context(|| {
                    format!(
                        "loading {} bytes as package {}",
                        module.len(),
                        hexfmt::upper(&package)
                    )
                })?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "loaded": module.len(),
                        "package": hexfmt::upper(&package),
                        "container": hexfmt::upper(&container),
                        "blocks": blocks,
                    })
                )?;
            } else {
                writeln!(
                    out,
                    "loaded {} bytes as {} into container {} ({blocks} blocks)",
                    module.len(),
                    hexfmt::upper(&package),
                    hexfmt::upper(&container)
                )?;
            }
        }
        AppletRequest::Install(install) => {
            gp::install(t, &install, channel).with_context(|| {
                format!(
                    "installing applet {} from package {}",
                    hexfmt::upper(&install.applet_aid),
                    hexfmt::upper(&install.package_aid)
                )
            })?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "installed": hexfmt::upper(&install.applet_aid),
                        "package": hexfmt::upper(&install.package_aid),
                        "module": hexfmt::upper(&install.module_aid),
                        "storage": install.storage,
                    })
                )?;
            } else {
                writeln!(
                    out,
                    "installed applet {} from package {} (selectable)",
                    hexfmt::upper(&install.applet_aid),
                    hexfmt::upper(&install.package_aid)
                )?;
            }
        }
        AppletRequest::Delete { aid, related } => {
            gp::delete(t, &aid, related, channel)
                .with_context(|| format!("deleting {}", hexfmt::upper(&aid)))?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"deleted": hexfmt::upper(&aid), "related": related})
                )?;
            } else if related {
                writeln!(
                    out,
                    "deleted {} and what depended on it",
                    hexfmt::upper(&aid)
                )?;
            } else {
                writeln!(out, "deleted {}", hexfmt::upper(&aid))?;
            }
        }
    }
    Ok(0)
}
