//! The virtual machine: the only door from a command or applet to the card's persistent
//! state. A handler receives a [`Vm`], a capability that offers what runtime mode allows
//! (the card-global objects and the one enabled container) and never the raw
//! [`CardState`]. Admin mode is a scope, an [`Admin`] guard that borrows the `Vm` and ends
//! when dropped; exactly one function creates it, [`policy::enter_admin`], the card
//! manager's policy. The `Vm` also records what each transaction changed, so the store
//! writes only that.

pub mod applet;
pub mod engine;
pub mod policy;

use crate::state::{
    AppletInstance, AppletLimits, AuthState, CardState, Container, ContainerId, FileId, FileNode,
    GpState, KeySet, Notification, Notifications, PinRecord, Policy,
};
use crate::store::{Changes, Store};
use apdu_specs::es10::{Iccid, NotificationEvent, NotificationMetadata};
use apdu_specs::Status;

/// Which file tree (and PIN set) an object lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Tree {
    /// Card-global: the MF and its files, the card PINs.
    #[default]
    Global,
    /// The tree of the container with this identity.
    Container(ContainerId),
}

impl Tree {
    /// Where a PIN of this tree is looked for: the tree itself, then the card-global one
    /// (once, when this is not already it). The PIN search of VERIFY and the PIN status
    /// template of an FCP follow the same order.
    pub fn and_global(self) -> impl Iterator<Item = Tree> {
        std::iter::once(self).chain((self != Tree::Global).then_some(Tree::Global))
    }
}

/// What a finished transaction leaves for the dispatcher.
#[derive(Debug, Default)]
pub struct Outcome {
    /// A commit failed: the in-memory state must be reloaded from the store.
    pub commit_failed: bool,
    /// Containers that stopped being active or ceased to exist: every channel leaves them.
    pub left: Vec<ContainerId>,
}

/// The runtime capability over the card's persistent state for one command.
pub struct Vm<'a> {
    state: &'a mut CardState,
    store: &'a mut dyn Store,
    /// What the command changed or left behind; boxed and made on first need, so the many
    /// commands that change nothing (SELECT, READ) pay nothing for it and the `Vm` stays
    /// three words wide (it is built for every APDU).
    work: Option<Box<Work>>,
}

/// A transaction's record: the changes not yet committed and what the dispatcher must do.
#[derive(Default)]
struct Work {
    changes: Changes,
    commit_failed: bool,
    left: Vec<ContainerId>,
}

impl<'a> Vm<'a> {
    /// Open the VM in runtime mode over the card's state for one command. Only the
    /// dispatcher, which owns the state, calls this.
    pub(crate) fn runtime(state: &'a mut CardState, store: &'a mut dyn Store) -> Vm<'a> {
        Vm {
            state,
            store,
            work: None,
        }
    }

    /// Whether `tree` exists for runtime mode: the card-global tree and the enabled
    /// container's. A disabled or unknown container answers as absent (6A82).
    pub fn reachable(&self, tree: Tree) -> Result<(), Status> {
        match tree {
            Tree::Global => Ok(()),
            Tree::Container(id) => self.reached(id).map(|_| ()),
        }
    }

    /// The enabled container, if any.
    pub fn enabled(&self) -> Option<ContainerId> {
        self.state.enabled_id()
    }

    /// The trees visible to SELECT by name: card-global first, then the enabled one.
    /// (An iterator, not a Vec: SELECT runs it on every call and must not allocate.)
    pub fn visible_trees(&self) -> impl Iterator<Item = Tree> {
        std::iter::once(Tree::Global).chain(self.enabled().map(Tree::Container))
    }

    pub fn tree(&self, tree: Tree) -> Result<&[FileNode], Status> {
        Ok(match tree {
            Tree::Global => &self.state.files,
            Tree::Container(id) => &self.reached(id)?.files,
        })
    }

    /// One file of a reachable tree, for writing; the store will write that file.
    pub fn file_mut(&mut self, tree: Tree, id: FileId) -> Result<&mut FileNode, Status> {
        let files = match tree {
            Tree::Global => &mut self.state.files,
            Tree::Container(c) => &mut reached_mut(self.state, c)?.files,
        };
        let file = files.get_mut(id).ok_or(Status::FileNotFound)?;
        record(&mut self.work).files.insert((tree, id));
        Ok(file)
    }

    pub fn pins(&self, tree: Tree) -> Result<&[PinRecord], Status> {
        Ok(match tree {
            Tree::Global => &self.state.pins,
            Tree::Container(id) => &self.reached(id)?.pins,
        })
    }

    pub fn pin_mut(&mut self, tree: Tree, index: usize) -> Result<&mut PinRecord, Status> {
        let pins = match tree {
            Tree::Global => &mut self.state.pins,
            Tree::Container(id) => &mut reached_mut(self.state, id)?.pins,
        };
        let pin = pins.get_mut(index).ok_or(Status::ReferencedDataNotFound)?;
        let changes = record(&mut self.work);
        match tree {
            Tree::Global => changes.global = true,
            Tree::Container(id) => _ = changes.container_cores.insert(id),
        }
        Ok(pin)
    }

    /// The enabled container `id` (read only); 6A82 for any other.
    pub fn container(&self, id: ContainerId) -> Result<&Container, Status> {
        self.reached(id)
    }

    /// The authentication applet's state in the enabled container `id`.
    pub fn auth_mut(&mut self, id: ContainerId) -> Result<&mut AuthState, Status> {
        let auth = &mut reached_mut(self.state, id)?.auth;
        record(&mut self.work).container_cores.insert(id);
        Ok(auth)
    }

    /// Container `id` if runtime mode reaches it (it is the enabled one), one look-up.
    fn reached(&self, id: ContainerId) -> Result<&Container, Status> {
        match self.state.container(id) {
            Some(c) if c.enabled => Ok(c),
            _ => Err(Status::FileNotFound),
        }
    }

    /// The record of this command's changes, made on first use.
    fn changes_mut(&mut self) -> &mut Changes {
        record(&mut self.work)
    }

    fn work(&mut self) -> &mut Work {
        self.work.get_or_insert_with(Box::default)
    }

    // Card-global objects, readable by every command.

    pub fn eid(&self) -> &[u8] {
        &self.state.eid
    }

    /// The eUICC's SGP.22 identity (signing key and certificate chain), if it has one.
    pub fn euicc_identity(&self) -> Option<&crate::pki::EuiccIdentity> {
        self.state.euicc_identity()
    }

    /// The default SM-DP+ address; empty when none is set.
    pub fn default_dp_address(&self) -> &str {
        &self.state.default_dp_address
    }

    pub fn historical_bytes(&self) -> &[u8] {
        &self.state.historical_bytes
    }

    /// The value of card-level data object `tag`, if the card has one.
    pub fn data_object(&self, tag: u16) -> Option<&[u8]> {
        self.state
            .data_objects
            .iter()
            .find(|d| d.tag == tag)
            .map(|d| d.value.as_slice())
    }

    /// What loaded applets may use (the profile's `[applets]`).
    pub fn applet_limits(&self) -> &AppletLimits {
        &self.state.applet_limits
    }

    pub fn policy(&self) -> &Policy {
        &self.state.policy
    }

    /// The GlobalPlatform key sets (INITIALIZE UPDATE and GET DATA need them before any
    /// channel exists); only an admin scope replaces them.
    pub fn key_sets(&self) -> &[KeySet] {
        &self.state.gp.key_sets
    }

    pub fn gp(&self) -> &GpState {
        &self.state.gp
    }

    /// Take the next SCP03 sequence counter value, or `None` once it is exhausted.
    pub fn next_scp03_counter(&mut self, max: u32) -> Option<u32> {
        let seq = self.state.gp.scp03_counter.checked_add(1)?;
        if seq > max {
            return None;
        }
        self.state.gp.scp03_counter = seq;
        self.changes_mut().global = true;
        Some(seq)
    }

    /// Count one opened SCP02 channel (GP Card Spec E.4.2.1). The counter never wraps:
    /// it stops at its maximum, where INITIALIZE UPDATE refuses SCP02 (a wrapped counter
    /// would let an old session be replayed).
    pub fn advance_scp02_counter(&mut self) {
        self.state.gp.scp02_counter = self.state.gp.scp02_counter.saturating_add(1);
        self.changes_mut().global = true;
    }

    /// Record one failed authentication (wrong cryptogram or MAC), durably.
    pub fn count_auth_failure(&mut self) {
        self.state.gp.auth_failures = self.state.gp.auth_failures.saturating_add(1);
        self.changes_mut().global = true;
    }

    /// The card's trusted time (Unix seconds): the later of the time floor and `host_now`.
    pub fn trusted_now(&self, host_now: u64) -> u64 {
        self.state.time_floor.max(host_now)
    }

    /// Raise the time floor to a server time the card has just verified (never lowers it).
    pub fn raise_time_floor(&mut self, verified_server_time: u64) {
        if verified_server_time > self.state.time_floor {
            self.state.time_floor = verified_server_time;
            self.changes_mut().global = true;
        }
    }

    /// Make the changes so far durable now (before a PIN comparison, for instance).
    pub fn commit(&mut self) -> Result<(), Status> {
        let Some(work) = self.work.as_deref_mut() else {
            return Ok(());
        };
        if work.commit_failed {
            return Err(Status::MemoryFailure);
        }
        if work.changes.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut work.changes);
        match self.store.commit_changes(self.state, &changes) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!("state commit failed: {e}");
                work.commit_failed = true;
                Err(Status::MemoryFailure)
            }
        }
    }

    /// End the transaction: commit what is left and tell the dispatcher what to do.
    #[inline]
    pub(crate) fn finish(self) -> (Result<(), Status>, Outcome) {
        // Most commands (SELECT, READ) change nothing: nothing to commit or report.
        if self.work.is_none() {
            return (Ok(()), Outcome::default());
        }
        self.finish_work()
    }

    #[inline(never)]
    fn finish_work(mut self) -> (Result<(), Status>, Outcome) {
        let committed = self.commit();
        let outcome = match self.work {
            None => Outcome::default(),
            Some(w) => Outcome {
                commit_failed: w.commit_failed,
                left: w.left,
            },
        };
        (committed, outcome)
    }
}

/// Admin mode: a scope over the [`Vm`] that reaches every container by identity and the
/// container table itself. Created only by [`policy::enter_admin`]; ends when dropped.
pub struct Admin<'v, 'a> {
    vm: &'v mut Vm<'a>,
}

impl<'a> std::ops::Deref for Admin<'_, 'a> {
    type Target = Vm<'a>;
    fn deref(&self) -> &Vm<'a> {
        self.vm
    }
}

impl<'a> std::ops::DerefMut for Admin<'_, 'a> {
    fn deref_mut(&mut self) -> &mut Vm<'a> {
        self.vm
    }
}

impl Admin<'_, '_> {
    /// The container table, every state.
    pub fn containers(&self) -> &[Container] {
        self.vm.state.containers()
    }

    /// Any container by identity (6A88 when none has it).
    pub fn container_any(&self, id: ContainerId) -> Result<&Container, Status> {
        self.vm
            .state
            .container(id)
            .ok_or(Status::ReferencedDataNotFound)
    }

    /// Replace container `id` by `f`'s edit of a copy: all of it or nothing. Its identity
    /// and state cannot change this way.
    pub fn edit_container(
        &mut self,
        id: ContainerId,
        f: impl FnOnce(&mut Container) -> Result<(), Status>,
    ) -> Result<(), Status> {
        let slot = self
            .vm
            .state
            .container_mut(id)
            .ok_or(Status::ReferencedDataNotFound)?;
        let mut copy = slot.clone();
        f(&mut copy)?;
        if copy.isdp_aid != slot.isdp_aid
            || copy.enabled != slot.enabled
            || copy.files.len() != slot.files.len()
        {
            return Err(Status::ConditionsNotSatisfied);
        }
        let files = copy.files.len();
        *slot = copy;
        self.vm.changes_mut().container_cores.insert(id);
        self.vm
            .changes_mut()
            .files
            .extend((0..files).map(|i| (Tree::Container(id), i)));
        Ok(())
    }

    /// Enable `target` (or none), disabling the enabled one in the same commit. A
    /// switch ends the authentication applet's pending registration and connection.
    pub fn switch(&mut self, target: Option<ContainerId>) -> Result<(), Status> {
        if let Some(t) = target {
            self.container_any(t)?;
        }
        let before = self.vm.state.enabled_id();
        let mut touched = Vec::new();
        for c in self.vm.state.containers_mut().iter_mut() {
            let id = c.id();
            c.enabled = Some(id) == target;
            c.auth.pending = None;
            c.auth.connection = None;
            touched.push(id);
        }
        self.vm.changes_mut().container_cores.extend(touched);
        // EF.ICCID follows the enabled container, in the same commit.
        if let Some(ef) = self.vm.state.sync_ef_iccid() {
            self.vm.changes_mut().files.insert((Tree::Global, ef));
        }
        self.vm.commit()?;
        if let Some(b) = before.filter(|b| Some(*b) != target) {
            self.vm.work().left.push(b);
        }
        Ok(())
    }

    /// Delete a disabled container with everything in it.
    pub fn delete(&mut self, id: ContainerId) -> Result<(), Status> {
        let c = self.container_any(id)?;
        if c.enabled {
            return Err(Status::ConditionsNotSatisfied);
        }
        self.vm.state.containers_mut().retain(|c| c.id() != id);
        self.vm.changes_mut().structure = true;
        self.vm.commit()?;
        self.vm.work().left.push(id);
        Ok(())
    }

    pub fn set_nickname(&mut self, id: ContainerId, nickname: String) -> Result<(), Status> {
        let c = self
            .vm
            .state
            .container_mut(id)
            .ok_or(Status::ReferencedDataNotFound)?;
        c.nickname = nickname;
        self.vm.changes_mut().container_cores.insert(id);
        self.vm.commit()
    }

    /// The pending SGP.22 notifications, oldest first.
    pub fn notifications(&self) -> &Notifications {
        &self.vm.state.notifications
    }

    /// Whether the notifications `wanted` would make (those the containers' configurations
    /// ask for) fit beside the pending ones. An operation that would not fit is refused
    /// before it changes anything: the card never drops a notification an SM-DP+ has not
    /// received.
    pub fn notifications_fit(&self, wanted: &[(ContainerId, NotificationEvent)]) -> bool {
        let made = wanted
            .iter()
            .filter(|(id, event)| self.wants_notification(*id, *event))
            .count();
        self.vm.state.notifications.pending.len() + made <= Notifications::CAPACITY
    }

    fn wants_notification(&self, id: ContainerId, event: NotificationEvent) -> bool {
        self.vm
            .state
            .container(id)
            .is_some_and(|c| c.notify.events & (1u8 << event.bit()) != 0)
    }

    /// Record `event` on container `id` when its notification configuration asks for it:
    /// the next sequence number, signed by the eUICC (SGP.22 §3.5). Not committed here: the
    /// commit of the operation itself carries it, so a kill keeps both or neither. The
    /// caller checked [`Admin::notifications_fit`]; a list already full refuses (6A84).
    pub fn notify(&mut self, id: ContainerId, event: NotificationEvent) -> Result<(), Status> {
        if !self.wants_notification(id, event) {
            return Ok(());
        }
        if self.vm.state.notifications.pending.len() >= Notifications::CAPACITY {
            return Err(Status::NotEnoughMemory);
        }
        let c = self.container_any(id)?;
        let (address, iccid) = (c.notify.address.clone(), Iccid::from_bytes(&c.iccid).ok());
        let state = &mut *self.vm.state;
        let seq = state
            .notifications
            .last_seq
            .checked_add(1)
            .ok_or(Status::MemoryFailure)?;
        let metadata = NotificationMetadata {
            seq,
            event,
            address,
            iccid,
        };
        let signature = state
            .euicc_identity()
            .map(|identity| identity.sign(&metadata.to_bytes()).to_vec())
            .unwrap_or_default();
        let n = &mut state.notifications;
        n.last_seq = seq;
        n.pending.push(Notification {
            seq,
            event: event.bit() as u8,
            address: metadata.address,
            iccid: metadata
                .iccid
                .map(|i| i.as_bytes().to_vec())
                .unwrap_or_default(),
            signature,
        });
        self.vm.changes_mut().notifications = true;
        Ok(())
    }

    /// Remove notification `seq` (the LPA delivered it), durably; whether it was there.
    pub fn remove_notification(&mut self, seq: u32) -> Result<bool, Status> {
        let pending = &mut self.vm.state.notifications.pending;
        let Some(i) = pending.iter().position(|n| n.seq == seq) else {
            return Ok(false);
        };
        pending.remove(i);
        self.vm.changes_mut().notifications = true;
        self.vm.commit()?;
        Ok(true)
    }

    /// eUICC memory reset: delete containers `doomed` whatever their state and, when
    /// `clear_dp_address`, the default SM-DP+ address, all in one commit.
    pub fn memory_reset(
        &mut self,
        doomed: &[ContainerId],
        clear_dp_address: bool,
    ) -> Result<(), Status> {
        let state = &mut *self.vm.state;
        state.containers_mut().retain(|c| !doomed.contains(&c.id()));
        if clear_dp_address {
            state.default_dp_address.clear();
        }
        // EF.ICCID follows the enabled container (all FF once none is).
        let ef = state.sync_ef_iccid();
        let changes = self.vm.changes_mut();
        changes.structure = true;
        changes.global |= clear_dp_address;
        if let Some(ef) = ef {
            changes.files.insert((Tree::Global, ef));
        }
        self.vm.commit()?;
        // Every channel leaves them (the enabled one among them, if any).
        self.vm.work().left.extend(doomed.iter().copied());
        Ok(())
    }

    /// Set (or, empty, clear) the default SM-DP+ address, durably.
    pub fn set_default_dp_address(&mut self, address: String) -> Result<(), Status> {
        self.vm.state.default_dp_address = address;
        self.vm.changes_mut().global = true;
        self.vm.commit()
    }

    /// Add load file `file` to container `id` (any state), durably.
    pub fn add_load_file(
        &mut self,
        id: ContainerId,
        file: crate::state::LoadFile,
    ) -> Result<(), Status> {
        reached_any(self.vm.state, id)?.load_files.push(file);
        self.vm.changes_mut().structure = true;
        self.vm.commit()
    }

    /// Add `instance` to container `id` (any state); committed with the command, after its
    /// `install` has run on it.
    pub fn add_applet(&mut self, id: ContainerId, instance: AppletInstance) -> Result<(), Status> {
        reached_any(self.vm.state, id)?.applets.push(instance);
        self.vm.changes_mut().structure = true;
        Ok(())
    }

    /// Delete instance `aid` of container `id`, or, `load_file`, that load file and (with
    /// `related`) its instances; 6985 for a load file that still has instances without
    /// `related`, 6A88 when nothing has that AID. Committed with the command.
    pub fn delete_applet(
        &mut self,
        id: ContainerId,
        aid: &[u8],
        related: bool,
    ) -> Result<(), Status> {
        let c = reached_any(self.vm.state, id)?;
        if c.load_files.iter().any(|f| f.aid == aid) {
            let users = c.applets.iter().any(|a| a.load_file == aid);
            if users && !related {
                return Err(Status::ConditionsNotSatisfied);
            }
            c.applets.retain(|a| a.load_file != aid);
            c.load_files.retain(|f| f.aid != aid);
        } else if c.applets.iter().any(|a| a.aid == aid) {
            c.applets.retain(|a| a.aid != aid);
        } else {
            return Err(Status::ReferencedDataNotFound);
        }
        self.vm.changes_mut().structure = true;
        Ok(())
    }

    /// The GlobalPlatform key sets, for PUT KEY.
    pub fn key_sets_mut(&mut self) -> &mut Vec<KeySet> {
        self.vm.changes_mut().global = true;
        &mut self.vm.state.gp.key_sets
    }
}

/// The record of changes in `work`, made on first use (a free function, so a caller can
/// hold a borrow of the state beside it).
fn record(work: &mut Option<Box<Work>>) -> &mut Changes {
    &mut work.get_or_insert_with(Box::default).changes
}

/// Container `id` for writing whatever its state (admin mode); 6A88 when none has it.
fn reached_any(state: &mut CardState, id: ContainerId) -> Result<&mut Container, Status> {
    state
        .container_mut(id)
        .ok_or(Status::ReferencedDataNotFound)
}

/// Container `id` for writing if runtime mode reaches it, one look-up.
fn reached_mut(state: &mut CardState, id: ContainerId) -> Result<&mut Container, Status> {
    match state.container_mut(id) {
        Some(c) if c.enabled => Ok(c),
        _ => Err(Status::FileNotFound),
    }
}

#[cfg(test)]
mod tests;
