//! The card manager's loaded-applet management (GPC 2.3.1 §11.5, §11.6, §11.2, §11.4):
//! INSTALL [for load], LOAD, INSTALL [for install and make selectable], DELETE and the
//! load-file and application listings of GET STATUS, in admin mode inside a secure channel.
//!
//! A load file is kept only whole and valid: the blocks gather in the channel's management
//! session, and only the last one, once the module validates and fits, writes anything.

use super::card_manager::ManagementSession;
use crate::commands::{Ctx, Outcome, Response};
use crate::state::{AppletInstance, Container, ContainerId, LoadFile};
use crate::vm::applet::CallEnd;
use crate::vm::engine::{self, CallResult, Export, Running};
use crate::vm::policy::{enter_admin, Function};
use crate::vm::Admin;
use apdu_specs::gp::{self, Delete, Install, InstallParameters, Load, RegistryEntry};
use apdu_specs::{Command, Status};

/// A load in progress on a channel: where it goes, and the blocks so far.
#[derive(Debug)]
pub struct LoadInProgress {
    container: ContainerId,
    aid: Vec<u8>,
    next_block: u8,
    data: Vec<u8>,
}

/// Storage of an instance whose INSTALL names no quota.
const DEFAULT_STORAGE: u32 = 1024;

/// Room for the `C4` header around the largest module.
const LOAD_HEADER: usize = 5;

fn admin<'v, 'a>(ctx: &'v mut Ctx<'a>) -> Result<Admin<'v, 'a>, Status> {
    enter_admin(&mut ctx.vm, Function::ManageApplets, ctx.secure).map_err(|d| d.status())
}

/// Whether `aid` already names something on the card: a security domain, a built-in
/// applet, or a load file or instance of any container.
fn aid_taken(admin: &Admin, aid: &[u8]) -> bool {
    use apdu_specs::es10::{GP_ISD_AID, ISD_R_AID};
    let builtin = [&GP_ISD_AID[..], &ISD_R_AID[..], &apdu_specs::auth::AID[..]];
    builtin
        .iter()
        .any(|b| b.starts_with(aid) || aid.starts_with(b))
        || admin.containers().iter().any(|c| {
            c.isdp_aid == aid
                || c.load_files.iter().any(|f| f.aid == aid)
                || c.applets.iter().any(|a| a.aid == aid)
        })
}

/// Load files plus instances in `c`, against the profile's limit (6A84 when full).
fn room(admin: &Admin, c: &Container) -> Result<(), Status> {
    let used = c.load_files.len() + c.applets.len();
    if used >= admin.applet_limits().max_applets as usize {
        return Err(Status::NotEnoughMemory);
    }
    Ok(())
}

// GPC §11.5.2.1: INSTALL [for load] names the load file and the container (ISD-P) that
// will hold it; the LOAD blocks follow.
pub fn install_for_load(
    ctx: &mut Ctx,
    session: &mut ManagementSession,
    load_file_aid: Vec<u8>,
    security_domain_aid: Vec<u8>,
) -> Outcome {
    session.load = None;
    let admin = admin(ctx)?;
    let container = if security_domain_aid.is_empty() {
        admin.enabled().ok_or(Status::ReferencedDataNotFound)?
    } else {
        admin
            .containers()
            .iter()
            .find(|c| c.isdp_aid == security_domain_aid)
            .map(Container::id)
            .ok_or(Status::ReferencedDataNotFound)?
    };
    if aid_taken(&admin, &load_file_aid) {
        return Err(Status::IncorrectData);
    }
    room(&admin, admin.container_any(container)?)?;
    session.load = Some(LoadInProgress {
        container,
        aid: load_file_aid,
        next_block: 0,
        data: Vec::new(),
    });
    Ok(Response::ok(vec![0x00]))
}

// GPC §11.6: LOAD, blocks in sequence; the last one stores the load file if it validates.
pub fn load(ctx: &mut Ctx, session: &mut ManagementSession, cmd: &Command) -> Outcome {
    let mut admin = admin(ctx)?;
    let block = Load::parse(cmd)?;
    // Any refusal ends the load: a half-loaded file never becomes installable.
    let mut progress = session.load.take().ok_or(Status::ConditionsNotSatisfied)?;
    if block.block != progress.next_block {
        return Err(Status::IncorrectP1P2);
    }
    let limits = admin.applet_limits().clone();
    if progress.data.len() + block.data.len() > limits.module_bytes as usize + LOAD_HEADER {
        return Err(Status::NotEnoughMemory);
    }
    progress.data.extend_from_slice(&block.data);
    progress.next_block = progress.next_block.wrapping_add(1);
    if !block.last {
        session.load = Some(progress);
        return Ok(Response::done());
    }
    let module = gp::load_file_data(&progress.data)?;
    engine::validate(module, &limits)?;
    // The container may have been deleted, or filled, since INSTALL [for load].
    room(&admin, admin.container_any(progress.container)?)?;
    if aid_taken(&admin, &progress.aid) {
        return Err(Status::IncorrectData);
    }
    admin.add_load_file(
        progress.container,
        LoadFile {
            aid: progress.aid,
            module: module.to_vec(),
        },
    )?;
    Ok(Response::ok(vec![0x00]))
}

// GPC §11.5.2.2: INSTALL [for install and make selectable] of a new instance of a load
// file's module; its `install` export runs with the parameters and decides.
pub fn install_for_install(
    ctx: &mut Ctx,
    load_file_aid: &[u8],
    module_aid: &[u8],
    application_aid: &[u8],
    privileges: &[u8],
    parameters: &InstallParameters,
    make_selectable: bool,
) -> Outcome {
    let mut admin = admin(ctx)?;
    // [for make selectable] alone: an installed instance is selectable already.
    if load_file_aid.is_empty() && make_selectable {
        let installed = admin
            .containers()
            .iter()
            .any(|c| c.applets.iter().any(|a| a.aid == application_aid));
        return if installed {
            Ok(Response::ok(vec![0x00]))
        } else {
            Err(Status::ReferencedDataNotFound)
        };
    }
    let (id, module) = admin
        .containers()
        .iter()
        .find_map(|c| {
            let f = c.load_files.iter().find(|f| f.aid == load_file_aid)?;
            Some((c.id(), f.module.clone()))
        })
        .ok_or(Status::ReferencedDataNotFound)?;
    // One module per load file, named by the load file's AID.
    if module_aid != load_file_aid {
        return Err(Status::ReferencedDataNotFound);
    }
    if aid_taken(&admin, application_aid) {
        return Err(Status::IncorrectData);
    }
    room(&admin, admin.container_any(id)?)?;
    let limits = admin.applet_limits().clone();
    let storage = parameters.non_volatile_quota.unwrap_or(DEFAULT_STORAGE);
    if storage > limits.storage_bytes {
        return Err(Status::NotEnoughMemory);
    }
    let mut running = Running::instantiate(&module, &limits)?;
    let key = crate::pki::new_key().map_err(|_| Status::NoPreciseDiagnosis)?;
    admin.add_applet(
        id,
        AppletInstance {
            aid: application_aid.to_vec(),
            load_file: load_file_aid.to_vec(),
            privileges: privileges.to_vec(),
            storage: vec![0; storage as usize],
            key: key.to_bytes().to_vec(),
        },
    )?;
    let lent = admin.lend_for_install(id, application_aid)?;
    let header = [0x80, apdu_specs::ins::gp::INSTALL, 0x0C, 0x00];
    let (lent, result) = running.call(
        Export::Install,
        lent,
        (&header, &[]),
        0,
        Some(&parameters.application),
    );
    let status = match result {
        CallResult::Returned { status, .. } => status,
        CallResult::Trapped(status) => status,
    };
    let accepted = status == Status::Success;
    admin.take_back(
        lent,
        if accepted {
            CallEnd::Keep
        } else {
            CallEnd::Undo
        },
    );
    if !accepted {
        admin.delete_applet(id, application_aid, false)?;
        return Err(status);
    }
    Ok(Response::ok(vec![0x00]))
}

// GPC §11.2: DELETE of an instance, or of a load file (with its instances when P2 says so).
pub fn delete(ctx: &mut Ctx, cmd: &Command) -> Outcome {
    let mut admin = admin(ctx)?;
    let Delete { aid, related } = Delete::parse(cmd)?;
    let id = admin
        .containers()
        .iter()
        .find(|c| {
            c.load_files.iter().any(|f| f.aid == aid) || c.applets.iter().any(|a| a.aid == aid)
        })
        .map(Container::id)
        .ok_or(Status::ReferencedDataNotFound)?;
    admin.delete_applet(id, &aid, related)?;
    Ok(Response::ok(vec![0x00]))
}

/// GET STATUS entries of the load files (P1 `20`, with their module for `10`).
pub fn load_file_entries(admin: &Admin, with_modules: bool, push: &mut dyn FnMut(RegistryEntry)) {
    for c in admin.containers() {
        for f in &c.load_files {
            push(RegistryEntry {
                aid: f.aid.clone(),
                life_cycle: gp::life_cycle::LOADED,
                associated_sd: Some(c.isdp_aid.clone()),
                modules: if with_modules {
                    vec![f.aid.clone()]
                } else {
                    Vec::new()
                },
                ..RegistryEntry::default()
            });
        }
    }
}

/// GET STATUS entries of the instances of container `c` (P1 `40`).
pub fn application_entries(c: &Container, push: &mut dyn FnMut(RegistryEntry)) {
    for a in &c.applets {
        let mut privileges = a.privileges.clone();
        privileges.resize(3, 0);
        push(RegistryEntry {
            aid: a.aid.clone(),
            life_cycle: gp::life_cycle::SELECTABLE,
            privileges: Some(privileges),
            load_file: Some(a.load_file.clone()),
            associated_sd: Some(c.isdp_aid.clone()),
            modules: Vec::new(),
        });
    }
}

/// Dispatch an INSTALL that is not [for personalization].
pub fn install(ctx: &mut Ctx, session: &mut ManagementSession, install: Install) -> Outcome {
    match install {
        Install::ForLoad {
            load_file_aid,
            security_domain_aid,
            ..
        } => install_for_load(ctx, session, load_file_aid, security_domain_aid),
        Install::ForInstall {
            load_file_aid,
            module_aid,
            application_aid,
            privileges,
            parameters,
            make_selectable,
        } => install_for_install(
            ctx,
            &load_file_aid,
            &module_aid,
            &application_aid,
            &privileges,
            &parameters,
            make_selectable,
        ),
        Install::ForPersonalization { .. } => Err(Status::IncorrectP1P2),
    }
}
