//! Volatile per-channel state: current DF/EF, security status, pending response, chain.

use crate::state::FileId;
use crate::vm::Tree;
use apdu_specs::Status;

/// Logical channels 0..NUM_CHANNELS-1 exist (0 is the basic channel, always open).
pub const NUM_CHANNELS: usize = 4;

/// Response data not yet fetched with GET RESPONSE.
#[derive(Debug)]
pub struct Pending {
    pub data: Vec<u8>,
    pub pos: usize,
    /// The SW that ends the last piece.
    pub status: Status,
    /// Class family (`00` or `80`) of the command that produced it.
    pub family: u8,
}

/// Command data accumulated over a chain (CLA bit 0x10).
#[derive(Debug)]
pub struct Chain {
    /// CLA without chaining bit, INS, P1, P2 of the chained command.
    pub header: [u8; 4],
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Channel {
    pub open: bool,
    /// The tree the current DF and EF belong to.
    pub tree: Tree,
    pub current_df: FileId,
    pub current_ef: Option<FileId>,
    /// PINs (tree, reference) verified on this channel.
    pub verified: Vec<(Tree, u8)>,
    pub pending: Option<Pending>,
    pub chain: Option<Chain>,
    /// The applet selected on this channel, if any (files stay selected beside it).
    pub selected: Option<crate::applets::Selected>,
    /// The GlobalPlatform secure channel session opened on this channel, if any.
    pub scp: Option<crate::secure::ChannelScp>,
}

impl Channel {
    /// A channel just opened (or the basic channel after reset): MF current.
    pub fn opened() -> Channel {
        Channel {
            open: true,
            ..Channel::default()
        }
    }

    pub fn is_verified(&self, tree: Tree, reference: u8) -> bool {
        self.verified.contains(&(tree, reference))
    }

    pub fn set_verified(&mut self, tree: Tree, reference: u8, yes: bool) {
        self.verified.retain(|v| *v != (tree, reference));
        if yes {
            self.verified.push((tree, reference));
        }
    }

    /// Forget everything tied to `tree`: selection (back to the MF), verified PINs and
    /// the applet instance selected in it. Used when a container stops being active or
    /// is deleted; references to other containers are identities and stay as they are.
    pub fn leave(&mut self, tree: Tree) {
        if self.tree == tree {
            self.tree = Tree::Global;
            self.current_df = 0;
            self.current_ef = None;
            self.pending = None;
            self.chain = None;
        }
        self.verified.retain(|(t, _)| *t != tree);
        if let (Some(sel), Tree::Container(id)) = (&self.selected, tree) {
            if sel.container() == Some(id) {
                self.selected = None;
            }
        }
    }
}
