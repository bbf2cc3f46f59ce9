//! Properties of the virtual machine's isolation rule over random interleavings, across
//! logical channels 0-3, of ES10c management, GlobalPlatform personalization in SCP03,
//! SELECT / READ / UPDATE of files and records, PINs, the authentication applet, resets,
//! power loss and crashes. After every step: (a) a runtime step neither returns nor
//! changes a byte of a disabled container, (b) at most one container is enabled, (c) an
//! admin write reaches exactly the container that INSTALL [for personalization] named by
//! ISD-P AID and no other, and (d) the card's state is the committed one. Containers are
//! tracked by ISD-P AID, never by list position (ES10c DeleteProfile shifts the list).

use crate::common;
use apdu_specs::auth::{Call, CallResult, CallStatus, ProtectedMessage, SealedRegistration};
use apdu_specs::tlv;
use card_emulator::ca::IssuerCa;
use card_emulator::state::{CardState, Container, FileBody};
use card_emulator::store::{Store, StoreError};
use card_emulator::{profile, Card, VirtualCard};
use common::CONTAINER_C;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use secure_channel::mutual::{self, Connection, Grant, SigningKey};
use secure_channel::{scp03, SecurityLevel, StaticKeys};
use std::sync::{Arc, Mutex, OnceLock};

/// A store whose committed state outlives the card, so a "crash" can reopen it.
#[derive(Clone)]
struct Shared(Arc<Mutex<CardState>>);

impl Store for Shared {
    fn load(&self) -> Result<CardState, StoreError> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn commit(&mut self, s: &CardState) -> Result<(), StoreError> {
        *self.0.lock().unwrap() = s.clone();
        Ok(())
    }
}

fn hex(s: &str) -> Vec<u8> {
    apdu_specs::hexfmt::parse(s).unwrap()
}

fn upper(b: &[u8]) -> String {
    apdu_specs::hexfmt::upper(b)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, _)) = needle.split_first() else {
        return false;
    };
    let n = needle.len();
    haystack.len() >= n
        && (0..=haystack.len() - n).any(|i| haystack[i] == first && haystack[i..i + n] == *needle)
}

fn sw_of(r: &[u8]) -> u16 {
    match r {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// Unix seconds the card's clock and the certificates agree on.
const NOW: u64 = 1_800_000_000;

fn now() -> u64 {
    NOW
}

const ISD_R: &str = "A0000005591010FFFFFFFF8900000100";
const GP_ISD: &str = "A000000151000000";
/// The DF name every container's application has (INSTALL by it means the enabled one).
const APP_AID: &str = "F0565345434F4E54";
const UNKNOWN_AID: &str = "A0000005591010FFFFFFFF8900001F00";

/// What identifies a container and what of it must never reach the terminal while it is
/// not the enabled one.
struct Ident {
    aid: Vec<u8>,
    iccid: Vec<u8>,
    /// Its file text prefix ("container X"), ICCID, ISD-P AID and certificate signature.
    markers: Vec<Vec<u8>>,
    /// The SE private key: no answer ever carries it, for any container.
    se_key: Vec<u8>,
}

/// One starting card: three containers (A enabled), each authentication applet
/// personalized and trusting `server` for "demo" (installed the admin way).
struct Base {
    state: CardState,
    ids: Vec<Ident>,
}

/// The card's own GlobalPlatform key sets (no public test key: the card takes trust anchors
/// only then), SCP03 KVN 30 and SCP02 KVN 20 with the keys of [`owner_keys`].
const OWNER_KEY_SETS: &str = r#"
[[key_set]]
kvn = 0x30
scp = 3
enc = "21212121212121212121212121212121"
mac = "22222222222222222222222222222222"
dek = "23232323232323232323232323232323"

[[key_set]]
kvn = 0x20
scp = 2
enc = "21212121212121212121212121212121"
mac = "22222222222222222222222222222222"
dek = "23232323232323232323232323232323"
"#;

/// The keys of [`OWNER_KEY_SETS`].
fn owner_keys() -> StaticKeys {
    StaticKeys::new(&[0x21; 16], &[0x22; 16], &[0x23; 16]).unwrap()
}

struct Fixture {
    /// Index 0: ES10c allowed in clear; index 1: only inside a secure channel.
    bases: [Base; 2],
    server: SigningKey,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let server = SigningKey::generate().unwrap();
        let ca = IssuerCa::generate("isolation property CA").unwrap();
        let bases = [false, true].map(|locked| {
            let mut text = format!("{}{CONTAINER_C}{OWNER_KEY_SETS}", profile::DEFAULT_PROFILE);
            if locked {
                text = text.replace(
                    "es10_requires_secure_channel = false",
                    "es10_requires_secure_channel = true",
                );
            }
            let mut state = profile::build(&text).unwrap();
            ca.personalize(&mut state, NOW).unwrap();
            let aids: Vec<Vec<u8>> = state
                .containers()
                .iter()
                .map(|c| c.isdp_aid.clone())
                .collect();
            let mut card = Card::in_memory(state);
            card.set_clock(now);
            card.power_on();
            install_anchors(&mut card, &aids, &server);
            let state = card.state().clone();
            let ids = state
                .containers()
                .iter()
                .map(|c| {
                    let cert = &c.auth.certificate;
                    Ident {
                        aid: c.isdp_aid.clone(),
                        iccid: c.iccid.clone(),
                        markers: vec![
                            file_data(c, 0x6F01)[..11].to_vec(),
                            c.iccid.clone(),
                            c.isdp_aid.clone(),
                            cert[cert.len() - 32..].to_vec(),
                        ],
                        se_key: c.auth.se_key.clone(),
                    }
                })
                .collect();
            Base { state, ids }
        });
        Fixture { bases, server }
    })
}

/// SCP03 + INSTALL [for personalization] + DGI A001 ("demo", the server key) per container.
fn install_anchors(card: &mut Card, aids: &[Vec<u8>], server: &SigningKey) {
    assert!(sw_of(&card.transmit(&hex("00A4040008A00000015100000000"))) == 0x9000);
    let hs = scp03::HostHandshake::new(&owner_keys(), 0).unwrap();
    let r = card.transmit(&hs.initialize_update());
    let (mut host, ea) = hs.authenticate(&r, SecurityLevel::FULL).unwrap();
    host.confirm(&card.transmit(&ea)).unwrap();
    let mut anchor = tlv::build(0x80, b"demo");
    anchor.extend(tlv::build(0x81, &server.verifying_key().to_sec1()));
    for aid in aids {
        for plain in [
            install_command(0, aid),
            dgi_command(0, &dgi(0xA001, &anchor)),
        ] {
            let wire = host.wrap_command(&plain).unwrap();
            let (_, sw) = host.unwrap_response(&card.transmit(&wire)).unwrap();
            assert_eq!(sw, 0x9000);
        }
    }
}

fn file_data(c: &Container, fid: u16) -> Vec<u8> {
    c.files
        .iter()
        .find(|f| f.fid == fid)
        .map(|f| match &f.body {
            FileBody::Transparent { data } => data.clone(),
            _ => Vec::new(),
        })
        .unwrap_or_default()
}

fn by_aid<'a>(s: &'a CardState, aid: &[u8]) -> Option<&'a Container> {
    s.containers().iter().find(|c| c.isdp_aid == aid)
}

/// The full serialized state of one container: files, PINs, trust anchors, the
/// authentication applet's keys, counter, pending registration and connection.
fn snap(c: &Container) -> String {
    serde_json::to_string(c).expect("a container serializes")
}

/// Whether two containers serialize alike. `==` compares every field and is much cheaper;
/// a pending registration compares only by the R it sent, so those are serialized too.
fn same(a: &Container, b: &Container) -> bool {
    a == b && (a.auth.pending.is_none() && b.auth.pending.is_none() || snap(a) == snap(b))
}

fn case4(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut a = vec![cla, ins, p1, p2];
    if data.len() > 255 {
        a.push(0);
        a.extend((data.len() as u16).to_be_bytes());
        a.extend(data);
        a.extend([0, 0]);
    } else {
        a.push(data.len() as u8);
        a.extend(data);
        a.push(0);
    }
    a
}

fn install_command(ch: u8, aid: &[u8]) -> Vec<u8> {
    let mut data = vec![0x00, 0x00, aid.len() as u8];
    data.extend(aid);
    data.extend([0x00, 0x00, 0x00]);
    case4(0x80 | ch, 0xE6, 0x20, 0x00, &data)
}

fn dgi(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut v = tag.to_be_bytes().to_vec();
    v.push(value.len() as u8);
    v.extend(value);
    v
}

/// STORE DATA, DGI format (P1 bit 08), last block.
fn dgi_command(ch: u8, dgis: &[u8]) -> Vec<u8> {
    let mut a = vec![0x80 | ch, 0xE2, 0x88, 0x00, dgis.len() as u8];
    a.extend(dgis);
    a
}

/// Runtime commands; the channel is added to the class byte when sent. Repeats weigh more.
const RUNTIME: &[&str] = &[
    // SELECT by DF name: the containers' application, next occurrence, the card's own.
    "00A4040C08F0565345434F4E54",
    "00A4040C08F0565345434F4E54",
    "00A4040008F0565345434F4E5400",
    "00A4040208F0565345434F4E5400",
    "00A4040C08F056534544454D4F",
    // SELECT of the authentication applet and the card manager.
    "00A4040007F04D415554480100",
    "00A4040007F04D415554480100",
    "00A4040C10A0000005591010FFFFFFFF8900000100",
    // SELECT by FID, parent and path.
    "00A4020C026F01",
    "00A4020C026F02",
    "00A4020C026F10",
    "00A40004026F0100",
    "00A4000C027F10",
    "00A4000C023F00",
    "00A4000C022F02",
    "00A4000C025000",
    "00A4020C025005",
    "00A4030C",
    "00A4080C0450005003",
    "00A4080C047F106F01",
    "00A4090C026F02",
    // READ / UPDATE BINARY (also by SFI, also without Le: 61xx and a pending answer).
    "00B0000000",
    "00B0000000",
    "00B0000410",
    "00B0810008",
    "00B0000A",
    "00D600000455504454",
    "00D6000008DEADBEEFCAFEF00D",
    // READ / UPDATE / APPEND RECORD.
    "00B2010400",
    "00B2020400",
    "00B2011C00",
    "00DC01041000112233445566778899AABBCCDDEEFF",
    "00E2000008A1A2A3A4A5A6A7A8",
    // PINs: the right one often, a wrong one, status, reset, unblock with the PUK.
    "002000810431323334",
    "002000810431323334",
    "002000810431323334",
    "002000810439393939",
    "00200081",
    "0020FF81",
    "002C0181083132333435363738",
    // GET DATA, GET RESPONSE, the listing.
    "00CA5F2000",
    "00C0000000",
    "00C0000000",
    "00C0000000",
    "00C0000000",
    "80AA020000",
    // The authentication applet: GET REGISTRATION, VERIFY SERVER, SECURE SEND and
    // SECURE RECEIVE with foreign data, certificate and identity (also without Le).
    "8010000006810464656D6F00",
    "8012000004AABBCCDD00",
    "801400000A81046563686F8202686900",
    "80160000047302AABB00",
    "80CA7F2100",
    "80CA005A00",
    "80CA005A",
    // Management in clear: refused, changes nothing.
    "80F24002024F0000",
    "80E60000",
    "80E28800076F010450574E44",
];

/// Runtime sequences that reach deeper than one command: select, VERIFY, read or write.
const SEQUENCES: &[&[&str]] = &[
    &["00A4040C08F0565345434F4E54", "00A4020C026F01", "00B0000000"],
    &[
        "00A4040C08F0565345434F4E54",
        "002000810431323334",
        "00A4020C026F02",
        "00B0000000",
    ],
    &[
        "00A4040C08F0565345434F4E54",
        "002000810431323334",
        "00A4020C026F10",
        "00B0000000",
    ],
    &[
        "00A4040C08F0565345434F4E54",
        "002000810431323334",
        "00A4020C026F01",
        "00D600000455504454",
    ],
    &["00A4040C08F0565345434F4E54", "00A4020C026F02", "00B0000A"],
    &[
        "00A4040008F0565345434F4E5400",
        "00A4090C026F01",
        "00B0000410",
    ],
    &["00A4040C08F056534544454D4F", "00A4020C025003", "00B2010400"],
    &[
        "00A4040C08F056534544454D4F",
        "002000810431323334",
        "00A4020C025002",
        "00B0000000",
    ],
    &["00A4040007F04D415554480100", "80CA005A00"],
    &["00A4040007F04D415554480100", "80CA005A"],
    &[
        "00A4040007F04D415554480100",
        "002000810431323334",
        "00A4020C026F10",
        "00B0000A",
    ],
    &["00A4040007F04D415554480100", "80CA7F2100"],
    &[
        "00A4040007F04D415554480100",
        "002000810431323334",
        "8010000006810464656D6F00",
    ],
    &[
        "00A4040007F04D415554480100",
        "002000810431323334",
        "00A4020C026F10",
        "00B0000000",
    ],
    &[
        "00A4040007F04D415554480100",
        "801400000A81046563686F8202686900",
    ],
    &[
        "002000810439393939",
        "002000810439393939",
        "002C0181083132333435363738",
    ],
];

/// Runtime commands of the personalization-heavy property.
const FEW_RUNTIME: &[&str] = &[
    "00A4040C08F0565345434F4E54",
    "00A4020C026F01",
    "00B0000000",
    "002000810431323334",
    "00D600000455504454",
    "00A4040007F04D415554480100",
    "80CA005A00",
    "00C0000000",
];

#[derive(Debug, Clone, Copy)]
enum Target {
    /// The container with this index in the starting card (by its ISD-P AID).
    Container(usize),
    /// The application DF name, which every container's application has.
    AppAid,
    Unknown,
}

#[derive(Clone, Copy)]
enum Dgi {
    /// A transparent EF of the container from offset 0: `len` bytes.
    Ef(u16, u8),
    /// A trust anchor: for "demo" with the server's key, or for another service.
    Anchor(bool),
    /// A DGI naming no file: refused, nothing written.
    Missing,
    /// A good DGI, then one naming no file: refused, the first not written either.
    HalfBad,
    /// More bytes than the EF holds.
    TooLong,
}

impl std::fmt::Debug for Dgi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dgi::Ef(fid, n) => write!(f, "Ef({fid:04X}, {n} bytes)"),
            Dgi::Anchor(demo) => write!(f, "Anchor({})", if *demo { "demo" } else { "misc" }),
            Dgi::Missing => f.write_str("Missing"),
            Dgi::HalfBad => f.write_str("HalfBad"),
            Dgi::TooLong => f.write_str("TooLong"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Es10Op {
    Enable,
    Disable,
    Delete,
    Nickname,
}

#[derive(Debug, Clone)]
enum Step {
    /// A runtime command on a logical channel.
    Apdu(u8, &'static str),
    /// Runtime commands one after the other on a logical channel.
    Seq(u8, &'static [&'static str]),
    /// MANAGE CHANNEL open, sent on channel `.0`; `.1` = 0: the card picks.
    Open(u8, u8),
    /// MANAGE CHANNEL close, sent on channel `.0`; `.1` = 0: the channel itself.
    Close(u8, u8),
    /// Select the applet, VERIFY, GET REGISTRATION, the server's answer, VERIFY SERVER.
    Register(u8),
    /// SECURE SEND a call the server opens and answers (`provision`: with a credential).
    Call(u8, bool),
    /// Select the card manager (ISD-R or GP ISD) and open SCP03 at a level.
    OpenScp(u8, bool, u8),
    Install(u8, Target),
    /// STORE DATA of DGIs on a channel, mostly on one with a session when it has none.
    StoreDgi(u8, Dgi),
    /// An ES10c function on the ISD-R for a starting container, by ISD-P AID or ICCID.
    Es10(u8, Es10Op, usize, bool),
    PowerCycle,
    Reset,
    Crash,
}

fn channel() -> impl Strategy<Value = u8> {
    0..4u8
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => (0..3usize).prop_map(Target::Container),
        1 => Just(Target::AppAid),
        1 => Just(Target::Unknown),
    ]
}

fn dgi_kind() -> impl Strategy<Value = Dgi> {
    prop_oneof![
        3 => (prop::sample::select(vec![0x6F01u16, 0x6F02, 0x6F10]), 1..20u8)
            .prop_map(|(f, n)| Dgi::Ef(f, n)),
        2 => any::<bool>().prop_map(Dgi::Anchor),
        1 => Just(Dgi::Missing),
        1 => Just(Dgi::HalfBad),
        1 => Just(Dgi::TooLong),
    ]
}

fn es10_op(delete_weight: u32) -> impl Strategy<Value = Es10Op> {
    prop_oneof![
        4 => Just(Es10Op::Enable),
        1 => Just(Es10Op::Disable),
        delete_weight => Just(Es10Op::Delete),
        1 => Just(Es10Op::Nickname),
    ]
}

/// Every kind of step, runtime commands most often.
fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        30 => (channel(), prop::sample::select(RUNTIME)).prop_map(|(c, a)| Step::Apdu(c, a)),
        12 => (channel(), prop::sample::select(SEQUENCES)).prop_map(|(c, s)| Step::Seq(c, s)),
        4 => (channel(), 0..4u8).prop_map(|(c, n)| Step::Open(c, n)),
        2 => (channel(), 0..4u8).prop_map(|(c, n)| Step::Close(c, n)),
        2 => channel().prop_map(Step::Register),
        2 => (channel(), any::<bool>()).prop_map(|(c, p)| Step::Call(c, p)),
        3 => (channel(), any::<bool>(), 0..4u8).prop_map(|(c, r, l)| Step::OpenScp(c, r, l)),
        3 => (channel(), target()).prop_map(|(c, t)| Step::Install(c, t)),
        4 => (channel(), dgi_kind()).prop_map(|(c, d)| Step::StoreDgi(c, d)),
        8 => (channel(), es10_op(1), 0..3usize, any::<bool>())
            .prop_map(|(c, o, i, a)| Step::Es10(c, o, i, a)),
        1 => Just(Step::PowerCycle),
        1 => Just(Step::Reset),
        1 => Just(Step::Crash),
    ]
}

/// Personalization sessions, switches and deletes interleaved, few runtime commands.
fn admin_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (channel(), prop::sample::select(FEW_RUNTIME)).prop_map(|(c, a)| Step::Apdu(c, a)),
        1 => (channel(), 0..4u8).prop_map(|(c, n)| Step::Open(c, n)),
        1 => (channel(), 0..4u8).prop_map(|(c, n)| Step::Close(c, n)),
        3 => (channel(), any::<bool>(), 0..4u8).prop_map(|(c, r, l)| Step::OpenScp(c, r, l)),
        5 => (channel(), target()).prop_map(|(c, t)| Step::Install(c, t)),
        6 => (channel(), dgi_kind()).prop_map(|(c, d)| Step::StoreDgi(c, d)),
        8 => (channel(), es10_op(3), 0..3usize, any::<bool>())
            .prop_map(|(c, o, i, a)| Step::Es10(c, o, i, a)),
        1 => Just(Step::PowerCycle),
        1 => Just(Step::Crash),
    ]
}

const LEVELS: [SecurityLevel; 4] = [
    SecurityLevel::C_MAC,
    SecurityLevel::C_DEC_C_MAC,
    SecurityLevel::C_MAC_R_MAC,
    SecurityLevel::FULL,
];

/// The host end of an SCP03 session and the container its INSTALL named (by ISD-P AID).
struct Scp {
    host: scp03::HostSession,
    named: Option<Vec<u8>>,
}

/// One run: the card, its store, what the terminal knows, and the answers of the step.
struct Run {
    base: &'static Base,
    server: &'static SigningKey,
    locked: bool,
    store: Shared,
    card: Card,
    scp: [Option<Scp>; 4],
    /// Server ends of the connections registered so far.
    conns: Vec<Connection>,
    /// Every R-APDU of the current step (and the plain data of wrapped ones).
    seen: Vec<Vec<u8>>,
    tick: u8,
}

type Checked = Result<(), TestCaseError>;

fn open_card(store: &Shared) -> Card {
    let mut c = Card::open(Box::new(store.clone())).unwrap();
    c.set_clock(now);
    c.power_on();
    c
}

impl Run {
    fn new(locked: bool) -> Run {
        let fx = fixture();
        let base = &fx.bases[locked as usize];
        let store = Shared(Arc::new(Mutex::new(base.state.clone())));
        let mut card = open_card(&store);
        // Channels 1-3 open, as a terminal with several applications keeps them.
        for n in 1..4 {
            card.transmit(&[0x00, 0x70, 0x00, n]);
        }
        Run {
            base,
            server: &fx.server,
            locked,
            store,
            card,
            scp: Default::default(),
            conns: Vec::new(),
            seen: Vec::new(),
            tick: 0,
        }
    }

    /// A runtime command (template) on a channel.
    fn runtime(&mut self, ch: u8, template: &str) {
        let mut apdu = hex(template);
        apdu[0] |= ch;
        let r = self.tx(&apdu);
        // A SELECT or a clear proprietary command ends the channel's session.
        if apdu[1] == 0xA4 && sw_of(&r) == 0x9000 || apdu[0] & 0x80 != 0 {
            self.scp[ch as usize] = None;
        }
    }

    fn tx(&mut self, apdu: &[u8]) -> Vec<u8> {
        let r = self.card.transmit(apdu);
        self.seen.push(r.clone());
        r
    }

    /// Send and follow 61xx with GET RESPONSE on the same channel; (data, SW).
    fn follow(&mut self, ch: u8, apdu: &[u8]) -> (Vec<u8>, u16) {
        let mut r = self.tx(apdu);
        let mut data = Vec::new();
        loop {
            let sw = sw_of(&r);
            data.extend_from_slice(&r[..r.len().saturating_sub(2)]);
            if sw >> 8 != 0x61 {
                return (data, sw);
            }
            r = self.tx(&[ch, 0xC0, 0x00, 0x00, sw as u8]);
        }
    }

    /// A plain command through the channel's SCP03 session; `None` when there is none
    /// or it broke (then it is forgotten).
    fn secured(&mut self, ch: u8, plain: &[u8]) -> Option<(Vec<u8>, u16)> {
        let Run {
            scp, card, seen, ..
        } = self;
        let s = scp[ch as usize].as_mut()?;
        let Ok(wire) = s.host.wrap_command(plain) else {
            scp[ch as usize] = None;
            return None;
        };
        let r = card.transmit(&wire);
        seen.push(r.clone());
        match s.host.unwrap_response(&r) {
            Ok((data, sw)) => {
                seen.push(data.clone());
                if matches!(sw, 0x6882 | 0x6982 | 0x6E00 | 0x6D00) {
                    // No session on the card (any more), or the card manager is gone.
                    scp[ch as usize] = None;
                }
                Some((data, sw))
            }
            Err(_) => {
                scp[ch as usize] = None;
                None
            }
        }
    }

    fn ensure_open(&mut self, ch: u8) {
        if ch != 0 {
            self.tx(&[0x00, 0x70, 0x00, ch]);
        }
    }

    fn open_scp(&mut self, ch: u8, isd_r: bool, level: SecurityLevel) {
        self.ensure_open(ch);
        self.scp[ch as usize] = None;
        let aid = hex(if isd_r { ISD_R } else { GP_ISD });
        let select = case4(ch, 0xA4, 0x04, 0x00, &aid);
        if sw_of(&self.tx(&select)) != 0x9000 {
            return;
        }
        let Ok(hs) = scp03::HostHandshake::new(&owner_keys(), 0).and_then(|h| h.on_channel(ch))
        else {
            return;
        };
        let r = self.tx(&hs.initialize_update());
        let Ok((host, ea)) = hs.authenticate(&r, level) else {
            return;
        };
        let r = self.tx(&ea);
        if host.confirm(&r).is_ok() {
            self.scp[ch as usize] = Some(Scp { host, named: None });
        }
    }

    fn check_common(&self, step: &Step) -> Checked {
        let state = self.card.state();
        let enabled = state.containers().iter().filter(|c| c.enabled).count();
        prop_assert!(
            enabled <= 1,
            "{} containers enabled after {:?}",
            enabled,
            step
        );
        prop_assert!(
            *state == *self.store.0.lock().unwrap(),
            "the in-memory state differs from the committed one after {:?}",
            step
        );
        for id in &self.base.ids {
            for r in &self.seen {
                prop_assert!(
                    !contains(r, &id.se_key),
                    "the SE private key of {} was answered by {:?}",
                    upper(&id.aid),
                    step
                );
            }
        }
        Ok(())
    }

    /// (a): a runtime step keeps the containers, their states and every byte of the
    /// disabled ones, and answers nothing of a container that is not the enabled one.
    fn check_runtime(&self, step: &Step, before: &CardState) -> Checked {
        let after = self.card.state();
        let shape = |s: &CardState| -> Vec<(Vec<u8>, bool)> {
            s.containers()
                .iter()
                .map(|c| (c.isdp_aid.clone(), c.enabled))
                .collect()
        };
        prop_assert!(
            shape(before) == shape(after),
            "runtime step {:?} changed the containers: {:?} -> {:?}",
            step,
            shape(before),
            shape(after)
        );
        for c in before.containers().iter().filter(|c| !c.enabled) {
            let kept = by_aid(after, &c.isdp_aid).is_some_and(|d| same(d, c));
            prop_assert!(
                kept,
                "runtime step {:?} changed disabled container {}",
                step,
                upper(&c.isdp_aid)
            );
        }
        let active = before
            .containers()
            .iter()
            .find(|c| c.enabled)
            .map(|c| c.isdp_aid.clone());
        for id in self
            .base
            .ids
            .iter()
            .filter(|id| active.as_ref() != Some(&id.aid))
        {
            for r in &self.seen {
                for m in &id.markers {
                    prop_assert!(
                        !contains(r, m),
                        "runtime step {:?} answered {} of container {}, which is not enabled: {}",
                        step,
                        upper(m),
                        upper(&id.aid),
                        upper(r)
                    );
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, step: &Step) -> Checked {
        self.seen.clear();
        self.tick = self.tick.wrapping_add(1);
        let before = self.card.state().clone();
        let runtime = match *step {
            Step::Apdu(ch, a) => {
                self.runtime(ch, a);
                true
            }
            Step::Seq(ch, list) => {
                for a in list {
                    self.runtime(ch, a);
                }
                true
            }
            Step::Open(ch, n) => {
                let apdu = if n == 0 {
                    vec![ch, 0x70, 0x00, 0x00, 0x01]
                } else {
                    vec![ch, 0x70, 0x00, n]
                };
                self.tx(&apdu);
                true
            }
            Step::Close(ch, n) => {
                let r = self.tx(&[ch, 0x70, 0x80, n]);
                if sw_of(&r) == 0x9000 {
                    self.scp[if n == 0 { ch } else { n } as usize] = None;
                }
                true
            }
            Step::Register(ch) => {
                self.register(ch)?;
                true
            }
            Step::Call(ch, provision) => {
                self.call(ch, provision)?;
                true
            }
            Step::OpenScp(ch, isd_r, level) => {
                self.open_scp(ch, isd_r, LEVELS[level as usize % LEVELS.len()]);
                true
            }
            Step::Install(ch, t) => {
                self.install(ch, t, &before)?;
                true
            }
            Step::StoreDgi(ch, d) => {
                self.store_dgi(ch, d, &before)?;
                false
            }
            Step::Es10(ch, op, i, by_aid) => self.es10(ch, op, i, by_aid, &before)?,
            Step::PowerCycle => {
                self.card.power_off();
                self.card.power_on();
                self.scp = Default::default();
                true
            }
            Step::Reset => {
                self.card.reset();
                self.scp = Default::default();
                true
            }
            Step::Crash => {
                // The old card is gone without a word; a new one loads the committed state.
                self.card = open_card(&self.store);
                self.scp = Default::default();
                prop_assert!(
                    *self.card.state() == before,
                    "the reopened card differs from the one before the crash"
                );
                true
            }
        };
        if runtime {
            self.check_runtime(step, &before)?;
        }
        self.check_common(step)
    }

    fn register(&mut self, ch: u8) -> Checked {
        self.scp[ch as usize] = None;
        let r = self.tx(&case4(ch, 0xA4, 0x04, 0x00, &hex("F04D4155544801")));
        if sw_of(&r) != 0x9000 {
            return Ok(());
        }
        self.tx(&hex(&format!("{ch:02X}2000810431323334")));
        let service = tlv::build(0x81, b"demo");
        let (data, sw) = self.follow(ch, &case4(0x80 | ch, 0x10, 0, 0, &service));
        if sw != 0x9000 {
            return Ok(());
        }
        // The server's side: open the sealed R with the server key.
        let signed = SealedRegistration::parse(&data)
            .map_err(|e| e.to_string())
            .and_then(|sealed| {
                mutual::server_open_registration(self.server, &sealed).map_err(|e| e.to_string())
            });
        prop_assert!(signed.is_ok(), "GET REGISTRATION answered {}", upper(&data));
        let Ok(signed) = signed else { return Ok(()) };
        let grant = Grant::Granted {
            scope: vec!["echo".into(), "provision".into()],
            expiry: NOW + 3600,
        };
        let Ok((answer, conn)) = mutual::server_answer(self.server, &signed, grant, NOW) else {
            return Ok(());
        };
        let (_, sw) = self.follow(ch, &case4(0x80 | ch, 0x12, 0, 0, &answer.to_bytes()));
        if let (0x9000, Some(conn)) = (sw, conn) {
            if self.conns.len() >= 4 {
                self.conns.remove(0);
            }
            self.conns.push(conn);
        }
        Ok(())
    }

    fn call(&mut self, ch: u8, provision: bool) -> Checked {
        let call = Call {
            name: if provision { "provision" } else { "echo" }.into(),
            data: vec![self.tick],
        };
        self.runtime(ch, "00A4040007F04D415554480100");
        self.runtime(ch, "002000810431323334");
        let (up, sw) = self.follow(ch, &case4(0x80 | ch, 0x14, 0, 0, &call.body_bytes()));
        if sw != 0x9000 {
            return Ok(());
        }
        let Ok(msg) = ProtectedMessage::parse(&up) else {
            return Ok(());
        };
        let Some(k) = self
            .conns
            .iter()
            .position(|c| c.clone().open_call(&msg).is_ok())
        else {
            return Ok(());
        };
        let conn = &mut self.conns[k];
        let Ok(got) = conn.open_call(&msg) else {
            return Ok(());
        };
        let result = CallResult {
            status: CallStatus::Ok,
            data: got.data,
            credential: provision.then(|| format!("CRED-{:03}", self.tick).into_bytes()),
        };
        let Ok(down) = conn.seal_result(&result) else {
            return Ok(());
        };
        self.follow(ch, &case4(0x80 | ch, 0x16, 0, 0, &down.to_bytes()));
        Ok(())
    }

    fn install(&mut self, ch: u8, t: Target, before: &CardState) -> Checked {
        if self.scp[ch as usize].is_none() {
            self.open_scp(ch, false, SecurityLevel::FULL);
        }
        let aid = match t {
            Target::Container(i) => self.base.ids[i].aid.clone(),
            Target::AppAid => hex(APP_AID),
            Target::Unknown => hex(UNKNOWN_AID),
        };
        // The card resolves the AID now; from here on the session means that container:
        // by ISD-P AID, or by application AID when that names one container (shared by
        // several: the enabled one among them; none enabled: ambiguous, 6A80).
        let by_app: Vec<&Container> = before
            .containers()
            .iter()
            .filter(|c| c.files.first().and_then(|f| f.name.as_deref()) == Some(&aid))
            .collect();
        let ambiguous = by_app.len() > 1 && !by_app.iter().any(|c| c.enabled);
        let expected = match before.containers().iter().find(|c| c.isdp_aid == aid) {
            Some(c) => Some(c.isdp_aid.clone()),
            None if by_app.len() == 1 => Some(by_app[0].isdp_aid.clone()),
            None => by_app
                .iter()
                .find(|c| c.enabled)
                .map(|c| c.isdp_aid.clone()),
        };
        let Some((_, sw)) = self.secured(ch, &install_command(ch, &aid)) else {
            return Ok(());
        };
        match sw {
            0x9000 => {
                prop_assert!(
                    expected.is_some(),
                    "INSTALL for {} accepted, no such container",
                    upper(&aid)
                );
                if let Some(s) = self.scp[ch as usize].as_mut() {
                    s.named = expected;
                }
            }
            0x6A88 => prop_assert!(
                expected.is_none() && !ambiguous,
                "INSTALL for existing {} refused",
                upper(&aid)
            ),
            0x6A80 => prop_assert!(
                ambiguous,
                "INSTALL for {} refused as ambiguous",
                upper(&aid)
            ),
            _ => self.scp[ch as usize] = None,
        }
        Ok(())
    }

    /// (c): a DGI write reaches the container named by INSTALL, by identity, or nothing.
    fn store_dgi(&mut self, ch: u8, d: Dgi, before: &CardState) -> Checked {
        // Mostly into a session: the given channel's, or else the first open one.
        let ch = match (0..4u8).find(|c| self.scp[*c as usize].is_some()) {
            Some(c) if self.scp[ch as usize].is_none() && !self.tick.is_multiple_of(4) => c,
            _ => ch,
        };
        let value = vec![b'P', b'Z', self.tick, ch];
        let mut anchor = tlv::build(
            0x80,
            if let Dgi::Anchor(true) = d {
                b"demo"
            } else {
                b"misc"
            },
        );
        anchor.extend(tlv::build(0x81, &self.server.verifying_key().to_sec1()));
        let (dgis, expect): (Vec<u8>, Option<(u16, Vec<u8>)>) = match d {
            Dgi::Ef(fid, n) => {
                let v: Vec<u8> = value.iter().copied().cycle().take(n as usize).collect();
                (dgi(fid, &v), Some((fid, v)))
            }
            Dgi::Anchor(_) => (dgi(0xA001, &anchor), Some((0xA001, anchor.clone()))),
            Dgi::Missing => (dgi(0x1234, &value), None),
            Dgi::HalfBad => ([dgi(0x6F01, &value), dgi(0x1234, &value)].concat(), None),
            Dgi::TooLong => (dgi(0x6F01, &[0x50; 40]), None),
        };
        let plain = dgi_command(ch, &dgis);
        let (sw, named) = match self.scp[ch as usize].as_ref().map(|s| s.named.clone()) {
            Some(named) => match self.secured(ch, &plain) {
                Some((_, sw)) => (sw, named),
                None => (0x6982, None),
            },
            None => {
                let sw = sw_of(&self.tx(&plain));
                prop_assert!(sw != 0x9000, "STORE DATA of DGIs accepted in clear");
                (sw, None)
            }
        };
        let after = self.card.state();
        prop_assert!(
            before.containers().len() == after.containers().len(),
            "STORE DATA changed the number of containers"
        );
        let written = (sw == 0x9000).then_some(named.clone()).flatten();
        if sw == 0x9000 {
            prop_assert!(
                written.is_some(),
                "STORE DATA {:?} accepted without INSTALL [for personalization]",
                d
            );
            prop_assert!(expect.is_some(), "bad DGI {:?} accepted", d);
        }
        for c in before.containers() {
            let Some(now) = by_aid(after, &c.isdp_aid) else {
                prop_assert!(false, "STORE DATA removed container {}", upper(&c.isdp_aid));
                return Ok(());
            };
            if written.as_ref() == Some(&c.isdp_aid) {
                continue;
            }
            prop_assert!(
                same(now, c),
                "STORE DATA {:?} for {} (SW {:04X}) changed container {}: 6F01 {:?} -> {:?}, \
                 6F02 {:?} -> {:?}, anchors {:?} -> {:?}",
                d,
                named
                    .as_deref()
                    .map(upper)
                    .unwrap_or_else(|| "no container".into()),
                sw,
                upper(&c.isdp_aid),
                String::from_utf8_lossy(&file_data(c, 0x6F01)),
                String::from_utf8_lossy(&file_data(now, 0x6F01)),
                String::from_utf8_lossy(&file_data(c, 0x6F02)),
                String::from_utf8_lossy(&file_data(now, 0x6F02)),
                c.trust_anchors
                    .iter()
                    .map(|a| &a.service)
                    .collect::<Vec<_>>(),
                now.trust_anchors
                    .iter()
                    .map(|a| &a.service)
                    .collect::<Vec<_>>(),
            );
        }
        if let (Some(aid), Some((tag, v))) = (written, expect) {
            let target = by_aid(after, &aid);
            prop_assert!(
                target.is_some(),
                "STORE DATA for deleted container {} accepted",
                upper(&aid)
            );
            let Some(target) = target else { return Ok(()) };
            if tag == 0xA001 {
                let key = self.server.verifying_key().to_sec1();
                let service = if let Dgi::Anchor(true) = d {
                    "demo"
                } else {
                    "misc"
                };
                prop_assert!(target
                    .trust_anchors
                    .iter()
                    .any(|a| a.service == service && a.public_key == key));
            } else {
                prop_assert!(
                    file_data(target, tag).starts_with(&v),
                    "DGI {:04X} not written into {}",
                    tag,
                    upper(&aid)
                );
            }
        }
        Ok(())
    }

    /// One ES10c function; `Ok(true)` when the policy refused it (a runtime step then).
    fn es10(
        &mut self,
        ch: u8,
        op: Es10Op,
        i: usize,
        use_aid: bool,
        before: &CardState,
    ) -> Result<bool, TestCaseError> {
        let id = &self.base.ids[i];
        let pid = if use_aid && op != Es10Op::Nickname {
            tlv::build(0x4F, &id.aid)
        } else {
            tlv::build(0x5A, &id.iccid)
        };
        let nickname = format!("n{}", self.tick);
        let payload = match op {
            Es10Op::Enable | Es10Op::Disable => {
                let mut body = tlv::build(0xA0, &pid);
                body.extend(tlv::build(0x81, &[0x00]));
                tlv::build(if op == Es10Op::Enable { 0xBF31 } else { 0xBF32 }, &body)
            }
            Es10Op::Delete => tlv::build(0xBF33, &pid),
            Es10Op::Nickname => tlv::build(
                0xBF29,
                &[pid, tlv::build(0x90, nickname.as_bytes())].concat(),
            ),
        };
        let aid = id.aid.clone();
        let plain = case4(0x80 | ch, 0xE2, 0x91, 0x00, &payload);
        let (answer, secured) = match self.secured(ch, &plain) {
            Some((data, 0x9000)) => ((data, 0x9000), true),
            _ => {
                self.ensure_open(ch);
                self.scp[ch as usize] = None;
                let r = self.tx(&case4(ch, 0xA4, 0x04, 0x0C, &hex(ISD_R)));
                prop_assert!(
                    sw_of(&r) == 0x9000,
                    "SELECT ISD-R on {} answered {}",
                    ch,
                    upper(&r)
                );
                (self.follow(ch, &plain), false)
            }
        };
        let (data, sw) = answer;
        prop_assert!(sw == 0x9000, "{:?} answered SW {:04X}", op, sw);
        let code = data.last().copied().unwrap_or(0xFF);
        let allowed = !self.locked || secured;
        let found = by_aid(before, &aid);
        let expected = match (op, found) {
            (Es10Op::Nickname, _) if !allowed => 127,
            (_, _) if !allowed => 3,
            (_, None) => 1,
            (Es10Op::Enable | Es10Op::Delete, Some(c)) if c.enabled => 2,
            (Es10Op::Disable, Some(c)) if !c.enabled => 2,
            _ => 0,
        };
        prop_assert!(
            code == expected,
            "{:?} of {} answered {} (expected {}): {}",
            op,
            upper(&aid),
            code,
            expected,
            upper(&data)
        );
        let after = self.card.state();
        if code != 0 {
            let unchanged = before.containers().len() == after.containers().len()
                && before
                    .containers()
                    .iter()
                    .zip(after.containers())
                    .all(|(a, b)| same(a, b));
            prop_assert!(
                unchanged,
                "{:?} of {} failed ({}) but changed containers",
                op,
                upper(&aid),
                code
            );
            return Ok(!allowed);
        }
        let prev = before
            .containers()
            .iter()
            .find(|c| c.enabled)
            .map(|c| c.isdp_aid.clone());
        // Without the switch's own effects: enable flag, ended registration and connection.
        let durable = |c: &Container| {
            let mut c = c.clone();
            c.enabled = false;
            c.auth.pending = None;
            c.auth.connection = None;
            c
        };
        match op {
            Es10Op::Delete => {
                let kept: Vec<&Container> = before
                    .containers()
                    .iter()
                    .filter(|c| c.isdp_aid != aid)
                    .collect();
                prop_assert!(
                    kept.len() == after.containers().len()
                        && kept.iter().zip(after.containers()).all(|(a, b)| same(a, b)),
                    "deleting {} changed the other containers",
                    upper(&aid)
                );
            }
            Es10Op::Nickname => {
                for c in before.containers() {
                    let now = by_aid(after, &c.isdp_aid);
                    prop_assert!(now.is_some());
                    let Some(now) = now else { return Ok(false) };
                    if c.isdp_aid == aid {
                        prop_assert!(now.nickname == nickname);
                        let mut was = c.clone();
                        was.nickname = nickname.clone();
                        prop_assert!(
                            same(&was, now),
                            "SetNickname changed more than the nickname"
                        );
                    } else {
                        prop_assert!(
                            same(now, c),
                            "SetNickname of {} changed {}",
                            upper(&aid),
                            upper(&c.isdp_aid)
                        );
                    }
                }
            }
            Es10Op::Enable | Es10Op::Disable => {
                prop_assert!(before.containers().len() == after.containers().len());
                for c in before.containers() {
                    let now = by_aid(after, &c.isdp_aid);
                    prop_assert!(now.is_some());
                    let Some(now) = now else { return Ok(false) };
                    prop_assert!(
                        now.enabled == (op == Es10Op::Enable && c.isdp_aid == aid),
                        "after {:?} of {}, {} has enabled = {}",
                        op,
                        upper(&aid),
                        upper(&c.isdp_aid),
                        now.enabled
                    );
                    if c.isdp_aid == aid || prev.as_ref() == Some(&c.isdp_aid) {
                        prop_assert!(
                            same(&durable(now), &durable(c)),
                            "{:?} of {} changed the files, PINs or keys of {}",
                            op,
                            upper(&aid),
                            upper(&c.isdp_aid)
                        );
                    } else {
                        prop_assert!(
                            same(now, c),
                            "{:?} of {} changed uninvolved container {}",
                            op,
                            upper(&aid),
                            upper(&c.isdp_aid)
                        );
                    }
                }
            }
        }
        Ok(false)
    }
}

fn run(steps: &[Step], locked: bool) -> Checked {
    let mut r = Run::new(locked);
    for s in steps {
        r.step(s)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    #[test]
    fn runtime_never_reaches_a_disabled_container_and_admin_writes_reach_the_named_one(
        steps in prop::collection::vec(any_step(), 1..32),
        locked in prop::bool::weighted(0.2),
    ) {
        run(&steps, locked)?;
    }

    #[test]
    fn personalization_sessions_keep_their_container_across_switches_and_deletes(
        steps in prop::collection::vec(admin_step(), 1..20),
        locked in prop::bool::weighted(0.2),
    ) {
        run(&steps, locked)?;
    }
}

// The first version of this property, on the two-container default card, kept as it was.

const ICCID: [&str; 2] = ["984474560000214251F8", "98001032547698103214"];

#[derive(Debug, Clone)]
enum SimpleStep {
    /// A runtime APDU on channel 0.
    Runtime(&'static str),
    Enable(usize),
    Disable(usize),
    PowerCycle,
    Crash,
}

fn simple_step() -> impl Strategy<Value = SimpleStep> {
    let runtime = prop::sample::select(vec![
        "00A4040C08F0565345434F4E54",
        "00A4040008F0565345434F4E5400",
        "00A4020C026F01",
        "00A4020C026F02",
        "00A4000C027F10",
        "00A4090C026F01",
        "00B0000018",
        "00B0000000",
        "002000810431323334",
        "002000810439393939",
        "00A4000C023F00",
        "00A4080C025000",
    ]);
    prop_oneof![
        6 => runtime.prop_map(SimpleStep::Runtime),
        2 => (0..2usize).prop_map(SimpleStep::Enable),
        1 => (0..2usize).prop_map(SimpleStep::Disable),
        1 => Just(SimpleStep::PowerCycle),
        1 => Just(SimpleStep::Crash),
    ]
}

/// ES10c on channel 1 (opened on demand); returns the result code.
fn simple_es10(card: &mut Card, payload: String) -> u8 {
    let _ = card.transmit(&hex("0070000101"));
    let _ = card.transmit(&hex("01A4040C10A0000005591010FFFFFFFF8900000100"));
    let p = hex(&payload);
    let mut apdu = vec![0x81, 0xE2, 0x91, 0x00, p.len() as u8];
    apdu.extend(&p);
    apdu.push(0);
    let r = card.transmit(&apdu);
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00], "ES10c failed: {r:02X?}");
    r[r.len() - 3]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn containers_stay_isolated(steps in prop::collection::vec(simple_step(), 1..50), locked in any::<bool>()) {
        let mut state = profile::build(profile::DEFAULT_PROFILE).unwrap();
        state.policy.es10_requires_secure_channel = locked;
        let store = Shared(Arc::new(Mutex::new(state)));
        let mut card = open_card(&store);
        for s in steps {
            let before = card.state().enabled_container();
            match s {
                SimpleStep::Runtime(a) => {
                    let r = card.transmit(&hex(a));
                    for (i, marker) in [&b"container A"[..], &b"container B"[..]].iter().enumerate() {
                        if before != Some(i) {
                            prop_assert!(
                                !r.windows(marker.len()).any(|w| w == *marker),
                                "disabled container {} leaked through {}: {:02X?}", i, a, r
                            );
                        }
                    }
                }
                SimpleStep::Enable(i) => {
                    let code = simple_es10(&mut card, format!("BF3111A00C5A0A{}810100", ICCID[i]));
                    let expect = if locked { 3 } else if before == Some(i) { 2 } else { 0 };
                    prop_assert_eq!(code, expect);
                    let after = card.state().enabled_container();
                    prop_assert_eq!(after, if locked { before } else { Some(i) });
                }
                SimpleStep::Disable(i) => {
                    let code = simple_es10(&mut card, format!("BF3211A00C5A0A{}810100", ICCID[i]));
                    let expect = if locked { 3 } else if before == Some(i) { 0 } else { 2 };
                    prop_assert_eq!(code, expect);
                    if !locked && before == Some(i) {
                        prop_assert_eq!(card.state().enabled_container(), None);
                    }
                }
                SimpleStep::PowerCycle => {
                    card.power_off();
                    card.power_on();
                }
                SimpleStep::Crash => {
                    drop(card);
                    card = open_card(&store);
                    prop_assert_eq!(card.state().enabled_container(), before);
                }
            }
            let enabled = card.state().containers().iter().filter(|c| c.enabled).count();
            prop_assert!(enabled <= 1, "{} containers enabled", enabled);
            prop_assert!(card.state() == &*store.0.lock().unwrap());
        }
    }
}

#[test]
fn a_pending_answer_does_not_survive_its_container_being_disabled() {
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let a = state.containers()[0].clone();
    let store = Shared(Arc::new(Mutex::new(state)));
    let mut card = open_card(&store);
    let mut send = |apdu: &str| card.transmit(&hex(apdu));
    // Channel 1: container A's identity, left pending (no Le).
    assert_eq!(send("0070000101"), [0x90, 0x00]);
    assert_eq!(sw_of(&send("01A4040007F04D415554480100")), 0x9000);
    assert_eq!(send("81CA005A")[0], 0x61);
    // Channel 2: container A's EF 6F02 after VERIFY, left pending.
    assert_eq!(send("0070000202"), [0x90, 0x00]);
    assert_eq!(send("02A4040C08F0565345434F4E54"), [0x90, 0x00]);
    assert_eq!(send("022000810431323334"), [0x90, 0x00]);
    assert_eq!(send("02A4020C026F02"), [0x90, 0x00]);
    assert_eq!(send("02B0000A")[0], 0x61);
    // Channel 3: the LPA enables container B, which disables A.
    assert_eq!(send("0070000303"), [0x90, 0x00]);
    assert_eq!(send(&format!("03A4040C10{ISD_R}")), [0x90, 0x00]);
    let r = send("83E2910014BF3111A00C5A0A9800103254769810321481010000");
    assert_eq!(upper(&r), "BF31038001009000");
    for ch in ["01", "02"] {
        let r = send(&format!("{ch}C0000000"));
        for m in [&b"container A"[..], &a.iccid, &a.isdp_aid] {
            assert!(
                !contains(&r, m),
                "GET RESPONSE on channel {ch} answered container A after its switch: {}",
                upper(&r)
            );
        }
    }
}
