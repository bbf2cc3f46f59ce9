//! Loaded applets in process: a trivial command to a loaded WebAssembly applet (echo.wat,
//! `80 10` with 3 bytes) next to a trivial command to a built-in applet (the card manager's
//! `80 CA 00 66`, GET DATA of the card recognition data, and the ISO READ BINARY of 10
//! bytes, which no applet handles), one HOTP generation of the C applet (hotp/hotp.c, built with clang when it is
//! installed), and INSTALL [for load] + LOAD + INSTALL [for install] of a 16 KiB module.

use card_emulator::applet_host::GpHost;
use card_emulator::{applet_sources, profile, Card, VirtualCard};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use secure_channel::StaticKeys;
use std::hint::black_box;

const ISDP_A: &[u8] = &[
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x10, 0x00,
];
const PACKAGE: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0xF1, 0xEC, 0x4F, 0x00];
const APPLET: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0xF1, 0xEC, 0x4F, 0x00, 0x01];
const ECHO: &[u8] = &[0x80, 0x10, 0x00, 0x00, 0x03, 0xAB, 0xCD, 0xEF, 0x00];
const GET_CARD_DATA: &[u8] = &[0x80, 0xCA, 0x00, 0x66, 0x00];
const SELECT_ISD: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00,
];
const SELECT_APPLET: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x00, 0xF1, 0xEC, 0x4F, 0x00, 0x01, 0x00,
];

fn fresh_card() -> Card {
    let mut c = Card::in_memory(profile::build(profile::DEFAULT_PROFILE).unwrap());
    c.power_on();
    c
}

/// Load `module` and install it as APPLET with `params`, then select it.
fn with_applet(module: &[u8], params: &[u8], storage: u32) -> Card {
    let mut c = fresh_card();
    let tx = &mut |a: &[u8]| c.transmit(a);
    let mut gp = GpHost::open(tx, &StaticKeys::gp_default()).unwrap();
    assert_eq!(gp.load(tx, ISDP_A, PACKAGE, module).unwrap(), 0x9000);
    let sw = gp.install(tx, PACKAGE, APPLET, params, Some(storage));
    assert_eq!(sw.unwrap(), 0x9000);
    let r = c.transmit(SELECT_APPLET);
    assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
    c
}

fn echo_wasm() -> Vec<u8> {
    wat::parse_str(applet_sources::wat_text("echo.wat").unwrap()).unwrap()
}

/// echo.wat with a data segment that makes the module 16 KiB.
fn module_16k() -> Vec<u8> {
    let text = applet_sources::wat_text("echo.wat").unwrap();
    let end = text.rfind(')').unwrap();
    let filler: String = (0..16 * 1024 - 900)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let padded = format!("{} (data (i32.const 70000) \"{filler}\"))", &text[..end]);
    let m = wat::parse_str(padded).unwrap();
    assert!(
        (16 * 1024 - 200..=16 * 1024 + 200).contains(&m.len()),
        "{}",
        m.len()
    );
    m
}

fn commands(c: &mut Criterion) {
    let mut g = c.benchmark_group("applets");
    g.throughput(Throughput::Elements(1));
    let mut card = with_applet(&echo_wasm(), &[], 16);
    assert_eq!(card.transmit(ECHO), [0xAB, 0xCD, 0xEF, 0x90, 0x00]);
    g.bench_function("loaded applet: echo 3 bytes (80 10)", |b| {
        b.iter(|| black_box(card.transmit(black_box(ECHO))))
    });
    let mut builtin = fresh_card();
    assert_eq!(builtin.transmit(SELECT_ISD).last(), Some(&0x00));
    let r = builtin.transmit(GET_CARD_DATA);
    assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
    g.bench_function("built-in applet: GET DATA card data (80 CA 00 66)", |b| {
        b.iter(|| black_box(builtin.transmit(black_box(GET_CARD_DATA))))
    });
    let mut iso = fresh_card();
    // EF.ICCID (2FE2): 10 bytes.
    let select = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0xE2];
    assert_eq!(iso.transmit(&select), [0x90, 0x00]);
    let read = [0x00, 0xB0, 0x00, 0x00, 0x0A];
    assert_eq!(iso.transmit(&read).len(), 12);
    g.bench_function("no applet: READ BINARY 10 bytes (00 B0)", |b| {
        b.iter(|| black_box(iso.transmit(black_box(&read))))
    });
    let dir = tempfile::tempdir().unwrap();
    match applet_sources::build_c("hotp/hotp.c", dir.path()) {
        Ok(hotp) => {
            // digits 6 || RFC 4226's secret.
            let mut params = vec![6];
            params.extend_from_slice(b"12345678901234567890");
            let mut card = with_applet(&hotp, &params, 128);
            assert_eq!(
                card.transmit(&[0x00, 0x20, 0x00, 0x81, 0x04, b'1', b'2', b'3', b'4']),
                [0x90, 0x00]
            );
            let first = card.transmit(&[0x80, 0x01, 0x00, 0x00, 0x00]);
            assert_eq!(first, b"755224\x90\x00");
            g.bench_function("HOTP applet: one OTP (80 01), durable counter", |b| {
                b.iter(|| black_box(card.transmit(black_box(&[0x80, 0x01, 0x00, 0x00, 0x00]))))
            });
        }
        Err(e) => eprintln!("HOTP bench skipped: {e}"),
    }
    g.finish();

    let mut g = c.benchmark_group("applet loading");
    g.sample_size(20);
    let module = module_16k();
    g.bench_function("INSTALL for load + LOAD + INSTALL, 16 KiB module", |b| {
        b.iter_batched(
            fresh_card,
            |mut c| {
                let tx = &mut |a: &[u8]| c.transmit(a);
                let mut gp = GpHost::open(tx, &StaticKeys::gp_default()).unwrap();
                assert_eq!(gp.load(tx, ISDP_A, PACKAGE, &module).unwrap(), 0x9000);
                let sw = gp.install(tx, PACKAGE, APPLET, &[], Some(16)).unwrap();
                assert_eq!(sw, 0x9000);
                c
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, commands);
criterion_main!(benches);
