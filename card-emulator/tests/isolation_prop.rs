//! Property: over random APDU sequences with container switches, power cycles and
//! simulated crashes, (a) at most one container is activated, (b) no runtime response
//! carries data of a container that was disabled when it was sent, and (c) management
//! succeeds only where the policy allows it.

use card_emulator::state::CardState;
use card_emulator::store::{Store, StoreError};
use card_emulator::{profile, Card, VirtualCard};
use proptest::prelude::*;
use std::sync::{Arc, Mutex};

/// A store whose committed state outlives the card, so a "crash" can reopen it.
#[derive(Clone)]
struct Shared(Arc<Mutex<CardState>>);

impl Store for Shared {
    fn load(&self) -> Result<CardState, StoreError> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn commit(&mut self, s: &CardState) -> Result<(), StoreError> {
        *self.0.lock().unwrap() = s.clone();
        Ok(())
    }
}

const ICCID: [&str; 2] = ["984474560000214251F8", "98001032547698103214"];

#[derive(Debug, Clone)]
enum Step {
    /// A runtime APDU on channel 0.
    Runtime(&'static str),
    Enable(usize),
    Disable(usize),
    PowerCycle,
    Crash,
}

fn step() -> impl Strategy<Value = Step> {
    let runtime = prop::sample::select(vec![
        "00A4040C08F0565345434F4E54",
        "00A4040008F0565345434F4E5400",
        "00A4020C026F01",
        "00A4020C026F02",
        "00A4000C027F10",
        "00A4090C026F01",
        "00B0000018",
        "00B0000000",
        "002000810431323334",
        "002000810439393939",
        "00A4000C023F00",
        "00A4080C025000",
    ]);
    prop_oneof![
        6 => runtime.prop_map(Step::Runtime),
        2 => (0..2usize).prop_map(Step::Enable),
        1 => (0..2usize).prop_map(Step::Disable),
        1 => Just(Step::PowerCycle),
        1 => Just(Step::Crash),
    ]
}

fn hex(s: &str) -> Vec<u8> {
    apdu_specs::hexfmt::parse(s).unwrap()
}

/// ES10c on channel 1 (opened on demand); returns the result code.
fn es10(card: &mut Card, payload: String) -> u8 {
    let _ = card.transmit(&hex("0070000101"));
    let _ = card.transmit(&hex("01A4040C10A0000005591010FFFFFFFF8900000100"));
    let p = hex(&payload);
    let mut apdu = vec![0x81, 0xE2, 0x91, 0x00, p.len() as u8];
    apdu.extend(&p);
    apdu.push(0);
    let r = card.transmit(&apdu);
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00], "ES10c failed: {r:02X?}");
    r[r.len() - 3]
}

fn open(store: &Shared) -> Card {
    let mut c = Card::open(Box::new(store.clone())).unwrap();
    c.power_on();
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn containers_stay_isolated(steps in prop::collection::vec(step(), 1..50), locked in any::<bool>()) {
        let mut state = profile::build(profile::DEFAULT_PROFILE).unwrap();
        state.policy.es10_requires_secure_channel = locked;
        let store = Shared(Arc::new(Mutex::new(state)));
        let mut card = open(&store);
        for s in steps {
            let before = card.state().active_container();
            match s {
                Step::Runtime(a) => {
                    let r = card.transmit(&hex(a));
                    for (i, marker) in [&b"container A"[..], &b"container B"[..]].iter().enumerate() {
                        if before != Some(i) {
                            prop_assert!(
                                !r.windows(marker.len()).any(|w| w == *marker),
                                "disabled container {} leaked through {}: {:02X?}", i, a, r
                            );
                        }
                    }
                }
                Step::Enable(i) => {
                    let code = es10(&mut card, format!("BF3111A00C5A0A{}810100", ICCID[i]));
                    let expect = if locked { 3 } else if before == Some(i) { 2 } else { 0 };
                    prop_assert_eq!(code, expect);
                    let after = card.state().active_container();
                    prop_assert_eq!(after, if locked { before } else { Some(i) });
                }
                Step::Disable(i) => {
                    let code = es10(&mut card, format!("BF3211A00C5A0A{}810100", ICCID[i]));
                    let expect = if locked { 3 } else if before == Some(i) { 0 } else { 2 };
                    prop_assert_eq!(code, expect);
                    if !locked && before == Some(i) {
                        prop_assert_eq!(card.state().active_container(), None);
                    }
                }
                Step::PowerCycle => {
                    card.power_off();
                    card.power_on();
                }
                Step::Crash => {
                    drop(card);
                    card = open(&store);
                    prop_assert_eq!(card.state().active_container(), before);
                }
            }
            let enabled = card.state().containers().iter().filter(|c| c.enabled).count();
            prop_assert!(enabled <= 1, "{} containers enabled", enabled);
            prop_assert_eq!(card.state(), &*store.0.lock().unwrap());
        }
    }
}
