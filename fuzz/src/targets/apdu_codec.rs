//! Command APDUs: any bytes parse or fail with a typed error, and whatever parses
//! re-encodes to the same bytes; a command built from arbitrary fields serializes and
//! parses back to the same fields. Response APDUs, class bytes and status words too.
//! GlobalPlatform (`apdu_specs::gp`): a command the card's parser accepts rebuilds, through
//! the host's `to_command`, to a command that parses to the same value; an answer that
//! parses re-encodes to bytes that parse to the same value.

use apdu_specs::command::{MAX_NC, MAX_NE_EXTENDED, MAX_NE_SHORT};
use apdu_specs::gp::{self, GpCommand};
use apdu_specs::{Cla, Command, Response, Status};

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    // 1. Any bytes as a C-APDU.
    if let Ok(cmd) = Command::parse(data) {
        assert_eq!(cmd.to_bytes().expect("a parsed command serializes"), data);
        assert!(cmd.data().len() <= MAX_NC);
        if let Some(le) = cmd.le() {
            assert!((1..=MAX_NE_EXTENDED).contains(&le));
            assert!(cmd.is_extended() || le <= MAX_NE_SHORT);
        }
    }

    // 1b. A C-APDU as a GlobalPlatform command: one codec for card and host.
    if let Ok(cmd) = Command::parse(data) {
        if let Ok(gp) = GpCommand::parse(&cmd) {
            let rebuilt = gp.to_command();
            assert_eq!(GpCommand::parse(&rebuilt), Ok(gp));
        }
    }

    // 1c. Any bytes as a GlobalPlatform answer.
    gp_answers(data);

    // 2. Any bytes as an R-APDU.
    if let Ok(resp) = Response::parse(data) {
        assert_eq!(resp.to_bytes(), data);
    } else {
        assert!(data.len() < 2, "every 2+ byte string is an R-APDU");
    }

    // 3. Class byte and status word tables.
    if let Some(&b) = data.first() {
        if let Ok(cla) = Cla::decode(b) {
            assert_eq!(cla.raw(), b);
            assert!(cla.without_chaining() & 0x10 == 0);
        }
    }
    if let [a, b, ..] = data {
        let sw = u16::from_be_bytes([*a, *b]);
        assert_eq!(Status::from_u16(sw).to_u16(), sw);
    }

    // 4. Build -> serialize -> parse from structured fields:
    //    header (4) | flags (1) | Le (2) | data (rest, repeated to reach extended sizes).
    if data.len() >= 7 {
        let (h, flags, le_raw, body) = (&data[..4], data[4], &data[5..7], &data[7..]);
        let le =
            (flags & 1 != 0).then(|| usize::from(u16::from_be_bytes([le_raw[0], le_raw[1]])) + 1);
        let le = match (le, flags & 2 != 0) {
            (Some(n), true) => Some(n.min(MAX_NE_EXTENDED - 1) + 1), // 2..=65536
            (le, _) => le,
        };
        let mut payload = body.to_vec();
        let repeat = usize::from(flags >> 4);
        for _ in 0..repeat {
            payload.extend_from_slice(body);
        }
        let cmd = Command::new(h[0], h[1], h[2], h[3])
            .with_data(payload.clone())
            .with_le(le)
            .extended(flags & 4 != 0);
        let bytes = cmd
            .to_bytes()
            .expect("a command with Nc <= 65535 and Ne in range serializes");
        let back = Command::parse(&bytes).expect("a serialized command parses");
        assert_eq!(
            [back.cla, back.ins, back.p1, back.p2],
            [h[0], h[1], h[2], h[3]]
        );
        assert_eq!(back.data(), payload.as_slice());
        assert_eq!(back.le(), le);
        assert_eq!(back.is_extended(), cmd.is_extended());
        assert_eq!(back.case(), cmd.case());
        assert_eq!(back.to_bytes().expect("serializes again"), bytes);
        // try_with_data agrees with the limit.
        assert!(Command::new(0, 0, 0, 0).try_with_data(payload).is_ok());
    }
}

/// Card data, CPLC, key information, GET STATUS entries and the PUT KEY confirmation: what
/// parses re-encodes to bytes that parse to the same value.
fn gp_answers(data: &[u8]) {
    macro_rules! round_trip {
        ($parse:path) => {
            if let Ok(v) = $parse(data) {
                assert_eq!($parse(&v.to_bytes()).as_ref(), Ok(&v));
            }
        };
    }
    round_trip!(gp::CardRecognitionData::parse);
    round_trip!(gp::Cplc::parse);
    round_trip!(gp::KeyInformation::parse);
    round_trip!(gp::PutKeyConfirmation::parse);
    if let Ok(entries) = gp::RegistryEntry::parse_all(data) {
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_bytes()).collect();
        assert_eq!(gp::RegistryEntry::parse_all(&bytes), Ok(entries));
    }
}
