//! SELECT (ISO 7816-4 §11.2.2): by FID, child DF, EF, parent, DF name and path.

use super::{Ctx, Outcome, Response};
use crate::fs;
use crate::state::FileId;
use crate::vm::Tree;
use apdu_specs::{Command, Status};

fn fids(data: &[u8]) -> Result<Vec<u16>, Status> {
    if data.is_empty() || !data.len().is_multiple_of(2) {
        return Err(Status::WrongLength);
    }
    Ok(data
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

fn one_fid(data: &[u8]) -> Result<u16, Status> {
    match data {
        [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err(Status::WrongLength),
    }
}

/// DFs named by `prefix` in every tree visible to the VM, card-global first, with their
/// place in that order.
fn named(ctx: &Ctx, prefix: &[u8]) -> Vec<((usize, FileId), (Tree, FileId))> {
    let mut out = Vec::new();
    for (n, t) in ctx.vm.visible_trees().enumerate() {
        if let Ok(files) = ctx.vm.tree(t) {
            out.extend(fs::dfs_named(files, prefix).map(|id| ((n, id), (t, id))));
        }
    }
    out
}

/// The first DF named by `prefix` (the usual SELECT, P2 occurrence 00): no allocation.
fn first_named(ctx: &Ctx, prefix: &[u8]) -> Option<(Tree, FileId)> {
    ctx.vm.visible_trees().find_map(|t| {
        let files = ctx.vm.tree(t).ok()?;
        fs::dfs_named(files, prefix).next().map(|id| (t, id))
    })
}

// ISO 7816-4 §11.2.2, tables 39 (P1) and 40 (P2).
pub fn select(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    if cmd.p2 & 0xF0 != 0 {
        return Err(Status::IncorrectP1P2);
    }
    let occurrence = cmd.p2 & 0x03;
    let answer = cmd.p2 & 0x0C;
    if occurrence != 0 && cmd.p1 != 0x04 {
        return Err(Status::IncorrectP1P2);
    }
    let tree = ctx.chan.tree;
    let files = ctx.files()?;
    let df = ctx.chan.current_df;
    let data = cmd.data();
    let mf = Some((Tree::Global, fs::MF));
    // A container's root DF sits under the MF: its parent and siblings are the MF's.
    let at_container_root = tree != Tree::Global && df == 0;
    let here = |id: Option<FileId>| id.map(|i| (tree, i));
    let target = match cmd.p1 {
        0x00 if data.is_empty() || data == [0x3F, 0x00] => mf,
        0x00 => {
            let fid = one_fid(data)?;
            match here(fs::select_fid(files, df, fid)) {
                None if at_container_root => {
                    let global = ctx.vm.tree(Tree::Global)?;
                    fs::select_fid(global, fs::MF, fid).map(|i| (Tree::Global, i))
                }
                found => found,
            }
        }
        0x01 => here(fs::child_by_fid(files, df, one_fid(data)?).filter(|c| files[*c].is_df())),
        0x02 => here(fs::child_by_fid(files, df, one_fid(data)?).filter(|c| !files[*c].is_df())),
        0x03 if data.is_empty() && at_container_root => mf,
        0x03 if data.is_empty() => here(fs::parent(files, df)),
        0x03 => return Err(Status::WrongLength),
        0x04 if data.is_empty() => mf,
        0x04 if data.len() > 16 => return Err(Status::WrongLength),
        0x04 => {
            if occurrence == 0 {
                first_named(ctx, data)
            } else {
                let matches = named(ctx, data);
                let place = ctx.vm.visible_trees().position(|t| t == tree).unwrap_or(0);
                let now = (place, df);
                let found = match occurrence {
                    1 => matches.last(),
                    2 => matches.iter().find(|m| m.0 > now),
                    _ => matches.iter().rev().find(|m| m.0 < now),
                };
                found.map(|m| m.1)
            }
        }
        0x08 => {
            let mut path = fids(data)?;
            if path.first() == Some(&apdu_specs::ins::fid::MF) {
                path.remove(0);
            }
            let global = ctx.vm.tree(Tree::Global)?;
            if path.is_empty() {
                mf
            } else {
                fs::resolve_path(global, fs::MF, &path).map(|i| (Tree::Global, i))
            }
        }
        0x09 => here(fs::resolve_path(files, df, &fids(data)?)),
        _ => return Err(Status::IncorrectP1P2),
    };
    let (tree, target) = match target {
        Some(t) => t,
        None if cmd.p1 == 0x04 && occurrence == 0 => {
            // Not a DF name: perhaps an applet (the card manager).
            let (selected, fci) =
                crate::applets::select_by_name(ctx, cmd).ok_or(Status::FileNotFound)?;
            let fci = fci?;
            ctx.chan.selected = Some(selected);
            ctx.chan.scp = None;
            return Ok(Response::ok(match answer {
                0x0C => Vec::new(),
                _ => fci.data,
            }));
        }
        None => return Err(Status::FileNotFound),
    };
    let files = ctx.vm.tree(tree)?;
    // Only an answer with control parameters needs the PINs (P2 0C answers nothing).
    let answer = match answer {
        0x00 => fs::control_parameters(files, target, 0x6F, &guarding_pins(ctx, tree)),
        0x04 => fs::control_parameters(files, target, 0x62, &guarding_pins(ctx, tree)),
        0x08 => vec![0x64, 0x00],
        _ => Vec::new(),
    };
    let is_df = files[target].is_df();
    let df_of = fs::df_of(files, target);
    ctx.chan.tree = tree;
    ctx.chan.selected = None;
    ctx.chan.scp = None;
    if is_df {
        ctx.chan.current_df = target;
        ctx.chan.current_ef = None;
    } else {
        ctx.chan.current_df = df_of;
        ctx.chan.current_ef = Some(target);
    }
    Ok(Response::ok(answer))
}

/// The PIN references that guard a DF of `tree`, for the PIN status template of its FCP
/// (TS 102 221 §9.5.2): each once, in the order VERIFY searches them (`Ctx::pin_location`:
/// the DF's own tree first, then the card's), so a card PIN whose reference a container PIN
/// shadows is not listed: VERIFY with that reference never reaches it from this DF.
fn guarding_pins(ctx: &Ctx, tree: Tree) -> Vec<u8> {
    let mut refs = Vec::new();
    for p in tree
        .and_global()
        .filter_map(|t| ctx.vm.pins(t).ok())
        .flatten()
    {
        if !refs.contains(&p.reference) {
            refs.push(p.reference);
        }
    }
    refs
}
