//! The tearing campaign: SIGKILL `card-emulator run --stdio` at random instants during mixed write storms, then check every durability invariant after the restart.

use crate::harness::{self, hex, unhex, Rng, StdioCard};
use apdu_specs::auth::SealedRegistration;
use apdu_specs::tlv;
use card_emulator::state::CardState;
use card_emulator::store::{FileStore, Store};
use secure_channel::{scp03, SecurityLevel, StaticKeys};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SELECT_APP: &str = "00A4040C08F056534544454D4F";
const SELECT_ISD: &str = "00A4040008A00000015100000000";
const SELECT_ISDR: &str = "00A4040010A0000005591010FFFFFFFF890000010000";
const SELECT_AUTH: &str = "00A4040007F04D415554480100";
const RIGHT_PIN: &str = "002000810431323334";
const WRONG_PIN: &str = "002000810439393939";
const UNBLOCK: &str = "002C0181083132333435363738";
/// ICCIDs of the default profile's containers (BCD, nibble-swapped as on the wire).
const ICCIDS: [&str; 2] = ["984474560000214251F8", "98001032547698103214"];
const ISDPS: [&str; 2] = [
    "A0000005591010FFFFFFFF8900001000",
    "A0000005591010FFFFFFFF8900001100",
];
/// echo.wat (card-emulator/applets/) as loaded into container A: its load file (package)
/// and instance AIDs, and the instance's storage (a 4-byte counter at 0; INS 50 writes at
/// 4 and throws, so bytes 4..8 must stay as installed, zero).
const ECHO_PACKAGE: &str = "A0000000F1EC4F00";
const ECHO_APPLET: &str = "A0000000F1EC4F0001";
const SELECT_ECHO: &str = "00A4040009A0000000F1EC4F0001";
const ECHO_STORAGE: u32 = 16;
/// echo's INS 50: write `AA AA AA AA` at storage offset 4, then throw 6A80 (rolled back).
const ECHO_THROW: &str = "8050000004AAAAAAAA";
/// Bytes of EF 5005 (transparent) carrying the version pattern; record 1 of EF 5003 is 16.
const BINARY_LEN: usize = 240;
const RECORD_LEN: usize = 16;

/// One durable effect an APDU may have had when the process died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Binary(u32),
    Record(u32),
    /// Wrong VERIFY of PIN `p` (0 = card-global, 1 + i = container i).
    WrongPin(usize),
    /// Right VERIFY of PIN `p`: the card counts the try before comparing (anti-tearing), so a
    /// cut may leave one try less, which the next right VERIFY restores.
    RightPin(usize),
    /// RESET RETRY COUNTER with the PUK.
    Unblock(usize),
    Enable(usize),
    PutKey(u32),
    Register(usize),
    /// echo's `80 20` (counter + 1 in its storage), one transaction.
    AppletCounter,
}

/// What the campaign knows for sure (acknowledged answers) plus the write in flight.
#[derive(Debug)]
struct Knowledge {
    binary: u32,
    record: u32,
    /// Try counters of the card-global PIN and of each container's PIN.
    tries: [u8; 3],
    max_tries: [u8; 3],
    enabled: Option<usize>,
    /// Generation of the SCP03 key set (0 = the default keys, KVN 30).
    keys: u32,
    counters: [u32; 2],
    /// echo's storage counter (container A).
    applet: u32,
    in_flight: Option<Effect>,
}

/// SCP03 static keys and KVN of key generation `g`.
fn key_gen(g: u32) -> (StaticKeys, u8) {
    if g == 0 {
        return (StaticKeys::gp_default(), 0x30);
    }
    let k = |i: u8| {
        let mut k = [0u8; 16];
        k[..4].copy_from_slice(&g.to_be_bytes());
        k[4] = i;
        for (j, b) in k.iter_mut().enumerate().skip(5) {
            *b = (j as u8).wrapping_mul(31) ^ i ^ (g as u8);
        }
        k
    };
    let keys = StaticKeys::new(&k(1), &k(2), &k(3)).unwrap_or_else(|_| StaticKeys::gp_default());
    (keys, 0x31 + (g % 0x40) as u8)
}

fn key_bytes(g: u32) -> Vec<u8> {
    key_gen(g).0.enc().to_vec()
}

fn pattern(v: u32, len: usize) -> Vec<u8> {
    v.to_be_bytes().iter().copied().cycle().take(len).collect()
}

/// The single version a pattern holds, or an error naming the mix.
fn single_version(data: &[u8]) -> Result<u32, String> {
    let words: Vec<u32> = data
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    match words.first() {
        Some(w) if words.iter().all(|x| x == w) => Ok(*w),
        _ => Err(format!("a mix of versions {words:?}")),
    }
}

/// The SCP02 key set (KVN 20) the campaign rotates to at setup: the card takes trust
/// anchors only once no key set is a public test key.
fn scp02_owner_keys() -> StaticKeys {
    StaticKeys::new(&[0x5A; 16], &[0x5B; 16], &[0x5C; 16])
        .unwrap_or_else(|_| StaticKeys::gp_default())
}

/// PUT KEY (GPC §11.8) replacing key set `old_kvn` by `keys` under `new_kvn`, each key
/// encrypted under the session's K-DEK: AES keys (`88`) or, with `des`, 3DES keys (`80`,
/// for the SCP02 set).
fn put_key_plain(
    host: &scp03::HostSession,
    old_kvn: u8,
    new_kvn: u8,
    keys: &StaticKeys,
    des: bool,
) -> Option<Vec<u8>> {
    let mut data = vec![new_kvn];
    for key in [keys.enc(), keys.mac(), keys.dek()] {
        let enc = host.encrypt_key(key).ok()?;
        if des {
            data.extend([0x80, enc.len() as u8]);
            data.extend(&enc);
            data.push(0x03);
            data.extend(secure_channel::kcv_des3(key).ok()?);
        } else {
            data.extend([0x88, (enc.len() + 1) as u8, key.len() as u8]);
            data.extend(&enc);
            data.push(0x03);
            data.extend(secure_channel::kcv_aes(key).ok()?);
        }
    }
    let mut plain = vec![0x80, 0xD8, old_kvn, 0x81, data.len() as u8];
    plain.extend(&data);
    plain.push(0x00);
    Some(plain)
}

/// Open an SCP03 session (full security) with `keys`; `None` when the keys do not match.
fn open_scp03(
    s: &mut StdioCard,
    keys: &StaticKeys,
) -> Result<Option<scp03::HostSession>, Option<()>> {
    let r = s
        .send(&unhex(SELECT_ISD).map_err(|_| Some(()))?)
        .ok_or(None)?;
    if !r.ends_with(&[0x90, 0x00]) {
        return Err(Some(()));
    }
    let hs = scp03::HostHandshake::new(keys, 0).map_err(|_| Some(()))?;
    let r = s.send(&hs.initialize_update()).ok_or(None)?;
    let Ok((host, ea)) = hs.authenticate(&r, SecurityLevel::FULL) else {
        return Ok(None);
    };
    let r = s.send(&ea).ok_or(None)?;
    Ok(host.confirm(&r).ok().map(|_| host))
}

/// A command in the SCP03 session `host`; its status word (an error when the card died).
fn secured(s: &mut StdioCard, host: &mut scp03::HostSession, plain: &[u8]) -> Result<u16, String> {
    let wire = host.wrap_command(plain).map_err(|e| e.to_string())?;
    let r = s.send(&wire).ok_or("died")?;
    let (_, sw) = host.unwrap_response(&r).map_err(|e| e.to_string())?;
    Ok(sw)
}

/// echo.wat loaded (INSTALL [for load], LOAD blocks) into container A and installed with
/// [`ECHO_STORAGE`] bytes of storage (INSTALL [for install and make selectable]), in an
/// SCP03 session of its own under the GP test keys.
fn install_echo(s: &mut StdioCard) -> Result<(), String> {
    use card_emulator::applet_host::GpHost;
    let text = card_emulator::applet_sources::wat_text("echo.wat")
        .map_err(|e| format!("applets/echo.wat: {e}"))?;
    let module = wat::parse_str(text).map_err(|e| format!("applets/echo.wat: {e}"))?;
    // A dead card answers nothing, which the session then refuses as an answer.
    let tx = &mut |a: &[u8]| s.send(a).unwrap_or_default();
    let mut gp = GpHost::open(tx, &StaticKeys::gp_default())?;
    let container = unhex(ISDPS[0])?;
    let sw = gp.load(tx, &container, &unhex(ECHO_PACKAGE)?, &module)?;
    if sw != 0x9000 {
        return Err(format!("loading echo.wat answered {sw:04X}"));
    }
    let (package, applet) = (unhex(ECHO_PACKAGE)?, unhex(ECHO_APPLET)?);
    let sw = gp.install(tx, &package, &applet, &[], Some(ECHO_STORAGE))?;
    if sw != 0x9000 {
        return Err(format!("installing echo.wat answered {sw:04X}"));
    }
    Ok(())
}

/// echo's storage in `st` (container A), if the instance is there.
fn echo_storage(st: &CardState) -> Option<Vec<u8>> {
    let aid = unhex(ECHO_APPLET).ok()?;
    st.containers()
        .first()?
        .applets
        .iter()
        .find(|a| a.aid == aid)
        .map(|a| a.storage.clone())
}

struct Campaign {
    emulator: PathBuf,
    state: PathBuf,
    /// More `card-emulator run` arguments (the journal bound).
    run_args: Vec<String>,
    rng: Rng,
    k: Knowledge,
    violations: Vec<String>,
}

impl Campaign {
    fn violation(&mut self, v: String) {
        eprintln!("VIOLATION: {v}");
        self.violations.push(v);
    }

    /// Send an APDU whose SW must be 9000 (setup); panics on anything else: no kill runs then.
    fn must(s: &mut StdioCard, apdu: &[u8]) -> Vec<u8> {
        let r = s.send(apdu).expect("the emulator died during setup");
        assert!(r.ends_with(&[0x90, 0x00]), "{} -> {}", hex(apdu), hex(&r));
        r
    }

    /// echo.wat loaded and installed in container A (SCP03 with the test keys), both key
    /// sets rotated away from the public test keys (SCP02 KVN 20 to its owner keys, SCP03 to
    /// key generation 1), then trust anchors for service "demo" in both containers
    /// (admin mode, SCP03) and a first version in record 1 of EF 5003.
    fn setup(&mut self) -> Result<(), String> {
        let mut s = StdioCard::start_with(&self.emulator, &self.state, &self.run_args)?;
        install_echo(&mut s)?;
        let Ok(Some(mut host)) = open_scp03(&mut s, &StaticKeys::gp_default()) else {
            return Err("the default SCP03 keys do not open a channel".into());
        };
        let (gen1, kvn1) = key_gen(1);
        for plain in [
            put_key_plain(&host, 0x20, 0x20, &scp02_owner_keys(), true),
            put_key_plain(&host, 0x30, kvn1, &gen1, false),
        ] {
            let plain = plain.ok_or("building PUT KEY")?;
            let sw = secured(&mut s, &mut host, &plain)?;
            if sw != 0x9000 {
                return Err(format!("rotating the test keys: PUT KEY answered {sw:04X}"));
            }
        }
        self.k.keys = 1;
        let Ok(Some(mut host)) = open_scp03(&mut s, &gen1) else {
            return Err("the rotated SCP03 keys do not open a channel".into());
        };
        let server = secure_channel::mutual::SigningKey::generate()
            .map_err(|e| format!("server key: {e}"))?;
        for isdp in ISDPS {
            let aid = unhex(isdp)?;
            let mut install = vec![0x80, 0xE6, 0x20, 0x00, (aid.len() + 6) as u8, 0, 0];
            install.push(aid.len() as u8);
            install.extend(&aid);
            install.extend([0, 0, 0, 0]);
            let mut anchor = tlv::build(0x80, b"demo");
            anchor.extend(tlv::build(0x81, &server.verifying_key().to_sec1()));
            let mut store = vec![0x80, 0xE2, 0x88, 0x00, (anchor.len() + 3) as u8, 0xA0, 0x01];
            store.push(anchor.len() as u8);
            store.extend(&anchor);
            for plain in [install, store] {
                let wire = host.wrap_command(&plain).map_err(|e| e.to_string())?;
                let r = s.send(&wire).ok_or("died")?;
                let (_, sw) = host.unwrap_response(&r).map_err(|e| e.to_string())?;
                if sw != 0x9000 {
                    return Err(format!("installing the trust anchor: {sw:04X}"));
                }
            }
        }
        Self::must(&mut s, &unhex(SELECT_APP)?);
        Self::must(&mut s, &unhex("00A4020C025003")?);
        Self::must(&mut s, &unhex(RIGHT_PIN)?);
        let mut upd = unhex("00DC010410")?;
        upd.extend(pattern(0, RECORD_LEN));
        Self::must(&mut s, &upd);
        s.finish();
        let st = load(&self.state)?;
        self.k.max_tries = [
            st.pins[0].max_tries,
            st.containers()[0].pins[0].max_tries,
            st.containers()[1].pins[0].max_tries,
        ];
        self.k.tries = self.k.max_tries;
        self.k.enabled = st.containers().iter().position(|c| c.enabled);
        self.k.counters = [
            st.containers()[0].auth.counter,
            st.containers()[1].auth.counter,
        ];
        match echo_storage(&st) {
            Some(b) if b.len() == ECHO_STORAGE as usize && b.iter().all(|&x| x == 0) => {}
            other => return Err(format!("echo.wat installed with storage {other:?}")),
        }
        Ok(())
    }

    /// Check every invariant after a restart and adopt what the card holds.
    fn check(&mut self) -> Result<(), String> {
        let in_flight = self.k.in_flight.take();
        let st = match load(&self.state) {
            Ok(s) => s,
            Err(e) => {
                self.violation(format!("the state file does not load: {e}"));
                return Err(e);
            }
        };
        // Containers: at most one enabled, the acknowledged one or the one in flight.
        let enabled: Vec<usize> = (0..st.containers().len())
            .filter(|i| st.containers()[*i].enabled)
            .collect();
        if enabled.len() > 1 {
            self.violation(format!("{} containers enabled", enabled.len()));
        }
        let now = enabled.first().copied();
        let ok =
            now == self.k.enabled || matches!(in_flight, Some(Effect::Enable(i)) if now == Some(i));
        if !ok {
            self.violation(format!(
                "container {now:?} enabled; acknowledged {:?}, in flight {in_flight:?}",
                self.k.enabled
            ));
        }
        self.k.enabled = now;
        // Key set: the old or the new one.
        let Some(ks) = st.gp.key_sets.iter().find(|k| k.scp == 3) else {
            self.violation("no SCP03 key set".into());
            return Err("no key set".into());
        };
        let mut gens = vec![self.k.keys];
        if let Some(Effect::PutKey(g)) = in_flight {
            gens.push(g);
        }
        match gens
            .iter()
            .find(|g| key_bytes(**g) == ks.enc && key_gen(**g).1 == ks.kvn)
        {
            Some(g) => self.k.keys = *g,
            None => self.violation(format!(
                "SCP03 key set KVN {:02X} is neither generation {gens:?}",
                ks.kvn
            )),
        }
        // Registration counters never go back, and move by one at most on a cut registration.
        for i in 0..2 {
            let c = st.containers()[i].auth.counter;
            let fly = in_flight == Some(Effect::Register(i));
            if c < self.k.counters[i] || c > self.k.counters[i] + u32::from(fly) {
                self.violation(format!(
                    "container {i} registration counter {c}, acknowledged {}, in flight {fly}",
                    self.k.counters[i]
                ));
            }
            self.k.counters[i] = c.max(self.k.counters[i]);
        }
        // echo's counter (container A's applet storage) never goes back, and moves by one at
        // most on a cut `80 20`; bytes 4..8 keep their installed zeros (INS 50 throws).
        let fly = in_flight == Some(Effect::AppletCounter);
        match echo_storage(&st) {
            Some(b) if b.len() == ECHO_STORAGE as usize => {
                let c = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                if c < self.k.applet || c > self.k.applet + u32::from(fly) {
                    self.violation(format!(
                        "echo counter {c} in the state, acknowledged {}, in flight {fly}",
                        self.k.applet
                    ));
                }
                if b[4..8] != [0; 4] {
                    self.violation(format!(
                        "echo storage bytes 4..8 {} (a rolled-back write)",
                        hex(&b[4..8])
                    ));
                }
                self.k.applet = c.max(self.k.applet);
            }
            other => self.violation(format!("echo storage {other:?} after a restart")),
        }
        // PINs never come back: one less only for a cut VERIFY, all tries only for a cut
        // right VERIFY or unblock.
        let now = [
            st.pins[0].tries_left,
            st.containers()[0].pins[0].tries_left,
            st.containers()[1].pins[0].tries_left,
        ];
        for (p, &t) in now.iter().enumerate() {
            let (was, max) = (self.k.tries[p], self.k.max_tries[p]);
            let ok = t == was
                || (in_flight == Some(Effect::WrongPin(p)) && t + 1 == was)
                || (in_flight == Some(Effect::RightPin(p)) && (t + 1 == was || t == max))
                || (in_flight == Some(Effect::Unblock(p)) && t == max);
            if !ok {
                self.violation(format!(
                    "PIN {p} tries {t} after a restart; acknowledged {was}, in flight {in_flight:?}"
                ));
            }
            self.k.tries[p] = t;
        }

        // Through the card itself: files hold one written version, PIN status, key set opens.
        let mut s = StdioCard::start_with(&self.emulator, &self.state, &self.run_args)?;
        let read = |s: &mut StdioCard, sel: &str, cmd: &str| -> Result<Vec<u8>, String> {
            for a in [SELECT_APP, sel] {
                let r = s.send(&unhex(a)?).ok_or("died")?;
                if r != [0x90, 0x00] {
                    return Err(format!("{a} -> {}", hex(&r)));
                }
            }
            let r = s.send(&unhex(cmd)?).ok_or("died")?;
            match r.split_last_chunk::<2>() {
                Some((d, [0x90, 0x00])) => Ok(d.to_vec()),
                _ => Err(format!("{cmd} -> {}", hex(&r))),
            }
        };
        let files = [
            (
                "EF 5005",
                "00A4020C025005",
                format!("00B00000{BINARY_LEN:02X}"),
            ),
            (
                "EF 5003 record 1",
                "00A4020C025003",
                "00B2010410".to_string(),
            ),
        ];
        for (what, sel, cmd) in files {
            let v = match read(&mut s, sel, &cmd).and_then(|d| single_version(&d)) {
                Ok(v) => v,
                Err(e) => {
                    self.violation(format!("{what}: {e}"));
                    continue;
                }
            };
            let (acked, fly) = match what {
                "EF 5005" => (
                    self.k.binary,
                    matches!(in_flight, Some(Effect::Binary(n)) if n == v),
                ),
                _ => (
                    self.k.record,
                    matches!(in_flight, Some(Effect::Record(n)) if n == v),
                ),
            };
            if v != acked && !fly {
                self.violation(format!(
                    "{what} holds version {v}; acknowledged {acked}, in flight {in_flight:?}"
                ));
            }
            if what == "EF 5005" {
                self.k.binary = v;
            } else {
                self.k.record = v;
            }
        }
        s.send(&unhex(SELECT_APP)?).ok_or("died")?;
        let r = s.send(&unhex("00200081")?).ok_or("died")?;
        let want = [0x63, 0xC0 | self.k.tries[0]];
        if r != want && !(self.k.tries[0] == 0 && r == [0x69, 0x83]) {
            self.violation(format!(
                "VERIFY status {} with {} tries in the state",
                hex(&r),
                self.k.tries[0]
            ));
        }
        // echo answers `80 22` with the counter the state holds (container A enabled only:
        // another container's applets do not exist meanwhile).
        if self.k.enabled == Some(0) {
            let r = s.send(&unhex(SELECT_ECHO)?).ok_or("died")?;
            let c = s.send(&unhex("8022000000")?).ok_or("died")?;
            let want = [&self.k.applet.to_be_bytes()[..], &[0x90, 0x00]].concat();
            if r != [0x90, 0x00] || c != want {
                self.violation(format!(
                    "SELECT echo {}, 80 22 {}; the state's counter {}",
                    hex(&r),
                    hex(&c),
                    self.k.applet
                ));
            }
        }
        match open_scp03(&mut s, &key_gen(self.k.keys).0) {
            Ok(Some(_)) => {}
            _ => self.violation(format!(
                "key generation {} (the state's) does not open a channel",
                self.k.keys
            )),
        }
        s.finish();
        Ok(())
    }

    /// Send one step; on an answer apply its effect. `None` when the process died.
    fn step(&mut self, s: &mut StdioCard, apdu: &[u8], effect: Option<Effect>) -> Option<Vec<u8>> {
        self.k.in_flight = effect;
        let r = s.send(apdu)?;
        if std::env::var_os("SOAK_DEBUG").is_some() {
            eprintln!("{} -> {} ({effect:?})", hex(apdu), hex(&r));
        }
        self.k.in_flight = None;
        let ok = r.ends_with(&[0x90, 0x00]);
        match effect {
            Some(Effect::Binary(v)) if ok => self.k.binary = v,
            Some(Effect::Record(v)) if ok => self.k.record = v,
            Some(Effect::WrongPin(p)) if r.first() == Some(&0x63) => self.k.tries[p] -= 1,
            Some(Effect::RightPin(p) | Effect::Unblock(p)) if ok => {
                self.k.tries[p] = self.k.max_tries[p]
            }
            Some(Effect::Enable(i)) if r.starts_with(&[0xBF, 0x31, 0x03, 0x80, 0x01, 0x00]) => {
                self.k.enabled = Some(i)
            }
            // The counter is sealed inside R (version 02): an answered GET REGISTRATION
            // took exactly the next one, durably before the answer.
            Some(Effect::Register(i))
                if ok && SealedRegistration::parse(&r[..r.len() - 2]).is_ok() =>
            {
                self.k.counters[i] += 1;
            }
            // An answered `80 20` is the counter + 1, durable before the answer.
            Some(Effect::AppletCounter) if ok => {
                let want = self.k.applet + 1;
                if r.len() != 6 || r[..4] != want.to_be_bytes() {
                    self.violation(format!("echo 80 20 answered {}, expected {want}", hex(&r)));
                }
                self.k.applet = want;
            }
            Some(Effect::AppletCounter) => {
                self.violation(format!("echo 80 20 answered {}", hex(&r)));
            }
            _ => {}
        }
        Some(r)
    }

    /// A preparation step (SELECT, right container PIN) that must answer 9000.
    fn prep(&mut self, s: &mut StdioCard, apdu: &[u8]) -> Option<bool> {
        let r = self.step(s, apdu, None)?;
        if r.ends_with(&[0x90, 0x00]) {
            Some(true)
        } else {
            self.violation(format!("{} answered {}", hex(apdu), hex(&r)));
            Some(false)
        }
    }

    /// A right VERIFY of PIN `p` (its DF already selected), unblocking it first if a cut
    /// right VERIFY at one try left blocked it.
    fn right_pin(&mut self, s: &mut StdioCard, p: usize) -> Option<()> {
        let hx = |h: &str| unhex(h).unwrap_or_default();
        if self.k.tries[p] == 0 {
            self.step(s, &hx(UNBLOCK), Some(Effect::Unblock(p)))?;
        }
        let r = self.step(s, &hx(RIGHT_PIN), Some(Effect::RightPin(p)))?;
        if r != [0x90, 0x00] {
            self.violation(format!("right VERIFY of PIN {p} answered {}", hex(&r)));
        }
        Some(())
    }

    /// Mixed writes until the process dies.
    fn storm(&mut self, s: &mut StdioCard) -> Option<()> {
        let hx = |h: &str| unhex(h).unwrap_or_default();
        loop {
            match self.rng.below(9) {
                0 | 1 => {
                    let v = self.k.binary + 1;
                    if !self.prep(s, &hx(SELECT_APP))? {
                        continue;
                    }
                    if !self.prep(s, &hx("00A4020C025005"))? {
                        continue;
                    }
                    let mut a = hx(&format!("00D60000{BINARY_LEN:02X}"));
                    a.extend(pattern(v, BINARY_LEN));
                    self.step(s, &a, Some(Effect::Binary(v)))?;
                }
                2 => {
                    let v = self.k.record + 1;
                    if !self.prep(s, &hx(SELECT_APP))? {
                        continue;
                    }
                    if !self.prep(s, &hx("00A4020C025003"))? {
                        continue;
                    }
                    self.right_pin(s, 0)?;
                    let mut a = hx("00DC010410");
                    a.extend(pattern(v, RECORD_LEN));
                    self.step(s, &a, Some(Effect::Record(v)))?;
                }
                3 => {
                    if !self.prep(s, &hx(SELECT_APP))? {
                        continue;
                    }
                    if self.k.tries[0] >= 2 {
                        self.step(s, &hx(WRONG_PIN), Some(Effect::WrongPin(0)))?;
                    } else {
                        self.right_pin(s, 0)?;
                    }
                }
                4 => {
                    let target = match self.k.enabled {
                        Some(0) => 1,
                        _ => 0,
                    };
                    if !self.prep(s, &hx(SELECT_ISDR))? {
                        continue;
                    }
                    let a = hx(&format!(
                        "80E2910014BF3111A00C5A0A{}81010000",
                        ICCIDS[target]
                    ));
                    self.step(s, &a, Some(Effect::Enable(target)))?;
                }
                5 => {
                    let g = self.k.keys + 1;
                    let (old, old_kvn) = key_gen(self.k.keys);
                    let mut host = match open_scp03(s, &old) {
                        Ok(Some(h)) => h,
                        Ok(None) => {
                            self.violation(format!(
                                "acknowledged key generation {} does not open a channel",
                                self.k.keys
                            ));
                            return Some(());
                        }
                        Err(_) => return None,
                    };
                    let (new, new_kvn) = key_gen(g);
                    let plain = put_key_plain(&host, old_kvn, new_kvn, &new, false)?;
                    let wire = host.wrap_command(&plain).ok()?;
                    let r = self.step(s, &wire, Some(Effect::PutKey(g)))?;
                    match host.unwrap_response(&r) {
                        Ok((_, 0x9000)) => self.k.keys = g,
                        other => {
                            self.violation(format!("PUT KEY answered {other:?}"));
                            return Some(());
                        }
                    }
                }
                6 => {
                    // echo lives in container A: its instance exists only while A is enabled.
                    if self.k.enabled != Some(0) || !self.prep(s, &hx(SELECT_ECHO))? {
                        continue;
                    }
                    for _ in 0..1 + self.rng.below(4) {
                        if self.rng.below(4) == 0 {
                            // Written then thrown: nothing to acknowledge, nothing may stay.
                            let r = self.step(s, &hx(ECHO_THROW), None)?;
                            if r != [0x6A, 0x80] {
                                self.violation(format!("echo 80 50 answered {}", hex(&r)));
                            }
                        } else {
                            self.step(s, &hx("8020000000"), Some(Effect::AppletCounter))?;
                        }
                    }
                }
                _ => {
                    let Some(i) = self.k.enabled else { continue };
                    if !self.prep(s, &hx(SELECT_AUTH))? {
                        continue;
                    }
                    self.right_pin(s, 1 + i)?;
                    let body = tlv::build(0x81, b"demo");
                    let mut a = vec![0x80, 0x10, 0x00, 0x00, 0x00, 0x00, body.len() as u8];
                    a.extend(&body);
                    a.extend([0x00, 0x00]);
                    self.step(s, &a, Some(Effect::Register(i)))?;
                }
            }
        }
    }
}

fn load(path: &Path) -> Result<CardState, String> {
    FileStore::open(path)
        .and_then(|s| s.load())
        .map_err(|e| e.to_string())
}

/// Where in the store's write path a kill landed, from what it left on disk: a snapshot
/// being written (its temporary file is left; removed here so the next kill is judged
/// alone), a compaction between the snapshot's rename and emptying the journal (entries of
/// an older snapshot), or an append cut short (a torn tail).
fn write_phase(state: &Path) -> Result<Option<&'static str>, String> {
    let mut tmp = state.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    if tmp.exists() {
        std::fs::remove_file(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        return Ok(Some("snapshot before its rename"));
    }
    let (_, storage) = FileStore::open(state)
        .and_then(|s| s.inspect())
        .map_err(|e| e.to_string())?;
    Ok(if storage.stale() > 0 {
        Some("compaction between rename and emptying the journal")
    } else if storage.torn.is_some() {
        Some("append cut short")
    } else {
        None
    })
}

fn generation(state: &Path) -> Result<u64, String> {
    let (_, storage) = FileStore::open(state)
        .and_then(|s| s.inspect())
        .map_err(|e| e.to_string())?;
    Ok(storage.generation.unwrap_or(0))
}

/// Figures of one run.
pub struct Report {
    pub kills: u32,
    pub in_flight: u32,
    pub by_kind: std::collections::BTreeMap<&'static str, u32>,
    /// Kills by where they left the store's files (see [`write_phase`]).
    pub by_phase: std::collections::BTreeMap<&'static str, u32>,
    /// Snapshots written during the storms (compactions).
    pub snapshots: u64,
    pub violations: Vec<String>,
    pub seconds: f64,
}

pub fn run(
    emulator: &Path,
    dir: &Path,
    kills: u32,
    seed: u64,
    max_delay_us: u64,
    run_args: &[String],
) -> Result<Report, String> {
    let state = dir.join("card.json");
    harness::init_state(emulator, &state)?;
    let mut c = Campaign {
        emulator: emulator.to_path_buf(),
        state,
        run_args: run_args.to_vec(),
        rng: Rng::new(seed),
        k: Knowledge {
            binary: 0,
            record: 0,
            tries: [0; 3],
            max_tries: [0; 3],
            enabled: None,
            keys: 0,
            counters: [0, 0],
            applet: 0,
            in_flight: None,
        },
        violations: Vec::new(),
    };
    c.setup()?;
    let first_generation = generation(&c.state)?;
    let started = Instant::now();
    let mut in_flight = 0;
    let mut by_kind = std::collections::BTreeMap::new();
    let mut by_phase = std::collections::BTreeMap::new();
    for _ in 0..kills {
        c.check()?;
        let mut s = StdioCard::start_with(&c.emulator, &c.state, &c.run_args)?;
        // The storm's clock starts once the card answers (the process is up).
        if s.send(&unhex("00A4000C023F00")?).is_none() {
            return Err("the emulator died before the storm".into());
        }
        let delay = Duration::from_micros(c.rng.below(max_delay_us));
        let victim = s.child.clone();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            if let Ok(mut ch) = victim.lock() {
                let _ = ch.kill(); // SIGKILL of the process we started
                let _ = ch.wait();
            }
        });
        c.storm(&mut s);
        let _ = killer.join();
        if let Some(phase) = write_phase(&c.state)? {
            *by_phase.entry(phase).or_insert(0) += 1;
        }
        if let Some(e) = c.k.in_flight {
            in_flight += 1;
            let kind = match e {
                Effect::Binary(_) => "update-binary",
                Effect::Record(_) => "update-record",
                Effect::WrongPin(_) => "wrong-pin",
                Effect::RightPin(_) => "right-pin",
                Effect::Unblock(_) => "unblock",
                Effect::Enable(_) => "enable-container",
                Effect::PutKey(_) => "put-key",
                Effect::Register(_) => "registration",
                Effect::AppletCounter => "applet-counter",
            };
            *by_kind.entry(kind).or_insert(0) += 1;
        }
    }
    c.check()?;
    Ok(Report {
        kills,
        in_flight,
        by_kind,
        by_phase,
        snapshots: generation(&c.state)?.saturating_sub(first_generation),
        violations: c.violations,
        seconds: started.elapsed().as_secs_f64(),
    })
}
