//! The card manager as an eUICC ISD-R: the APDU sequence lpac sends (protocols.md §A),
//! container switches with their effect on other channels, persistence and policy.

use crate::common;
use apdu_specs::es10::{self, ProfileInfoListResponse, ProfileState};
use card_emulator::store::FileStore;
use card_emulator::{profile, Card, VirtualCard};
use common::{es10, open_isd_r, tx, ISD_R};

const ICCID_A: &str = "984474560000214251F8"; // 8944476500001224158
const ICCID_B: &str = "98001032547698103214"; // 89000123456789012341

fn list(c: &mut Card) -> Vec<es10::ProfileInfo> {
    let data = es10(c, "BF2D00");
    match ProfileInfoListResponse::parse(&apdu_specs::hexfmt::parse(&data).unwrap()).unwrap() {
        ProfileInfoListResponse::Ok(l) => l,
        e => panic!("{e:?}"),
    }
}

fn card() -> Card {
    common::card()
}

#[test]
fn eid_comes_back_through_get_response_in_the_proprietary_class() {
    let mut c = card();
    open_isd_r(&mut c);
    assert_eq!(
        es10(&mut c, "BF3E035C015A"),
        "BF3E125A1089049032123451234512345678901235"
    );
}

#[test]
fn profile_list_shows_both_containers_with_every_field() {
    let mut c = card();
    open_isd_r(&mut c);
    let l = list(&mut c);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].iccid.unwrap().digits(), "8944476500001224158");
    assert_eq!(l[0].state, Some(ProfileState::Enabled));
    assert_eq!(l[1].state, Some(ProfileState::Disabled));
    assert_eq!(l[1].nickname.as_deref(), Some("private"));
    assert_eq!(l[1].isdp_aid.as_ref().unwrap().as_bytes()[14], 0x11);
    // Search by ICCID and a tag list.
    let data = es10(&mut c, &format!("BF2D13A00C5A0A{ICCID_B}5C035A9F70"));
    assert_eq!(data, format!("BF2D14A012E3105A0A{ICCID_B}9F700100"));
}

#[test]
fn enable_switches_atomically_and_other_channels_leave_the_old_container() {
    let mut c = card();
    // Channel 0 works in container A with its PIN verified.
    assert_eq!(tx(&mut c, "00A4040C08F0565345434F4E54"), "9000");
    assert_eq!(tx(&mut c, "00A4020C026F02"), "9000");
    assert_eq!(tx(&mut c, "002000810431323334"), "9000");
    assert_eq!(tx(&mut c, "00B0000001"), "639000");
    open_isd_r(&mut c);
    // lpac's traced EnableProfile by ICCID (refreshFlag false).
    assert_eq!(
        es10(&mut c, &format!("BF3111A00C5A0A{ICCID_B}810100")),
        "BF3103800100"
    );
    // Channel 0 lost its selection and security state; container B answers now.
    assert_eq!(tx(&mut c, "00B0000001"), "6986");
    assert_eq!(tx(&mut c, "00A4040C08F0565345434F4E54"), "9000");
    assert_eq!(tx(&mut c, "00A4020C026F01"), "9000");
    let r = tx(&mut c, "00B0000018");
    assert_eq!(
        apdu_specs::hexfmt::parse(&r).unwrap(),
        b"container B: public data\x90\x00"
    );
    let l = list(&mut c);
    assert_eq!(
        l.iter().map(|p| p.state).collect::<Vec<_>>(),
        vec![Some(ProfileState::Disabled), Some(ProfileState::Enabled)]
    );
    // Enabling the enabled one, an unknown one.
    assert_eq!(
        es10(&mut c, &format!("BF3111A00C5A0A{ICCID_B}810100")),
        "BF3103800102"
    );
    assert_eq!(
        es10(&mut c, "BF3111A00C5A0A98001032547698103299810100"),
        "BF3103800101"
    );
}

#[test]
fn disable_by_aid_leaves_none_active_then_delete_removes_a_disabled_container() {
    let mut c = card();
    open_isd_r(&mut c);
    let aid_a = "A0000005591010FFFFFFFF8900001000";
    assert_eq!(es10(&mut c, &format!("BF33124F10{aid_a}")), "BF3303800102");
    assert_eq!(
        es10(&mut c, &format!("BF3217A0124F10{aid_a}8101FF")),
        "BF3203800100"
    );
    assert_eq!(
        es10(&mut c, &format!("BF3217A0124F10{aid_a}8101FF")),
        "BF3203800102"
    );
    assert_eq!(tx(&mut c, "00A4040C08F0565345434F4E54"), "6A82");
    assert_eq!(
        es10(&mut c, &format!("BF330C5A0A{ICCID_A}")),
        "BF3303800100"
    );
    let l = list(&mut c);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].iccid.unwrap().digits(), "89000123456789012341");
}

#[test]
fn set_nickname_from_the_lpac_trace() {
    let mut c = card();
    open_isd_r(&mut c);
    assert_eq!(
        es10(&mut c, &format!("BF29135A0A{ICCID_A}900568656C6C6F")),
        "BF2903800100"
    );
    assert_eq!(list(&mut c)[0].nickname.as_deref(), Some("hello"));
    assert_eq!(
        es10(&mut c, "BF29135A0A98447456000021425199900568656C6C6F"),
        "BF2903800101"
    );
}

#[test]
fn store_data_blocks_of_eight_bytes_reassemble_like_lpacs_trace() {
    let mut c = card();
    open_isd_r(&mut c);
    // protocols.md A.1: SetNickname in blocks of 8 with P2 = block number.
    assert_eq!(tx(&mut c, "81E2110008BF291C5A0A980010"), "9000");
    assert_eq!(tx(&mut c, "81E21101083254769810321490"), "9000");
    assert_eq!(tx(&mut c, "81E21102080E6E69636B6E616D"), "9000");
    let r = tx(&mut c, "81E291030769636B6E616D65");
    assert_eq!(r, "6106");
    assert_eq!(tx(&mut c, "81C0000006"), "BF29038001009000");
    assert_eq!(list(&mut c)[1].nickname.as_deref(), Some("nicknamickname"));
    // A block out of sequence is refused and the sequence dropped.
    assert_eq!(tx(&mut c, "81E2110008BF291C5A0A980010"), "9000");
    assert_ne!(tx(&mut c, "81E2910207AABBCCDDEEFF00"), "9000");
}

#[test]
fn switches_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::default_card_file(dir.path());
    let mut c = common::open_file_card(&path);
    assert_eq!(
        es10(&mut c, &format!("BF3111A00C5A0A{ICCID_B}810100")),
        "BF3103800100"
    );
    drop(c);
    let c = Card::open(Box::new(FileStore::open(&path).unwrap())).unwrap();
    assert_eq!(c.state().enabled_container(), Some(1));
}

#[test]
fn policy_can_require_a_secure_channel_for_management() {
    let text = profile::DEFAULT_PROFILE.replace(
        "es10_requires_secure_channel = false",
        "es10_requires_secure_channel = true",
    );
    let mut c = Card::in_memory(profile::build(&text).unwrap());
    c.power_on();
    open_isd_r(&mut c);
    assert_eq!(
        es10(&mut c, &format!("BF3111A00C5A0A{ICCID_B}810100")),
        "BF3103800103"
    );
    assert_eq!(c.state().enabled_container(), Some(0));
}

#[test]
fn the_card_manager_answers_as_the_globalplatform_isd_too() {
    let mut c = card();
    let r = tx(&mut c, "00A4040008A00000015100000000");
    assert!(
        r.starts_with("6F") && r.contains("8408A000000151000000"),
        "{r}"
    );
    assert_eq!(tx(&mut c, "80E2910006BF3E035C015A00").len(), 2 * (21 + 2));
    // An unknown ES10 function and an instruction the card manager does not know.
    assert_ne!(tx(&mut c, "80E2910003BF7F00"), "9000");
    assert_eq!(tx(&mut c, "80EE0000"), "6D00");
}

/// EF.ICCID (2FE2 under the MF, TS 102 221 §13.2) shows the enabled container's ICCID, as
/// a UICC shows its active profile's: it follows EnableProfile and DisableProfile in the
/// same commit, reads all FF with none enabled, and survives a restart.
#[test]
fn ef_iccid_follows_the_enabled_container_durably() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    FileStore::create(&path, &state, false).unwrap();
    let open = || {
        let mut c = Card::open(Box::new(FileStore::open(&path).unwrap())).unwrap();
        c.power_on();
        c
    };
    let read = |c: &mut Card| {
        assert_eq!(tx(c, "00A4000C022FE2"), "9000");
        tx(c, "00B000000A")
    };
    let (a, b) = ("984474560000214251F8", "98001032547698103214");
    let mut c = open();
    assert_eq!(read(&mut c), format!("{a}9000"));
    assert_eq!(tx(&mut c, &format!("00A4040C10{ISD_R}")), "9000");
    assert_eq!(
        tx(
            &mut c,
            "80E2910014BF3111A00C5A0A9800103254769810321481010000"
        ),
        "BF31038001009000"
    );
    assert_eq!(read(&mut c), format!("{b}9000"));
    drop(c);
    let mut c = open();
    assert_eq!(read(&mut c), format!("{b}9000"), "after a restart");
    assert_eq!(tx(&mut c, &format!("00A4040C10{ISD_R}")), "9000");
    assert_eq!(
        tx(
            &mut c,
            "80E2910014BF3211A00C5A0A9800103254769810321481010000"
        ),
        "BF32038001009000"
    );
    assert_eq!(read(&mut c), "FFFFFFFFFFFFFFFFFFFF9000");
    // Read only, like on a UICC.
    assert_eq!(tx(&mut c, "00A4000C022FE2"), "9000");
    assert_eq!(tx(&mut c, "00D6000001AA"), "6982");
}
