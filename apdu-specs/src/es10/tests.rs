//! ES10 against lpac's traces (protocols.md §A.2), round trips and no-panic fuzzing.

use super::info::GSMA_TEST_CI_PKID;
use super::store_data::{MAX_BLOCK, MAX_PAYLOAD};
use super::*;
use crate::hexfmt::{parse as hex, upper};
use proptest::prelude::*;

fn iccid(s: &str) -> Iccid {
    s.parse().unwrap()
}

/// Every request lpac's CLI sends, with the payload after the 5-byte STORE DATA header.
fn lpac_requests() -> Vec<(&'static str, Es10Request)> {
    vec![
        (
            "BF3E035C015A",
            Es10Request::GetEuiccData(GetEuiccData::eid()),
        ),
        ("BF3C00", Es10Request::GetEuiccConfiguredAddresses),
        ("BF4300", Es10Request::GetRat),
        ("BF2200", Es10Request::GetEuiccInfo2),
        ("BF2000", Es10Request::GetEuiccInfo1),
        (
            "BF2D00",
            Es10Request::ProfileInfoList(ProfileInfoListRequest::default()),
        ),
        (
            "BF3111A00C5A0A98001032547698103214810100",
            Es10Request::EnableProfile {
                id: iccid("89000123456789012341").into(),
                refresh: false,
            },
        ),
        (
            "BF3211A00C5A0A980010325476981032148101FF",
            Es10Request::DisableProfile {
                id: iccid("89000123456789012341").into(),
                refresh: true,
            },
        ),
        (
            "BF3117A0124F10A0000005591010FFFFFFFF89000010008101FF",
            Es10Request::EnableProfile {
                id: Aid::isdp(0).unwrap().into(),
                refresh: true,
            },
        ),
        (
            "BF29135A0A984474560000214251F8900568656C6C6F",
            Es10Request::SetNickname {
                iccid: iccid("8944476500001224158"),
                nickname: "hello".into(),
            },
        ),
        (
            "BF330C5A0A984474560000214251F8",
            Es10Request::DeleteProfile {
                id: iccid("8944476500001224158").into(),
            },
        ),
    ]
}

#[test]
fn every_lpac_request_parses_to_its_typed_value_and_reencodes_byte_exact() {
    for (hexstr, want) in lpac_requests() {
        let bytes = hex(hexstr).unwrap();
        assert_eq!(Es10Request::parse(&bytes).as_ref(), Ok(&want), "{hexstr}");
        assert_eq!(upper(&want.to_bytes().unwrap()), hexstr);
    }
}

#[test]
fn traced_store_data_headers_carry_the_exact_payload_length() {
    // 81E2910014 BF3111…: Lc 0x14 = 20 bytes.
    let apdus = store_data_apdus(
        0x81,
        &hex("BF3111A00C5A0A98001032547698103214810100").unwrap(),
        DEFAULT_MSS,
    )
    .unwrap();
    assert_eq!(
        upper(&apdus[0]),
        "81E2910014BF3111A00C5A0A98001032547698103214810100"
    );
    let apdus = store_data_apdus(0x81, &hex("BF3E035C015A").unwrap(), DEFAULT_MSS).unwrap();
    assert_eq!(upper(&apdus[0]), "81E2910006BF3E035C015A");
}

#[test]
fn traced_responses_encode_byte_exact() {
    assert_eq!(upper(&EnableResult::Ok.to_bytes()), "BF3103800100");
    assert_eq!(upper(&DisableResult::Ok.to_bytes()), "BF3203800100");
    assert_eq!(upper(&SetNicknameResult::Ok.to_bytes()), "BF2903800100");
    assert_eq!(
        upper(&DeleteResult::ProfileNotInDisabledState.to_bytes()),
        "BF3303800102"
    );
    let eid = EidResponse {
        eid: "89049032001001234500012345678901".parse().unwrap(),
    };
    assert_eq!(
        upper(&eid.to_bytes()),
        "BF3E125A1089049032001001234500012345678901"
    );
    assert_eq!(EidResponse::parse(&eid.to_bytes()), Ok(eid));
    assert_eq!(upper(&RatResponse::default().to_bytes()), "BF4302A000");
    assert_eq!(
        upper(&ProfileInfoListResponse::Error(ProfileInfoListError::UndefinedError).to_bytes()),
        "BF2D0381017F"
    );
}

#[test]
fn result_codes_round_trip_and_unknown_codes_are_errors() {
    for r in EnableResult::ALL {
        assert_eq!(EnableResult::parse(&r.to_bytes()), Ok(*r));
    }
    for r in DisableResult::ALL {
        assert_eq!(DisableResult::parse(&r.to_bytes()), Ok(*r));
    }
    for r in DeleteResult::ALL {
        assert_eq!(DeleteResult::parse(&r.to_bytes()), Ok(*r));
    }
    for r in SetNicknameResult::ALL {
        assert_eq!(SetNicknameResult::parse(&r.to_bytes()), Ok(*r));
    }
    assert_eq!(DisableResult::ProfileNotInEnabledState.code(), 2);
    assert_eq!(EnableResult::CatBusy.code(), 5);
    assert!(matches!(
        DeleteResult::parse(&hex("BF3303800105").unwrap()),
        Err(Es10Error::UnknownResultCode { code: 5, .. })
    ));
    assert!(matches!(
        EnableResult::parse(&hex("BF3203800100").unwrap()),
        Err(Es10Error::UnexpectedTag {
            expected: 0xBF31,
            found: 0xBF32
        })
    ));
}

#[test]
fn unknown_function_tag_is_its_own_error_with_the_tag() {
    // AuthenticateServer BF38: well formed, not implemented here (no profile download).
    let err = Es10Request::parse(&hex("BF3800").unwrap()).unwrap_err();
    assert_eq!(err, Es10Error::UnknownFunction(0xBF38));
    assert_eq!(err.status(), crate::Status::FunctionNotSupported);
    assert_eq!(
        Es10Request::parse(&hex("BF3E035C015A00").unwrap()),
        Err(Es10Error::TrailingData(1))
    );
    assert_eq!(
        Es10Request::parse(&hex("BF3E035C01").unwrap())
            .unwrap_err()
            .status(),
        crate::Status::IncorrectData
    );
}

#[test]
fn profile_list_request_with_search_criteria_and_tag_list() {
    let cases = [
        (
            "BF2D11A00C5A0A984474560000214251F85C015A",
            SearchCriteria::Iccid(iccid("8944476500001224158")),
        ),
        (
            "BF2D17A0124F10A0000005591010FFFFFFFF89000011005C015A",
            SearchCriteria::IsdpAid(Aid::isdp(1).unwrap()),
        ),
        (
            "BF2D05A003950102",
            SearchCriteria::ProfileClass(ProfileClass::Operational),
        ),
    ];
    for (i, (hexstr, search)) in cases.into_iter().enumerate() {
        let tag_list = if i < 2 { Some(vec![0x5A]) } else { None };
        let want = Es10Request::ProfileInfoList(ProfileInfoListRequest {
            search: Some(search),
            tag_list,
        });
        let enc = want.to_bytes().unwrap();
        assert_eq!(upper(&enc), hexstr);
        assert_eq!(Es10Request::parse(&enc), Ok(want));
    }
    let with_tags = Es10Request::ProfileInfoList(ProfileInfoListRequest {
        search: None,
        tag_list: Some(vec![0x5A, 0x9F70, 0x90]),
    });
    assert_eq!(upper(&with_tags.to_bytes().unwrap()), "BF2D065C045A9F7090");
    assert_eq!(
        Es10Request::parse(&with_tags.to_bytes().unwrap()),
        Ok(with_tags)
    );
}

fn two_profiles() -> Vec<ProfileInfo> {
    vec![
        ProfileInfo {
            iccid: Some(iccid("8944476500001224158")),
            isdp_aid: Aid::isdp(0),
            state: Some(ProfileState::Enabled),
            nickname: Some("hello".into()),
            service_provider_name: Some("Virtual SE".into()),
            profile_name: Some("Container 1".into()),
            profile_class: Some(ProfileClass::Operational),
        },
        ProfileInfo {
            iccid: Some(iccid("89000123456789012341")),
            isdp_aid: Aid::isdp(1),
            state: Some(ProfileState::Disabled),
            nickname: None,
            service_provider_name: Some("Virtual SE".into()),
            profile_name: Some("Container 2".into()),
            profile_class: Some(ProfileClass::Test),
        },
    ]
}

#[test]
fn profile_list_encodes_entries_in_asn1_order() {
    let resp = ProfileInfoListResponse::Ok(vec![two_profiles()[0].clone()]);
    let enc = resp.to_bytes();
    let want = concat!(
        "BF2D49A047E345",
        "5A0A984474560000214251F8",
        "4F10A0000005591010FFFFFFFF8900001000",
        "9F700101",
        "900568656C6C6F",
        "910A5669727475616C205345",
        "920B436F6E7461696E65722031",
        "950102",
    );
    assert_eq!(upper(&enc), want);
    assert_eq!(ProfileInfoListResponse::parse(&enc), Ok(resp));
}

#[test]
fn profile_list_over_127_bytes_uses_long_form_lengths() {
    let resp = ProfileInfoListResponse::Ok(two_profiles());
    let enc = resp.to_bytes();
    assert_eq!(&enc[..3], &[0xBF, 0x2D, 0x81]);
    assert_eq!(ProfileInfoListResponse::parse(&enc), Ok(resp));
}

#[test]
fn tag_list_filter_keeps_only_the_requested_fields() {
    let p = &two_profiles()[0];
    let only = p.filtered(Some(&[0x5A, 0x9F70]));
    assert_eq!(
        upper(&only.to_bytes()),
        "E3105A0A984474560000214251F89F700101"
    );
    assert_eq!(p.filtered(None), *p);
    assert_eq!(p.filtered(Some(&[])), ProfileInfo::default());
    assert_eq!(upper(&ProfileInfo::default().to_bytes()), "E300");
}

#[test]
fn search_criteria_match_profiles() {
    let ps = two_profiles();
    let by_class = SearchCriteria::ProfileClass(ProfileClass::Test);
    assert_eq!(ps.iter().filter(|p| by_class.matches(p)).count(), 1);
    assert!(SearchCriteria::IsdpAid(Aid::isdp(0).unwrap()).matches(&ps[0]));
    assert!(!SearchCriteria::Iccid(iccid("8944476500001224158")).matches(&ps[1]));
}

#[test]
fn profile_info_parse_skips_fields_we_do_not_model() {
    // 93 iconType, B6 notificationConfigurationInfo: skipped as lpac skips them.
    let bytes = hex("BF2D10A00EE30C5A0A984474560000214251F8").unwrap();
    assert!(ProfileInfoListResponse::parse(&bytes).is_ok());
    let with_icon = hex("BF2D15A013E3115A0A984474560000214251F8930100B600").unwrap();
    let ProfileInfoListResponse::Ok(list) = ProfileInfoListResponse::parse(&with_icon).unwrap()
    else {
        panic!("expected a list")
    };
    assert_eq!(list[0].iccid, Some(iccid("8944476500001224158")));
}

#[test]
fn nickname_limit_is_64_characters() {
    let req = |n: usize| Es10Request::SetNickname {
        iccid: iccid("8944476500001224158"),
        nickname: "é".repeat(n),
    };
    assert!(req(63).to_bytes().is_ok());
    let at_limit = req(64).to_bytes().unwrap();
    assert_eq!(Es10Request::parse(&at_limit), Ok(req(64)));
    assert!(req(65).to_bytes().is_err());
    // Empty nickname: `90 00`.
    assert_eq!(
        upper(&req(0).to_bytes().unwrap()),
        "BF290E5A0A984474560000214251F89000"
    );
}

#[test]
fn lpac_sample_euicc_info2_parses() {
    // lpac driver/apdu/stdio.c, sample reply to BF2200 (SW stripped).
    let sample = hex(concat!(
        "BF2281C6810302010082030202008303040600840F8101008204000628248304000019228504067F36C0",
        "8603090200870302030088020490A916041481370F5125D0B1D408D4C3B232E6D25E795BEBFBAA1604",
        "1481370F5125D0B1D408D4C3B232E6D25E795BEBFB990206C004030000010C0D47492D42412D55502D",
        "30343139AC48801F312E322E3834302E313233343536372F6D79506C6174666F726D4C6162656C8125",
        "68747470733A2F2F6D79636F6D70616E792E636F6D2F6D79444C4F41526567697374726172"
    ))
    .unwrap();
    let info = EuiccInfo2::parse(&sample).unwrap();
    assert_eq!(info.profile_version.to_string(), "2.1.0");
    assert_eq!(info.svn.to_string(), "2.2.0");
    assert_eq!(info.ext_card_resource.free_non_volatile_memory, 0x0006_2824);
    assert_eq!(info.ext_card_resource.free_volatile_memory, 0x1922);
    assert!(info.uicc_capability.bit(1)); // usimSupport
    assert!(info.rsp_capability.bit(0) && info.rsp_capability.bit(3));
    assert_eq!(info.ci_pkid_for_signing, vec![GSMA_TEST_CI_PKID.to_vec()]);
    assert_eq!(info.sas_accreditation_number, "GI-BA-UP-0419");
    assert_eq!(info.pp_version.to_string(), "0.0.1");
    assert_eq!(
        info.certification_data.as_ref().unwrap().platform_label,
        "1.2.840.1234567/myPlatformLabel"
    );
    // Re-encoding is byte-exact except extCardResource, whose sample integers are
    // not minimal DER (`82 04 00062824`); ours are.
    let ours = EuiccInfo2::parse(&info.to_bytes()).unwrap();
    assert_eq!(ours, info);
}

#[test]
fn plausible_euicc_info_round_trips_and_fits_one_response() {
    let info2 = EuiccInfo2::plausible(ExtCardResource {
        installed_applications: 2,
        free_non_volatile_memory: 512 * 1024,
        free_volatile_memory: 16 * 1024,
    });
    let bytes = info2.to_bytes();
    assert!(bytes.len() <= 256, "BF22 of {} bytes", bytes.len());
    assert_eq!(EuiccInfo2::parse(&bytes), Ok(info2));
    let info1 = EuiccInfo1::plausible();
    let bytes = info1.to_bytes();
    assert_eq!(
        upper(&bytes),
        concat!(
            "BF2035820302020",
            "0A916041481370F5125D0B1D408D4C3B232E6D25E795BEBFB",
            "AA16041481370F5125D0B1D408D4C3B232E6D25E795BEBFB"
        )
    );
    assert_eq!(EuiccInfo1::parse(&bytes), Ok(info1));
}

#[test]
fn configured_addresses_round_trip_and_parse_lpac_sample() {
    let sample = hex("BF3C17811574657374726F6F74736D64732E67736D612E636F6D").unwrap();
    let a = EuiccConfiguredAddresses::parse(&sample).unwrap();
    assert_eq!(a.root_ds_address, "testrootsmds.gsma.com");
    assert_eq!(a.default_dp_address, None);
    assert_eq!(a.to_bytes(), sample);
    let with_dp = EuiccConfiguredAddresses {
        default_dp_address: Some("smdp.example".into()),
        root_ds_address: "testrootsmds.gsma.com".into(),
    };
    assert_eq!(
        EuiccConfiguredAddresses::parse(&with_dp.to_bytes()),
        Ok(with_dp)
    );
}

// ---- STORE DATA ----

/// The trace's nickname is 14 bytes ending in "ickname" (its middle blocks are elided
/// in protocols.md); any such nickname reproduces the traced first, second and last block.
fn nickname_payload() -> Vec<u8> {
    Es10Request::SetNickname {
        iccid: iccid("89000123456789012341"),
        nickname: "a_new_nickname".into(),
    }
    .to_bytes()
    .unwrap()
}

#[test]
fn mss_8_segmentation_reproduces_lpac_trace() {
    let payload = nickname_payload();
    assert_eq!(payload.len(), 3 + 0x1C);
    let apdus: Vec<String> = store_data_apdus(0x81, &payload, 8)
        .unwrap()
        .iter()
        .map(|a| upper(a))
        .collect();
    assert_eq!(apdus.len(), 4);
    assert_eq!(apdus[0], "81E2110008BF291C5A0A980010");
    assert_eq!(apdus[1], "81E21101083254769810321490");
    assert!(apdus[2].starts_with("81E2110208"));
    assert_eq!(apdus[3], "81E291030769636B6E616D65");

    let mut asm = StoreDataAssembler::new();
    let mut done = None;
    for a in store_data_apdus(0x81, &payload, 8).unwrap() {
        match asm.feed(a[2], a[3], &a[5..]).unwrap() {
            StoreDataProgress::Incomplete => assert!(done.is_none()),
            StoreDataProgress::Complete(p) => done = Some(p),
        }
    }
    assert_eq!(done.as_deref(), Some(payload.as_slice()));
    assert!(!asm.in_progress());
}

#[test]
fn assembler_refuses_wrong_block_numbers_and_p1_then_recovers() {
    let mut asm = StoreDataAssembler::new();
    assert_eq!(asm.feed(0x11, 0, &[1]), Ok(StoreDataProgress::Incomplete));
    assert_eq!(
        asm.feed(0x11, 2, &[2]),
        Err(StoreDataError::WrongBlockNumber {
            expected: 1,
            got: 2
        })
    );
    assert!(!asm.in_progress());
    // A sequence must start at 00.
    assert_eq!(
        asm.feed(0x91, 1, &[2]),
        Err(StoreDataError::WrongBlockNumber {
            expected: 0,
            got: 1
        })
    );
    assert_eq!(
        asm.feed(0x01, 0, &[2]),
        Err(StoreDataError::UnexpectedP1(0x01))
    );
    assert_eq!(
        asm.feed(0x91, 0, &[9]),
        Ok(StoreDataProgress::Complete(vec![9]))
    );
    // Block 00 mid-sequence starts over.
    asm.feed(0x11, 0, &[1]).unwrap();
    assert_eq!(
        asm.feed(0x91, 0, &[7]),
        Ok(StoreDataProgress::Complete(vec![7]))
    );
}

#[test]
fn assembler_block_length_boundaries() {
    let mut asm = StoreDataAssembler::new();
    assert!(asm.feed(0x91, 0, &[0; MAX_BLOCK - 1]).is_ok());
    assert!(asm.feed(0x91, 0, &[0; MAX_BLOCK]).is_ok());
    assert_eq!(
        asm.feed(0x91, 0, &[0; MAX_BLOCK + 1]),
        Err(StoreDataError::BlockTooLong(MAX_BLOCK + 1))
    );
}

#[test]
fn assembler_caps_the_payload_at_64_kib() {
    let mut asm = StoreDataAssembler::new();
    let block = [0u8; 255];
    // 256 blocks (P2 00..FF) of 255 bytes = 65 280 bytes: the most P2 can number,
    // under the 64 KiB cap, so the block counter is the binding limit.
    for n in 0..=254u8 {
        assert_eq!(asm.feed(0x11, n, &block), Ok(StoreDataProgress::Incomplete));
    }
    const { assert!(256 * 255 <= MAX_PAYLOAD) };
    // A 257th block would need P2 = 0x100: after FF only 00 (a restart) is accepted.
    assert_eq!(
        asm.feed(0x11, 255, &block),
        Ok(StoreDataProgress::Incomplete)
    );
    assert!(matches!(
        asm.feed(0x91, 1, &block),
        Err(StoreDataError::WrongBlockNumber {
            expected: 256,
            got: 1
        })
    ));
    asm.feed(0x11, 0, &block).unwrap();
    assert!(asm.in_progress());
}

#[test]
fn segment_edges() {
    assert_eq!(
        segment(&[1, 2, 3], 0),
        Err(StoreDataError::BadSegmentSize(0))
    );
    assert_eq!(
        segment(&[1, 2, 3], 256),
        Err(StoreDataError::BadSegmentSize(256))
    );
    assert_eq!(
        segment(&[1, 2, 3], 3).unwrap(),
        vec![(0x91, 0, &[1u8, 2, 3][..])]
    );
    assert_eq!(segment(&[1, 2, 3], 2).unwrap().len(), 2);
    assert_eq!(segment(&[], 120).unwrap(), vec![(0x91, 0, &[][..])]);
    assert!(segment(&vec![0; 256 * 120 + 1], 120).is_err());
    assert_eq!(segment(&vec![0; 256 * 120], 120).unwrap().len(), 256);
}

// ---- properties ----

fn arb_iccid() -> impl Strategy<Value = Iccid> {
    prop::collection::vec(0u8..10, 19..=20).prop_map(|d| {
        let s: String = d.iter().map(|n| char::from(b'0' + n)).collect();
        Iccid::from_digits(&s).unwrap()
    })
}

fn arb_aid() -> impl Strategy<Value = Aid> {
    prop::collection::vec(any::<u8>(), 5..=16).prop_map(|b| Aid::new(&b).unwrap())
}

fn arb_id() -> impl Strategy<Value = ProfileId> {
    prop_oneof![
        arb_iccid().prop_map(ProfileId::Iccid),
        arb_aid().prop_map(ProfileId::IsdpAid)
    ]
}

fn arb_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max).prop_map(|c| c.into_iter().collect())
}

fn arb_class() -> impl Strategy<Value = ProfileClass> {
    prop_oneof![
        Just(ProfileClass::Test),
        Just(ProfileClass::Provisioning),
        Just(ProfileClass::Operational)
    ]
}

fn arb_profile() -> impl Strategy<Value = ProfileInfo> {
    (
        prop::option::of(arb_iccid()),
        prop::option::of(arb_aid()),
        prop::option::of(prop_oneof![
            Just(ProfileState::Disabled),
            Just(ProfileState::Enabled)
        ]),
        prop::option::of(arb_text(64)),
        prop::option::of(arb_text(32)),
        prop::option::of(arb_text(64)),
        prop::option::of(arb_class()),
    )
        .prop_map(
            |(
                iccid,
                isdp_aid,
                state,
                nickname,
                service_provider_name,
                profile_name,
                profile_class,
            )| {
                ProfileInfo {
                    iccid,
                    isdp_aid,
                    state,
                    nickname,
                    service_provider_name,
                    profile_name,
                    profile_class,
                }
            },
        )
}

fn arb_request() -> impl Strategy<Value = Es10Request> {
    let search = prop::option::of(prop_oneof![
        arb_iccid().prop_map(SearchCriteria::Iccid),
        arb_aid().prop_map(SearchCriteria::IsdpAid),
        arb_class().prop_map(SearchCriteria::ProfileClass),
    ]);
    let tags = prop::option::of(prop::collection::vec(
        prop::sample::select(response::PROFILE_INFO_TAGS.to_vec()),
        0..8,
    ));
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..4)
            .prop_map(|tag_list| Es10Request::GetEuiccData(GetEuiccData { tag_list })),
        (search, tags).prop_map(|(search, tag_list)| Es10Request::ProfileInfoList(
            ProfileInfoListRequest { search, tag_list }
        )),
        (arb_id(), any::<bool>())
            .prop_map(|(id, refresh)| Es10Request::EnableProfile { id, refresh }),
        (arb_id(), any::<bool>())
            .prop_map(|(id, refresh)| Es10Request::DisableProfile { id, refresh }),
        arb_id().prop_map(|id| Es10Request::DeleteProfile { id }),
        (arb_iccid(), arb_text(64))
            .prop_map(|(iccid, nickname)| Es10Request::SetNickname { iccid, nickname }),
        Just(Es10Request::GetEuiccConfiguredAddresses),
        Just(Es10Request::GetRat),
        Just(Es10Request::GetEuiccInfo1),
        Just(Es10Request::GetEuiccInfo2),
    ]
}

proptest! {
    #[test]
    fn request_round_trip(req in arb_request()) {
        let bytes = req.to_bytes().unwrap();
        prop_assert_eq!(Es10Request::parse(&bytes), Ok(req));
    }

    #[test]
    fn profile_list_round_trip(list in prop::collection::vec(arb_profile(), 0..6)) {
        let resp = ProfileInfoListResponse::Ok(list);
        prop_assert_eq!(ProfileInfoListResponse::parse(&resp.to_bytes()), Ok(resp));
    }

    #[test]
    fn iccid_digits_round_trip(i in arb_iccid()) {
        prop_assert_eq!(Iccid::from_bytes(i.as_bytes()), Ok(i));
        prop_assert_eq!(i.to_string().parse::<Iccid>(), Ok(i));
    }

    #[test]
    fn segmentation_round_trip(payload in prop::collection::vec(any::<u8>(), 1..2000), mss in 1usize..=255) {
        // At most 256 blocks (P2 00..FF).
        let payload = &payload[..payload.len().min(256 * mss)];
        let mut asm = StoreDataAssembler::new();
        let mut out = None;
        for (p1, p2, chunk) in segment(payload, mss).unwrap() {
            if let StoreDataProgress::Complete(p) = asm.feed(p1, p2, chunk).unwrap() {
                out = Some(p);
            }
        }
        prop_assert_eq!(out.as_deref(), Some(payload));
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_parser(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Es10Request::parse(&bytes);
        let _ = ProfileInfoListResponse::parse(&bytes);
        let _ = EidResponse::parse(&bytes);
        let _ = EnableResult::parse(&bytes);
        let _ = DisableResult::parse(&bytes);
        let _ = DeleteResult::parse(&bytes);
        let _ = SetNicknameResult::parse(&bytes);
        let _ = EuiccConfiguredAddresses::parse(&bytes);
        let _ = RatResponse::parse(&bytes);
        let _ = EuiccInfo1::parse(&bytes);
        let _ = EuiccInfo2::parse(&bytes);
        let _ = Iccid::from_bytes(&bytes);
        let _ = ProfileInfo::parse_value(&bytes);
        let mut asm = StoreDataAssembler::new();
        for chunk in bytes.chunks(3) {
            if let [p1, p2, rest @ ..] = chunk {
                let _ = asm.feed(*p1, *p2, rest);
            }
        }
    }

    #[test]
    fn valid_prefix_then_garbage_never_panics(
        tag in prop::sample::select(vec![0xBF2Du32, 0xBF31, 0xBF32, 0xBF33, 0xBF29, 0xBF3E, 0xBF22, 0xBF20, 0xBF43, 0xBF3C]),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        // Well-formed outer TLV around random content reaches the inner parsers.
        let bytes = crate::tlv::build(tag, &body);
        let _ = Es10Request::parse(&bytes);
        let _ = ProfileInfoListResponse::parse(&bytes);
        let _ = EuiccInfo2::parse(&bytes);
        let _ = EuiccInfo1::parse(&bytes);
    }
}

#[test]
fn deep_nesting_does_not_recurse() {
    // 16 000 nested A0s inside a BF2D: the one-level reader never descends past
    // what the schema needs.
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..16_000 {
        inner = crate::tlv::build(0xA0, &inner);
    }
    let bytes = crate::tlv::build(0xBF2D, &inner);
    assert!(Es10Request::parse(&bytes).is_err());
}

// ES10b (rsp.asn, AUTOMATIC TAGS): each request and answer against bytes derived by hand
// from the ASN.1, then round trips.

/// Every ES10b request, with its DER as derived from rsp.asn.
fn es10b_requests() -> Vec<(&'static str, Es10Request)> {
    vec![
        // GetEuiccChallengeRequest ::= [46] SEQUENCE {}
        ("BF2E00", Es10Request::GetEuiccChallenge),
        // ListNotificationRequest, no filter (what `lpac notification list` sends).
        ("BF2800", Es10Request::ListNotification { filter: None }),
        // ... with profileManagementOperation [1] = {enable, delete}: bits 1 and 3.
        (
            "BF2804810204 50",
            Es10Request::ListNotification {
                filter: Some(EventSet::of(&[
                    NotificationEvent::Enable,
                    NotificationEvent::Delete,
                ])),
            },
        ),
        (
            "BF2B00",
            Es10Request::RetrieveNotificationsList { search: None },
        ),
        // searchCriteria [0] CHOICE { seqNumber [0] 7 } (what `lpac notification process` sends).
        (
            "BF2B05A003800107",
            Es10Request::RetrieveNotificationsList {
                search: Some(NotificationSearch::Seq(7)),
            },
        ),
        // searchCriteria [0] CHOICE { profileManagementOperation [1] {disable} }
        (
            "BF2B06A00481020520",
            Es10Request::RetrieveNotificationsList {
                search: Some(NotificationSearch::Events(EventSet::of(&[
                    NotificationEvent::Disable,
                ]))),
            },
        ),
        // NotificationSentRequest { seqNumber [0] 300 } (`lpac notification remove 300`).
        (
            "BF300480020 12C",
            Es10Request::NotificationSent { seq: 300 },
        ),
        // CancelSessionRequest { transactionId [0], reason [1] endUserRejection(0) }
        (
            "BF410980040102030481 0100",
            Es10Request::CancelSession {
                transaction_id: vec![1, 2, 3, 4],
                reason: 0,
            },
        ),
        // EuiccMemoryResetRequest { resetOptions [2] {deleteOperationalProfiles, resetDefaultSmdpAddress} }
        (
            "BF3404820205A0",
            Es10Request::EuiccMemoryReset {
                options: ResetOptions {
                    delete_operational_profiles: true,
                    delete_test_profiles: false,
                    reset_default_smdp_address: true,
                },
            },
        ),
        // GetCertsRequest {} and { euiccCiPKId [0] }
        ("BF5600", Es10Request::GetCerts { ci_pkid: None }),
        (
            "BF56048002ABCD",
            Es10Request::GetCerts {
                ci_pkid: Some(vec![0xAB, 0xCD]),
            },
        ),
        // SetDefaultDpAddressRequest { defaultDpAddress [0] "a.b" }
        (
            "BF3F058003612E62",
            Es10Request::SetDefaultDpAddress {
                address: "a.b".into(),
            },
        ),
    ]
}

#[test]
fn every_es10b_request_parses_to_its_typed_value_and_reencodes_byte_exact() {
    for (wire, request) in es10b_requests() {
        let bytes = hex(&wire.replace(' ', "")).unwrap();
        assert_eq!(Es10Request::parse(&bytes), Ok(request.clone()), "{wire}");
        assert_eq!(
            upper(&request.to_bytes().unwrap()),
            wire.replace(' ', ""),
            "{wire}"
        );
    }
}

fn metadata(seq: u32, event: NotificationEvent) -> NotificationMetadata {
    NotificationMetadata {
        seq,
        event,
        address: "smdp.io".into(),
        iccid: Some(iccid("89000123456789012341")),
    }
}

#[test]
fn notification_metadata_encodes_as_rsp_asn_says() {
    // BF2F { 80 seq, 81 NotificationEvent, 0C address, 5A iccid }; enable = bit 1 alone:
    // DER trims trailing zero bits, so one byte 0x40 with 6 unused bits.
    let m = metadata(1, NotificationEvent::Enable);
    assert_eq!(
        upper(&m.to_bytes()),
        "BF2F1C800101810206400C07736D64702E696F5A0A98001032547698103214"
    );
    assert_eq!(NotificationMetadata::parse(&m.to_bytes()), Ok(m));
    let events = [
        (NotificationEvent::Install, "0780"),
        (NotificationEvent::Enable, "0640"),
        (NotificationEvent::Disable, "0520"),
        (NotificationEvent::Delete, "0410"),
    ];
    for (e, v) in events {
        assert_eq!(upper(&e.value()), v, "{e:?}");
        assert_eq!(NotificationEvent::from_value(&hex(v).unwrap()), Ok(e));
    }
    // A metadata's operation has exactly one bit.
    assert!(NotificationEvent::from_value(&hex("0450").unwrap()).is_err());
    assert!(NotificationEvent::from_value(&hex("00").unwrap()).is_err());
    // A large sequence number keeps INTEGER non-negative: 128 is 00 80.
    let big = metadata(128, NotificationEvent::Delete);
    assert!(upper(&big.to_bytes()).starts_with("BF2F1D80020080"));
    assert_eq!(NotificationMetadata::parse(&big.to_bytes()), Ok(big));
}

#[test]
fn list_notification_answers_round_trip_and_match_rsp_asn() {
    let list = ListNotificationResponse::Ok(vec![
        metadata(1, NotificationEvent::Enable),
        metadata(2, NotificationEvent::Disable),
    ]);
    let bytes = list.to_bytes();
    assert!(upper(&bytes).starts_with("BF2840A03EBF2F1C800101"));
    assert_eq!(ListNotificationResponse::parse(&bytes), Ok(list));
    assert_eq!(
        upper(&ListNotificationResponse::Ok(vec![]).to_bytes()),
        "BF2802A000"
    );
    let err = ListNotificationResponse::UndefinedError;
    assert_eq!(upper(&err.to_bytes()), "BF280381017F");
    assert_eq!(ListNotificationResponse::parse(&err.to_bytes()), Ok(err));
}

#[test]
fn signed_notifications_keep_the_exact_signed_bytes() {
    let m = metadata(5, NotificationEvent::Delete);
    // Two stand-in certificates: any one DER SEQUENCE each.
    let n = OtherSignedNotification {
        tbs: m.to_bytes(),
        metadata: m,
        signature: vec![0xAB; 64],
        euicc_certificate: hex("3003020101").unwrap(),
        eum_certificate: hex("3003020102").unwrap(),
    };
    let answer = RetrieveNotificationsListResponse::Ok(vec![PendingNotification::Other(n.clone())]);
    let bytes = answer.to_bytes();
    // BF2B { A0 { 30 { BF2F… 5F37 40 … 30… 30… } } }
    let hexed = upper(&bytes);
    assert!(hexed.starts_with("BF2B"), "{hexed}");
    assert!(hexed.contains("5F3740ABAB"), "{hexed}");
    assert!(hexed.ends_with("30030201013003020102"), "{hexed}");
    assert_eq!(RetrieveNotificationsListResponse::parse(&bytes), Ok(answer));
    assert_eq!(
        upper(&RetrieveNotificationsListResponse::NoResultAvailable.to_bytes()),
        "BF2B03810101"
    );
    // A notification without its certificates, or with the signature after them, is
    // refused, not read as something else.
    let mut no_certs = n.tbs.clone();
    crate::tlv::push(&mut no_certs, 0x5F37, &n.signature);
    assert!(OtherSignedNotification::parse_value(&no_certs).is_err());
    let mut reordered = n.tbs.clone();
    reordered.extend_from_slice(&n.euicc_certificate);
    crate::tlv::push(&mut reordered, 0x5F37, &n.signature);
    reordered.extend_from_slice(&n.eum_certificate);
    assert!(OtherSignedNotification::parse_value(&reordered).is_err());
}

#[test]
fn es10b_result_answers_encode_as_rsp_asn_says() {
    assert_eq!(
        upper(&NotificationSentResult::Ok.to_bytes()),
        "BF3003800100"
    );
    assert_eq!(
        upper(&NotificationSentResult::NothingToDelete.to_bytes()),
        "BF3003800101"
    );
    assert_eq!(
        upper(&MemoryResetResult::NothingToDelete.to_bytes()),
        "BF3403800101"
    );
    assert_eq!(
        upper(&SetDefaultDpAddressResult::Ok.to_bytes()),
        "BF3F03800100"
    );
    assert_eq!(
        upper(&CancelSessionResponse::InvalidTransactionId.to_bytes()),
        "BF4103810105"
    );
    let challenge = EuiccChallenge([7; 16]);
    assert_eq!(
        upper(&challenge.to_bytes()),
        format!("BF2E1280 10{}", "07".repeat(16)).replace(' ', "")
    );
    assert_eq!(EuiccChallenge::parse(&challenge.to_bytes()), Ok(challenge));
    for code in [0u32, 1, 127] {
        let r = NotificationSentResult::from_code(code).unwrap();
        assert_eq!(NotificationSentResult::parse(&r.to_bytes()), Ok(r));
    }
    assert!(NotificationSentResult::parse(&hex("BF3003800102").unwrap()).is_err());
}

#[test]
fn malformed_es10b_requests_are_refused_with_a_reason() {
    for bad in [
        "BF3000",           // NotificationSent without seqNumber
        "BF30038001",       // truncated
        "BF3003800180",     // negative seqNumber
        "BF2B05A003820107", // unknown search criterion
        "BF3400",           // memory reset without options
        "BF4103800101",     // cancel without a reason
        "BF3F038001FF",     // address not UTF-8
    ] {
        let bytes = hex(&bad.replace(' ', "")).unwrap_or_default();
        let e = Es10Request::parse(&bytes);
        assert!(e.is_err(), "{bad}: {e:?}");
        assert_eq!(
            e.unwrap_err().status(),
            crate::Status::IncorrectData,
            "{bad}"
        );
    }
}

#[test]
fn get_certs_answer_tags_each_certificate_implicitly() {
    let r = GetCertsResponse::Certs {
        eum_certificate: hex("3003020101").unwrap(),
        euicc_certificate: hex("3003020102").unwrap(),
    };
    // BF56 { A0 { A5 <EUM content> A6 <eUICC content> } } (SGP.32 GetCertsResponse)
    assert_eq!(upper(&r.to_bytes()), "BF560CA00AA503020101A603020102");
    assert_eq!(GetCertsResponse::parse(&r.to_bytes()), Ok(r));
    assert_eq!(
        upper(&GetCertsResponse::InvalidCiPkid.to_bytes()),
        "BF5603810101"
    );
    // The certificates in the wrong order are refused, not swapped.
    assert!(GetCertsResponse::parse(&hex("BF560CA00AA603020102A503020101").unwrap()).is_err());
}
