//! In-process card speed: SELECT by AID, SELECT by FID + READ BINARY 256, and a durable
//! UPDATE BINARY compared with a bare write + fsync + rename (+ directory fsync) of the
//! same number of bytes, which is the floor for an atomic file replacement.

use card_emulator::store::{encode, FileStore};
use card_emulator::{profile, Card, VirtualCard};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

const SELECT_APP: &[u8] = &[
    0x00, 0xA4, 0x04, 0x0C, 0x08, 0xF0, 0x56, 0x53, 0x45, 0x44, 0x45, 0x4D, 0x4F,
];
const SELECT_5001: &[u8] = &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x50, 0x01];
const READ_256: &[u8] = &[0x00, 0xB0, 0x00, 0x00, 0x00];

fn memory_card() -> Card {
    let mut c = Card::in_memory(profile::build(profile::DEFAULT_PROFILE).unwrap());
    c.power_on();
    c
}

fn in_memory(c: &mut Criterion) {
    let mut g = c.benchmark_group("in-memory");
    g.throughput(Throughput::Elements(1));
    let mut card = memory_card();
    g.bench_function("select by AID", |b| {
        b.iter(|| black_box(card.transmit(black_box(SELECT_APP))))
    });
    let mut card = memory_card();
    assert_eq!(card.transmit(SELECT_APP), [0x90, 0x00]);
    g.bench_function("select by FID + read binary 256 (pair)", |b| {
        b.iter(|| {
            let s = card.transmit(black_box(SELECT_5001));
            let r = card.transmit(black_box(READ_256));
            debug_assert_eq!(r.len(), 258);
            black_box((s, r))
        })
    });
    g.finish();
}

fn durable(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let size = encode(&state).len();
    let store = FileStore::create(&path, &state, false).unwrap();
    let mut card = Card::open(Box::new(store)).unwrap();
    card.power_on();
    assert_eq!(card.transmit(SELECT_APP), [0x90, 0x00]);
    assert_eq!(
        card.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x50, 0x05]),
        [0x90, 0x00]
    );
    // UPDATE BINARY offset 0 with 256 bytes (extended Lc 000100).
    let mut update = vec![0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x00];
    update.extend(std::iter::repeat_n(0xA5, 256));
    let mut g = c.benchmark_group("durable");
    g.bench_function(format!("encode state only ({size} bytes)"), |b| {
        b.iter(|| black_box(encode(black_box(&state))))
    });
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    g.bench_function(
        format!("update binary 256 (state file {size} bytes)"),
        |b| {
            b.iter(|| {
                let r = card.transmit(&update);
                assert_eq!(r, [0x90, 0x00]);
            })
        },
    );
    let bare = dir.path().join("bare");
    let tmp = dir.path().join("bare.tmp");
    let bytes = vec![0x5Au8; size];
    let dirf = File::open(dir.path()).unwrap();
    g.bench_function(
        format!("bare write+fsync+rename+dir fsync ({size} bytes)"),
        |b| {
            b.iter(|| {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)
                    .unwrap();
                f.write_all(&bytes).unwrap();
                f.sync_data().unwrap();
                drop(f);
                std::fs::rename(&tmp, &bare).unwrap();
                dirf.sync_all().unwrap();
            })
        },
    );
    g.finish();
}

fn hex(s: &str) -> Vec<u8> {
    apdu_specs::hexfmt::parse(s).unwrap()
}

/// Durable container switch: ES10c EnableProfile alternating between the two containers,
/// on a card whose state is a file (one commit per switch).
fn container_switch(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let state = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let store = FileStore::create(&path, &state, false).unwrap();
    let mut card = Card::open(Box::new(store)).unwrap();
    card.power_on();
    assert_eq!(
        card.transmit(&hex("00A4040C10A0000005591010FFFFFFFF8900000100")),
        [0x90, 0x00]
    );
    let enable = [
        hex("80E2910014BF3111A00C5A0A9800103254769810321481010000"),
        hex("80E2910014BF3111A00C5A0A984474560000214251F881010000"),
    ];
    let mut g = c.benchmark_group("containers");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    let mut i = 0;
    g.bench_function("durable switch (ES10c EnableProfile)", |b| {
        b.iter(|| {
            let r = card.transmit(&enable[i % 2]);
            assert_eq!(r, hex("BF31038001009000"));
            i += 1;
        })
    });
    g.finish();
}

/// The same ES10c GetEuiccData in plain and inside an SCP03 session at level 33 (C-DEC,
/// C-MAC, R-ENC, R-MAC): card only, and host wrap + card + host unwrap.
fn scp03_overhead(c: &mut Criterion) {
    use secure_channel::{scp03, SecurityLevel, StaticKeys};
    let get_eid = hex("80E2910006BF3E035C015A00");
    let mut g = c.benchmark_group("scp03");
    g.throughput(Throughput::Elements(1));
    let mut card = memory_card();
    assert_eq!(
        card.transmit(&hex("00A4040C10A0000005591010FFFFFFFF8900000100")),
        [0x90, 0x00]
    );
    g.bench_function("plain ES10c GetEuiccData", |b| {
        b.iter(|| black_box(card.transmit(black_box(&get_eid))))
    });
    let keys = StaticKeys::gp_default();
    let hs = scp03::HostHandshake::new(&keys, 0).unwrap();
    let r = card.transmit(&hs.initialize_update());
    let (mut host, ea) = hs.authenticate(&r, SecurityLevel::FULL).unwrap();
    assert_eq!(card.transmit(&ea), [0x90, 0x00]);
    g.bench_function(
        "SCP03 level 33 GetEuiccData (host wrap + card + host unwrap)",
        |b| {
            b.iter(|| {
                let wire = host.wrap_command(&get_eid).unwrap();
                let r = card.transmit(&wire);
                black_box(host.unwrap_response(&r).unwrap())
            })
        },
    );
    g.finish();
}

criterion_group!(
    benches,
    in_memory,
    durable,
    container_switch,
    scp03_overhead
);
criterion_main!(benches);
