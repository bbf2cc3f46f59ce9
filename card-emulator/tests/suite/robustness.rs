//! No byte string can panic the card, hang it or corrupt its stored state.

use crate::common;
use card_emulator::store::{decode, encode, MemoryStore, Store};
use card_emulator::{profile, Card, VirtualCard};
use proptest::prelude::*;

fn well_formed_apdu() -> impl Strategy<Value = Vec<u8>> {
    let ins = prop::sample::select(vec![
        0x20u8, 0x24, 0x2C, 0x70, 0x84, 0xA4, 0xB0, 0xB2, 0xC0, 0xCA, 0xD6, 0xDC, 0xE2, 0x00,
    ]);
    let cla = prop::sample::select(vec![0x00u8, 0x01, 0x02, 0x03, 0x10, 0x11, 0x80, 0x40, 0x0C]);
    (
        cla,
        ins,
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..40),
        prop::option::of(1usize..=300),
    )
        .prop_map(|(cla, ins, p1, p2, data, le)| {
            apdu_specs::Command::new(cla, ins, p1, p2)
                .with_data(data)
                .with_le(le)
                .to_bytes()
                .unwrap_or_default()
        })
}

#[derive(Debug, Clone)]
enum Step {
    Apdu(Vec<u8>),
    Raw(Vec<u8>),
    Reset,
    PowerCycle,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => well_formed_apdu().prop_map(Step::Apdu),
        2 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Step::Raw),
        1 => Just(Step::Reset),
        1 => Just(Step::PowerCycle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_sequence_gets_status_words_and_keeps_a_loadable_state(steps in prop::collection::vec(step(), 1..60)) {
        let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
        let mut card = Card::in_memory(state);
        card.power_on();
        for s in steps {
            match s {
                Step::Apdu(a) | Step::Raw(a) => {
                    let r = card.transmit(&a);
                    prop_assert!(r.len() >= 2, "no status word for {:02X?}", a);
                    prop_assert_ne!(&r[r.len() - 2..], &[0x6F, 0x00][..], "internal error for {:02X?}", a);
                }
                Step::Reset => { card.reset(); }
                Step::PowerCycle => { card.power_off(); card.power_on(); }
            }
            prop_assert!(card.state().validate().is_ok());
        }
        let bytes = encode(card.state());
        prop_assert_eq!(&decode(&bytes, "x").unwrap(), card.state());
    }
}

/// Counts commits so a test can see where the card makes state durable.
struct CountingStore(MemoryStore, std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Store for CountingStore {
    fn load(&self) -> Result<card_emulator::state::CardState, card_emulator::store::StoreError> {
        self.0.load()
    }
    fn commit(
        &mut self,
        s: &card_emulator::state::CardState,
    ) -> Result<(), card_emulator::store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.commit(s)
    }
}

#[test]
fn one_commit_per_write_two_per_pin_try_none_for_reads() {
    use std::sync::atomic::Ordering::SeqCst;
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let store = CountingStore(MemoryStore::new(state), count.clone());
    let mut card = Card::open(Box::new(store)).unwrap();
    card.power_on();
    assert_eq!(common::tx(&mut card, "00A4080C0450005005"), "9000");
    assert_eq!(common::tx(&mut card, "00B0000001"), "009000");
    assert_eq!(count.load(SeqCst), 0);
    assert_eq!(common::tx(&mut card, "00D6000001AA"), "9000");
    assert_eq!(count.load(SeqCst), 1);
    // Correct PIN: the decrement is committed before the comparison, then the reset counter.
    assert_eq!(common::tx(&mut card, "002000810431323334"), "9000");
    assert_eq!(count.load(SeqCst), 3);
    // Wrong PIN: only the decrement.
    assert_eq!(common::tx(&mut card, "002000810439393939"), "63C2");
    assert_eq!(count.load(SeqCst), 4);
    // A refused write commits nothing.
    assert_eq!(common::tx(&mut card, "00D67FFF01AA"), "6B00");
    assert_eq!(count.load(SeqCst), 4);
}
