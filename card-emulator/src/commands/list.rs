//! `80 AA`: ETSI TS 102 221 TERMINAL CAPABILITY (P1 00) and, on the same instruction,
//! the directory listing that OpenSC's tcos driver sends for `opensc-explorer ls`
//! (P1 01: DFs, P1 02: EFs of the current DF, as 2-byte FIDs).

use super::{Ctx, Outcome, Response};
use crate::fs;
use apdu_specs::{Command, Status};

/// The instruction, from the one table (lpac sends it first, as TERMINAL CAPABILITY).
pub const INS: u8 = apdu_specs::ins::es10::TERMINAL_CAPABILITIES;

pub fn terminal_capability_or_list(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    match (cmd.p1, cmd.p2) {
        // ETSI TS 102 221 §11.1.19: the terminal states its capabilities; nothing to keep.
        (0x00, 0x00) => Ok(Response::done()),
        (0x01 | 0x02, 0x00) if cmd.data().is_empty() => {
            let want_df = cmd.p1 == 0x01;
            let files = ctx.files()?;
            let fids: Vec<u8> = fs::children(files, ctx.chan.current_df)
                .iter()
                .filter(|c| files[**c].is_df() == want_df)
                .flat_map(|c| files[*c].fid.to_be_bytes())
                .collect();
            if fids.is_empty() {
                Err(Status::FileNotFound)
            } else {
                Ok(Response::ok(fids))
            }
        }
        (0x01 | 0x02, 0x00) => Err(Status::WrongLength),
        _ => Err(Status::IncorrectP1P2),
    }
}
