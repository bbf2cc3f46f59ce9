//! Helpers shared by the card's integration tests.
#![allow(dead_code)]

use card_emulator::{profile, Card, VirtualCard};

/// A fresh card from the built-in profile, in memory, powered on.
pub fn card() -> Card {
    let mut c = Card::in_memory(profile::build(profile::DEFAULT_PROFILE).unwrap());
    c.power_on();
    c
}

/// Send hex, get upper-case hex back.
pub fn tx(card: &mut Card, apdu: &str) -> String {
    let bytes = apdu_specs::hexfmt::parse(apdu).unwrap();
    apdu_specs::hexfmt::upper(&card.transmit(&bytes))
}

/// The SW of a response as 4 hex digits.
pub fn sw(rsp: &str) -> &str {
    &rsp[rsp.len() - 4..]
}

/// Select the demo application DF (5000) by name.
pub fn select_app(card: &mut Card) {
    assert_eq!(tx(card, "00A4040C08F056534544454D4F"), "9000");
}

pub fn select_ef(card: &mut Card, fid: &str) {
    assert_eq!(tx(card, &format!("00A4020C02{fid}")), "9000");
}

pub fn verify_pin(card: &mut Card) {
    assert_eq!(tx(card, "002000810431323334"), "9000");
}

/// A third container to append to the default profile (A enabled, B and C disabled), so
/// a delete shifts more than one position.
pub const CONTAINER_C: &str = r#"
[[container]]
iccid = "89000123456789012358"
nickname = "spare"
service_provider = "vSE Demo Operator"
profile_name = "Demo profile C"
class = "operational"
application_fid = "7F10"
application_name = "F0 56 53 45 43 4F 4E 54"

[[container.pin]]
reference = 0x81
value = "1234"
max_tries = 3
puk = "12345678"

[[container.file]]
path = "6F01"
type = "transparent"
text = "container C: public data"
read = "always"
update = "pin"

[[container.file]]
path = "6F02"
type = "transparent"
text = "container C: secret"
read = "pin"
update = "pin"

[[container.file]]
path = "6F10"
type = "transparent"
size = 64
read = "pin"
update = "never"
"#;

/// The ISD-R's AID (SGP.22).
pub const ISD_R: &str = "A0000005591010FFFFFFFF8900000100";

/// lpac's opening: TERMINAL CAPABILITIES, MANAGE CHANNEL, SELECT ISD-R without Le.
pub fn open_isd_r(c: &mut Card) {
    assert_eq!(tx(c, "80AA00000AA9088100820101830107"), "9000");
    assert_eq!(tx(c, "0070000001"), "019000");
    let r = tx(c, &format!("01A4040010{ISD_R}"));
    assert!(r.starts_with("61"), "{r}");
}

/// One ES10 function in a single last block on channel 1, following 61xx with GET RESPONSE
/// in CLA 81 as lpac does.
pub fn es10(c: &mut Card, payload: &str) -> String {
    let bytes = apdu_specs::hexfmt::parse(payload).unwrap();
    let mut r = tx(c, &format!("81E29100{:02X}{payload}", bytes.len()));
    let mut data = String::new();
    while r.starts_with("61") && r.len() == 4 {
        r = tx(c, &format!("81C00000{}", &r[2..]));
        data.push_str(&r[..r.len() - 4]);
        r = r[r.len() - 4..].to_string();
    }
    assert_eq!(r, "9000", "SW of {payload}");
    data
}

/// A default-profile card in a state file in `dir` (its path).
pub fn default_card_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("card.json");
    card_emulator::store::FileStore::create(
        &path,
        &profile::build(profile::DEFAULT_PROFILE).unwrap(),
        false,
    )
    .unwrap();
    path
}

/// The card in `path`, opened as a restart does, powered on, the ISD-R selected on
/// channel 1 as lpac does.
pub fn open_file_card(path: &std::path::Path) -> Card {
    let store = card_emulator::store::FileStore::open(path).unwrap();
    let mut c = Card::open(Box::new(store)).unwrap();
    c.power_on();
    open_isd_r(&mut c);
    c
}
