//! READ RECORD, UPDATE RECORD and APPEND RECORD (ISO 7816-4 §11.4) on linear-fixed and cyclic EFs.

use super::{Ctx, Outcome, Response};
use crate::state::{Access, FileBody, FileId};
use apdu_specs::{Command, Status};

/// The record EF named by P2 b8-b4 (SFI, 0 = current EF), after its access check.
fn record_ef(
    ctx: &mut Ctx,
    p2: u8,
    access: fn(&crate::state::FileNode) -> Access,
) -> Result<FileId, Status> {
    let sfi = p2 >> 3;
    let ef = match sfi {
        0 => ctx.current_ef()?,
        31 => return Err(Status::IncorrectP1P2),
        s => ctx.select_sfi(s)?,
    };
    let f = &ctx.files()?[ef];
    if !matches!(f.body, FileBody::Records { .. }) {
        return Err(Status::IncompatibleFileStructure);
    }
    if !ctx.allowed(access(f)) {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    Ok(ef)
}

// ISO 7816-4 §11.4.3 READ RECORD(S): P2 b3-b1 = 100 reads record number P1.
pub fn read(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    if cmd.p2 & 0x07 != 0x04 || cmd.p1 == 0 {
        return Err(Status::IncorrectP1P2);
    }
    if !cmd.data().is_empty() {
        return Err(Status::WrongLength);
    }
    let ef = record_ef(ctx, cmd.p2, |f| f.read)?;
    let FileBody::Records { records, .. } = &ctx.files()?[ef].body else {
        return Err(Status::IncompatibleFileStructure);
    };
    let rec = records
        .get(cmd.p1 as usize - 1)
        .ok_or(Status::RecordNotFound)?;
    Ok(Response::ok(super::response_data(rec)))
}

// ISO 7816-4 §11.4.5 UPDATE RECORD: P2 b3-b1 = 100 replaces record number P1.
pub fn update(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    if cmd.p2 & 0x07 != 0x04 || cmd.p1 == 0 {
        return Err(Status::IncorrectP1P2);
    }
    let ef = record_ef(ctx, cmd.p2, |f| f.update)?;
    let FileBody::Records {
        records,
        record_length,
        ..
    } = &ctx.files()?[ef].body
    else {
        return Err(Status::IncompatibleFileStructure);
    };
    if cmd.data().len() != *record_length as usize || cmd.le().is_some() {
        return Err(Status::WrongLength);
    }
    let n = cmd.p1 as usize - 1;
    if n >= records.len() {
        return Err(Status::RecordNotFound);
    }
    let FileBody::Records { records, .. } = &mut ctx.file_mut(ef)?.body else {
        return Err(Status::IncompatibleFileStructure);
    };
    records[n].copy_from_slice(cmd.data());
    Ok(Response::done())
}

// ISO 7816-4 §11.4.6 APPEND RECORD: P1 = 00, P2 = SFI << 3.
pub fn append(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    if cmd.p1 != 0 || cmd.p2 & 0x07 != 0 {
        return Err(Status::IncorrectP1P2);
    }
    let ef = record_ef(ctx, cmd.p2, |f| f.update)?;
    let FileBody::Records {
        records,
        record_length,
        max_records,
        cyclic,
    } = &ctx.files()?[ef].body
    else {
        return Err(Status::IncompatibleFileStructure);
    };
    if cmd.data().len() != *record_length as usize || cmd.le().is_some() {
        return Err(Status::WrongLength);
    }
    if !*cyclic && records.len() >= *max_records as usize {
        return Err(Status::NotEnoughMemory);
    }
    let FileBody::Records {
        records,
        max_records,
        cyclic,
        ..
    } = &mut ctx.file_mut(ef)?.body
    else {
        return Err(Status::IncompatibleFileStructure);
    };
    if *cyclic {
        records.insert(0, cmd.data().to_vec());
        records.truncate(*max_records as usize);
    } else {
        records.push(cmd.data().to_vec());
    }
    Ok(Response::done())
}
