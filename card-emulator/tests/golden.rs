//! Golden files of each released state format (under the workspace's tests/golden/) must
//! keep loading, with their content intact.

use card_emulator::store::{decode, encode};
use card_emulator::{Card, VirtualCard};

fn golden(name: &str) -> (String, Vec<u8>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    (
        path.display().to_string(),
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

#[test]
fn version_1_state_still_loads_and_serves_its_content() {
    let (path, bytes) = golden("card-state-v1.json");
    let state = decode(&bytes, &path).unwrap();
    assert_eq!(state.label, "vSE virtual secure element");
    assert_eq!(
        state.pins[0].tries_left, 2,
        "the golden card had one wrong PIN try"
    );
    let mut card = Card::in_memory(state);
    card.power_on();
    let r = card.transmit(&[0x00, 0xA4, 0x08, 0x0C, 0x04, 0x50, 0x00, 0x50, 0x05]);
    assert_eq!(r, [0x90, 0x00]);
    let r = card.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x05]);
    assert_eq!(r, b"GOLD1\x90\x00");
    // The PIN still verifies against its stored hash.
    let r = card.transmit(&[0x00, 0x20, 0x00, 0x81, 0x04, b'1', b'2', b'3', b'4']);
    assert_eq!(r, [0x90, 0x00]);
}

#[test]
fn current_writer_output_loads_back_identically() {
    let (path, bytes) = golden("card-state-v1.json");
    let state = decode(&bytes, &path).unwrap();
    assert_eq!(decode(&encode(&state), "re-encoded").unwrap(), state);
}

#[test]
fn version_2_state_with_containers_still_loads_and_serves_its_content() {
    let (path, bytes) = golden("card-state-v2.json");
    let state = decode(&bytes, &path).unwrap();
    assert_eq!(state.containers().len(), 2);
    assert_eq!(state.active_container(), Some(0));
    assert_eq!(state.containers()[0].pins[0].tries_left, 2);
    let mut card = Card::in_memory(state);
    card.power_on();
    let select = [
        0x00, 0xA4, 0x04, 0x0C, 0x08, 0xF0, 0x56, 0x53, 0x45, 0x43, 0x4F, 0x4E, 0x54,
    ];
    assert_eq!(card.transmit(&select), [0x90, 0x00]);
    assert_eq!(
        card.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x6F, 0x01]),
        [0x90, 0x00]
    );
    assert_eq!(
        card.transmit(&[0x00, 0xB0, 0x00, 0x00, 0x04]),
        b"GOLD\x90\x00"
    );
}
