//! Applets: programs selected by AID that run under the virtual machine. The card manager
//! (ISD-R / GlobalPlatform ISD) is the first; each keeps an instance (its per-channel state) per logical channel.

pub mod auth;
pub mod card_manager;
mod gp;
mod gp_load;
pub mod loaded;

use crate::commands::{Ctx, Outcome};
use apdu_specs::Command;

/// One applet: how it is found, what it answers to SELECT, how it processes commands.
pub trait Applet {
    /// Per-channel state (the applet instance selected there), created at SELECT and dropped
    /// at deselection.
    type Instance: Default + std::fmt::Debug;
    /// Whether SELECT by DF name with `name` (possibly right-truncated) selects this applet.
    fn matches(name: &[u8]) -> bool;
    /// The answer to SELECT (FCI); `name` is the (possibly partial) AID that selected it.
    fn select(ctx: &mut Ctx, instance: &mut Self::Instance, name: &[u8]) -> Outcome;
    /// A command sent to the selected applet (class and instruction not handled by the OS).
    fn process(ctx: &mut Ctx, instance: &mut Self::Instance, cmd: &Command) -> Outcome;
}

/// The applet selected on a channel, with its instance state.
#[derive(Debug)]
pub enum Selected {
    CardManager(<card_manager::CardManager as Applet>::Instance),
    Auth(<auth::AuthApplet as Applet>::Instance),
    /// An instance of a loaded (WebAssembly) applet.
    Loaded(Box<loaded::LoadedApplet>),
}

impl Selected {
    /// The container whose instance this is (`None` for card-global applets).
    pub fn container(&self) -> Option<crate::state::ContainerId> {
        match self {
            Selected::CardManager(_) => None,
            Selected::Auth(s) => s.container,
            Selected::Loaded(l) => Some(l.container),
        }
    }
}

/// Find the applet a SELECT by name designates and open an instance of it: a built-in
/// one, else a loaded applet of the enabled container.
pub fn select_by_name(ctx: &mut Ctx, cmd: &Command) -> Option<(Selected, Outcome)> {
    let name = cmd.data();
    if card_manager::CardManager::matches(name) {
        let mut s = Default::default();
        let out = card_manager::CardManager::select(ctx, &mut s, name);
        return Some((Selected::CardManager(s), out));
    }
    if auth::AuthApplet::matches(name) {
        let mut s = Default::default();
        let out = auth::AuthApplet::select(ctx, &mut s, name);
        return Some((Selected::Auth(s), out));
    }
    loaded::select(ctx, cmd).map(|(l, out)| (Selected::Loaded(Box::new(l)), out))
}

/// Hand a command to the applet selected on the channel.
pub fn process(ctx: &mut Ctx, selected: &mut Selected, cmd: &Command) -> Outcome {
    match selected {
        Selected::CardManager(s) => card_manager::CardManager::process(ctx, s, cmd),
        Selected::Auth(s) => auth::AuthApplet::process(ctx, s, cmd),
        Selected::Loaded(l) => loaded::process(ctx, l, cmd),
    }
}
