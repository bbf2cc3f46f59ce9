//! READ BINARY and UPDATE BINARY (ISO 7816-4 §11.3.3, §11.3.5) on transparent EFs.

use super::{Ctx, Outcome, Response};
use crate::state::FileBody;
use apdu_specs::command::MAX_NE_SHORT;
use apdu_specs::{Command, Status};

/// P1-P2 addressing: b8 of P1 set = SFI in P1 b5-b1 and offset in P2; else a 15-bit offset.
fn target(ctx: &mut Ctx, cmd: &Command) -> Result<(usize, usize), Status> {
    if cmd.p1 & 0x80 != 0 {
        if cmd.p1 & 0x60 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        let sfi = cmd.p1 & 0x1F;
        if sfi == 0 || sfi == 0x1F {
            return Err(Status::IncorrectP1P2);
        }
        let ef = ctx.select_sfi(sfi)?;
        Ok((ef, cmd.p2 as usize))
    } else {
        let ef = ctx.current_ef()?;
        Ok((ef, u16::from_be_bytes([cmd.p1, cmd.p2]) as usize))
    }
}

// ISO 7816-4 §11.3.3 READ BINARY
pub fn read(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    if !cmd.data().is_empty() {
        return Err(Status::WrongLength);
    }
    let (ef, offset) = target(ctx, cmd)?;
    let f = &ctx.files()?[ef];
    let FileBody::Transparent { data } = &f.body else {
        return Err(Status::IncompatibleFileStructure);
    };
    if !ctx.allowed(f.read) {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    if offset >= data.len() {
        return Err(Status::WrongP1P2);
    }
    let ne = cmd.le().unwrap_or(MAX_NE_SHORT);
    let end = (offset + ne).min(data.len());
    let out = super::response_data(&data[offset..end]);
    if cmd.le().is_some() && out.len() < ne {
        Ok(Response::warn(out, Status::EndOfFile))
    } else {
        Ok(Response::ok(out))
    }
}

// ISO 7816-4 §11.3.5 UPDATE BINARY
pub fn update(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    if cmd.data().is_empty() || cmd.le().is_some() {
        return Err(Status::WrongLength);
    }
    let (ef, offset) = target(ctx, cmd)?;
    let f = &ctx.files()?[ef];
    let FileBody::Transparent { data } = &f.body else {
        return Err(Status::IncompatibleFileStructure);
    };
    if !ctx.allowed(f.update) {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    if offset >= data.len() {
        return Err(Status::WrongP1P2);
    }
    let end = offset + cmd.data().len();
    if end > data.len() {
        return Err(Status::NotEnoughMemory);
    }
    let FileBody::Transparent { data } = &mut ctx.file_mut(ef)?.body else {
        return Err(Status::IncompatibleFileStructure);
    };
    data[offset..end].copy_from_slice(cmd.data());
    Ok(Response::done())
}
