//! File-system queries over the state's file arena: lookups by FID, path and DF name, and FCP.

use crate::state::{Access, FileBody, FileId, FileNode};
use apdu_specs::tlv;

pub const MF: FileId = 0;

pub fn children(files: &[FileNode], df: FileId) -> &[FileId] {
    match files.get(df).map(|f| &f.body) {
        Some(FileBody::Df { children }) => children,
        _ => &[],
    }
}

pub fn child_by_fid(files: &[FileNode], df: FileId, fid: u16) -> Option<FileId> {
    children(files, df)
        .iter()
        .copied()
        .find(|c| files[*c].fid == fid)
}

pub fn parent(files: &[FileNode], id: FileId) -> Option<FileId> {
    files.get(id).and_then(|f| f.parent)
}

/// SELECT by FID (P1=00), ISO 7816-4 §11.2.2: the MF, the current DF, a child of the
/// current DF, the parent DF, or a child of the parent DF (a sibling).
pub fn select_fid(files: &[FileNode], current_df: FileId, fid: u16) -> Option<FileId> {
    if fid == apdu_specs::ins::fid::MF {
        return Some(MF);
    }
    if files[current_df].fid == fid {
        return Some(current_df);
    }
    if let Some(c) = child_by_fid(files, current_df, fid) {
        return Some(c);
    }
    let p = parent(files, current_df)?;
    if files[p].fid == fid {
        return Some(p);
    }
    child_by_fid(files, p, fid)
}

/// Follow a path of FIDs from `start`; every element but the last must be a DF.
pub fn resolve_path(files: &[FileNode], start: FileId, path: &[u16]) -> Option<FileId> {
    let mut at = start;
    for (i, fid) in path.iter().enumerate() {
        if i > 0 && !files[at].is_df() {
            return None;
        }
        at = child_by_fid(files, at, *fid)?;
    }
    Some(at)
}

/// DFs whose name starts with `prefix`, in tree (arena) order.
pub fn dfs_named<'a>(files: &'a [FileNode], prefix: &'a [u8]) -> impl Iterator<Item = FileId> + 'a {
    files.iter().enumerate().filter_map(move |(i, f)| {
        let name = f.name.as_deref()?;
        (f.is_df() && name.starts_with(prefix)).then_some(i)
    })
}

/// The DF a file lives in (itself for a DF).
pub fn df_of(files: &[FileNode], id: FileId) -> FileId {
    if files[id].is_df() {
        id
    } else {
        parent(files, id).unwrap_or(MF)
    }
}

fn security_condition(a: Access) -> u8 {
    // ISO 7816-4 §5.4.3.2 compact SC byte: 00 always, FF never, b5 = user authentication.
    match a {
        Access::Always => 0x00,
        Access::Pin(_) => 0x10,
        Access::Never => 0xFF,
    }
}

/// A size in at least two bytes, more when needed (an EF of 65 536 bytes needs three).
fn size_bytes(n: usize) -> Vec<u8> {
    let b = (n as u32).to_be_bytes();
    let skip = b.iter().take(2).take_while(|x| **x == 0).count();
    b[skip..].to_vec()
}

/// The file control parameters of `id` in `template` (`62` FCP, `6F` FCI), as a UICC
/// answers them (ETSI TS 102 221 §11.1.1.3, which profiles ISO 7816-4 §5.3.3): file
/// descriptor with data coding byte `21`, file identifier, DF name, proprietary information
/// (`A5`, the MF's UICC characteristics), life cycle status, compact security attributes,
/// for DFs the PIN status template `C6` listing `pins` (the references that guard the DF,
/// all enabled; the caller lists each once), and for EFs file size, total file size and SFI
/// (`88 00`: none).
pub fn control_parameters(files: &[FileNode], id: FileId, template: u32, pins: &[u8]) -> Vec<u8> {
    let f = &files[id];
    let mut inner = Vec::with_capacity(48);
    match &f.body {
        FileBody::Df { .. } => {
            // TS 102 221 §11.1.1.4.3: DF, shareable; data coding byte 21.
            tlv::push(&mut inner, 0x82, &[0x78, 0x21]);
            tlv::push(&mut inner, 0x83, &f.fid.to_be_bytes());
            if let Some(name) = &f.name {
                tlv::push(&mut inner, 0x84, name);
            }
            if f.parent.is_none() && f.fid == apdu_specs::ins::fid::MF {
                // §11.1.1.4.6.1 UICC characteristics: clock stop allowed, no preferred
                // level; 3 V and 1.8 V technology (the usual `71`).
                tlv::push(&mut inner, 0xA5, &tlv::build(0x80, &[0x71]));
            }
            tlv::push(&mut inner, 0x8A, &[0x05]);
            // Compact format, no access mode byte set: a DF itself is never read or written.
            tlv::push(&mut inner, 0x8C, &[0x00]);
            tlv::push(&mut inner, 0xC6, &pin_status_template(pins));
        }
        FileBody::Transparent { .. } | FileBody::Records { .. } => {
            let (size, descriptor) = match &f.body {
                FileBody::Records {
                    cyclic,
                    record_length,
                    max_records,
                    ..
                } => (
                    size_bytes(*record_length as usize * *max_records as usize),
                    // §11.1.1.4.3: shareable, linear fixed (42) or cyclic (46).
                    vec![
                        if *cyclic { 0x46 } else { 0x42 },
                        0x21,
                        0x00,
                        *record_length,
                        *max_records,
                    ],
                ),
                // Shareable, transparent.
                _ => (size_bytes(size(f)), vec![0x41, 0x21]),
            };
            tlv::push(&mut inner, 0x82, &descriptor);
            tlv::push(&mut inner, 0x83, &f.fid.to_be_bytes());
            tlv::push(&mut inner, 0x8A, &[0x05]);
            let access = [
                0x03,
                security_condition(f.update),
                security_condition(f.read),
            ];
            tlv::push(&mut inner, 0x8C, &access);
            tlv::push(&mut inner, 0x80, &size);
            tlv::push(&mut inner, 0x81, &size);
            // §11.1.1.4.8: an absent 88 would make the FID's five low bits the SFI, which
            // the card does not honour; an EF without an SFI says so with an empty 88.
            match f.sfi {
                Some(sfi) => tlv::push(&mut inner, 0x88, &[sfi << 3]),
                None => tlv::push(&mut inner, 0x88, &[]),
            }
        }
    }
    tlv::build(template, &inner)
}

/// TS 102 221 §9.5.2 PIN status template: `90` PS_DO (bit 8 down: the first key references
/// listed are enabled), then `83` key reference per PIN (at most eight).
fn pin_status_template(pins: &[u8]) -> Vec<u8> {
    let pins = &pins[..pins.len().min(8)];
    let ps_do = (0..pins.len()).fold(0u8, |acc, i| acc | (0x80 >> i));
    let mut out = tlv::build(0x90, &[ps_do]);
    for r in pins {
        tlv::push(&mut out, 0x83, &[*r]);
    }
    out
}

/// The total allocated size of a file's contents, for `inspect`.
pub fn size(f: &FileNode) -> usize {
    match &f.body {
        FileBody::Df { .. } => 0,
        FileBody::Transparent { data } => data.len(),
        FileBody::Records {
            record_length,
            max_records,
            ..
        } => *record_length as usize * *max_records as usize,
    }
}
