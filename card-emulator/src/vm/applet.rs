//! The capability a running loaded applet holds: its own container's files and PINs in
//! runtime mode, its own instance's storage and key, and an undo log that makes each call
//! all or nothing.
//!
//! The engine keeps an applet's WebAssembly store alive between commands, so what its host
//! functions reach cannot be a borrow of the card's state: for the length of one call the
//! [`Vm`] lends the state itself into an [`AppletVm`] ([`Vm::lend_to_applet`]) and takes it
//! back afterwards ([`Vm::take_back`]), keeping what the call wrote or undoing all of it.
//! Nothing else ever holds an `AppletVm`, and its methods name no container but the
//! instance's own and no storage but the instance's.

use super::{record, Admin, Tree, Vm};
use crate::state::{Access, AppletInstance, CardState, Container, ContainerId, FileBody, FileId};
use apdu_specs::Status;

/// The state lent to one call of one applet instance.
pub struct AppletVm {
    state: CardState,
    container: ContainerId,
    instance: Vec<u8>,
    /// PINs verified on the calling channel (a copy: the channel's state is not the VM's).
    verified: Vec<(Tree, u8)>,
    /// What the call changed, with what it was before (restored by a roll back).
    undo_files: Vec<(FileId, FileBody)>,
    undo_storage: Option<Vec<u8>>,
}

/// A call's end: keep what it wrote, or undo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    Keep,
    Undo,
}

impl Vm<'_> {
    /// Lend the state to one call of applet `instance` of container `id`, for a channel on
    /// which `verified` PINs are verified. The `Vm` is unusable until [`Vm::take_back`]:
    /// it holds an empty state meanwhile.
    pub fn lend_to_applet(
        &mut self,
        id: ContainerId,
        instance: &[u8],
        verified: &[(Tree, u8)],
    ) -> Result<AppletVm, Status> {
        self.reached(id)?;
        self.lend(id, instance, verified)
    }

    fn lend(
        &mut self,
        id: ContainerId,
        instance: &[u8],
        verified: &[(Tree, u8)],
    ) -> Result<AppletVm, Status> {
        self.state
            .container(id)
            .ok_or(Status::FileNotFound)?
            .applets
            .iter()
            .find(|a| a.aid == instance)
            .ok_or(Status::FileNotFound)?;
        let state = std::mem::replace(self.state, CardState::placeholder());
        Ok(AppletVm {
            state,
            container: id,
            instance: instance.to_vec(),
            verified: verified
                .iter()
                .copied()
                .filter(|(t, _)| *t == Tree::Global || *t == Tree::Container(id))
                .collect(),
            undo_files: Vec::new(),
            undo_storage: None,
        })
    }

    /// Take the state back from a call: what it wrote is recorded for the commit
    /// ([`CallEnd::Keep`]) or undone ([`CallEnd::Undo`]).
    pub fn take_back(&mut self, mut lent: AppletVm, end: CallEnd) {
        let id = lent.container;
        if end == CallEnd::Undo {
            lent.undo();
        } else if !lent.undo_files.is_empty() || lent.undo_storage.is_some() {
            let changes = record(&mut self.work);
            for (file, _) in &lent.undo_files {
                changes.files.insert((Tree::Container(id), *file));
            }
            if lent.undo_storage.is_some() {
                changes.applet_storage.insert((id, lent.instance.clone()));
            }
        }
        *self.state = lent.state;
    }
}

impl Admin<'_, '_> {
    /// Lend the state to the `install` call of a new instance of container `id`, enabled
    /// or not: the instance's storage and key are in reach, the container's files only
    /// while it is enabled (runtime rules), and no PIN counts as verified.
    pub fn lend_for_install(
        &mut self,
        id: ContainerId,
        instance: &[u8],
    ) -> Result<AppletVm, Status> {
        self.vm.lend(id, instance, &[])
    }
}

impl AppletVm {
    /// The instance's container, in runtime mode: absent (6A82) unless enabled.
    fn container(&self) -> Result<&Container, Status> {
        match self.state.container(self.container) {
            Some(c) if c.enabled => Ok(c),
            _ => Err(Status::FileNotFound),
        }
    }

    fn container_mut(&mut self) -> Result<&mut Container, Status> {
        match self.state.container_mut(self.container) {
            Some(c) if c.enabled => Ok(c),
            _ => Err(Status::FileNotFound),
        }
    }

    /// The instance itself, whatever its container's state: it is what the state was lent
    /// to (an INSTALL into a disabled container runs `install` too).
    fn instance(&self) -> Result<&AppletInstance, Status> {
        self.state
            .container(self.container)
            .ok_or(Status::FileNotFound)?
            .applets
            .iter()
            .find(|a| a.aid == self.instance)
            .ok_or(Status::FileNotFound)
    }

    /// The instance's persistent storage.
    pub fn storage(&self) -> Result<&[u8], Status> {
        Ok(&self.instance()?.storage)
    }

    /// Write `bytes` at `offset` of the storage; 6A84 when it does not fit.
    pub fn storage_write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), Status> {
        let aid = self.instance.clone();
        let first = self.undo_storage.is_none();
        let instance = self
            .state
            .container_mut(self.container)
            .ok_or(Status::FileNotFound)?
            .applets
            .iter_mut()
            .find(|a| a.aid == aid)
            .ok_or(Status::FileNotFound)?;
        let end = offset
            .checked_add(bytes.len())
            .filter(|e| *e <= instance.storage.len())
            .ok_or(Status::NotEnoughMemory)?;
        let before = first.then(|| instance.storage.clone());
        instance.storage[offset..end].copy_from_slice(bytes);
        if let Some(before) = before {
            self.undo_storage = Some(before);
        }
        Ok(())
    }

    /// The instance's P-256 private key.
    pub fn key(&self) -> Result<&[u8], Status> {
        Ok(&self.instance()?.key)
    }

    /// Whether PIN `reference` of the container is verified on the calling channel.
    pub fn pin_verified(&self, reference: u8) -> bool {
        self.verified
            .contains(&(Tree::Container(self.container), reference))
    }

    /// Whether the calling channel meets `access`, as READ and UPDATE check it: a PIN of
    /// the container's own first, then the card's.
    fn allowed(&self, access: Access) -> Result<bool, Status> {
        Ok(match access {
            Access::Always => true,
            Access::Never => false,
            Access::Pin(r) => {
                let own = self.container()?.pins.iter().any(|p| p.reference == r);
                let tree = if own {
                    Tree::Container(self.container)
                } else if self.state.pins.iter().any(|p| p.reference == r) {
                    Tree::Global
                } else {
                    return Ok(false);
                };
                self.verified.contains(&(tree, r))
            }
        })
    }

    /// The first EF with `fid` in the container's tree, checked against the channel's
    /// access for reading or updating.
    fn file(&self, fid: u16, update: bool) -> Result<(FileId, &FileBody), Status> {
        let files = &self.container()?.files;
        let (id, f) = files
            .iter()
            .enumerate()
            .find(|(_, f)| f.fid == fid && !f.is_df())
            .ok_or(Status::FileNotFound)?;
        let access = if update { f.update } else { f.read };
        if !self.allowed(access)? {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        Ok((id, &f.body))
    }

    /// Up to `len` bytes of transparent EF `fid` from `offset`.
    pub fn file_read(&self, fid: u16, offset: usize, len: usize) -> Result<&[u8], Status> {
        let (_, FileBody::Transparent { data }) = self.file(fid, false)? else {
            return Err(Status::IncompatibleFileStructure);
        };
        if offset >= data.len() {
            return Err(Status::WrongP1P2);
        }
        Ok(&data[offset..data.len().min(offset.saturating_add(len))])
    }

    /// Write `bytes` at `offset` of transparent EF `fid` (6B00 when it does not fit).
    pub fn file_write(&mut self, fid: u16, offset: usize, bytes: &[u8]) -> Result<(), Status> {
        let (id, body) = self.file(fid, true)?;
        let FileBody::Transparent { data } = body else {
            return Err(Status::IncompatibleFileStructure);
        };
        let end = offset
            .checked_add(bytes.len())
            .filter(|e| *e <= data.len())
            .ok_or(Status::WrongP1P2)?;
        self.edit_file(id, |body| {
            if let FileBody::Transparent { data } = body {
                data[offset..end].copy_from_slice(bytes);
            }
        })
    }

    /// Record `number` (1-based) of record EF `fid`.
    pub fn record_read(&self, fid: u16, number: usize) -> Result<&[u8], Status> {
        let (_, FileBody::Records { records, .. }) = self.file(fid, false)? else {
            return Err(Status::IncompatibleFileStructure);
        };
        number
            .checked_sub(1)
            .and_then(|i| records.get(i))
            .map(Vec::as_slice)
            .ok_or(Status::RecordNotFound)
    }

    /// Replace record `number` (1-based) of record EF `fid`; it keeps its length (6700).
    pub fn record_write(&mut self, fid: u16, number: usize, bytes: &[u8]) -> Result<(), Status> {
        let (id, body) = self.file(fid, true)?;
        let FileBody::Records {
            records,
            record_length,
            ..
        } = body
        else {
            return Err(Status::IncompatibleFileStructure);
        };
        let i = number
            .checked_sub(1)
            .filter(|i| *i < records.len())
            .ok_or(Status::RecordNotFound)?;
        if bytes.len() != usize::from(*record_length) {
            return Err(Status::WrongLength);
        }
        self.edit_file(id, |body| {
            if let FileBody::Records { records, .. } = body {
                records[i].copy_from_slice(bytes);
            }
        })
    }

    /// Change file `id`'s body by `f`, keeping its first content for a roll back.
    fn edit_file(&mut self, id: FileId, f: impl FnOnce(&mut FileBody)) -> Result<(), Status> {
        let first = !self.undo_files.iter().any(|(i, _)| *i == id);
        let body = &mut self
            .container_mut()?
            .files
            .get_mut(id)
            .ok_or(Status::FileNotFound)?
            .body;
        let before = first.then(|| body.clone());
        f(body);
        if let Some(before) = before {
            self.undo_files.push((id, before));
        }
        Ok(())
    }

    /// Put back everything the call wrote.
    fn undo(&mut self) {
        let id = self.container;
        let aid = std::mem::take(&mut self.instance);
        let files = std::mem::take(&mut self.undo_files);
        let storage = self.undo_storage.take();
        // The container may be unreachable now only if it was before: a call cannot
        // disable it. Look it up whatever its state, so nothing written stays.
        let Some(c) = self.state.container_mut(id) else {
            return;
        };
        for (file, body) in files.into_iter().rev() {
            if let Some(f) = c.files.get_mut(file) {
                f.body = body;
            }
        }
        if let Some(before) = storage {
            if let Some(a) = c.applets.iter_mut().find(|a| a.aid == aid) {
                a.storage = before;
            }
        }
        self.instance = aid;
    }
}
