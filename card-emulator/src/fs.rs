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

/// The file control parameters (ISO 7816-4 §5.3.3) inside a template tag (`62` FCP, `6F` FCI).
pub fn control_parameters(files: &[FileNode], id: FileId, template: u32) -> Vec<u8> {
    let f = &files[id];
    let mut inner = Vec::with_capacity(40);
    match &f.body {
        FileBody::Df { .. } => {
            tlv::push(&mut inner, 0x82, &[0x38]);
            tlv::push(&mut inner, 0x83, &f.fid.to_be_bytes());
            if let Some(name) = &f.name {
                tlv::push(&mut inner, 0x84, name);
            }
            tlv::push(&mut inner, 0x8A, &[0x05]);
        }
        FileBody::Transparent { .. } | FileBody::Records { .. } => {
            // Sizes and descriptor (ISO 7816-4 §5.3.3 tables 12-14), then what every EF has.
            let (size, descriptor) = match &f.body {
                FileBody::Records {
                    cyclic,
                    record_length,
                    max_records,
                    ..
                } => (
                    size_bytes(*record_length as usize * *max_records as usize),
                    vec![
                        if *cyclic { 0x06 } else { 0x02 },
                        0x21,
                        0x00,
                        *record_length,
                        *max_records,
                    ],
                ),
                _ => (size_bytes(size(f)), vec![0x01]),
            };
            tlv::push(&mut inner, 0x80, &size);
            tlv::push(&mut inner, 0x81, &size);
            tlv::push(&mut inner, 0x82, &descriptor);
            tlv::push(&mut inner, 0x83, &f.fid.to_be_bytes());
            if let Some(sfi) = f.sfi {
                tlv::push(&mut inner, 0x88, &[sfi << 3]);
            }
            tlv::push(&mut inner, 0x8A, &[0x05]);
            let access = [
                0x03,
                security_condition(f.update),
                security_condition(f.read),
            ];
            tlv::push(&mut inner, 0x8C, &access);
        }
    }
    tlv::build(template, &inner)
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
