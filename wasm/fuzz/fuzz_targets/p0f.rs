//! `syn::p0f` returns a typed result for every input, and every signature it writes is a well-formed p0f
//! v3 raw signature: `ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass`.

#![no_main]

use huginn_fp::out::Out;
use huginn_fp::{syn, INPUT_CAP};
use libfuzzer_sys::fuzz_target;

const QUIRKS: [&[u8]; 16] = [
    b"df", b"id+", b"id-", b"ecn", b"0+", b"flow", b"seq-", b"ack+", b"uptr+", b"urgf+", b"pushf+", b"ts1-",
    b"ts2+", b"opt+", b"exws", b"bad",
];

fuzz_target!(|data: &[u8]| {
    if data.len() > INPUT_CAP {
        return;
    }
    let mut out = Out::with_capacity(256);
    if syn::p0f(data, &mut out).is_ok() {
        let buf = out.as_slice();
        assert!(buf.len() >= 2);
        assert_eq!(usize::from(u16::from_le_bytes([buf[0], buf[1]])), buf.len() - 2);
        check_signature(&buf[2..], data[0] >> 4);
    }
});

fn check_signature(s: &[u8], version: u8) {
    let parts: Vec<&[u8]> = s.split(|&b| b == b':').collect();
    let [ver, ttl, olen, mss, window, layout, quirks, pclass] =
        <[&[u8]; 8]>::try_from(parts).expect("eight parts");
    assert_eq!(ver, [b'0' + version]);
    let (ttl, dist) = split_once(ttl, b'+');
    assert!(number(ttl) <= 255);
    assert!(dist == b"?" || number(dist) <= 35);
    assert!(number(olen) <= 40 && number(olen).is_multiple_of(4));
    assert!(number(mss) <= 65535);
    let (size, scale) = split_once(window, b',');
    let size = size
        .strip_prefix(b"mss*")
        .or_else(|| size.strip_prefix(b"mtu*"))
        .unwrap_or(size);
    assert!(number(size) <= 65535);
    assert!(number(scale) <= 255);
    if !layout.is_empty() {
        let options: Vec<&[u8]> = layout.split(|&b| b == b',').collect();
        assert!(options.len() <= 24);
        for option in options {
            let known = [&b"nop"[..], b"mss", b"ws", b"sok", b"sack", b"ts"].contains(&option);
            let numbered = option.strip_prefix(b"eol+").or_else(|| option.strip_prefix(b"?"));
            assert!(
                known || numbered.is_some_and(|n| number(n) <= 65535),
                "bad option {option:?}"
            );
        }
    }
    if !quirks.is_empty() {
        let mut last = None;
        for quirk in quirks.split(|&b| b == b',') {
            let i = QUIRKS.iter().position(|&q| q == quirk).expect("known quirk");
            assert!(last.is_none_or(|l| l < i), "quirks in fixed order, once each");
            last = Some(i);
        }
    }
    assert!(pclass == b"0" || pclass == b"+");
}

fn split_once(s: &[u8], sep: u8) -> (&[u8], &[u8]) {
    let at = s.iter().position(|&b| b == sep).expect("separator");
    (&s[..at], &s[at + 1..])
}

fn number(d: &[u8]) -> u32 {
    assert!(
        !d.is_empty() && d.len() <= 5 && d.iter().all(u8::is_ascii_digit),
        "not a number: {d:?}"
    );
    assert!(d == b"0" || d[0] != b'0', "leading zero");
    std::str::from_utf8(d).unwrap().parse().unwrap()
}
