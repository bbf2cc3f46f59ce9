//! What the fuzz targets and the seed generator share: the record format of structured
//! inputs, the fixed card and the fixed secure-channel and seed-1 handshakes.
//!
//! A structured input is a run of records `kind (1) || length (2, big-endian) || bytes`;
//! a length beyond the end of the input takes what is left. The generator writes seeds in
//! this format, so a seed is a real protocol run that the fuzzer then mutates.
#![forbid(unsafe_code)]

pub mod targets;

use std::sync::OnceLock;

use apdu_specs::auth::{SealedAnswer, SealedRegistration};
use card_emulator::state::CardState;
use card_emulator::{profile, Card};
use secure_channel::mutual::{Connection, PendingRegistration, SigningKey, VerifyingKey};
use secure_channel::scp::{
    scp02::Scp02, scp03::Scp03, AnyHostSession, AnySession, CardSession, HostHandshake,
    HostSession, Protocol,
};
use secure_channel::{CardChallenge, CardConfig, InitializeUpdate, SecurityLevel, StaticKeys};

/// Iterator over the records of a structured input.
pub struct Records<'a>(&'a [u8]);

/// Read `input` as records.
pub fn records(input: &[u8]) -> Records<'_> {
    Records(input)
}

impl<'a> Iterator for Records<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&kind, rest) = self.0.split_first()?;
        let (len, rest) = match rest {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => (0, &[][..]),
        };
        let (data, rest) = rest.split_at(len.min(rest.len()));
        self.0 = rest;
        Some((kind, data))
    }
}

/// Append one record (data longer than 65 535 bytes is cut).
pub fn push_record(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let data = &data[..data.len().min(usize::from(u16::MAX))];
    out.push(kind);
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

// ---------------------------------------------------------------------------------------
// The card

/// The GlobalPlatform test key (40..4F) the fuzzed card accepts for SCP03 KVN 30 and SCP02
/// KVN 20, so that seeds can open secure channels.
pub const KEY_SETS: &str = r#"
[[key_set]]
kvn = 0x30
scp = 3
key = "404142434445464748494A4B4C4D4E4F"

[[key_set]]
kvn = 0x20
scp = 2
key = "404142434445464748494A4B4C4D4E4F"
"#;

/// A fresh in-memory card: the default profile plus [`KEY_SETS`], clock fixed. The profile
/// is built once per process; each card starts from a copy.
pub fn fresh_card() -> Card {
    card_with(fixed_state().clone())
}

/// The fixed card's state: the default profile plus the GP test key sets.
pub fn fixed_state() -> &'static CardState {
    static STATE: OnceLock<CardState> = OnceLock::new();
    STATE.get_or_init(|| {
        let text = format!("{}\n{KEY_SETS}", profile::DEFAULT_PROFILE);
        profile::build(&text).expect("the default profile with test key sets builds")
    })
}

/// A card over `state` in memory, on the fixed clock.
pub fn card_with(state: CardState) -> Card {
    let mut card = Card::in_memory(state);
    card.set_clock(|| 1_700_000_000);
    card
}

// ---------------------------------------------------------------------------------------
// Secure channels: a fixed handshake between the real host and card sides

/// The fixed host challenge of every fuzzed handshake (S8; S16 repeats it).
pub const HOST_CHALLENGE: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
/// The security domain AID the sessions are bound to (the ISD).
pub const SD_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

/// The six SCP03 levels; a target picks one with its first input byte.
pub const SCP03_LEVELS: [SecurityLevel; 6] = SecurityLevel::ALL;
/// The SCP02 levels the sessions offer (00, 01, 03).
pub const SCP02_LEVELS: [SecurityLevel; 3] = [
    SecurityLevel::NONE,
    SecurityLevel::C_MAC,
    SecurityLevel::C_DEC_C_MAC,
];

/// Status words the fuzzed card side answers with: protected ones (9000, 62xx, 63xx) and
/// errors, which go out without data or R-MAC.
pub const RESPONSE_SWS: [u16; 6] = [0x9000, 0x6282, 0x63C2, 0x6A82, 0x6982, 0x6700];

/// The bytes of a C-APDU that its C-MAC covers: everything but the Le field.
pub fn mac_covered_len(wire: &[u8]) -> usize {
    let Ok(cmd) = apdu_specs::Command::parse(wire) else {
        return wire.len();
    };
    let nc = cmd.data().len();
    let lc_len = match (nc, cmd.is_extended()) {
        (0, _) => 0,
        (_, false) => 1,
        (_, true) => 3,
    };
    4 + lc_len + nc
}

/// Which fuzzed session an `scp_unwrap` input opens: its first byte. Bits 0-2 pick the
/// level (modulo the protocol's levels), bit 3 the variant (SCP03 S16, SCP02 i = 15), bit 4
/// the protocol (SCP02 when set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScpConfig {
    pub scp02: bool,
    pub level: SecurityLevel,
    /// S16 for SCP03, i = 15 for SCP02.
    pub variant: bool,
}

impl ScpConfig {
    pub fn from_byte(b: u8) -> ScpConfig {
        let scp02 = b & 0x10 != 0;
        let levels: &[SecurityLevel] = if scp02 { &SCP02_LEVELS } else { &SCP03_LEVELS };
        ScpConfig {
            scp02,
            level: levels[usize::from(b & 7) % levels.len()],
            variant: b & 8 != 0,
        }
    }

    /// The byte `from_byte` reads back as this configuration.
    pub fn to_byte(self) -> u8 {
        let levels: &[SecurityLevel] = if self.scp02 {
            &SCP02_LEVELS
        } else {
            &SCP03_LEVELS
        };
        let index = levels.iter().position(|l| *l == self.level).unwrap_or(0) as u8;
        index | if self.variant { 8 } else { 0 } | if self.scp02 { 0x10 } else { 0 }
    }

    /// Every configuration: both protocols, each level, both variants.
    pub fn all() -> Vec<ScpConfig> {
        let mut out = Vec::new();
        for (scp02, levels) in [(false, &SCP03_LEVELS[..]), (true, &SCP02_LEVELS[..])] {
            for level in levels {
                for variant in [false, true] {
                    out.push(ScpConfig {
                        scp02,
                        level: *level,
                        variant,
                    });
                }
            }
        }
        out
    }
}

/// Both ends of an open session after the fixed handshake of `config` (default keys, fixed
/// host challenge): the one card-end and host-end types of either protocol.
pub fn scp_pair(config: ScpConfig) -> Option<(AnySession, AnyHostSession)> {
    let keys = StaticKeys::gp_default();
    if config.scp02 {
        let mut host = HostHandshake::<Scp02>::with_challenge(&keys, 0x20, &HOST_CHALLENGE).ok()?;
        let mut card = CardConfig::scp02(0x20, &SD_AID);
        // i = 15 takes the card challenge from the OS generator: fix it to stay reproducible.
        let fixed = [0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5];
        let mut challenge = CardChallenge::FromConfig;
        if config.variant {
            host = host.with_i_parameter(0x15).ok()?;
            card.i = 0x15;
            challenge = CardChallenge::Fixed(&fixed);
        }
        let (card, host) = open_pair(host, &card, challenge, config.level)?;
        Some((card.into(), host.into()))
    } else {
        let host_challenge = if config.variant {
            [HOST_CHALLENGE, HOST_CHALLENGE].concat()
        } else {
            HOST_CHALLENGE.to_vec()
        };
        let host = HostHandshake::<Scp03>::with_challenge(&keys, 0x30, &host_challenge).ok()?;
        let card = CardConfig::scp03(0x30, &SD_AID);
        let (card, host) = open_pair(host, &card, CardChallenge::FromConfig, config.level)?;
        Some((card.into(), host.into()))
    }
}

/// The handshake, written once for both protocols.
fn open_pair<P: Protocol>(
    host: HostHandshake<P>,
    card_config: &CardConfig,
    challenge: CardChallenge<'_>,
    level: SecurityLevel,
) -> Option<(CardSession<P>, HostSession<P>)>
where
    P::Counter: From<u8>,
{
    let keys = StaticKeys::gp_default();
    let iu = InitializeUpdate::parse(&host.initialize_update()).ok()?;
    let (mut card, data) = CardSession::<P>::initialize_update(
        &keys,
        card_config,
        P::Counter::from(1),
        &iu,
        challenge,
    )
    .ok()?;
    let (host, ext) = host
        .authenticate(&[data.as_slice(), &[0x90, 0x00]].concat(), level)
        .ok()?;
    card.external_authenticate(&ext).ok()?;
    host.confirm(&[0x90, 0x00]).ok()?;
    Some((card, host))
}

// ---------------------------------------------------------------------------------------
// The seed-1 connection

/// One real seed-1 handshake (protocol version 02, test keys only) that `gen-seeds
/// --rehandshake` ran once and stored (`fixtures/mutual.json`): what each side kept and
/// what crossed the portal, so that seeds of sealed R, sealed R' and protected messages
/// authenticate.
pub struct Handshake {
    /// The time (Unix seconds) both sides ran it at.
    pub now: u64,
    /// The server's static key (a test key), to which the sealed R is sealed.
    pub server_key: SigningKey,
    pub server_public: VerifyingKey,
    /// The SE's pending registration (R || sigR and its ephemeral key) before VERIFY SERVER.
    pub pending: PendingRegistration,
    /// What GET REGISTRATION answered and the portal relayed (`70`).
    pub sealed_r: SealedRegistration,
    /// What the server answered and VERIFY SERVER took (`78`), granting the connection.
    pub sealed_r_prime: SealedAnswer,
    /// The SE's end of the connection, as VERIFY SERVER opened it.
    pub se: Connection,
    /// The server's end of the connection, unconfirmed (no up message yet).
    pub server: Connection,
}

/// The fixed handshake of `fixtures/mutual.json`, loaded once per process.
pub fn handshake() -> &'static Handshake {
    static HANDSHAKE: OnceLock<Handshake> = OnceLock::new();
    HANDSHAKE.get_or_init(|| {
        const WHAT: &str = "fixtures/mutual.json (regenerate with gen-seeds --rehandshake)";
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../fixtures/mutual.json")).expect(WHAT);
        assert_eq!(v["version"], 2, "{WHAT}: a protocol version 02 handshake");
        let hex = |k: &str| hex::decode(v[k].as_str().unwrap_or_default()).expect(WHAT);
        let field = |k: &str| v[k].clone();
        let server_key = SigningKey::from_bytes(&hex("server_key")).expect(WHAT);
        Handshake {
            now: v["now"].as_u64().expect(WHAT),
            server_public: server_key.verifying_key(),
            server_key,
            pending: serde_json::from_value(field("pending")).expect(WHAT),
            sealed_r: SealedRegistration::parse(&hex("sealed_r")).expect(WHAT),
            sealed_r_prime: SealedAnswer::parse(&hex("sealed_r_prime")).expect(WHAT),
            se: serde_json::from_value(field("se")).expect(WHAT),
            server: serde_json::from_value(field("server")).expect(WHAT),
        }
    })
}

/// Both ends of the fixed seed-1 connection: `(SE, server)`, from [`handshake`].
pub fn mutual_pair() -> (Connection, Connection) {
    let h = handshake();
    (h.se.clone(), h.server.clone())
}

/// What the SE seals as an up message when a target only needs the server to have taken
/// one (the server answers exactly one down message per up message it accepted).
pub const FILLER_CALL: &[u8] = b"filler";

// ---------------------------------------------------------------------------------------
// Conformance scripts

/// The APDUs and resets of one `.apdu` conformance script, in order: `None` is a reset.
pub fn script_steps(text: &str) -> Vec<Option<Vec<u8>>> {
    let mut steps = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        if line == "exit" {
            break;
        }
        if line == "reset" {
            steps.push(None);
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let digits: String = pending.chars().filter(|c| !c.is_whitespace()).collect();
        pending.clear();
        if let Ok(bytes) = hex::decode(digits) {
            steps.push(Some(bytes));
        }
    }
    steps
}
