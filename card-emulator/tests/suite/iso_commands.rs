//! Behaviour of each ISO 7816-4 command and of the dispatcher, in-process.

use crate::common;
use common::*;

#[test]
fn unknown_ins_and_invalid_ins_answer_6d00() {
    let mut c = card();
    assert_eq!(tx(&mut c, "00EE0000"), "6D00");
    assert_eq!(tx(&mut c, "00600000"), "6D00");
    assert_eq!(tx(&mut c, "00910000"), "6D00");
}

#[test]
fn bad_class_answers_6e00() {
    let mut c = card();
    assert_eq!(tx(&mut c, "FFA40000"), "6E00");
    assert_eq!(tx(&mut c, "20A40000"), "6E00");
    assert_eq!(tx(&mut c, "80A4000C023F00"), "6E00");
}

#[test]
fn malformed_apdus_answer_6700() {
    let mut c = card();
    for a in [
        "",
        "00",
        "00A4",
        "00A404",
        "00A4040005AABB",
        "00A404000000",
        "00A4040000000011",
    ] {
        assert_eq!(tx(&mut c, a), "6700", "{a}");
    }
}

#[test]
fn secure_messaging_class_is_refused_with_6882() {
    let mut c = card();
    assert_eq!(tx(&mut c, "0CA4000C023F00"), "6882");
}

#[test]
fn select_mf_by_fid_returns_fci_through_get_response() {
    let mut c = card();
    let r = tx(&mut c, "00A40000023F00");
    assert!(r.starts_with("61"), "{r}");
    let n = &r[2..4];
    let fci = tx(&mut c, &format!("00C00000{n}"));
    assert!(fci.starts_with("6F"), "{fci}");
    assert!(fci.contains("83023F00"), "{fci}");
    assert!(fci.ends_with("9000"));
    // Nothing is left to fetch.
    assert_eq!(tx(&mut c, "00C0000000"), "6985");
}

#[test]
fn select_fcp_carries_size_descriptor_fid_lcs_and_security() {
    let mut c = card();
    select_app(&mut c);
    let r = tx(&mut c, "00A4020402500100");
    assert!(r.starts_with("62"), "{r}");
    // ETSI TS 102 221 §11.1.1.3, in its order: descriptor (shareable transparent EF, data
    // coding 21), FID, life cycle, compact security attributes, file size, total size, SFI.
    assert_eq!(
        r,
        "621B 82024121 83025001 8A0105 8C03031000 80020100 81020100 880108 9000".replace(' ', "")
    );
    // Linear fixed EF: descriptor 42 21, record length 10, 8 records.
    let r = tx(&mut c, "00A4020402500300");
    assert!(r.starts_with("621E820542210010"), "{r}");
    // A DF: descriptor 78 21, its name, and the PIN status template C6 (PIN 81 enabled).
    let r = tx(&mut c, "00A4040408F056534544454D4F00");
    assert_eq!(
        r,
        "6220 82027821 83025000 8408F056534544454D4F 8A0105 8C0100 C606 900180 830181 9000"
            .replace(' ', "")
    );
    // The MF adds its UICC characteristics (A5 { 80 71 }).
    let r = tx(&mut c, "00A40004023F0000");
    assert_eq!(
        r,
        "621B 82027821 83023F00 A503800171 8A0105 8C0100 C606900180830181 9000".replace(' ', "")
    );
}

#[test]
fn select_fmd_and_no_answer() {
    let mut c = card();
    assert_eq!(tx(&mut c, "00A40008023F0000"), "64009000");
    assert_eq!(tx(&mut c, "00A4000C023F00"), "9000");
}

#[test]
fn short_le_smaller_than_answer_gets_6cxx_and_nothing_pending() {
    let mut c = card();
    let full = tx(&mut c, "00A40004023F0000");
    let len = full.len() / 2 - 2;
    assert_eq!(tx(&mut c, "00A40004023F0005"), format!("6C{len:02X}"));
    assert_eq!(tx(&mut c, &format!("00A40004023F00{len:02X}")), full);
}

#[test]
fn select_paths_parent_and_children() {
    let mut c = card();
    assert_eq!(tx(&mut c, "00A4080C0450005001"), "9000");
    assert_eq!(tx(&mut c, "00B0000002"), "00009000");
    assert_eq!(tx(&mut c, "00A4080C063F0050005001"), "9000");
    assert_eq!(tx(&mut c, "00A4000C023F00"), "9000");
    assert_eq!(tx(&mut c, "00A4090C0450005003"), "9000");
    assert_eq!(tx(&mut c, "00A4030C"), "9000"); // parent of 5000 is the MF
    assert_eq!(tx(&mut c, "00A4030C"), "6A82"); // the MF has no parent
    assert_eq!(tx(&mut c, "00A4010C025000"), "9000");
    assert_eq!(tx(&mut c, "00A4010C025001"), "6A82"); // an EF is not a child DF
    assert_eq!(tx(&mut c, "00A4020C025001"), "9000");
    assert_eq!(tx(&mut c, "00A4000C025002"), "9000"); // sibling of the current EF's DF child
    assert_eq!(tx(&mut c, "00A4000C021234"), "6A82");
    assert_eq!(tx(&mut c, "00A4080C03500050"), "6700");
    assert_eq!(tx(&mut c, "00A4000C0150"), "6700");
    assert_eq!(tx(&mut c, "00A4050C023F00"), "6A86");
    assert_eq!(tx(&mut c, "00A4001C023F00"), "6A86");
    assert_eq!(tx(&mut c, "00A4000D023F00"), "6A86");
}

#[test]
fn select_by_name_first_next_and_partial() {
    let mut c = card();
    assert_eq!(tx(&mut c, "00A4040C05F056534544"), "9000"); // right-truncated name
    assert_eq!(tx(&mut c, "00A4040E05F056534544"), "6A82"); // no next occurrence
    assert_eq!(tx(&mut c, "00A4040C04A0000000"), "6A82");
    assert_eq!(tx(&mut c, "00A4040C"), "9000"); // empty name selects the MF
}

#[test]
fn read_binary_offsets_end_of_file_and_dfs() {
    let mut c = card();
    assert_eq!(tx(&mut c, "00B0000001"), "6986"); // the MF is current, no EF
    select_app(&mut c);
    select_ef(&mut c, "5001");
    assert_eq!(tx(&mut c, "00B000FF01"), "009000");
    assert_eq!(tx(&mut c, "00B000FF02"), "006282");
    assert_eq!(tx(&mut c, "00B0010001"), "6B00");
    assert_eq!(tx(&mut c, "00B0000000").len(), 2 * 258);
    // SFI addressing: 2F02 (sfi 2) lives in the MF, 5003 (sfi 3) is a record EF.
    assert_eq!(tx(&mut c, "00A4000C023F00"), "9000");
    let hello = tx(&mut c, "00B0820005");
    assert_eq!(hello, "48656C6C6F9000");
    assert_eq!(tx(&mut c, "00B0000005"), "48656C6C6F9000"); // the SFI file became current
    assert_eq!(tx(&mut c, "00B0830005"), "6A82");
    assert_eq!(tx(&mut c, "00B0E00005"), "6A86");
    select_app(&mut c);
    assert_eq!(tx(&mut c, "00B0830005"), "6981");
    assert_eq!(tx(&mut c, "00B000000101"), "6700");
}

#[test]
fn update_binary_access_bounds_and_persistence() {
    let mut c = card();
    select_app(&mut c);
    select_ef(&mut c, "5001");
    assert_eq!(tx(&mut c, "00D6000002CAFE"), "6982");
    verify_pin(&mut c);
    assert_eq!(tx(&mut c, "00D6000002CAFE"), "9000");
    assert_eq!(tx(&mut c, "00B0000002"), "CAFE9000");
    assert_eq!(tx(&mut c, "00D600FF02CAFE"), "6A84");
    assert_eq!(tx(&mut c, "00D6010001AA"), "6B00");
    assert_eq!(tx(&mut c, "00D60000"), "6700");
    select_ef(&mut c, "5007");
    assert_eq!(tx(&mut c, "00D6000001AA"), "6982");
    assert_eq!(tx(&mut c, "00B0000001"), "6982");
    select_ef(&mut c, "5003");
    assert_eq!(tx(&mut c, "00D6000001AA"), "6981");
}

#[test]
fn records_read_update_append_linear_and_cyclic() {
    let mut c = card();
    select_app(&mut c);
    assert_eq!(
        tx(&mut c, "00B2011C00"),
        "000000000000000000000000000000019000"
    );
    assert_eq!(tx(&mut c, "00B2021C00"), "6A83");
    assert_eq!(tx(&mut c, "00B2001C00"), "6A86");
    assert_eq!(tx(&mut c, "00B2011D00"), "6A86");
    assert_eq!(
        tx(&mut c, "00DC011C10000102030405060708090A0B0C0D0E0F"),
        "6982"
    );
    verify_pin(&mut c);
    assert_eq!(
        tx(&mut c, "00DC011C10000102030405060708090A0B0C0D0E0F"),
        "9000"
    );
    assert_eq!(tx(&mut c, "00DC011C0100"), "6700");
    assert_eq!(
        tx(&mut c, "00B2010400"),
        "000102030405060708090A0B0C0D0E0F9000"
    );
    for i in 0..7 {
        assert_eq!(
            tx(
                &mut c,
                &format!("00E2001810{}", format!("{i:02X}").repeat(16))
            ),
            "9000"
        );
    }
    assert_eq!(
        tx(&mut c, &format!("00E2001810{}", "FF".repeat(16))),
        "6A84"
    );
    assert_eq!(tx(&mut c, "00B2081C00"), format!("{}9000", "06".repeat(16)));
    // Cyclic (5004, sfi 4): record 1 is the newest; the oldest falls out.
    for i in 1..=6u8 {
        assert_eq!(
            tx(
                &mut c,
                &format!("00E2002008{}", format!("{i:02X}").repeat(8))
            ),
            "9000"
        );
    }
    assert_eq!(tx(&mut c, "00B2012400"), format!("{}9000", "06".repeat(8)));
    assert_eq!(tx(&mut c, "00B2052400"), format!("{}9000", "02".repeat(8)));
    assert_eq!(tx(&mut c, "00B2062400"), "6A83");
    assert_eq!(tx(&mut c, "00E2012008AAAAAAAAAAAAAAAA"), "6A86");
    select_ef(&mut c, "5001");
    assert_eq!(tx(&mut c, "00B2010400"), "6981");
}

#[test]
fn get_data_returns_tlv_or_6a88() {
    let mut c = card();
    assert_eq!(tx(&mut c, "00CA5F2000"), "5F200A5649525455414C2F53459000");
    assert!(tx(&mut c, "00CA5F5200").starts_with("5F520D8073"));
    assert_eq!(tx(&mut c, "00CA012300"), "6A88");
}

#[test]
fn get_challenge_lengths() {
    let mut c = card();
    assert_eq!(tx(&mut c, "0084000008").len(), 2 * 10);
    assert_eq!(tx(&mut c, "0084000001").len(), 2 * 3);
    assert_eq!(tx(&mut c, "0084000000").len(), 2 * 258);
    assert_eq!(tx(&mut c, "00840000000101"), "6700");
    assert_eq!(tx(&mut c, "00840000"), "6700");
    assert_eq!(tx(&mut c, "0084010008"), "6A86");
    let a = tx(&mut c, "0084000010");
    let b = tx(&mut c, "0084000010");
    assert_ne!(a, b);
}

#[test]
fn verify_counts_down_blocks_and_reports() {
    let mut c = card();
    assert_eq!(tx(&mut c, "0020008100"), "63C3");
    assert_eq!(tx(&mut c, "002000810131"), "6700"); // shorter than min_length, no try spent
    assert_eq!(tx(&mut c, "0020008100"), "63C3");
    assert_eq!(tx(&mut c, "002000810439393939"), "63C2");
    assert_eq!(tx(&mut c, "0020008100"), "63C2");
    assert_eq!(tx(&mut c, "002000810431323334"), "9000");
    assert_eq!(tx(&mut c, "0020008100"), "9000");
    assert_eq!(tx(&mut c, "00200081"), "9000");
    assert_eq!(tx(&mut c, "002000810439393939"), "63C2");
    assert_eq!(tx(&mut c, "0020008100"), "63C2"); // a wrong PIN clears the verified state
    assert_eq!(tx(&mut c, "002000810439393939"), "63C1");
    assert_eq!(tx(&mut c, "002000810439393939"), "63C0");
    assert_eq!(tx(&mut c, "002000810431323334"), "6983");
    assert_eq!(tx(&mut c, "0020008100"), "6983");
    assert_eq!(tx(&mut c, "00200082023132"), "6A88");
    assert_eq!(tx(&mut c, "0020018100"), "6A86");
}

#[test]
fn verify_ff_resets_security_state() {
    let mut c = card();
    verify_pin(&mut c);
    assert_eq!(tx(&mut c, "00200081"), "9000");
    assert_eq!(tx(&mut c, "0020FF81"), "9000");
    assert_eq!(tx(&mut c, "00200081"), "63C3");
}

#[test]
fn change_reference_data_and_reset_retry_counter() {
    let mut c = card();
    assert_eq!(tx(&mut c, "002400810839393939 35353535"), "63C2");
    assert_eq!(tx(&mut c, "002400810831323334 35353535"), "9000");
    assert_eq!(tx(&mut c, "00200081"), "9000"); // change leaves the PIN verified
    assert_eq!(tx(&mut c, "002000810431323334"), "63C2");
    assert_eq!(tx(&mut c, "002000810435353535"), "9000");
    assert_eq!(tx(&mut c, "002401810436363636"), "9000");
    assert_eq!(tx(&mut c, "0024018102 3636"), "6700");
    assert_eq!(tx(&mut c, "0020FF81"), "9000");
    assert_eq!(tx(&mut c, "002401810437373737"), "6982");
    // Block it, then unblock with the PUK and set a new PIN.
    for expect in ["63C2", "63C1", "63C0", "6983"] {
        assert_eq!(tx(&mut c, "002000810430303030"), expect);
    }
    assert_eq!(
        tx(
            &mut c,
            "002C0081 0C 3837363534333231 31323334"
                .replace(' ', "")
                .as_str()
        ),
        "63C9"
    );
    assert_eq!(
        tx(
            &mut c,
            "002C0081 0C 3132333435363738 31323334"
                .replace(' ', "")
                .as_str()
        ),
        "9000"
    );
    assert_eq!(tx(&mut c, "0020008100"), "63C3");
    verify_pin(&mut c);
    assert_eq!(tx(&mut c, "002C0181083132333435363738"), "9000");
    assert_eq!(tx(&mut c, "002C0281083132333435363738"), "6A86");
    assert_eq!(tx(&mut c, "002C018104313233"), "6700");
}

#[test]
fn manage_channel_open_close_and_independent_state() {
    let mut c = card();
    assert_eq!(tx(&mut c, "0070000001"), "019000");
    assert_eq!(tx(&mut c, "0070000001"), "029000");
    assert_eq!(tx(&mut c, "0070000001"), "039000");
    assert_eq!(tx(&mut c, "0070000001"), "6A81");
    // Channel 1 selects the app and verifies; channel 0 is unaffected.
    assert_eq!(tx(&mut c, "01A4040C08F056534544454D4F"), "9000");
    assert_eq!(tx(&mut c, "012000810431323334"), "9000");
    assert_eq!(tx(&mut c, "01A4020C025002"), "9000");
    assert_eq!(tx(&mut c, "01B0000004"), "736563729000");
    assert_eq!(tx(&mut c, "00B0000004"), "6986");
    assert_eq!(tx(&mut c, "00200081"), "63C3");
    // Closing clears the channel's security state.
    assert_eq!(tx(&mut c, "00708001"), "9000");
    assert_eq!(tx(&mut c, "01B0000004"), "6881");
    assert_eq!(tx(&mut c, "0070000101"), "9000");
    assert_eq!(tx(&mut c, "01200081"), "63C3");
    assert_eq!(tx(&mut c, "01708000"), "9000"); // P2 00: close the channel of the CLA
    assert_eq!(tx(&mut c, "00708000"), "6A86"); // the basic channel cannot be closed
    assert_eq!(tx(&mut c, "00708001"), "6881");
    assert_eq!(tx(&mut c, "0070000201"), "6A86"); // already open
    assert_eq!(tx(&mut c, "0070000501"), "6881");
    assert_eq!(tx(&mut c, "4070000001"), "6881"); // channel 4 out of range
    assert_eq!(tx(&mut c, "00701000"), "6A86");
    // Without Le the channel number comes through GET RESPONSE.
    assert_eq!(tx(&mut c, "00700000"), "6101");
    assert_eq!(tx(&mut c, "00C0000001"), "019000");
}

#[test]
fn power_cycle_and_reset_clear_volatile_state() {
    use card_emulator::VirtualCard;
    let mut c = card();
    verify_pin(&mut c);
    assert_eq!(tx(&mut c, "0070000001"), "019000");
    c.reset();
    assert_eq!(tx(&mut c, "00200081"), "63C3");
    assert_eq!(tx(&mut c, "01B0000001"), "6881");
    verify_pin(&mut c);
    c.power_off();
    c.power_on();
    assert_eq!(tx(&mut c, "00200081"), "63C3");
}

#[test]
fn chaining_accumulates_and_rejects_interruptions() {
    let mut c = card();
    select_app(&mut c);
    select_ef(&mut c, "5005");
    assert_eq!(tx(&mut c, "10D6000002AABB"), "9000");
    assert_eq!(tx(&mut c, "10D6000002CCDD"), "9000");
    assert_eq!(tx(&mut c, "00D6000001EE"), "9000");
    assert_eq!(tx(&mut c, "00B0000005"), "AABBCCDDEE9000");
    // A different command in the middle of a chain.
    assert_eq!(tx(&mut c, "10D6000002AABB"), "9000");
    assert_eq!(tx(&mut c, "00B0000001"), "6883");
    assert_eq!(tx(&mut c, "00B0000001"), "AA9000"); // the chain was dropped
                                                    // A chain on channel 1 is not disturbed by channel 0.
    assert_eq!(tx(&mut c, "0070000001"), "019000");
    assert_eq!(tx(&mut c, "01A4080C0450005005"), "9000");
    assert_eq!(tx(&mut c, "11D600000211 22"), "9000");
    assert_eq!(tx(&mut c, "00B0000001"), "AA9000");
    assert_eq!(
        tx(&mut c, "01D60000013 3".replace(' ', "").as_str()),
        "9000"
    );
    assert_eq!(tx(&mut c, "00B0000003"), "1122339000");
}

#[test]
fn get_response_rules() {
    let mut c = card();
    assert_eq!(tx(&mut c, "00C0000000"), "6985");
    let first = tx(&mut c, "00A40000023F00");
    let total = usize::from_str_radix(&first[2..4], 16).unwrap();
    // Partial GET RESPONSE keeps the rest pending.
    let part = tx(&mut c, "00C0000004");
    assert_eq!(part.len(), 2 * (4 + 2));
    assert_eq!(&part[8..], format!("61{:02X}", total - 4));
    // The proprietary class of the command family is refused for an ISO command's answer.
    assert_eq!(tx(&mut c, "80C0000000"), "6E00");
    // An intervening command discards the pending answer.
    assert_eq!(tx(&mut c, "00A40000023F00"), first);
    assert_eq!(tx(&mut c, "00B0000001"), "6986");
    assert_eq!(tx(&mut c, "00C0000000"), "6985");
    assert_eq!(tx(&mut c, "00A40000023F00"), first);
    assert_eq!(tx(&mut c, "00C0010000"), "6A86");
}

#[test]
fn a_channel_opened_from_a_container_channel_inherits_the_container_tree_not_just_its_position() {
    // Channel 1 selects the enabled container's application and its EF 6F01; a channel
    // opened from channel 1 starts at the same file of the same tree (ISO 7816-4 §5.4.2),
    // not at the card-global file that happens to have the same arena position.
    let mut c = common::card();
    assert_eq!(tx(&mut c, "0070000001"), "019000");
    assert_eq!(tx(&mut c, "01A4040C08F0565345434F4E54"), "9000");
    assert_eq!(tx(&mut c, "01A4020C026F01"), "9000");
    let on_1 = tx(&mut c, "01B0000000");
    assert!(on_1.starts_with("636F6E7461696E65722041"), "{on_1}"); // "container A"
    assert_eq!(tx(&mut c, "0170000000"), "029000");
    assert_eq!(tx(&mut c, "02B0000000"), on_1);
}

/// Class A0 is the GSM SIM's (TS 51.011): this card is not a SIM, so every A0 command gets
/// 6E00, and a pending answer or a command chain survives it (TS 102 221 §10.1.1).
#[test]
fn gsm_class_a0_answers_6e00_and_disturbs_nothing() {
    let mut c = common::card();
    // SELECT by name without Le (as T=0 sends case 4): the FCI waits behind 61xx.
    assert_eq!(tx(&mut c, "00A4040008F056534544454D4F"), "6122");
    for gsm in [
        "A0A40000023F00",
        "A0F2000016",
        "A0C0000016",
        "A0B0000010",
        "A020000108",
    ] {
        assert_eq!(tx(&mut c, gsm), "6E00", "{gsm}");
    }
    let fci = tx(&mut c, "00C0000022");
    assert!(fci.starts_with("6F20") && fci.ends_with("9000"), "{fci}");
    // A chain in progress survives too.
    assert_eq!(tx(&mut c, "10D6000002AABB"), "9000");
    assert_eq!(tx(&mut c, "A0D6000002CCDD"), "6E00");
    // Still in the chain: a command with another header is refused as the chain demands.
    assert_eq!(tx(&mut c, "00B0000001"), "6883");
}
