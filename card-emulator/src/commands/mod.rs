//! The ISO 7816-4 commands of the card, one module per group; each function cites its clause.
//!
//! Handlers receive a parsed [`Command`] and a [`Ctx`] over the persistent state and the
//! channel's volatile state. They mutate the persistent state only once they are sure
//! to succeed and mark it dirty; the dispatcher commits it (or calls `commit` early
//! where a standard demands durability before the check, as the PIN counters do).

mod binary;
mod data;
mod list;
mod record;
mod security;
mod select;

use crate::channel::Channel;
use crate::state::{Access, CardState, FileId, FileNode, PinRecord};
use crate::store::Store;
use crate::vm::{self, Mode, Tree};
use apdu_specs::ins::iso;
use apdu_specs::{Command, Status};

/// The answer of a handler that completed: data plus a success or warning SW.
#[derive(Debug)]
pub struct Reply {
    pub data: Vec<u8>,
    pub status: Status,
}

impl Reply {
    pub fn ok(data: Vec<u8>) -> Reply {
        Reply {
            data,
            status: Status::Success,
        }
    }
    pub fn done() -> Reply {
        Reply::ok(Vec::new())
    }
    pub fn warn(data: Vec<u8>, status: Status) -> Reply {
        Reply { data, status }
    }
}

/// Error SW or a reply.
pub type Outcome = Result<Reply, Status>;

/// What a handler may touch.
pub struct Ctx<'a> {
    /// Runtime for terminal commands; admin only inside a management command.
    pub mode: Mode,
    pub state: &'a mut CardState,
    pub chan: &'a mut Channel,
    pub store: &'a mut dyn Store,
    pub dirty: bool,
    pub commit_failed: bool,
    /// Set by a container switch: every channel must leave this tree.
    pub left_tree: Option<Tree>,
    /// Set when container `i` was deleted: trees of later containers shift down.
    pub removed_container: Option<usize>,
    /// The command came through an authenticated secure channel (unwrapped).
    pub secured: bool,
    /// Unix seconds now.
    pub clock: fn() -> u64,
}

impl Ctx<'_> {
    /// Make the state durable now (before a PIN comparison, for instance).
    pub fn commit(&mut self) -> Result<(), Status> {
        match self.store.commit(self.state) {
            Ok(()) => {
                self.dirty = false;
                Ok(())
            }
            Err(e) => {
                tracing::error!("state commit failed: {e}");
                self.commit_failed = true;
                Err(Status::MemoryFailure)
            }
        }
    }

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
        vm::tree(self.state, self.mode, self.chan.tree)
    }

    pub fn files_mut(&mut self) -> Result<&mut [FileNode], Status> {
        vm::tree_mut(self.state, self.mode, self.chan.tree)
    }

    /// Where PIN `reference` lives: the current tree's own PINs first, then the card's.
    pub fn pin_location(&self, reference: u8) -> Result<(Tree, usize), Status> {
        let mut trees = vec![self.chan.tree];
        if self.chan.tree != Tree::Global {
            trees.push(Tree::Global);
        }
        for t in trees {
            let pins = vm::pins(self.state, self.mode, t)?;
            if let Some(i) = pins.iter().position(|p| p.reference == reference) {
                return Ok((t, i));
            }
        }
        Err(Status::ReferencedDataNotFound)
    }

    pub fn pin(&self, (tree, i): (Tree, usize)) -> Result<&PinRecord, Status> {
        vm::pins(self.state, self.mode, tree)?
            .get(i)
            .ok_or(Status::ReferencedDataNotFound)
    }

    pub fn pin_mut(&mut self, (tree, i): (Tree, usize)) -> Result<&mut PinRecord, Status> {
        vm::pins_mut(self.state, self.mode, tree)?
            .get_mut(i)
            .ok_or(Status::ReferencedDataNotFound)
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
