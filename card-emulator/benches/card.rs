//! In-process card speed: SELECT by AID, SELECT by FID + READ BINARY 256; the durable
//! UPDATE BINARY of 250 bytes (one journal entry, appended and fdatasynced) on a card whose
//! state holds 1 MiB of files and on the default card, against a bare append of as many
//! bytes + fdatasync in the same directory (the floor); the snapshot a compaction writes.

use card_emulator::state::{Access, CardState, FileBody, FileNode};
use card_emulator::store::{encode, FileStore, Store};
use card_emulator::{profile, Card, VirtualCard};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
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

/// The default profile's state plus `bytes` of files: transparent EFs of 16 KiB under the MF.
fn state_with_files(bytes: usize) -> CardState {
    let mut s = profile::build(profile::DEFAULT_PROFILE).unwrap();
    let size = 16 * 1024;
    for i in 0..bytes / size {
        let id = s.files.len();
        s.files.push(FileNode {
            fid: 0x6000 + i as u16,
            parent: Some(0),
            name: None,
            sfi: None,
            read: Access::Always,
            update: Access::Always,
            body: FileBody::Transparent {
                data: vec![i as u8; size],
            },
        });
        if let FileBody::Df { children } = &mut s.files[0].body {
            children.push(id);
        }
    }
    s.validate().unwrap();
    s
}

/// A card on a file store in `dir` with EF 5005 (4096 bytes) selected; the snapshot's size.
fn file_card(dir: &Path, state: &CardState) -> (Card, u64) {
    let path = dir.join("card.json");
    FileStore::create(&path, state, false).unwrap();
    let mut card = Card::open(Box::new(FileStore::open(&path).unwrap())).unwrap();
    card.power_on();
    assert_eq!(card.transmit(SELECT_APP), [0x90, 0x00]);
    assert_eq!(
        card.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x50, 0x05]),
        [0x90, 0x00]
    );
    (card, std::fs::metadata(&path).unwrap().len())
}

/// UPDATE BINARY at offset 0 of 250 bytes of `v`.
fn update_250(v: u8) -> Vec<u8> {
    let mut apdu = vec![0x00, 0xD6, 0x00, 0x00, 250];
    apdu.extend(std::iter::repeat_n(v, 250));
    apdu
}

fn durable(c: &mut Criterion) {
    let big_dir = tempfile::tempdir().unwrap();
    let big_state = state_with_files(1 << 20);
    let (mut big, big_size) = file_card(big_dir.path(), &big_state);
    let small_dir = tempfile::tempdir().unwrap();
    let (mut small, small_size) = file_card(
        small_dir.path(),
        &profile::build(profile::DEFAULT_PROFILE).unwrap(),
    );
    // One entry's size: how much the journal grows with one UPDATE BINARY.
    let journal = big_dir.path().join("card.json.journal");
    let before = std::fs::metadata(&journal).unwrap().len();
    assert_eq!(big.transmit(&update_250(0x5A)), [0x90, 0x00]);
    let entry = std::fs::metadata(&journal).unwrap().len() - before;

    println!(
        "durable: snapshots {big_size} bytes (1 MiB of files) and {small_size} bytes (default card); one entry {entry} bytes"
    );
    let mut g = c.benchmark_group("durable");
    g.sample_size(30).measurement_time(Duration::from_secs(10));
    let mut i = 0u8;
    g.bench_function("(a) update binary 250, card with 1 MiB of files", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            assert_eq!(big.transmit(&update_250(i)), [0x90, 0x00]);
        })
    });
    g.bench_function("(b) update binary 250, default card", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            assert_eq!(small.transmit(&update_250(i)), [0x90, 0x00]);
        })
    });
    let bare = big_dir.path().join("bare");
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&bare)
        .unwrap();
    let bytes = vec![0x5Au8; entry as usize];
    let mut written = 0u64;
    g.bench_function("(c) bare append of an entry's size + fdatasync", |b| {
        b.iter(|| {
            // Same bound as the journal's, so the file stays as small as it does.
            if written > 2 * big_size {
                f.set_len(0).unwrap();
                written = 0;
            }
            f.write_all(&bytes).unwrap();
            f.sync_data().unwrap();
            written += entry;
        })
    });
    // What a compaction of the 1 MiB card costs (once per bound's worth of entries).
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let mut store = FileStore::open(&big_dir.path().join("card.json")).unwrap();
    let merged = store.load().unwrap();
    g.bench_function(
        "snapshot of the 1 MiB card (encode, write, fsync, rename, dir fsync)",
        |b| b.iter(|| store.commit(&merged).unwrap()),
    );
    g.bench_function("encode the 1 MiB card's snapshot only", |b| {
        b.iter(|| black_box(encode(black_box(&big_state))))
    });
    g.finish();
}

/// (a), (b) and (c) again, one of each per round, so that a busy machine (other builds,
/// other disk writers) weighs on all three alike; prints medians (the append path) and
/// means (with the compactions each bound brings) over the rounds.
fn interleaved(_: &mut Criterion) {
    let rounds: usize = std::env::var("DURABLE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let big_dir = tempfile::tempdir().unwrap();
    let (mut big, big_size) = file_card(big_dir.path(), &state_with_files(1 << 20));
    let small_dir = tempfile::tempdir().unwrap();
    let (mut small, _) = file_card(
        small_dir.path(),
        &profile::build(profile::DEFAULT_PROFILE).unwrap(),
    );
    let journal = big_dir.path().join("card.json.journal");
    let before = std::fs::metadata(&journal).unwrap().len();
    assert_eq!(big.transmit(&update_250(0x5A)), [0x90, 0x00]);
    let entry = std::fs::metadata(&journal).unwrap().len() - before;
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(big_dir.path().join("bare"))
        .unwrap();
    let bytes = vec![0x5Au8; entry as usize];
    let mut written = 0u64;
    let mut t = [Vec::new(), Vec::new(), Vec::new()];
    for r in 0..rounds {
        let apdu = update_250(r as u8);
        // Each goes first, second and third in turn (an fdatasync may wait for the last).
        for k in (0..3).map(|k| (k + r) % 3) {
            let start = std::time::Instant::now();
            match k {
                0 => assert_eq!(big.transmit(&apdu), [0x90, 0x00]),
                1 => assert_eq!(small.transmit(&apdu), [0x90, 0x00]),
                _ => {
                    if written > 2 * big_size {
                        f.set_len(0).unwrap();
                        written = 0;
                    }
                    f.write_all(&bytes).unwrap();
                    f.sync_data().unwrap();
                    written += entry;
                }
            }
            t[k].push(start.elapsed());
        }
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let stats: Vec<(f64, f64)> = t
        .iter_mut()
        .map(|v| {
            v.sort();
            let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len() as f64;
            (us(v[v.len() / 2]), mean)
        })
        .collect();
    println!("durable, {rounds} interleaved rounds (entry and bare append: {entry} bytes):");
    for (name, (median, mean)) in ["(a) 1 MiB card", "(b) default card", "(c) bare append"]
        .iter()
        .zip(&stats)
    {
        println!("  {name:<18} median {median:>8.1} us   mean {mean:>8.1} us");
    }
    println!(
        "  (a)/(c) median {:.2}, mean {:.2};  (a)/(b) median {:.2}, mean {:.2}",
        stats[0].0 / stats[2].0,
        stats[0].1 / stats[2].1,
        stats[0].0 / stats[1].0,
        stats[0].1 / stats[1].1
    );
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
    interleaved,
    container_switch,
    scp03_overhead
);
criterion_main!(benches);
