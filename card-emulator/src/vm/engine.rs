//! The engine of loaded applets: wasmi, an interpreter made for untrusted code. It checks a
//! load file against the applet interface (apdu-specs/docs/applets.md), instantiates it
//! under the profile's limits, and calls its exports with a fuel budget; the host
//! functions of module `se` reach the card only through the [`AppletVm`] lent for the call.

use super::applet::AppletVm;
use crate::state::AppletLimits;
use apdu_specs::Status;
use std::fmt;
use std::ops::Range;
use std::sync::{Mutex, OnceLock};
use wasmi::{
    Caller, Config, Engine, Error, ExternType, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, TypedFunc, ValType,
};

/// The import module every host function lives in (interface version 1).
pub const IMPORT_MODULE: &str = "se";

/// The host functions of interface version 1: name, parameter count, result count (all
/// `i32`). [`linker`] defines exactly these; a module importing anything else is refused.
pub const HOST_FUNCTIONS: &[(&str, usize, usize)] = &[
    ("command", 2, 1),
    ("le", 0, 1),
    ("respond", 2, 1),
    ("params", 2, 1),
    ("throw", 1, 0),
    ("storage_size", 0, 1),
    ("storage_read", 3, 1),
    ("storage_write", 3, 1),
    ("file_read", 4, 1),
    ("file_write", 4, 1),
    ("record_read", 4, 1),
    ("record_write", 4, 1),
    ("pin_verified", 1, 1),
    ("random", 2, 1),
    ("sha256", 3, 1),
    ("hmac_sha256", 5, 1),
    ("aes_ecb", 6, 1),
    ("aes_cbc", 7, 1),
    ("aes_cmac", 5, 1),
    ("ec_public_key", 1, 1),
    ("ecdsa_sign", 3, 1),
    ("ecdsa_verify", 4, 1),
    ("ecdh", 2, 1),
];

/// The exports the card calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    Install,
    Select,
    Process,
}

impl Export {
    fn name(self) -> &'static str {
        match self {
            Export::Install => "install",
            Export::Select => "select",
            Export::Process => "process",
        }
    }
}

/// Largest answer an applet may give (`se.respond`).
const MAX_RESPONSE: usize = 65_536;

/// Why a call ended early: the status word it answers.
#[derive(Debug, Clone, Copy)]
struct Abort(u16);

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "applet aborted with {:04X}", self.0)
    }
}

impl wasmi::errors::HostError for Abort {}

/// A host function used wrongly (a range outside memory, outside the storage, a call
/// outside a command): the call traps and answers 6F00.
fn misuse() -> Error {
    Error::host(Abort(Status::NoPreciseDiagnosis.to_u16()))
}

/// A failure the applet may handle: minus the status word.
fn negated(status: Status) -> i32 {
    -i32::from(status.to_u16())
}

/// What host functions see of the card for the call in progress.
pub struct Host {
    limits: StoreLimits,
    memory: Option<Memory>,
    /// The state lent for the current call; `None` between calls (the start function),
    /// where every host function that needs it traps.
    vm: Option<AppletVm>,
    /// `CLA INS P1 P2` and the command data.
    command: Vec<u8>,
    le: u32,
    response: Vec<u8>,
    /// The install parameters, during `install` only.
    params: Option<Vec<u8>>,
}

/// An instantiated applet: its store, memory and exports. Dropped after any trap.
pub struct Running {
    store: Store<Host>,
    install: Option<TypedFunc<(), i32>>,
    select: Option<TypedFunc<(), i32>>,
    deselect: Option<TypedFunc<(), ()>>,
    process: TypedFunc<(), i32>,
    fuel: u64,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Running(applet instance)")
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// The export returned this status word (checked), with this answer data: keep what it wrote.
    Returned { data: Vec<u8>, status: Status },
    /// It trapped (or threw): undo what it wrote, drop the instance, answer this status.
    Trapped(Status),
}

/// One engine per recursion limit (a `Config` setting); engines are cheap to share.
fn engine(limits: &AppletLimits) -> Engine {
    static ENGINES: OnceLock<Mutex<Vec<(u32, Engine)>>> = OnceLock::new();
    let engines = ENGINES.get_or_init(Default::default);
    let mut engines = engines.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, e)) = engines.iter().find(|(r, _)| *r == limits.max_recursion) {
        return e.clone();
    }
    let mut config = Config::default();
    config
        .consume_fuel(true)
        .set_max_recursion_depth(limits.max_recursion.max(1) as usize)
        // The interface's feature set (apdu-specs/docs/applets.md): one 32-bit memory, no
        // proposals the document does not name.
        .wasm_multi_memory(false)
        .wasm_tail_call(false)
        .wasm_extended_const(false)
        .wasm_custom_page_sizes(false)
        .wasm_wide_arithmetic(false)
        // Validate everything at LOAD; translate function bodies when first called.
        .compilation_mode(wasmi::CompilationMode::LazyTranslation);
    let e = Engine::new(&config);
    engines.push((limits.max_recursion, e.clone()));
    e
}

/// Check a load file: size (6A84), WebAssembly validity, imports and exports (6A80).
pub fn validate(bytes: &[u8], limits: &AppletLimits) -> Result<(), Status> {
    if bytes.len() > limits.module_bytes as usize {
        return Err(Status::NotEnoughMemory);
    }
    let module = Module::new(&engine(limits), bytes).map_err(|e| {
        tracing::debug!("load file refused: {e}");
        Status::IncorrectData
    })?;
    check_interface(&module)
}

fn is_i32s(types: &[ValType], n: usize) -> bool {
    types.len() == n && types.iter().all(|t| *t == ValType::I32)
}

fn check_interface(module: &Module) -> Result<(), Status> {
    for import in module.imports() {
        let known = HOST_FUNCTIONS
            .iter()
            .find(|(name, ..)| *name == import.name());
        let ok = match (import.module() == IMPORT_MODULE, known, import.ty()) {
            (true, Some((_, params, results)), ExternType::Func(f)) => {
                is_i32s(f.params(), *params) && is_i32s(f.results(), *results)
            }
            _ => false,
        };
        if !ok {
            tracing::debug!(
                "load file refused: it imports {}.{}, which is not in the interface",
                import.module(),
                import.name()
            );
            return Err(Status::IncorrectData);
        }
    }
    let mut memory = false;
    let mut process = false;
    for export in module.exports() {
        let ok = match (export.name(), export.ty()) {
            ("memory", ExternType::Memory(_)) => {
                memory = true;
                true
            }
            ("process", ExternType::Func(f)) => {
                process = true;
                is_i32s(f.params(), 0) && is_i32s(f.results(), 1)
            }
            ("install" | "select", ExternType::Func(f)) => {
                is_i32s(f.params(), 0) && is_i32s(f.results(), 1)
            }
            ("deselect", ExternType::Func(f)) => f.params().is_empty() && f.results().is_empty(),
            ("memory" | "process" | "install" | "select" | "deselect", _) => false,
            _ => true,
        };
        if !ok {
            tracing::debug!(
                "load file refused: export {} has the wrong kind or type",
                export.name()
            );
            return Err(Status::IncorrectData);
        }
    }
    if memory && process {
        Ok(())
    } else {
        tracing::debug!("load file refused: it must export `memory` and `process`");
        Err(Status::IncorrectData)
    }
}

impl Running {
    /// Instantiate a load file (validated at LOAD) under `limits`: 6A84 when its memory
    /// does not fit, 6F00 when its start function traps.
    pub fn instantiate(bytes: &[u8], limits: &AppletLimits) -> Result<Running, Status> {
        let engine = engine(limits);
        let module = Module::new(&engine, bytes).map_err(|_| Status::IncorrectData)?;
        check_interface(&module)?;
        let host = Host {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes as usize)
                .memories(1)
                .tables(1)
                .table_elements(16_384)
                .instances(1)
                .build(),
            memory: None,
            vm: None,
            command: Vec::new(),
            le: 0,
            response: Vec::new(),
            params: None,
        };
        let mut store = Store::new(&engine, host);
        store.limiter(|h| &mut h.limits);
        store
            .set_fuel(limits.fuel)
            .map_err(|_| Status::NoPreciseDiagnosis)?;
        let instance = build_linker(&engine)
            .instantiate_and_start(&mut store, &module)
            .map_err(|e| {
                tracing::debug!("applet instantiation failed: {e}");
                if e.as_trap_code().is_some() {
                    Status::NoPreciseDiagnosis
                } else {
                    Status::NotEnoughMemory
                }
            })?;
        let memory = instance
            .get_memory(&store, "memory")
            .ok_or(Status::IncorrectData)?;
        store.data_mut().memory = Some(memory);
        let typed = |name: &str| instance.get_typed_func::<(), i32>(&store, name).ok();
        Ok(Running {
            install: typed("install"),
            select: typed("select"),
            process: typed("process").ok_or(Status::IncorrectData)?,
            deselect: instance.get_typed_func::<(), ()>(&store, "deselect").ok(),
            store,
            fuel: limits.fuel,
        })
    }

    /// Call `export` with `vm` lent, the command `header_and_data` (`CLA INS P1 P2` and
    /// data) and `le`; `params` during `install`. Gives `vm` back with how the call ended.
    pub fn call(
        &mut self,
        export: Export,
        vm: AppletVm,
        header_and_data: (&[u8; 4], &[u8]),
        le: u32,
        params: Option<&[u8]>,
    ) -> (AppletVm, CallResult) {
        let func = match export {
            Export::Install => self.install,
            Export::Select => self.select,
            Export::Process => Some(self.process),
        };
        let host = self.store.data_mut();
        host.command.clear();
        host.command.extend_from_slice(header_and_data.0);
        host.command.extend_from_slice(header_and_data.1);
        host.le = le;
        host.response.clear();
        host.params = params.map(<[u8]>::to_vec);
        host.vm = Some(vm);
        let outcome = match func {
            None => Ok(0x9000),
            Some(f) => match self.store.set_fuel(self.fuel) {
                Ok(()) => f.call(&mut self.store, ()),
                Err(e) => Err(e),
            },
        };
        let host = self.store.data_mut();
        host.params = None;
        let Some(vm) = host.vm.take() else {
            // Only `call` puts it there and only this takes it out.
            unreachable!("the lent state is always given back")
        };
        let result = match outcome {
            Ok(sw) => CallResult::Returned {
                data: std::mem::take(&mut host.response),
                status: answer_status(sw),
            },
            Err(e) => {
                let status = match e.downcast_ref::<Abort>() {
                    Some(Abort(sw)) => answer_status(i32::from(*sw)),
                    None => Status::NoPreciseDiagnosis,
                };
                tracing::debug!(
                    "applet {} trapped: {e}; answering {:04X}",
                    export.name(),
                    status.to_u16()
                );
                CallResult::Trapped(status)
            }
        };
        (vm, result)
    }

    /// Tell the applet it is deselected (with no state lent: host functions that need it
    /// trap, and a trap changes nothing).
    pub fn deselect(&mut self) {
        if let Some(f) = self.deselect {
            if self.store.set_fuel(self.fuel).is_ok() {
                let _ = f.call(&mut self.store, ());
            }
        }
    }
}

/// The status word an applet's answer may carry: 9000, 62xx-6Fxx other than 6Cxx, with
/// 61xx and 6Cxx left to the card; 6F00 for anything else.
fn answer_status(sw: i32) -> Status {
    match u16::try_from(sw) {
        Ok(sw @ 0x9000) => Status::from_u16(sw),
        Ok(sw @ 0x6200..=0x6FFF) if sw & 0xFF00 != 0x6C00 => Status::from_u16(sw),
        _ => Status::NoPreciseDiagnosis,
    }
}

/// `ptr .. ptr + len` inside a memory of `size` bytes, or a trap.
fn range(size: usize, ptr: i32, len: i32) -> Result<Range<usize>, Error> {
    let start = usize::try_from(ptr as u32).map_err(|_| misuse())?;
    let len = usize::try_from(len as u32).map_err(|_| misuse())?;
    let end = start.checked_add(len).ok_or_else(misuse)?;
    if end > size {
        return Err(misuse());
    }
    Ok(start..end)
}

/// The applet's memory and the host state.
fn parts<'a>(caller: &'a mut Caller<'_, Host>) -> Result<(&'a mut [u8], &'a mut Host), Error> {
    let memory = caller.data().memory.ok_or_else(misuse)?;
    Ok(memory.data_and_store_mut(caller))
}

/// Copy `len` bytes at `ptr` out of the applet's memory.
fn read(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Result<Vec<u8>, Error> {
    let (mem, _) = parts(caller)?;
    let r = range(mem.len(), ptr, len)?;
    Ok(mem[r].to_vec())
}

/// Write `bytes` at `ptr` of the applet's memory.
fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> Result<(), Error> {
    let (mem, _) = parts(caller)?;
    let r = range(mem.len(), ptr, bytes.len() as i32)?;
    mem[r].copy_from_slice(bytes);
    Ok(())
}

/// Copy at most `cap` bytes of `src` to `ptr`; the whole length.
fn give(mem: &mut [u8], ptr: i32, cap: i32, src: &[u8]) -> Result<i32, Error> {
    let r = range(mem.len(), ptr, cap)?;
    let n = src.len().min(r.len());
    mem[r.start..r.start + n].copy_from_slice(&src[..n]);
    Ok(src.len() as i32)
}

fn lent(host: &mut Host) -> Result<&mut AppletVm, Error> {
    host.vm.as_mut().ok_or_else(misuse)
}

fn fid(v: i32) -> Result<u16, Error> {
    u16::try_from(v).map_err(|_| misuse())
}

fn size(v: i32) -> Result<usize, Error> {
    usize::try_from(v).map_err(|_| misuse())
}

/// The linker of interface version 1: exactly [`HOST_FUNCTIONS`].
fn build_linker(engine: &Engine) -> Linker<Host> {
    let mut l = Linker::<Host>::new(engine);
    let m = IMPORT_MODULE;
    // Defining a name twice is the only failure, and each name appears once.
    let ok = |r: Result<&mut Linker<Host>, wasmi::errors::LinkerError>| {
        if let Err(e) = r {
            tracing::error!("applet host function not defined: {e}");
        }
    };
    ok(l.func_wrap(
        m,
        "command",
        |mut c: Caller<'_, Host>, ptr: i32, cap: i32| {
            let (mem, host) = parts(&mut c)?;
            give(mem, ptr, cap, &host.command)
        },
    ));
    ok(l.func_wrap(m, "le", |c: Caller<'_, Host>| c.data().le as i32));
    ok(l.func_wrap(
        m,
        "respond",
        |mut c: Caller<'_, Host>, ptr: i32, len: i32| {
            let (mem, host) = parts(&mut c)?;
            let r = range(mem.len(), ptr, len)?;
            if r.len() > MAX_RESPONSE {
                return Err(misuse());
            }
            host.response.clear();
            host.response.extend_from_slice(&mem[r]);
            Ok(0)
        },
    ));
    ok(l.func_wrap(
        m,
        "params",
        |mut c: Caller<'_, Host>, ptr: i32, cap: i32| {
            let (mem, host) = parts(&mut c)?;
            match &host.params {
                Some(p) => give(mem, ptr, cap, p),
                None => Ok(negated(Status::ConditionsNotSatisfied)),
            }
        },
    ));
    ok(l.func_wrap(
        m,
        "throw",
        |_: Caller<'_, Host>, sw: i32| -> Result<(), Error> {
            Err(Error::host(Abort(u16::try_from(sw).unwrap_or(0x6F00))))
        },
    ));
    ok(l.func_wrap(m, "storage_size", |mut c: Caller<'_, Host>| {
        Ok(lent(c.data_mut())?.storage().map_err(|_| misuse())?.len() as i32)
    }));
    ok(l.func_wrap(
        m,
        "storage_read",
        |mut c: Caller<'_, Host>, off: i32, ptr: i32, len: i32| {
            let (mem, host) = parts(&mut c)?;
            let storage = lent(host)?.storage().map_err(|_| misuse())?;
            let src = range(storage.len(), off, len)?;
            let dst = range(mem.len(), ptr, len)?;
            mem[dst].copy_from_slice(&storage[src]);
            Ok(0)
        },
    ));
    ok(l.func_wrap(
        m,
        "storage_write",
        |mut c: Caller<'_, Host>, off: i32, ptr: i32, len: i32| {
            let (mem, host) = parts(&mut c)?;
            let src = range(mem.len(), ptr, len)?;
            let vm = lent(host)?;
            let at = size(off)?;
            vm.storage_write(at, &mem[src]).map_err(|_| misuse())?;
            Ok(0)
        },
    ));
    ok(l.func_wrap(
        m,
        "file_read",
        |mut c: Caller<'_, Host>, f: i32, off: i32, ptr: i32, len: i32| {
            let (mem, host) = parts(&mut c)?;
            let dst = range(mem.len(), ptr, len)?;
            match lent(host)?.file_read(fid(f)?, size(off)?, dst.len()) {
                Ok(bytes) => {
                    mem[dst.start..dst.start + bytes.len()].copy_from_slice(bytes);
                    Ok(bytes.len() as i32)
                }
                Err(s) => Ok(negated(s)),
            }
        },
    ));
    ok(l.func_wrap(
        m,
        "file_write",
        |mut c: Caller<'_, Host>, f: i32, off: i32, ptr: i32, len: i32| {
            let (mem, host) = parts(&mut c)?;
            let src = range(mem.len(), ptr, len)?;
            Ok(
                match lent(host)?.file_write(fid(f)?, size(off)?, &mem[src]) {
                    Ok(()) => 0,
                    Err(s) => negated(s),
                },
            )
        },
    ));
    ok(l.func_wrap(
        m,
        "record_read",
        |mut c: Caller<'_, Host>, f: i32, n: i32, ptr: i32, cap: i32| {
            let (mem, host) = parts(&mut c)?;
            match lent(host)?.record_read(fid(f)?, size(n)?) {
                Ok(rec) => give(mem, ptr, cap, rec),
                Err(s) => Ok(negated(s)),
            }
        },
    ));
    ok(l.func_wrap(
        m,
        "record_write",
        |mut c: Caller<'_, Host>, f: i32, n: i32, ptr: i32, len: i32| {
            let (mem, host) = parts(&mut c)?;
            let src = range(mem.len(), ptr, len)?;
            Ok(
                match lent(host)?.record_write(fid(f)?, size(n)?, &mem[src]) {
                    Ok(()) => 0,
                    Err(s) => negated(s),
                },
            )
        },
    ));
    ok(
        l.func_wrap(m, "pin_verified", |mut c: Caller<'_, Host>, r: i32| {
            let r = u8::try_from(r).map_err(|_| misuse())?;
            Ok(i32::from(lent(c.data_mut())?.pin_verified(r)))
        }),
    );
    ok(l.func_wrap(
        m,
        "random",
        |mut c: Caller<'_, Host>, ptr: i32, len: i32| {
            let (mem, _) = parts(&mut c)?;
            let r = range(mem.len(), ptr, len)?;
            getrandom::getrandom(&mut mem[r]).map_err(|_| misuse())?;
            Ok(0)
        },
    ));
    ok(l.func_wrap(
        m,
        "sha256",
        |mut c: Caller<'_, Host>, ptr: i32, len: i32, out: i32| {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(read(&mut c, ptr, len)?);
            write(&mut c, out, &digest)?;
            Ok(0)
        },
    ));
    ok(l.func_wrap(
        m,
        "hmac_sha256",
        |mut c: Caller<'_, Host>, k: i32, kl: i32, msg: i32, ml: i32, out: i32| {
            use hmac::Mac;
            let key = read(&mut c, k, kl)?;
            let msg = read(&mut c, msg, ml)?;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|_| misuse())?;
            mac.update(&msg);
            write(&mut c, out, &mac.finalize().into_bytes())?;
            Ok(0)
        },
    ));
    ok(l.func_wrap(
        m,
        "aes_ecb",
        |mut c: Caller<'_, Host>, dec: i32, k: i32, kl: i32, input: i32, len: i32, out: i32| {
            let key = read(&mut c, k, kl)?;
            let mut data = read(&mut c, input, len)?;
            if let Err(s) = crypto::aes_ecb(dec != 0, &key, &mut data) {
                return Ok(negated(s));
            }
            write(&mut c, out, &data)?;
            Ok(0)
        },
    ));
    ok(l.func_wrap(
        m,
        "aes_cbc",
        |mut c: Caller<'_, Host>,
         dec: i32,
         k: i32,
         kl: i32,
         iv: i32,
         input: i32,
         len: i32,
         out: i32| {
            let key = read(&mut c, k, kl)?;
            let iv = read(&mut c, iv, 16)?;
            let mut data = read(&mut c, input, len)?;
            if let Err(s) = crypto::aes_cbc(dec != 0, &key, &iv, &mut data) {
                return Ok(negated(s));
            }
            write(&mut c, out, &data)?;
            Ok(0)
        },
    ));
    ok(l.func_wrap(
        m,
        "aes_cmac",
        |mut c: Caller<'_, Host>, k: i32, kl: i32, msg: i32, ml: i32, out: i32| {
            let key = read(&mut c, k, kl)?;
            let msg = read(&mut c, msg, ml)?;
            match crypto::aes_cmac(&key, &msg) {
                Ok(tag) => {
                    write(&mut c, out, &tag)?;
                    Ok(0)
                }
                Err(s) => Ok(negated(s)),
            }
        },
    ));
    ok(
        l.func_wrap(m, "ec_public_key", |mut c: Caller<'_, Host>, out: i32| {
            let key = crypto::signing_key(lent(c.data_mut())?.key().map_err(|_| misuse())?)?;
            let public = key.verifying_key().to_encoded_point(false);
            write(&mut c, out, public.as_bytes())?;
            Ok(0)
        }),
    );
    ok(l.func_wrap(
        m,
        "ecdsa_sign",
        |mut c: Caller<'_, Host>, msg: i32, ml: i32, out: i32| {
            use p256::ecdsa::signature::Signer;
            let msg = read(&mut c, msg, ml)?;
            let key = crypto::signing_key(lent(c.data_mut())?.key().map_err(|_| misuse())?)?;
            let sig: p256::ecdsa::Signature = key.sign(&msg);
            write(&mut c, out, &sig.to_bytes())?;
            Ok(0)
        },
    ));
    ok(l.func_wrap(
        m,
        "ecdsa_verify",
        |mut c: Caller<'_, Host>, public: i32, msg: i32, ml: i32, sig: i32| {
            use p256::ecdsa::signature::Verifier;
            let public = read(&mut c, public, 65)?;
            let msg = read(&mut c, msg, ml)?;
            let sig = read(&mut c, sig, 64)?;
            let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public) else {
                return Ok(negated(Status::IncorrectData));
            };
            Ok(match p256::ecdsa::Signature::from_slice(&sig) {
                Ok(sig) => i32::from(key.verify(&msg, &sig).is_ok()),
                Err(_) => 0,
            })
        },
    ));
    ok(l.func_wrap(
        m,
        "ecdh",
        |mut c: Caller<'_, Host>, public: i32, out: i32| {
            let public = read(&mut c, public, 65)?;
            let Ok(peer) = p256::PublicKey::from_sec1_bytes(&public) else {
                return Ok(negated(Status::IncorrectData));
            };
            let key = crypto::signing_key(lent(c.data_mut())?.key().map_err(|_| misuse())?)?;
            let shared = p256::ecdh::diffie_hellman(key.as_nonzero_scalar(), peer.as_affine());
            write(&mut c, out, shared.raw_secret_bytes())?;
            Ok(0)
        },
    ));
    l
}

/// The block-cipher and key helpers behind the host functions.
mod crypto {
    use super::{misuse, Error};
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
    use aes::{Aes128, Aes192, Aes256};
    use apdu_specs::Status;
    use cmac::Mac;

    enum AnyAes {
        A128(Aes128),
        A192(Aes192),
        A256(Aes256),
    }

    impl AnyAes {
        fn new(key: &[u8]) -> Result<AnyAes, Status> {
            let bad = |_| Status::IncorrectData;
            Ok(match key.len() {
                16 => AnyAes::A128(Aes128::new_from_slice(key).map_err(bad)?),
                24 => AnyAes::A192(Aes192::new_from_slice(key).map_err(bad)?),
                32 => AnyAes::A256(Aes256::new_from_slice(key).map_err(bad)?),
                _ => return Err(Status::IncorrectData),
            })
        }

        fn block(&self, decrypt: bool, b: &mut [u8]) {
            let b = aes::Block::from_mut_slice(b);
            match (self, decrypt) {
                (AnyAes::A128(c), false) => c.encrypt_block(b),
                (AnyAes::A128(c), true) => c.decrypt_block(b),
                (AnyAes::A192(c), false) => c.encrypt_block(b),
                (AnyAes::A192(c), true) => c.decrypt_block(b),
                (AnyAes::A256(c), false) => c.encrypt_block(b),
                (AnyAes::A256(c), true) => c.decrypt_block(b),
            }
        }
    }

    fn blocks(data: &[u8]) -> Result<(), Status> {
        if data.len().is_multiple_of(16) {
            Ok(())
        } else {
            Err(Status::WrongLength)
        }
    }

    pub fn aes_ecb(decrypt: bool, key: &[u8], data: &mut [u8]) -> Result<(), Status> {
        let c = AnyAes::new(key)?;
        blocks(data)?;
        for b in data.chunks_exact_mut(16) {
            c.block(decrypt, b);
        }
        Ok(())
    }

    pub fn aes_cbc(decrypt: bool, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), Status> {
        let c = AnyAes::new(key)?;
        blocks(data)?;
        let mut chain = [0u8; 16];
        chain.copy_from_slice(iv);
        for b in data.chunks_exact_mut(16) {
            if decrypt {
                let cipher: [u8; 16] = (*b).try_into().unwrap_or_default();
                c.block(true, b);
                b.iter_mut().zip(chain).for_each(|(x, k)| *x ^= k);
                chain = cipher;
            } else {
                b.iter_mut().zip(chain).for_each(|(x, k)| *x ^= k);
                c.block(false, b);
                chain.copy_from_slice(b);
            }
        }
        Ok(())
    }

    pub fn aes_cmac(key: &[u8], msg: &[u8]) -> Result<[u8; 16], Status> {
        fn tag<C: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Result<[u8; 16], Status> {
            let mut m = <C as KeyInit>::new_from_slice(key).map_err(|_| Status::IncorrectData)?;
            m.update(msg);
            let mut out = [0u8; 16];
            out.copy_from_slice(&m.finalize().into_bytes()[..16]);
            Ok(out)
        }
        match key.len() {
            16 => tag::<cmac::Cmac<Aes128>>(key, msg),
            24 => tag::<cmac::Cmac<Aes192>>(key, msg),
            32 => tag::<cmac::Cmac<Aes256>>(key, msg),
            _ => Err(Status::IncorrectData),
        }
    }

    /// The instance's key as a signing key (made at INSTALL; a bad one is a misuse).
    pub fn signing_key(bytes: &[u8]) -> Result<p256::ecdsa::SigningKey, Error> {
        p256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| misuse())
    }
}

#[cfg(test)]
mod tests;
