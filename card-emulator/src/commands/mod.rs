//! The ISO 7816-4 commands of the card, one module per group; each function cites its clause.
//!
//! Handlers receive a parsed [`Command`] and a [`Ctx`]: the virtual machine's capability
//! over the persistent state, and the channel's volatile state. They take a part of the
//! state for writing only once they are sure to succeed (the VM records what they took);
//! the dispatcher commits it, or a handler calls `ctx.vm.commit()` early where a standard
//! demands durability before the check, as the PIN counters do.

mod binary;
mod data;
mod list;
mod record;
mod security;
mod select;

use crate::channel::Channel;
use crate::state::{Access, FileId, FileNode, PinRecord};
use crate::vm::{Tree, Vm};
use apdu_specs::ins::iso;
use apdu_specs::{Command, Status};
use secure_channel::SecurityLevel;

/// The answer of a handler that completed: data plus a success or warning SW (the one
/// response type of the workspace; the dispatcher fits it to Le).
pub use apdu_specs::Response;

/// A copy of `bytes` as response data, with room for the status word the dispatcher
/// appends (READ commands answer on every call; a second allocation would double theirs).
#[inline]
pub fn response_data(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.extend_from_slice(bytes);
    out
}

/// Error SW or a reply.
pub type Outcome = Result<Response, Status>;

/// What a handler may touch: the card's state only through the virtual machine, and the
/// volatile state of its own channel.
pub struct Ctx<'a> {
    pub vm: Vm<'a>,
    pub chan: &'a mut Channel,
    /// The level of the authenticated secure channel the command came through (unwrapped),
    /// `None` for a command in clear.
    pub secure: Option<SecurityLevel>,
    /// Unix seconds now.
    pub clock: fn() -> u64,
}

impl Ctx<'_> {
    pub fn allowed(&self, access: Access) -> bool {
        match access {
            Access::Always => true,
            Access::Never => false,
            Access::Pin(r) => match self.pin_location(r) {
                Ok((tree, _)) => self.chan.is_verified(tree, r),
                Err(_) => false,
            },
        }
    }

    /// The files of the channel's current tree, through the VM.
    pub fn files(&self) -> Result<&[FileNode], Status> {
        self.vm.tree(self.chan.tree)
    }

    /// One file of the channel's current tree, for writing.
    pub fn file_mut(&mut self, id: FileId) -> Result<&mut FileNode, Status> {
        self.vm.file_mut(self.chan.tree, id)
    }

    /// Where PIN `reference` lives: the current tree's own PINs first, then the card's.
    pub fn pin_location(&self, reference: u8) -> Result<(Tree, usize), Status> {
        for t in self.chan.tree.and_global() {
            let pins = self.vm.pins(t)?;
            if let Some(i) = pins.iter().position(|p| p.reference == reference) {
                return Ok((t, i));
            }
        }
        Err(Status::ReferencedDataNotFound)
    }

    pub fn pin(&self, (tree, i): (Tree, usize)) -> Result<&PinRecord, Status> {
        self.vm
            .pins(tree)?
            .get(i)
            .ok_or(Status::ReferencedDataNotFound)
    }

    pub fn pin_mut(&mut self, (tree, i): (Tree, usize)) -> Result<&mut PinRecord, Status> {
        self.vm.pin_mut(tree, i)
    }

    /// The current EF, or 6986 when none is selected.
    pub fn current_ef(&self) -> Result<FileId, Status> {
        self.chan
            .current_ef
            .ok_or(Status::CommandNotAllowedNoCurrentEf)
    }

    /// Resolve a short EF identifier in the current DF and make it the current EF.
    pub fn select_sfi(&mut self, sfi: u8) -> Result<FileId, Status> {
        let files = self.files()?;
        let found = crate::fs::children(files, self.chan.current_df)
            .iter()
            .copied()
            .find(|c| !files[*c].is_df() && files[*c].sfi == Some(sfi))
            .ok_or(Status::FileNotFound)?;
        self.chan.current_ef = Some(found);
        Ok(found)
    }
}

/// Route an interindustry command (CLA 0X/4X/6X) to its handler.
#[inline]
pub fn interindustry(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    match cmd.ins {
        iso::SELECT => select::select(ctx, cmd),
        iso::READ_BINARY => binary::read(ctx, cmd),
        iso::UPDATE_BINARY => binary::update(ctx, cmd),
        iso::READ_RECORD => record::read(ctx, cmd),
        iso::UPDATE_RECORD => record::update(ctx, cmd),
        iso::APPEND_RECORD => record::append(ctx, cmd),
        iso::GET_DATA => data::get_data(ctx, cmd),
        iso::GET_CHALLENGE => data::get_challenge(ctx, cmd),
        iso::VERIFY => security::verify(ctx, cmd),
        iso::CHANGE_REFERENCE_DATA => security::change_reference_data(ctx, cmd),
        iso::RESET_RETRY_COUNTER => security::reset_retry_counter(ctx, cmd),
        _ => Err(Status::InsNotSupported),
    }
}

/// Route a proprietary-class command when no applet is selected on the channel.
pub fn proprietary(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    match cmd.ins {
        list::INS => list::terminal_capability_or_list(ctx, cmd),
        _ => Err(Status::ClaNotSupported),
    }
}

/// Require P1-P2 to have a given value (6A86 otherwise).
pub fn expect_p1p2(cmd: &Command, p1: u8, p2: u8) -> Result<(), Status> {
    if (cmd.p1, cmd.p2) == (p1, p2) {
        Ok(())
    } else {
        Err(Status::IncorrectP1P2)
    }
}
