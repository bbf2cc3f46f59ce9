//! Heap allocations per APDU on the hot read path, counted per thread: SELECT by FID and
//! READ BINARY allocate exactly their answer, once (a second allocation, a realloc to
//! append the status word, cost a quarter of the pair's time before it was removed).

use card_emulator::{profile, Card, VirtualCard};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local Cell that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations `f` makes on this thread, and its result.
fn counted<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

const SELECT_APP: &[u8] = &[
    0x00, 0xA4, 0x04, 0x0C, 0x08, 0xF0, 0x56, 0x53, 0x45, 0x44, 0x45, 0x4D, 0x4F,
];
const SELECT_5001: &[u8] = &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x50, 0x01];
const READ_256: &[u8] = &[0x00, 0xB0, 0x00, 0x00, 0x00];

#[test]
fn select_and_read_allocate_only_their_answer() {
    let mut card = Card::in_memory(profile::build(profile::DEFAULT_PROFILE).unwrap());
    card.power_on();
    let (n, r) = counted(|| card.transmit(SELECT_APP));
    assert_eq!(r, [0x90, 0x00]);
    assert_eq!(n, 1, "SELECT by AID");
    for _ in 0..3 {
        let (n, r) = counted(|| card.transmit(SELECT_5001));
        assert_eq!(r, [0x90, 0x00]);
        assert_eq!(n, 1, "SELECT by FID");
        let (n, r) = counted(|| card.transmit(READ_256));
        assert_eq!(r.len(), 258);
        assert_eq!(&r[256..], [0x90, 0x00]);
        assert_eq!(n, 1, "READ BINARY of 256 bytes");
    }
}

#[test]
fn read_record_and_get_response_allocate_only_their_answer() {
    let mut card = Card::in_memory(profile::build(profile::DEFAULT_PROFILE).unwrap());
    card.power_on();
    // EF.DIR (2F00) is a linear fixed EF under the MF; READ RECORD 1 of the current EF.
    assert_eq!(
        card.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x2F, 0x00]),
        [0x90, 0x00]
    );
    let (n, r) = counted(|| card.transmit(&[0x00, 0xB2, 0x01, 0x04, 0x00]));
    assert_eq!(&r[r.len() - 2..], [0x90, 0x00], "{r:02X?}");
    assert_eq!(n, 1, "READ RECORD");
    // READ BINARY without Le (case 1/3, as T=0 sends it) announces 61xx, then GET RESPONSE.
    assert_eq!(card.transmit(SELECT_APP), [0x90, 0x00]);
    assert_eq!(card.transmit(SELECT_5001), [0x90, 0x00]);
    let r = card.transmit(&[0x00, 0xB0, 0x00, 0x00]);
    assert_eq!(r[0], 0x61, "{r:02X?}");
    let (n, r) = counted(|| card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00]));
    assert_eq!(r.len(), 258);
    assert_eq!(n, 1, "GET RESPONSE");
}
