//! `h2::akamai` returns a typed result for every input; an Akamai string is well formed (`S|WU|P|PS`,
//! every part in its grammar); and once the result is known, bytes after the input do not change it.

#![no_main]

use huginn_fp::error::Error;
use huginn_fp::out::Out;
use huginn_fp::{h2, INPUT_CAP};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > INPUT_CAP {
        return;
    }
    let mut out = Out::with_capacity(256);
    let got = h2::akamai(data, &mut out);
    if got == Err(Error::NeedMore) {
        return;
    }
    if got.is_ok() {
        check_fingerprint(single_field(out.as_slice()));
    }
    // Nothing after the first header block (or after the first fatal error) is read.
    let mut longer = data.to_vec();
    longer.extend_from_slice(data);
    let mut again = Out::with_capacity(256);
    assert_eq!(h2::akamai(&longer, &mut again), got);
    assert_eq!(again.as_slice(), out.as_slice());
});

/// The one field of the output, asserting that its length prefix covers the output exactly.
fn single_field(buf: &[u8]) -> &[u8] {
    assert!(buf.len() >= 2);
    assert_eq!(usize::from(u16::from_le_bytes([buf[0], buf[1]])), buf.len() - 2);
    &buf[2..]
}

fn check_fingerprint(s: &[u8]) {
    let parts: Vec<&[u8]> = s.split(|&b| b == b'|').collect();
    let [settings, window, priorities, pseudo] = <[&[u8]; 4]>::try_from(parts).expect("four parts");
    if !settings.is_empty() {
        for param in settings.split(|&b| b == b';') {
            numbers(param, b':', 2);
        }
    }
    numbers(window, b':', 1);
    if priorities != b"0" {
        for priority in priorities.split(|&b| b == b',') {
            let n = numbers(priority, b':', 4);
            assert!(n[1] <= 1, "exclusive is a bit");
            assert!((1..=256).contains(&n[3]), "weight + 1");
        }
    }
    if !pseudo.is_empty() {
        for letter in pseudo.split(|&b| b == b',') {
            assert!([&b"m"[..], b"a", b"s", b"p"].contains(&letter));
        }
    }
}

/// `count` decimal u32 values separated by `sep`.
fn numbers(s: &[u8], sep: u8, count: usize) -> Vec<u64> {
    let values: Vec<u64> = s
        .split(|&b| b == sep)
        .map(|d| {
            assert!(!d.is_empty() && d.len() <= 10 && d.iter().all(u8::is_ascii_digit));
            std::str::from_utf8(d).unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(values.len(), count);
    assert!(values.iter().all(|&v| v <= u64::from(u32::MAX)));
    values
}
