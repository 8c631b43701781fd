//! `tls::client_hello_needed` and `tls::fingerprint` agree on every input, and every fingerprint they
//! produce is well formed: the framing of the twelve fields, the JA4 shapes, and hashes that match the
//! raw strings they summarise.

#![no_main]

use huginn_fp::error::Error;
use huginn_fp::hash::{md5_hex, sha256_hex12};
use huginn_fp::out::Out;
use huginn_fp::{tls, INPUT_CAP};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The entry points refuse longer inputs before any parser runs.
    if data.len() > INPUT_CAP {
        return;
    }
    let needed = tls::client_hello_needed(data);
    let mut out = Out::with_capacity(1024);
    let got = tls::fingerprint(data, &mut out);
    match needed {
        Ok(0) => assert_ne!(got, Err(Error::NeedMore)),
        Ok(n) => {
            assert_eq!(got, Err(Error::NeedMore));
            assert!(
                data.len() + n <= INPUT_CAP,
                "asks for more than the buffering cap"
            );
        }
        Err(e) => assert_eq!(got, Err(e)),
    }
    if got.is_err() {
        return;
    }
    check_fields(&out);
    // Bytes after a complete hello are never read.
    let mut longer = data.to_vec();
    longer.extend_from_slice(data);
    let mut again = Out::with_capacity(1024);
    assert_eq!(tls::fingerprint(&longer, &mut again), Ok(()));
    assert_eq!(again.as_slice(), out.as_slice());
});

fn check_fields(out: &Out) {
    let fields = exact_fields(out.as_slice());
    assert_eq!(fields.len(), 12);
    let [ja4, ja4_r, ja4_o, ja4_or, s1, s1_r, ja3, ja3_hash, sni, alpn, versions, has_sni] =
        <[&[u8]; 12]>::try_from(fields).unwrap();
    for (hashed, raw) in [(ja4, ja4_r), (ja4_o, ja4_or), (s1, s1_r)] {
        check_ja4(hashed, raw);
    }
    // JA4_o differs from JA4 only in list order; JA4_s1 only in its extension count and part c.
    assert_eq!(ja4[..10], ja4_o[..10]);
    assert_eq!(ja4[..6], s1[..6]);
    assert_eq!(ja4[8..23], s1[8..23]);
    // Counts of part a match the original-order raw lists (capped at 99).
    let (_, b, c) = split3(ja4_or);
    let extensions = c.split(|&x| x == b'_').next().unwrap();
    assert_eq!(ja4[4..6], two_digits(items(b)));
    assert_eq!(ja4[6..8], two_digits(items(extensions)));

    assert_eq!(ja3.iter().filter(|&&x| x == b',').count(), 4);
    assert!(ja3.iter().all(|&x| x.is_ascii_digit() || x == b',' || x == b'-'));
    assert_eq!(ja3_hash, md5_hex(ja3));

    assert_eq!(has_sni.len(), 1);
    assert!(has_sni[0] <= 1);
    assert_eq!(ja4[3], if has_sni[0] == 1 { b'd' } else { b'i' });
    assert!(has_sni[0] == 1 || sni.is_empty());
    let mut rest = alpn;
    while let Some((&n, tail)) = rest.split_first() {
        rest = tail.get(usize::from(n)..).expect("ALPN entry overruns its field");
    }
    assert_eq!(versions.len() % 2, 0);
    for v in versions.chunks(2) {
        assert!(!(v[0] == v[1] && v[0] & 0x0f == 0x0a), "GREASE in versions");
    }
}

/// The output's fields, asserting that the length prefixes tile it exactly.
fn exact_fields(buf: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        assert!(rest.len() >= 2, "dangling length prefix");
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        fields.push(rest.get(2..2 + n).expect("field overruns the output"));
        rest = &rest[2 + n..];
    }
    fields
}

/// A hashed JA4 form and its raw form: same part a, and b and c are the truncated SHA-256 of the raw parts.
fn check_ja4(hashed: &[u8], raw: &[u8]) {
    assert_eq!(hashed.len(), 36);
    let a = &hashed[..10];
    assert_eq!(a[0], b't');
    assert!([
        &b"13"[..],
        b"12",
        b"11",
        b"10",
        b"s3",
        b"s2",
        b"d1",
        b"d2",
        b"d3",
        b"00"
    ]
    .contains(&&a[1..3]));
    assert!(a[3] == b'd' || a[3] == b'i');
    assert!(a[4..8].iter().all(u8::is_ascii_digit));
    assert!(a[8..10].iter().all(u8::is_ascii_alphanumeric));
    let (raw_a, raw_b, raw_c) = split3(raw);
    assert_eq!(raw_a, a);
    assert!(raw
        .iter()
        .all(|&x| matches!(x, b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'_' | b',')));
    let (_, b, c) = split3(hashed);
    assert_eq!(b, hash12(raw_b));
    assert_eq!(c, hash12(raw_c));
}

fn hash12(s: &[u8]) -> [u8; 12] {
    if s.is_empty() {
        [b'0'; 12]
    } else {
        sha256_hex12(s)
    }
}

/// `a_b_c` split at its first two underscores (c may hold one more).
fn split3(s: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut parts = s.splitn(3, |&x| x == b'_');
    let (a, b, c) = (parts.next(), parts.next(), parts.next());
    (a.unwrap(), b.expect("no part b"), c.expect("no part c"))
}

/// Items of a comma-separated list of 4-digit hex values.
fn items(list: &[u8]) -> usize {
    if list.is_empty() {
        return 0;
    }
    assert_eq!(list.len() % 5, 4, "hex list items are 4 digits");
    list.len() / 5 + 1
}

fn two_digits(n: usize) -> [u8; 2] {
    let n = n.min(99) as u8;
    [b'0' + n / 10, b'0' + n % 10]
}
