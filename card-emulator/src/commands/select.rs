//! SELECT (ISO 7816-4 §11.2.2): by FID, child DF, EF, parent, DF name and path.

use super::{Ctx, Outcome, Reply};
use crate::fs;
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
    let files = &ctx.state.files;
    let df = ctx.chan.current_df;
    let data = cmd.data();
    let target = match cmd.p1 {
        0x00 if data.is_empty() => Some(fs::MF),
        0x00 => fs::select_fid(files, df, one_fid(data)?),
        0x01 => fs::child_by_fid(files, df, one_fid(data)?).filter(|c| files[*c].is_df()),
        0x02 => fs::child_by_fid(files, df, one_fid(data)?).filter(|c| !files[*c].is_df()),
        0x03 if data.is_empty() => fs::parent(files, df),
        0x03 => return Err(Status::WrongLength),
        0x04 if data.is_empty() => Some(fs::MF),
        0x04 if data.len() > 16 => return Err(Status::WrongLength),
        0x04 => {
            let matches: Vec<usize> = fs::dfs_named(files, data).collect();
            match occurrence {
                0 => matches.first().copied(),
                1 => matches.last().copied(),
                2 => matches.iter().copied().find(|m| *m > df),
                _ => matches.iter().copied().rev().find(|m| *m < df),
            }
        }
        0x08 => {
            let mut path = fids(data)?;
            if path.first() == Some(&apdu_specs::ins::fid::MF) {
                path.remove(0);
            }
            if path.is_empty() {
                Some(fs::MF)
            } else {
                fs::resolve_path(files, fs::MF, &path)
            }
        }
        0x09 => fs::resolve_path(files, df, &fids(data)?),
        _ => return Err(Status::IncorrectP1P2),
    };
    let target = target.ok_or(Status::FileNotFound)?;
    if files[target].is_df() {
        ctx.chan.current_df = target;
        ctx.chan.current_ef = None;
    } else {
        ctx.chan.current_df = fs::df_of(files, target);
        ctx.chan.current_ef = Some(target);
    }
    Ok(Reply::ok(match answer {
        0x00 => fs::control_parameters(files, target, 0x6F),
        0x04 => fs::control_parameters(files, target, 0x62),
        0x08 => vec![0x64, 0x00],
        _ => Vec::new(),
    }))
}
