//! ES10b/ES10c: any STORE DATA payload parses into one typed request or fails with a typed
//! error; a parsed request encodes, and its encoding parses to the same request. The
//! response parsers (the terminal's side) obey the same round trip, and the card's STORE
//! DATA reassembler returns exactly what `segment` cut.

use apdu_specs::es10::response::{EidResponse, ProfileInfoListResponse};
use apdu_specs::es10::store_data::{segment, StoreDataAssembler, StoreDataProgress};
use apdu_specs::es10::{
    CancelSessionResponse, Es10Request, EuiccChallenge, EuiccConfiguredAddresses, EuiccInfo1,
    EuiccInfo2, GetCertsResponse, ListNotificationResponse, NotificationMetadata, RatResponse,
    RetrieveNotificationsListResponse,
};

macro_rules! round_trip {
    ($data:expr, $($ty:ty),+) => {
        $(
            if let Ok(v) = <$ty>::parse($data) {
                let bytes = v.to_bytes();
                assert_eq!(<$ty>::parse(&bytes).as_ref(), Ok(&v), concat!(stringify!($ty), " round trip"));
            }
        )+
    };
}

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    match Es10Request::parse(data) {
        Ok(req) => {
            assert_eq!(Es10Request::function_tag(data), Some(req.tag()));
            let bytes = req.to_bytes().expect("a request the card accepted encodes");
            assert_eq!(Es10Request::parse(&bytes).as_ref(), Ok(&req));
            assert_eq!(
                req.to_bytes().as_ref(),
                Ok(&bytes),
                "encoding is a fixed point"
            );
        }
        Err(e) => {
            // Every refusal maps to a status word the card can answer.
            let sw = e.status().to_u16();
            assert!(
                sw >> 8 != 0x90 && sw >> 8 != 0x61,
                "error {e} answered {sw:04X}"
            );
        }
    }
    round_trip!(
        data,
        EidResponse,
        ProfileInfoListResponse,
        EuiccConfiguredAddresses,
        RatResponse,
        EuiccInfo1,
        EuiccInfo2,
        EuiccChallenge,
        NotificationMetadata,
        ListNotificationResponse,
        RetrieveNotificationsListResponse,
        CancelSessionResponse,
        GetCertsResponse
    );

    // STORE DATA: segment the payload with a fuzzed block size, reassemble, compare.
    if let Some((&mss, payload)) = data.split_first() {
        let mss = usize::from(mss).max(1);
        if let Ok(blocks) = segment(payload, mss) {
            let mut asm = StoreDataAssembler::new();
            let n = blocks.len();
            for (i, (p1, p2, chunk)) in blocks.into_iter().enumerate() {
                match asm
                    .feed(p1, p2, chunk)
                    .expect("segmented blocks are accepted")
                {
                    StoreDataProgress::Incomplete => assert!(i + 1 < n && asm.in_progress()),
                    StoreDataProgress::Complete(whole) => {
                        assert_eq!(i + 1, n);
                        assert_eq!(whole, payload);
                        assert!(!asm.in_progress());
                    }
                }
            }
        }
        // Arbitrary blocks (p1, p2, data) never panic; errors drop the sequence.
        let mut asm = StoreDataAssembler::new();
        for block in payload.chunks(40) {
            if let [p1, p2, rest @ ..] = block {
                if asm.feed(*p1, *p2, rest).is_err() {
                    assert!(!asm.in_progress());
                }
            }
        }
    }
}
