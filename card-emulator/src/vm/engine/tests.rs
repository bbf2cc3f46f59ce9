//! The engine against the interface table: every listed host function links with its
//! type, nothing else does.

use super::*;

fn module_importing(imports: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {imports} (memory (export "memory") 1)
             (func (export "process") (result i32) (i32.const 0x9000)))"#
    ))
    .unwrap()
}

fn import(name: &str, params: usize, results: usize) -> String {
    format!(
        r#"(import "se" "{name}" (func (param {}) (result {})))"#,
        "i32 ".repeat(params),
        "i32 ".repeat(results)
    )
}

#[test]
fn every_host_function_of_the_table_validates_and_links_with_its_type() {
    let limits = AppletLimits::default();
    let all: String = HOST_FUNCTIONS
        .iter()
        .map(|(n, p, r)| import(n, *p, *r))
        .collect();
    let bytes = module_importing(&all);
    assert_eq!(validate(&bytes, &limits), Ok(()));
    Running::instantiate(&bytes, &limits).expect("links");
}

#[test]
fn a_host_function_with_another_type_or_name_or_module_is_refused() {
    let limits = AppletLimits::default();
    for bad in [
        import("random", 1, 1),
        import("storage_size", 0, 0),
        import("clock", 0, 1),
        r#"(import "env" "random" (func (param i32 i32) (result i32)))"#.to_string(),
        r#"(import "se" "mem" (memory 1))"#.to_string(),
    ] {
        assert_eq!(
            validate(&module_importing(&bad), &limits),
            Err(Status::IncorrectData),
            "{bad}"
        );
    }
}

#[test]
fn answer_status_keeps_what_an_applet_may_answer_and_maps_the_rest_to_6f00() {
    for (sw, want) in [
        (0x9000, 0x9000),
        (0x6A80, 0x6A80),
        (0x63C2, 0x63C2),
        (0x6282, 0x6282),
        (0x6100, 0x6F00),
        (0x6C10, 0x6F00),
        (0x9001, 0x6F00),
        (-1, 0x6F00),
        (0x1_9000, 0x6F00),
    ] {
        assert_eq!(answer_status(sw).to_u16(), want, "{sw:X}");
    }
}

#[test]
fn aes_helpers_match_the_fips_197_and_sp_800_38b_vectors() {
    let key = apdu_specs::hexfmt::parse("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
    let mut block = apdu_specs::hexfmt::parse("6bc1bee22e409f96e93d7e117393172a").unwrap();
    crypto::aes_ecb(false, &key, &mut block).unwrap();
    assert_eq!(
        apdu_specs::hexfmt::upper(&block),
        "3AD77BB40D7A3660A89ECAF32466EF97"
    );
    crypto::aes_ecb(true, &key, &mut block).unwrap();
    assert_eq!(
        apdu_specs::hexfmt::upper(&block),
        "6BC1BEE22E409F96E93D7E117393172A"
    );
    // SP 800-38B D.1, example 2 (one block).
    let tag = crypto::aes_cmac(
        &key,
        &apdu_specs::hexfmt::parse("6bc1bee22e409f96e93d7e117393172a").unwrap(),
    )
    .unwrap();
    assert_eq!(
        apdu_specs::hexfmt::upper(&tag),
        "070A16B46B4D4144F79BDD9DD04A287C"
    );
    // SP 800-38A F.2.1 CBC-AES128 first block.
    let iv = apdu_specs::hexfmt::parse("000102030405060708090a0b0c0d0e0f").unwrap();
    let mut data = apdu_specs::hexfmt::parse("6bc1bee22e409f96e93d7e117393172a").unwrap();
    crypto::aes_cbc(false, &key, &iv, &mut data).unwrap();
    assert_eq!(
        apdu_specs::hexfmt::upper(&data),
        "7649ABAC8119B246CEE98E9B12E9197D"
    );
    crypto::aes_cbc(true, &key, &iv, &mut data).unwrap();
    assert_eq!(
        apdu_specs::hexfmt::upper(&data),
        "6BC1BEE22E409F96E93D7E117393172A"
    );
    assert_eq!(
        crypto::aes_ecb(false, &key[..15], &mut [0; 16]),
        Err(Status::IncorrectData)
    );
    assert_eq!(
        crypto::aes_ecb(false, &key, &mut [0; 15]),
        Err(Status::WrongLength)
    );
}

#[test]
fn proposals_outside_the_interface_are_refused_not_panicked_on() {
    let limits = AppletLimits::default();
    for text in [
        // An exception tag import (wasmi panics converting one if it gets that far).
        r#"(module (import "se" "t" (tag)) (memory (export "memory") 1)
             (func (export "process") (result i32) (i32.const 0x9000)))"#,
        // Two memories.
        r#"(module (memory (export "memory") 1) (memory 1)
             (func (export "process") (result i32) (i32.const 0x9000)))"#,
        // A tail call.
        r#"(module (memory (export "memory") 1)
             (func $f (result i32) (i32.const 0x9000))
             (func (export "process") (result i32) (return_call $f)))"#,
    ] {
        let bytes = wat::parse_str(text).unwrap();
        assert_eq!(
            validate(&bytes, &limits),
            Err(Status::IncorrectData),
            "{text}"
        );
    }
}
