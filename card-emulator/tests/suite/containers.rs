//! Enhanced containers at runtime: SELECT reaches the enabled container's application only;
//! a disabled container's files and PIN are unreachable by any path.

use crate::common;
use card_emulator::{profile, Card, VirtualCard};
use common::tx;

const SELECT_CONTAINER_APP: &str = "00A4040C08F0565345434F4E54";

fn card_with(enabled: Option<usize>) -> Card {
    let mut s = profile::build(profile::DEFAULT_PROFILE).unwrap();
    for (i, c) in s.containers_mut().iter_mut().enumerate() {
        c.enabled = Some(i) == enabled;
    }
    let mut c = Card::in_memory(s);
    c.power_on();
    c
}

fn read_6f01(c: &mut Card) -> String {
    assert_eq!(tx(c, SELECT_CONTAINER_APP), "9000");
    assert_eq!(tx(c, "00A4020C026F01"), "9000");
    let r = tx(c, "00B0000018");
    String::from_utf8(apdu_specs::hexfmt::parse(&r[..r.len() - 4]).unwrap()).unwrap()
}

#[test]
fn select_by_aid_resolves_to_the_enabled_container() {
    assert_eq!(
        read_6f01(&mut card_with(Some(0))),
        "container A: public data"
    );
    assert_eq!(
        read_6f01(&mut card_with(Some(1))),
        "container B: public data"
    );
}

#[test]
fn with_no_container_enabled_the_application_is_not_found() {
    let mut c = card_with(None);
    assert_eq!(tx(&mut c, SELECT_CONTAINER_APP), "6A82");
    // The card-global application still answers.
    assert_eq!(tx(&mut c, "00A4040C08F056534544454D4F"), "9000");
}

#[test]
fn a_disabled_container_is_unreachable_by_name_fid_path_or_next_occurrence() {
    let mut c = card_with(Some(0));
    // By name: only one occurrence exists at runtime.
    assert_eq!(tx(&mut c, SELECT_CONTAINER_APP), "9000");
    assert_eq!(tx(&mut c, "00A4040E08F0565345434F4E54"), "6A82");
    // By FID and path from the MF: containers are not below the MF's FIDs.
    assert_eq!(tx(&mut c, "00A4000C027F10"), "9000"); // the current DF itself
    assert_eq!(tx(&mut c, "00A4080C047F106F01"), "6A82");
    // From the container root, the parent is the MF.
    assert_eq!(tx(&mut c, "00A4040C08F0565345434F4E54"), "9000");
    assert_eq!(tx(&mut c, "00A4030C"), "9000");
    assert_eq!(tx(&mut c, "00A4000C022F02"), "9000");
}

#[test]
fn container_pin_guards_container_files_and_is_separate_from_the_card_pin() {
    let mut c = card_with(Some(1));
    assert_eq!(tx(&mut c, SELECT_CONTAINER_APP), "9000");
    assert_eq!(tx(&mut c, "00A4020C026F02"), "9000");
    assert_eq!(tx(&mut c, "00B0000006"), "6982");
    // The card PIN (verified in the MF) does not open the container's file.
    assert_eq!(tx(&mut c, "00A4000C023F00"), "9000");
    assert_eq!(tx(&mut c, "002000810431323334"), "9000");
    assert_eq!(tx(&mut c, SELECT_CONTAINER_APP), "9000");
    assert_eq!(tx(&mut c, "00A4020C026F02"), "9000");
    assert_eq!(tx(&mut c, "00B0000006"), "6982");
    assert_eq!(tx(&mut c, "00200081"), "63C3"); // the container's own counter
    assert_eq!(tx(&mut c, "002000810431323334"), "9000");
    let r = tx(&mut c, "00B0000013");
    assert_eq!(
        String::from_utf8(apdu_specs::hexfmt::parse(&r[..r.len() - 4]).unwrap()).unwrap(),
        "container B: secret"
    );
}

#[test]
fn a_wrong_container_pin_counts_in_the_container_only() {
    let mut c = card_with(Some(0));
    assert_eq!(tx(&mut c, SELECT_CONTAINER_APP), "9000");
    assert_eq!(tx(&mut c, "002000810439393939"), "63C2");
    assert_eq!(c.state().containers()[0].pins[0].tries_left, 2);
    assert_eq!(c.state().pins[0].tries_left, 3);
    assert_eq!(c.state().containers()[1].pins[0].tries_left, 3);
}

#[test]
fn eight_containers_switch_with_exactly_one_enabled() {
    let mut text = String::from("label = \"eight\"\n");
    for i in 0..8 {
        text.push_str(&format!(
            "[[container]]\niccid = \"894400000000000000{i}\"\nenabled = {}\napplication_fid = \"7F10\"\napplication_name = \"F0 56 53 45 43 4F 4E 54\"\n[[container.file]]\npath = \"6F01\"\ntype = \"transparent\"\ntext = \"container {i}\"\n",
            i == 0
        ));
    }
    let state = profile::build(&text).unwrap();
    assert_eq!(state.containers().len(), 8);
    assert_eq!(state.containers()[7].isdp_aid[14], 0x17);
    let mut c = Card::in_memory(state);
    c.power_on();
    assert_eq!(
        tx(&mut c, "00A4040C10A0000005591010FFFFFFFF8900000100"),
        "9000"
    );
    for i in [7usize, 3, 5] {
        let iccid =
            apdu_specs::es10::Iccid::from_digits(&format!("894400000000000000{i}")).unwrap();
        let iccid = apdu_specs::hexfmt::upper(iccid.as_bytes());
        assert_eq!(
            tx(&mut c, &format!("80E2910014BF3111A00C5A0A{iccid}81010000")),
            "BF31038001009000"
        );
        assert_eq!(c.state().enabled_container(), Some(i));
        assert_eq!(
            c.state().containers().iter().filter(|c| c.enabled).count(),
            1
        );
        assert_eq!(tx(&mut c, "01A4040C08F0565345434F4E54").len(), 4); // channel 1 is closed
        let mut d = Card::in_memory(c.state().clone());
        d.power_on();
        assert_eq!(tx(&mut d, "00A4040C08F0565345434F4E54"), "9000");
        assert_eq!(tx(&mut d, "00A4020C026F01"), "9000");
        assert_eq!(
            tx(&mut d, "00B000000B"),
            format!(
                "{}9000",
                apdu_specs::hexfmt::upper(format!("container {i}").as_bytes())
            )
        );
    }
}
