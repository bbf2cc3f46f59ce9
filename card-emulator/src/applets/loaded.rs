//! Loaded applets at runtime: SELECT of an instance of the enabled container, and the
//! commands it receives, each run by the engine as one transaction over the state the VM
//! lends it (apdu-specs/docs/applets.md).

use crate::commands::{Ctx, Outcome, Response};
use crate::state::ContainerId;
use crate::vm::applet::CallEnd;
use crate::vm::engine::{CallResult, Export, Running};
use crate::vm::Tree;
use apdu_specs::{Command, Status};

/// An instance selected on a channel.
#[derive(Debug)]
pub struct LoadedApplet {
    pub container: ContainerId,
    pub aid: Vec<u8>,
    /// Its WebAssembly instance; `None` after a trap (made again at the next command).
    running: Option<Running>,
}

impl LoadedApplet {
    /// Tell it it is deselected (the channel selected something else).
    pub fn deselect(&mut self) {
        if let Some(r) = self.running.as_mut() {
            r.deselect();
        }
    }
}

/// The instance of the enabled container whose AID starts with `name` (5 bytes at least).
fn find(ctx: &Ctx, name: &[u8]) -> Option<(ContainerId, Vec<u8>)> {
    if name.len() < 5 {
        return None;
    }
    let id = ctx.vm.enabled()?;
    let c = ctx.vm.container(id).ok()?;
    c.applets
        .iter()
        .find(|a| a.aid.starts_with(name))
        .map(|a| (id, a.aid.clone()))
}

/// Instantiate instance `aid` of container `id` from its load file.
fn instantiate(ctx: &Ctx, id: ContainerId, aid: &[u8]) -> Result<Running, Status> {
    let c = ctx.vm.container(id)?;
    let instance = c
        .applets
        .iter()
        .find(|a| a.aid == aid)
        .ok_or(Status::FileNotFound)?;
    let file = c
        .load_files
        .iter()
        .find(|f| f.aid == instance.load_file)
        .ok_or(Status::FileNotFound)?;
    Running::instantiate(&file.module, ctx.vm.applet_limits())
}

/// Run `export` of `running` for `cmd` as one transaction: the VM lends the state, and
/// gets it back with the call's writes kept or undone.
fn run(
    ctx: &mut Ctx,
    running: &mut Running,
    id: ContainerId,
    aid: &[u8],
    export: Export,
    cmd: &Command,
) -> Result<CallResult, Status> {
    let lent = ctx.vm.lend_to_applet(id, aid, &ctx.chan.verified)?;
    let header = [cmd.cla, cmd.ins, cmd.p1, cmd.p2];
    let le = cmd.le().unwrap_or(0) as u32;
    let (lent, result) = running.call(export, lent, (&header, cmd.data()), le, None);
    let end = match result {
        CallResult::Returned { .. } => CallEnd::Keep,
        CallResult::Trapped(_) => CallEnd::Undo,
    };
    ctx.vm.take_back(lent, end);
    Ok(result)
}

/// The answer of a returned call: data with a success or warning status, the status alone
/// for an error.
fn answer(data: Vec<u8>, status: Status) -> Outcome {
    if status == Status::Success {
        Ok(Response::ok(data))
    } else if status.is_warning() {
        Ok(Response::warn(data, status))
    } else {
        Err(status)
    }
}

/// SELECT by name of a loaded applet of the enabled container, if one has that AID: its
/// `select` export decides.
pub fn select(ctx: &mut Ctx, cmd: &Command) -> Option<(LoadedApplet, Outcome)> {
    let (id, aid) = find(ctx, cmd.data())?;
    let outcome = (|| {
        let mut running = instantiate(ctx, id, &aid)?;
        match run(ctx, &mut running, id, &aid, Export::Select, cmd)? {
            CallResult::Returned {
                data,
                status: Status::Success,
            } => Ok((running, Response::ok(data))),
            CallResult::Returned { status, .. } | CallResult::Trapped(status) => Err(status),
        }
    })();
    Some(match outcome {
        Ok((running, response)) => {
            // Its container's files and PINs are the ones in reach while it is selected.
            ctx.chan.tree = Tree::Container(id);
            ctx.chan.current_df = 0;
            ctx.chan.current_ef = None;
            let applet = LoadedApplet {
                container: id,
                aid,
                running: Some(running),
            };
            (applet, Ok(response))
        }
        Err(status) => {
            let applet = LoadedApplet {
                container: id,
                aid,
                running: None,
            };
            (applet, Err(status))
        }
    })
}

/// A command for the selected instance.
pub fn process(ctx: &mut Ctx, applet: &mut LoadedApplet, cmd: &Command) -> Outcome {
    // Runtime mode: only the enabled container's instances exist.
    ctx.vm.reachable(Tree::Container(applet.container))?;
    let mut running = match applet.running.take() {
        Some(r) => r,
        None => instantiate(ctx, applet.container, &applet.aid)?,
    };
    match run(
        ctx,
        &mut running,
        applet.container,
        &applet.aid,
        Export::Process,
        cmd,
    )? {
        CallResult::Returned { data, status } => {
            applet.running = Some(running);
            answer(data, status)
        }
        // The instance is dropped: its memory may be anything after a trap.
        CallResult::Trapped(status) => Err(status),
    }
}
