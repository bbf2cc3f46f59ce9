//! BER-TLV: `parse_all` accepts or refuses any bytes without panicking or recursing past
//! `MAX_DEPTH`; what it accepts re-encodes to bytes that parse to the same objects, and
//! the fast writer (`tlv::build`) agrees with the parser.

use apdu_specs::tlv::{self, Tlv, Value};

fn depth(t: &Tlv) -> usize {
    match t.value() {
        Value::Primitive(_) => 0,
        Value::Constructed(children) if children.is_empty() => 0,
        Value::Constructed(children) => 1 + children.iter().map(depth).max().unwrap_or(0),
    }
}

fn reencode(tlvs: &[Tlv]) -> Vec<u8> {
    tlvs.iter().flat_map(|t| t.to_vec()).collect()
}

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    let claimed = tlv::nesting_depth(data);
    let Ok(tlvs) = tlv::parse_all(data) else {
        return;
    };
    assert!(claimed <= tlv::MAX_DEPTH);
    let real = tlvs.iter().map(depth).max().unwrap_or(0);
    assert!(real <= tlv::MAX_DEPTH, "parse_all accepted depth {real}");

    // Re-encoding is canonical: it parses to the same objects and is a fixed point.
    let again = reencode(&tlvs);
    let reparsed = tlv::parse_all(&again).expect("a re-encoding parses");
    assert_eq!(reparsed, tlvs);
    assert_eq!(reencode(&reparsed), again);

    for t in &tlvs {
        let tag = tlv::tag_number(t.tag());
        match t.value() {
            Value::Primitive(v) => {
                assert!(tlv::find_primitive(&tlvs[..], tag).is_some());
                // The fast writer's object parses back to the same object. (Not compared
                // with `Tlv::to_vec`: iso7816-tlv 0.4 writes length 127 as `81 7F`, not
                // minimal; our writer writes `7F`.)
                let ours = tlv::build(tag, v);
                assert_eq!(
                    tlv::parse_all(&ours).as_deref(),
                    Ok(std::slice::from_ref(t))
                );
                assert!(ours.len() <= t.to_vec().len());
            }
            Value::Constructed(_) => {
                assert!(tlv::find_constructed(&tlvs[..], tag).is_some());
            }
        }
    }
}
