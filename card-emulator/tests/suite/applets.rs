//! Loaded WebAssembly applets in process: GlobalPlatform loading in a secure channel,
//! selection and use, isolation between containers, fuel and memory limits, transactions,
//! GET STATUS and DELETE, and hostile modules (apdu-specs/docs/applets.md).

use crate::common::{self, tx};
use apdu_specs::gp::{Install, Load, RegistryEntry};
use apdu_specs::hexfmt;
use card_emulator::applet_host::GpHost;
use card_emulator::applet_sources;
use card_emulator::{Card, VirtualCard};
use secure_channel::StaticKeys;

const ISD: &str = "00A4040008A00000015100000000";
const ISDP_A: &str = "A0000005591010FFFFFFFF8900001000";
const ISDP_B: &str = "A0000005591010FFFFFFFF8900001100";
const PACKAGE: &str = "A0000000F1EC4F00";
const APPLET: &str = "A0000000F1EC4F0001";

fn hex(s: &str) -> Vec<u8> {
    hexfmt::parse(s).unwrap()
}

fn wat(name: &str) -> Vec<u8> {
    wat::parse_str(applet_sources::wat_text(name).unwrap()).unwrap()
}

/// A GlobalPlatform session on the ISD (SCP03, test keys, C-MAC + C-ENC), on channel 0.
struct Gp(GpHost);

impl Gp {
    fn open(c: &mut Card) -> Gp {
        Gp(GpHost::open(&mut |a| c.transmit(a), &StaticKeys::gp_default()).unwrap())
    }

    fn send(&mut self, c: &mut Card, cmd: &apdu_specs::Command) -> (Vec<u8>, u16) {
        self.0.send(&mut |a| c.transmit(a), cmd).unwrap()
    }

    fn load(&mut self, c: &mut Card, container: &str, package: &str, module: &[u8]) -> u16 {
        let tx = &mut |a: &[u8]| c.transmit(a);
        self.0
            .load(tx, &hex(container), &hex(package), module)
            .unwrap()
    }

    fn install(
        &mut self,
        c: &mut Card,
        package: &str,
        applet: &str,
        params: &[u8],
        storage: Option<u32>,
    ) -> u16 {
        let tx = &mut |a: &[u8]| c.transmit(a);
        self.0
            .install(tx, &hex(package), &hex(applet), params, storage)
            .unwrap()
    }

    fn delete(&mut self, c: &mut Card, aid: &str, related: bool) -> u16 {
        self.0
            .delete(&mut |a| c.transmit(a), &hex(aid), related)
            .unwrap()
    }

    fn status(&mut self, c: &mut Card, p1: u8) -> Vec<RegistryEntry> {
        let cmd = apdu_specs::Command::new(0x80, 0xF2, p1, 0x02)
            .with_data(vec![0x4F, 0x00])
            .with_le(256);
        let (data, sw) = self.send(c, &cmd);
        if sw == 0x6A88 {
            return Vec::new();
        }
        assert_eq!(sw, 0x9000);
        RegistryEntry::parse_all(&data).unwrap()
    }
}

/// A card with echo.wat loaded and installed in container A (16 bytes of storage).
fn card_with_echo() -> Card {
    let mut c = common::card();
    let mut gp = Gp::open(&mut c);
    assert_eq!(gp.load(&mut c, ISDP_A, PACKAGE, &wat("echo.wat")), 0x9000);
    assert_eq!(gp.install(&mut c, PACKAGE, APPLET, &[], Some(16)), 0x9000);
    c
}

fn select_applet(c: &mut Card) -> String {
    tx(c, &format!("00A40400{:02X}{APPLET}", APPLET.len() / 2))
}

fn storage(c: &Card) -> Vec<u8> {
    c.state()
        .containers()
        .iter()
        .flat_map(|c| c.applets.iter())
        .find(|a| a.aid == hex(APPLET))
        .map(|a| a.storage.clone())
        .unwrap()
}

/// Enable container `iccid` (ES10c EnableProfile by ICCID) on channel 0.
fn enable(c: &mut Card, iccid_digits: &str) {
    let iccid = apdu_specs::es10::Iccid::from_digits(iccid_digits).unwrap();
    let iccid = hexfmt::upper(iccid.as_bytes());
    let r = tx(c, "00A4040010A0000005591010FFFFFFFF890000010000");
    assert!(r.ends_with("9000"), "{r}");
    assert_eq!(
        tx(c, &format!("80E2910014BF3111A00C5A0A{iccid}81010000")),
        "BF31038001009000"
    );
}

#[test]
fn a_loaded_applet_echoes_counts_durably_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::default_card_file(dir.path());
    let mut c = common::open_file_card(&path);
    let mut gp = Gp::open(&mut c);
    assert_eq!(gp.load(&mut c, ISDP_A, PACKAGE, &wat("echo.wat")), 0x9000);
    assert_eq!(gp.install(&mut c, PACKAGE, APPLET, &[], Some(16)), 0x9000);
    assert_eq!(select_applet(&mut c), "9000");
    assert_eq!(tx(&mut c, "8010000003ABCDEF00"), "ABCDEF9000");
    assert_eq!(tx(&mut c, "8020000000"), "000000019000");
    assert_eq!(tx(&mut c, "8020000000"), "000000029000");
    assert_eq!(tx(&mut c, "80FF000000"), "6D00");
    // inspect lists the load file and the instance, never the instance's key.
    let report = card_emulator::inspect::report(c.state());
    assert!(report.contains(&format!("load file {PACKAGE}")), "{report}");
    assert!(
        report.contains(&format!("applet {APPLET} (from {PACKAGE}): 16 bytes")),
        "{report}"
    );
    let key = &c.state().containers()[0].applets[0].key;
    assert!(!report.contains(&hexfmt::upper(key)), "{report}");
    drop(c);
    let mut c = common::open_file_card(&path);
    assert_eq!(select_applet(&mut c), "9000");
    assert_eq!(tx(&mut c, "8022000000"), "000000029000");
    // Interindustry commands stay the card's: the container's files are in reach.
    assert_eq!(tx(&mut c, "00A4020C026F01"), "9000");
    let r = tx(&mut c, "00B0000000");
    assert!(
        r.starts_with(&hexfmt::upper(b"container A: public data")),
        "{r}"
    );
}

#[test]
fn a_throw_or_a_trap_rolls_back_every_write_of_the_command() {
    let mut c = card_with_echo();
    assert_eq!(select_applet(&mut c), "9000");
    assert_eq!(tx(&mut c, "8020000000"), "000000019000");
    let before = storage(&c);
    // INS 50 writes the data at offset 4 and throws 6A80.
    assert_eq!(tx(&mut c, "8050000004AAAAAAAA"), "6A80");
    assert_eq!(storage(&c), before);
    // The instance is made again and goes on from the durable state.
    assert_eq!(tx(&mut c, "8020000000"), "000000029000");
}

#[test]
fn the_instance_key_signs_and_its_public_half_verifies() {
    use p256::ecdsa::signature::Verifier;
    let mut c = card_with_echo();
    assert_eq!(select_applet(&mut c), "9000");
    let public = c.transmit(&hex("8040000000"));
    assert_eq!(public.len(), 67);
    assert_eq!(&public[65..], [0x90, 0x00]);
    let sig = c.transmit(&hex("8042000005010203040500"));
    assert_eq!(&sig[64..], [0x90, 0x00]);
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public[..65]).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    key.verify(&[1, 2, 3, 4, 5], &sig).unwrap();
}

#[test]
fn an_applet_of_a_disabled_container_is_gone_until_it_is_enabled_again() {
    let mut c = card_with_echo();
    assert_eq!(select_applet(&mut c), "9000");
    assert_eq!(tx(&mut c, "8020000000"), "000000019000");
    // Channel 1 keeps the applet selected while channel 0 enables B.
    assert_eq!(tx(&mut c, "0070000000"), "019000");
    assert_eq!(
        tx(&mut c, &format!("01A40400{:02X}{APPLET}", APPLET.len() / 2)),
        "9000"
    );
    enable(&mut c, "89000123456789012341");
    assert_eq!(select_applet(&mut c), "6A82");
    // The channel left the container: the command reaches no applet.
    assert_ne!(&tx(&mut c, "8120000000")[..], "000000029000");
    enable(&mut c, "8944476500001224158");
    assert_eq!(select_applet(&mut c), "9000");
    assert_eq!(tx(&mut c, "8020000000"), "000000029000");
}

#[test]
fn an_applet_reads_its_own_container_files_under_their_access_conditions_only() {
    let mut c = common::card();
    let mut gp = Gp::open(&mut c);
    assert_eq!(
        gp.load(&mut c, ISDP_A, PACKAGE, &wat("hostile/file_reader.wat")),
        0x9000
    );
    assert_eq!(gp.install(&mut c, PACKAGE, APPLET, &[], None), 0x9000);
    assert_eq!(select_applet(&mut c), "9000");
    let public = tx(&mut c, "80306F0100");
    assert_eq!(
        public,
        format!("{}9000", hexfmt::upper(b"container A: public data"))
    );
    // 6F02 needs container A's PIN on this channel.
    assert_eq!(tx(&mut c, "80306F0200"), "6982");
    assert_eq!(tx(&mut c, "002000810431323334"), "9000");
    assert!(tx(&mut c, "80306F0200").starts_with(&hexfmt::upper(b"container A: secret")));
    // A card-global file (2F00 under the MF) is not its container's.
    assert_eq!(tx(&mut c, "80302F0000"), "6A82");
    // Container B has a 6F01 too: an applet of A never sees it.
    assert!(!tx(&mut c, "80306F0100").contains(&hexfmt::upper(b"container B")));
}

#[test]
fn an_applet_installed_in_a_disabled_container_cannot_be_selected_to_read_its_files() {
    let mut c = common::card();
    let mut gp = Gp::open(&mut c);
    let reader = wat("hostile/file_reader.wat");
    assert_eq!(gp.load(&mut c, ISDP_B, PACKAGE, &reader), 0x9000);
    assert_eq!(gp.install(&mut c, PACKAGE, APPLET, &[], None), 0x9000);
    // Runtime mode has no way to it while B is disabled.
    assert_eq!(select_applet(&mut c), "6A82");
    assert!(!tx(&mut c, "80306F0100").ends_with("9000"));
    enable(&mut c, "89000123456789012341");
    assert_eq!(select_applet(&mut c), "9000");
    let public = tx(&mut c, "80306F0100");
    assert_eq!(
        public,
        format!("{}9000", hexfmt::upper(b"container B: public data"))
    );
}

#[test]
fn get_status_lists_load_files_modules_and_instances_and_delete_removes_them() {
    let mut c = card_with_echo();
    let mut gp = Gp::open(&mut c);
    let files = gp.status(&mut c, 0x20);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].aid, hex(PACKAGE));
    assert_eq!(files[0].life_cycle, 0x01);
    assert_eq!(files[0].associated_sd, Some(hex(ISDP_A)));
    assert_eq!(gp.status(&mut c, 0x10)[0].modules, vec![hex(PACKAGE)]);
    let apps = gp.status(&mut c, 0x40);
    let app = apps.iter().find(|e| e.aid == hex(APPLET)).expect("listed");
    assert_eq!(app.life_cycle, 0x07);
    assert_eq!(app.load_file, Some(hex(PACKAGE)));
    assert_eq!(app.associated_sd, Some(hex(ISDP_A)));
    // A load file with an instance goes only with it.
    assert_eq!(gp.delete(&mut c, PACKAGE, false), 0x6985);
    assert_eq!(gp.delete(&mut c, APPLET, false), 0x9000);
    assert_eq!(gp.delete(&mut c, APPLET, false), 0x6A88);
    assert!(gp.status(&mut c, 0x40).iter().all(|e| e.aid != hex(APPLET)));
    assert_eq!(gp.install(&mut c, PACKAGE, APPLET, &[], Some(16)), 0x9000);
    assert_eq!(gp.delete(&mut c, PACKAGE, true), 0x9000);
    assert!(gp.status(&mut c, 0x20).is_empty());
    assert!(c.state().containers().iter().all(|c| c.applets.is_empty()));
    assert_eq!(select_applet(&mut c), "6A82");
}

#[test]
fn deleting_the_container_deletes_its_applets() {
    let mut c = card_with_echo();
    // Disable A by enabling B, then delete A (ES10c DeleteProfile by ISD-P AID).
    enable(&mut c, "89000123456789012341");
    assert_eq!(
        tx(&mut c, &format!("80E2910015BF33124F10{ISDP_A}00")),
        "BF33038001009000"
    );
    let mut gp = Gp::open(&mut c);
    assert!(gp.status(&mut c, 0x20).is_empty());
}

#[test]
fn load_refuses_blocks_out_of_order_and_a_half_loaded_file_is_never_installable() {
    let mut c = common::card();
    let mut gp = Gp::open(&mut c);
    let module = wat("echo.wat");
    let install = Install::ForLoad {
        load_file_aid: hex(PACKAGE),
        security_domain_aid: hex(ISDP_A),
        load_parameters: Vec::new(),
    };
    assert_eq!(gp.send(&mut c, &install.to_command()).1, 0x9000);
    let blocks = Load::blocks(&module, 100);
    assert_eq!(gp.send(&mut c, &blocks[0].to_command()).1, 0x9000);
    assert_eq!(gp.send(&mut c, &blocks[2].to_command()).1, 0x6A86);
    // The load ended with the refusal.
    assert_eq!(gp.send(&mut c, &blocks[1].to_command()).1, 0x6985);
    assert_eq!(gp.install(&mut c, PACKAGE, APPLET, &[], None), 0x6A88);
    assert!(gp.status(&mut c, 0x20).is_empty());
    // LOAD without INSTALL [for load].
    assert_eq!(gp.send(&mut c, &blocks[0].to_command()).1, 0x6985);
    // A load does not outlive its secure channel.
    assert_eq!(gp.send(&mut c, &install.to_command()).1, 0x9000);
    assert_eq!(gp.send(&mut c, &blocks[0].to_command()).1, 0x9000);
    let mut gp = Gp::open(&mut c);
    assert_eq!(gp.send(&mut c, &blocks[1].to_command()).1, 0x6985);
}

#[test]
fn loading_needs_a_secure_channel_and_a_known_container() {
    let mut c = common::card();
    assert!(tx(&mut c, ISD).ends_with("9000"));
    let install = Install::ForLoad {
        load_file_aid: hex(PACKAGE),
        security_domain_aid: hex(ISDP_A),
        load_parameters: Vec::new(),
    };
    let plain = install.to_command().to_bytes().unwrap();
    assert_eq!(hexfmt::upper(&c.transmit(&plain)), "6982");
    let mut gp = Gp::open(&mut c);
    assert_eq!(
        gp.load(
            &mut c,
            "A0000005591010FFFFFFFF8900009900",
            PACKAGE,
            &wat("echo.wat")
        ),
        0x6A88
    );
    // A package AID that names the ISD-P or a built-in applet is refused.
    assert_eq!(gp.load(&mut c, ISDP_A, ISDP_B, &wat("echo.wat")), 0x6A80);
}

#[test]
fn modules_that_break_the_interface_are_refused_at_load_and_nothing_is_stored() {
    let mut c = common::card();
    let mut gp = Gp::open(&mut c);
    for name in [
        "hostile/unknown_import.wat",
        "hostile/foreign_module_import.wat",
        "hostile/bad_import_type.wat",
        "hostile/no_process.wat",
    ] {
        assert_eq!(
            gp.load(&mut c, ISDP_A, PACKAGE, &wat(name)),
            0x6A80,
            "{name}"
        );
    }
    for junk in [
        &b"\0asm"[..],
        b"not wasm at all",
        &[0x00, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 0xFF],
    ] {
        assert_eq!(gp.load(&mut c, ISDP_A, PACKAGE, junk), 0x6A80);
    }
    // Larger than the profile's module_bytes (64 KiB).
    assert_eq!(gp.load(&mut c, ISDP_A, PACKAGE, &vec![0u8; 70_000]), 0x6A84);
    assert!(gp.status(&mut c, 0x20).is_empty());
    assert!(c
        .state()
        .containers()
        .iter()
        .all(|c| c.load_files.is_empty()));
}

/// Load and install hostile module `name` in container A and select it.
fn hostile(name: &str) -> Card {
    let mut c = card_with_echo();
    let mut gp = Gp::open(&mut c);
    assert_eq!(
        gp.load(&mut c, ISDP_A, "A0000000F1EC4F99", &wat(name)),
        0x9000,
        "{name}"
    );
    assert_eq!(
        gp.install(
            &mut c,
            "A0000000F1EC4F99",
            "A0000000F1EC4F9901",
            &[],
            Some(16)
        ),
        0x9000,
        "{name}"
    );
    assert_eq!(tx(&mut c, "00A4040009A0000000F1EC4F9901"), "9000");
    c
}

/// The card and the other applet still work after a hostile command.
fn still_works(c: &mut Card) {
    let r = select_applet(c);
    assert_eq!(r, "9000", "{:?}", c.state().containers()[0].applets);
    assert_eq!(tx(c, "8010000002CAFE00"), "CAFE9000");
    assert_eq!(tx(c, "00A4000C022F00"), "9000");
}

#[test]
fn fuel_memory_and_stack_limits_answer_6f00_and_leave_the_card_working() {
    for name in [
        "hostile/infinite_loop.wat",
        "hostile/memory_bomb.wat",
        "hostile/deep_recursion.wat",
        "hostile/big_response.wat",
    ] {
        let mut c = hostile(name);
        assert_eq!(tx(&mut c, "8001000000"), "6F00", "{name}");
        // Again: the instance is made afresh and fails the same way.
        assert_eq!(tx(&mut c, "8001000000"), "6F00", "{name}");
        still_works(&mut c);
    }
}

#[test]
fn storage_outside_the_area_traps_and_a_trap_undoes_the_writes_before_it() {
    let mut c = hostile("hostile/storage_oob.wat");
    for p1 in ["00", "01", "02"] {
        assert_eq!(tx(&mut c, &format!("8001{p1}0000")), "6F00", "P1 {p1}");
    }
    let mut c = hostile("hostile/storage_writer_trap.wat");
    let before: Vec<u8> = c.state().containers()[0].applets[1].storage.clone();
    assert_eq!(tx(&mut c, "8001000000"), "6F00");
    assert_eq!(c.state().containers()[0].applets[1].storage, before);
    still_works(&mut c);
}

#[test]
fn an_initial_memory_over_the_cap_is_refused_at_install() {
    let mut c = card_with_echo();
    let mut gp = Gp::open(&mut c);
    let module = wat("hostile/huge_initial_memory.wat");
    assert_eq!(gp.load(&mut c, ISDP_A, "A0000000F1EC4F98", &module), 0x9000);
    assert_eq!(
        gp.install(&mut c, "A0000000F1EC4F98", "A0000000F1EC4F9801", &[], None),
        0x6A84
    );
    assert!(gp
        .status(&mut c, 0x40)
        .iter()
        .all(|e| e.aid != hex("A0000000F1EC4F9801")));
    // Storage beyond the profile's storage_bytes.
    assert_eq!(
        gp.install(&mut c, PACKAGE, "A0000000F1EC4F0002", &[], Some(1 << 20)),
        0x6A84
    );
}

#[test]
fn random_module_bytes_never_break_the_card() {
    let mut c = common::card();
    let mut gp = Gp::open(&mut c);
    let echo = wat("echo.wat");
    let mut seed = 0x9E37_79B9u32;
    for round in 0..64 {
        let mut m = echo.clone();
        for _ in 0..(1 + round % 8) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let i = seed as usize % m.len();
            m[i] = (seed >> 8) as u8;
        }
        let sw = gp.load(&mut c, ISDP_A, PACKAGE, &m);
        assert!(matches!(sw, 0x9000 | 0x6A80 | 0x6A84), "{sw:04X}");
        if sw == 0x9000 {
            let sw = gp.install(&mut c, PACKAGE, APPLET, &[], Some(16));
            if sw == 0x9000 {
                let _ = select_applet(&mut c);
                let _ = tx(&mut c, "8010000003ABCDEF00");
                let _ = tx(&mut c, "8020000000");
            }
            gp = Gp::open(&mut c);
            assert_eq!(gp.delete(&mut c, PACKAGE, true), 0x9000);
        }
    }
    assert_eq!(tx(&mut c, "00A4000C022F00"), "9000");
}
