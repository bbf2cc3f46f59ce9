//! VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER (ISO 7816-4 §11.5.6-§11.5.10).
//!
//! Anti-tearing: every try counter is decremented and committed durably *before* the
//! secret is compared, so cutting power after a wrong PIN never gives the try back.

use super::{Ctx, Outcome, Response};
use crate::pin;
use crate::state::PinRecord;
use crate::vm::Tree;
use apdu_specs::{Command, Status};

/// A PIN: the tree it belongs to and its index there.
type Loc = (Tree, usize);

fn length_ok(p: &PinRecord, candidate: &[u8]) -> bool {
    (p.min_length as usize..=p.max_length as usize).contains(&candidate.len())
}

/// Decrement the PIN counter durably, compare, and restore the counter on a match.
/// Returns whether `candidate` matched; `Err` for a blocked PIN or a failed commit.
fn try_pin(ctx: &mut Ctx, idx: Loc, candidate: &[u8]) -> Result<bool, Status> {
    if ctx.pin(idx)?.tries_left == 0 {
        return Err(Status::AuthenticationMethodBlocked);
    }
    ctx.pin_mut(idx)?.tries_left -= 1;
    ctx.vm.commit()?;
    if pin::matches(&ctx.pin(idx)?.value, candidate) {
        let p = ctx.pin_mut(idx)?;
        p.tries_left = p.max_tries;
        Ok(true)
    } else {
        Ok(false)
    }
}

fn wrong(ctx: &mut Ctx, idx: Loc) -> Status {
    let Ok(p) = ctx.pin(idx) else {
        return Status::NoPreciseDiagnosis;
    };
    let (reference, tries) = (p.reference, p.tries_left);
    ctx.chan.set_verified(idx.0, reference, false);
    Status::retries_left(tries)
}

// ISO 7816-4 §11.5.6 VERIFY: P1 00 = verify (empty data: ask the status), P1 FF = reset
// the security status of the reference.
pub fn verify(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    let idx = ctx.pin_location(cmd.p2);
    match cmd.p1 {
        0xFF => {
            let idx = idx?;
            if !cmd.data().is_empty() {
                return Err(Status::WrongLength);
            }
            ctx.chan.set_verified(idx.0, cmd.p2, false);
            Ok(Response::done())
        }
        0x00 => {
            let idx = idx?;
            let p = ctx.pin(idx)?;
            if cmd.data().is_empty() {
                return if ctx.chan.is_verified(idx.0, p.reference) {
                    Ok(Response::done())
                } else if p.tries_left == 0 {
                    Err(Status::AuthenticationMethodBlocked)
                } else {
                    Err(Status::retries_left(p.tries_left))
                };
            }
            if p.tries_left == 0 {
                return Err(Status::AuthenticationMethodBlocked);
            }
            if !length_ok(p, cmd.data()) {
                return Err(Status::WrongLength);
            }
            let r = p.reference;
            if try_pin(ctx, idx, cmd.data())? {
                ctx.chan.set_verified(idx.0, r, true);
                Ok(Response::done())
            } else {
                Err(wrong(ctx, idx))
            }
        }
        _ => Err(Status::IncorrectP1P2),
    }
}

// ISO 7816-4 §11.5.7 CHANGE REFERENCE DATA: P1 00 data = old || new (old has the stored
// length); P1 01 data = new, allowed once the PIN is verified on this channel.
pub fn change_reference_data(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    let idx = ctx.pin_location(cmd.p2)?;
    let p = ctx.pin(idx)?;
    let data = cmd.data();
    let new = match cmd.p1 {
        0x00 => {
            let old_len = p.value.length as usize;
            if data.len() <= old_len {
                return Err(Status::WrongLength);
            }
            &data[old_len..]
        }
        0x01 => {
            if !ctx.chan.is_verified(idx.0, p.reference) {
                return Err(Status::SecurityStatusNotSatisfied);
            }
            data
        }
        _ => return Err(Status::IncorrectP1P2),
    };
    if p.tries_left == 0 {
        return Err(Status::AuthenticationMethodBlocked);
    }
    if !length_ok(p, new) {
        return Err(Status::WrongLength);
    }
    let secret = pin::hash_secret(new).map_err(|_| Status::NoPreciseDiagnosis)?;
    let r = p.reference;
    if cmd.p1 == 0x00 {
        let old = &data[..p.value.length as usize];
        if !try_pin(ctx, idx, old)? {
            return Err(wrong(ctx, idx));
        }
    }
    let p = ctx.pin_mut(idx)?;
    p.value = secret;
    p.tries_left = p.max_tries;
    ctx.chan.set_verified(idx.0, r, true);
    Ok(Response::done())
}

// ISO 7816-4 §11.5.10 RESET RETRY COUNTER: P1 00 data = PUK || new PIN; P1 01 data = PUK.
pub fn reset_retry_counter(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    if cmd.p1 > 0x01 {
        return Err(Status::IncorrectP1P2);
    }
    let idx = ctx.pin_location(cmd.p2)?;
    let p = ctx.pin(idx)?;
    let Some(puk) = &p.puk else {
        return Err(Status::ReferencedDataNotFound);
    };
    let data = cmd.data();
    let puk_len = puk.value.length as usize;
    let (code, new) = match cmd.p1 {
        0x00 if data.len() > puk_len => (&data[..puk_len], Some(&data[puk_len..])),
        0x01 if data.len() == puk_len => (data, None),
        _ => return Err(Status::WrongLength),
    };
    if puk.tries_left == 0 {
        return Err(Status::AuthenticationMethodBlocked);
    }
    let secret = match new {
        Some(n) if !length_ok(p, n) => return Err(Status::WrongLength),
        Some(n) => Some(pin::hash_secret(n).map_err(|_| Status::NoPreciseDiagnosis)?),
        None => None,
    };
    if let Some(puk) = ctx.pin_mut(idx)?.puk.as_mut() {
        puk.tries_left -= 1;
    }
    ctx.vm.commit()?;
    let Some(puk) = ctx.pin(idx)?.puk.as_ref() else {
        return Err(Status::NoPreciseDiagnosis);
    };
    if !pin::matches(&puk.value, code) {
        return Err(Status::retries_left(puk.tries_left));
    }
    let p = ctx.pin_mut(idx)?;
    if let Some(puk) = p.puk.as_mut() {
        puk.tries_left = puk.max_tries;
    }
    p.tries_left = p.max_tries;
    if let Some(s) = secret {
        p.value = s;
    }
    Ok(Response::done())
}
