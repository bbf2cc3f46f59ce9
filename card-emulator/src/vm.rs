//! The virtual machine's one access rule: runtime mode reaches the card-global objects and
//! the activated container only; admin mode reaches every container.
//!
//! Every path from a command or applet to a file tree or a PIN goes through `tree`,
//! `tree_mut`, `pins` and `pins_mut`; nothing else indexes `CardState::containers`
//! for runtime work.

use crate::state::{CardState, Container, FileNode, PinRecord};
use apdu_specs::Status;

/// Which file tree (and PIN set) an object lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tree {
    /// Card-global: the MF and its files, the card PINs.
    #[default]
    Global,
    /// The tree of container `i`.
    Container(usize),
}

/// The mode the virtual machine runs in while executing a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serving the terminal: disabled containers do not exist.
    Runtime,
    /// Executing a management command that the card manager's policy allowed.
    Admin,
}

/// Whether `tree` is reachable in `mode`. A disabled container answers as absent (6A82).
pub fn reachable(state: &CardState, mode: Mode, tree: Tree) -> Result<(), Status> {
    match tree {
        Tree::Global => Ok(()),
        Tree::Container(i) => match state.containers.get(i) {
            Some(c) if c.enabled || mode == Mode::Admin => Ok(()),
            _ => Err(Status::FileNotFound),
        },
    }
}

pub fn tree(state: &CardState, mode: Mode, tree: Tree) -> Result<&[FileNode], Status> {
    reachable(state, mode, tree)?;
    Ok(match tree {
        Tree::Global => &state.files,
        Tree::Container(i) => &state.containers[i].files,
    })
}

pub fn tree_mut(state: &mut CardState, mode: Mode, tree: Tree) -> Result<&mut [FileNode], Status> {
    reachable(state, mode, tree)?;
    Ok(match tree {
        Tree::Global => &mut state.files,
        Tree::Container(i) => &mut state.containers[i].files,
    })
}

pub fn pins(state: &CardState, mode: Mode, tree: Tree) -> Result<&[PinRecord], Status> {
    reachable(state, mode, tree)?;
    Ok(match tree {
        Tree::Global => &state.pins,
        Tree::Container(i) => &state.containers[i].pins,
    })
}

pub fn pins_mut(state: &mut CardState, mode: Mode, tree: Tree) -> Result<&mut [PinRecord], Status> {
    reachable(state, mode, tree)?;
    Ok(match tree {
        Tree::Global => &mut state.pins,
        Tree::Container(i) => &mut state.containers[i].pins,
    })
}

/// The containers themselves (metadata, enable flags): the card manager's, in admin mode only.
pub fn containers(state: &CardState, mode: Mode) -> Result<&[Container], Status> {
    match mode {
        Mode::Admin => Ok(&state.containers),
        Mode::Runtime => Err(Status::SecurityStatusNotSatisfied),
    }
}

pub fn containers_mut(state: &mut CardState, mode: Mode) -> Result<&mut Vec<Container>, Status> {
    match mode {
        Mode::Admin => Ok(&mut state.containers),
        Mode::Runtime => Err(Status::SecurityStatusNotSatisfied),
    }
}

/// The trees visible to SELECT by name in `mode`, card-global first.
pub fn visible_trees(state: &CardState, mode: Mode) -> Vec<Tree> {
    let mut out = vec![Tree::Global];
    out.extend(
        (0..state.containers.len())
            .map(Tree::Container)
            .filter(|t| reachable(state, mode, *t).is_ok()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile;

    #[test]
    fn runtime_reaches_only_the_enabled_container_admin_reaches_all() {
        let mut s = profile::build(profile::DEFAULT_PROFILE).unwrap();
        assert!(s.containers.len() >= 2);
        for c in &mut s.containers {
            c.enabled = false;
        }
        s.containers[1].enabled = true;
        assert_eq!(
            tree(&s, Mode::Runtime, Tree::Container(0)).err(),
            Some(Status::FileNotFound)
        );
        assert!(tree(&s, Mode::Runtime, Tree::Container(1)).is_ok());
        assert!(tree(&s, Mode::Admin, Tree::Container(0)).is_ok());
        assert!(pins(&s, Mode::Runtime, Tree::Container(0)).is_err());
        assert_eq!(
            visible_trees(&s, Mode::Runtime),
            vec![Tree::Global, Tree::Container(1)]
        );
        assert_eq!(
            tree(&s, Mode::Admin, Tree::Container(9)).err(),
            Some(Status::FileNotFound)
        );
    }
}
