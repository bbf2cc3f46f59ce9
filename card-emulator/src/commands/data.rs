//! GET DATA (ISO 7816-4 §11.5.1) for card-level data objects, GET CHALLENGE (§11.5.5).

use super::{expect_p1p2, Ctx, Outcome, Response};
use apdu_specs::{tlv, Command, Status};

/// Tag of the historical bytes data object, answered from the ATR configuration.
const HISTORICAL_BYTES: u16 = 0x5F52;

// ISO 7816-4 §11.5.1: P1-P2 is the tag; the answer is the data object (tag, length, value).
pub fn get_data(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    if !cmd.data().is_empty() {
        return Err(Status::WrongLength);
    }
    let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
    let value = if tag == HISTORICAL_BYTES {
        Some(ctx.vm.historical_bytes())
    } else {
        ctx.vm.data_object(tag)
    };
    let value = value.ok_or(Status::ReferencedDataNotFound)?;
    Ok(Response::ok(tlv::build(tag as u32, value)))
}

// ISO 7816-4 §11.5.5: Ne random bytes (1..=256) from the OS CSPRNG.
pub fn get_challenge(_ctx: &mut Ctx, cmd: &Command) -> Outcome {
    expect_p1p2(cmd, 0, 0)?;
    let ne = match cmd.le() {
        Some(n) if n <= 256 && cmd.data().is_empty() => n,
        _ => return Err(Status::WrongLength),
    };
    let mut out = vec![0u8; ne];
    getrandom::getrandom(&mut out).map_err(|e| {
        tracing::error!("OS random generator failed: {e}");
        Status::NoPreciseDiagnosis
    })?;
    Ok(Response::ok(out))
}
