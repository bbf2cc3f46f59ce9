//! Loaded applets through real pcscd + vpcd against `card-emulator run`: the C HOTP applet
//! (card-emulator/applets/hotp/hotp.c, built here with Debian's clang) loaded and installed
//! with `reader-client gp`, answering RFC 4226's Appendix D values; echo.wat loaded by the
//! test's own SCP03 host over PC/SC; GET STATUS and DELETE as reader-client shows them.

use card_emulator::applet_host::GpHost;
use card_emulator::applet_sources;
use e2e_tests::{skipped, Pcscd, RunningCard};
use reader_client::exchange::transmit_following;
use reader_client::pcsc_reader::Pcsc;
use secure_channel::StaticKeys;

const SLOT: u16 = 0;
const ISDP_A: &str = "A0000005591010FFFFFFFF8900001000";
const HOTP_PACKAGE: &str = "A0000005272101";
const HOTP_APPLET: &str = "A000000527210101";
const ECHO_PACKAGE: &str = "A0000000F1EC4F00";
const ECHO_APPLET: &str = "A0000000F1EC4F0001";
/// RFC 4226 Appendix D: HOTP values for counts 0..9 of the secret "12345678901234567890".
const RFC4226: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

fn hex(s: &str) -> Vec<u8> {
    apdu_specs::hexfmt::parse(s).unwrap()
}

fn ok(card: &RunningCard, args: &[&str]) -> String {
    card.reader_client_ok(args)
}

/// One PC/SC connection: transmit with GET RESPONSE for 61xx (T=0 gives case 4 answers in
/// two steps), as reader-client's exchange does it.
struct Connection(reader_client::pcsc_reader::PcscCard);

impl Connection {
    fn open(card: &RunningCard) -> Connection {
        let pcsc = Pcsc::establish().unwrap();
        Connection(pcsc.connect(&card.reader).unwrap())
    }

    fn tx(&mut self, apdu: &[u8]) -> Vec<u8> {
        transmit_following(&mut self.0, apdu, true)
            .unwrap()
            .to_bytes()
    }

    fn tx_hex(&mut self, apdu: &str) -> String {
        apdu_specs::hexfmt::upper(&self.tx(&hex(apdu)))
    }
}

fn setup(test: &str) -> Option<(Pcscd, RunningCard)> {
    let pcscd = Pcscd::start(test).unwrap_or_else(|e| panic!("{e}"))?;
    let card = RunningCard::start(SLOT).unwrap_or_else(|e| panic!("{e}"));
    Some((pcscd, card))
}

#[test]
fn the_c_hotp_applet_loaded_with_reader_client_gives_the_rfc_4226_values_through_pcscd() {
    let test = "applets::hotp";
    if !applet_sources::c_toolchain_available() {
        skipped(
            test,
            "clang or wasm-ld is missing (apt-get install clang lld)",
        );
        return;
    }
    let Some((_pcscd, card)) = setup(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let module = applet_sources::build_c("hotp/hotp.c", dir.path()).unwrap();
    let file = dir.path().join("hotp.wasm");
    std::fs::write(&file, &module).unwrap();
    let file = file.to_str().unwrap();
    let out = ok(
        &card,
        &[
            "gp",
            "load",
            file,
            "--container",
            ISDP_A,
            "--package-aid",
            HOTP_PACKAGE,
        ],
    );
    assert!(out.contains(&module.len().to_string()), "{out}");
    // digits 6 || the RFC's secret, 128 bytes of storage.
    let params = format!("06{}", apdu_specs::hexfmt::upper(b"12345678901234567890"));
    ok(
        &card,
        &[
            "gp",
            "install",
            "--package-aid",
            HOTP_PACKAGE,
            "--applet-aid",
            HOTP_APPLET,
            "--params",
            &params,
            "--storage",
            "128",
        ],
    );
    let status = ok(&card, &["gp", "status"]);
    assert!(
        status.contains(HOTP_PACKAGE) && status.contains(HOTP_APPLET),
        "{status}"
    );

    let mut c = Connection::open(&card);
    let select = format!("00A4040008{HOTP_APPLET}00");
    assert!(c.tx_hex(&select).ends_with("9000"));
    // PIN-guarded: the container's PIN 81 first.
    assert_eq!(c.tx_hex("8001000000"), "6982");
    assert_eq!(c.tx_hex("002000810431323334"), "9000");
    for want in RFC4226 {
        let r = c.tx(&hex("8001000000"));
        assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
        assert_eq!(String::from_utf8_lossy(&r[..r.len() - 2]), want);
    }
    assert_eq!(c.tx_hex("8002000000"), "000000000000000A9000");
    drop(c);
    // A new connection, PIN not verified: the counter stays where it was.
    let mut c = Connection::open(&card);
    assert!(c.tx_hex(&select).ends_with("9000"));
    assert_eq!(c.tx_hex("8001000000"), "6982");
    assert_eq!(c.tx_hex("002000810431323334"), "9000");
    assert_eq!(c.tx_hex("8002000000"), "000000000000000A9000");
    // Resynchronise to count 3 and get its value again.
    assert_eq!(c.tx_hex("80030000080000000000000003"), "9000");
    let r = c.tx(&hex("8001000000"));
    assert_eq!(String::from_utf8_lossy(&r[..r.len() - 2]), RFC4226[3]);
    drop(c);

    ok(&card, &["gp", "delete", HOTP_PACKAGE, "--related"]);
    let status = ok(&card, &["gp", "status"]);
    assert!(!status.contains(HOTP_APPLET), "{status}");
    let mut c = Connection::open(&card);
    assert_eq!(c.tx_hex(&select), "6A82");
}

#[test]
fn an_scp03_host_in_the_test_loads_echo_over_pcsc_and_the_applet_answers() {
    let Some((_pcscd, card)) = setup("applets::echo_over_pcsc") else {
        return;
    };
    let module = wat::parse_str(applet_sources::wat_text("echo.wat").unwrap()).unwrap();
    let mut c = Connection::open(&card);
    let tx = &mut |a: &[u8]| c.tx(a);
    let mut gp = GpHost::open(tx, &StaticKeys::gp_default()).unwrap();
    let sw = gp
        .load(tx, &hex(ISDP_A), &hex(ECHO_PACKAGE), &module)
        .unwrap();
    assert_eq!(sw, 0x9000);
    let sw = gp.install(tx, &hex(ECHO_PACKAGE), &hex(ECHO_APPLET), &[], Some(16));
    assert_eq!(sw.unwrap(), 0x9000);
    assert!(c
        .tx_hex(&format!("00A4040009{ECHO_APPLET}00"))
        .ends_with("9000"));
    assert_eq!(c.tx_hex("8010000004DEADBEEF00"), "DEADBEEF9000");
    assert_eq!(c.tx_hex("8020000000"), "000000019000");
    // An out-of-sequence LOAD block ends a load: nothing installable is left behind.
    let tx = &mut |a: &[u8]| c.tx(a);
    let mut gp = GpHost::open(tx, &StaticKeys::gp_default()).unwrap();
    let install = apdu_specs::gp::Install::ForLoad {
        load_file_aid: hex("A0000000F1EC4F77"),
        security_domain_aid: hex(ISDP_A),
        load_parameters: Vec::new(),
    };
    assert_eq!(gp.send(tx, &install.to_command()).unwrap().1, 0x9000);
    let blocks = apdu_specs::gp::Load::blocks(&module, 200);
    assert_eq!(gp.send(tx, &blocks[1].to_command()).unwrap().1, 0x6A86);
    drop(c);
    let status = ok(&card, &["gp", "status"]);
    assert!(status.contains(ECHO_APPLET), "{status}");
    assert!(!status.contains("A0000000F1EC4F77"), "{status}");
}
