//! The JA4 family and JA3 of the first TLS ClientHello (spec sections 1-3), plus the SNI, ALPN and
//! supported_versions values the proxy reports alongside them.
//!
//! Every read goes through `Reader`, which returns `Malformed` instead of indexing past the input: a panic
//! in wasm32 is a trap. The fingerprint strings are formatted once into a reused scratch buffer, hashed
//! from there (through memos, as most connections repeat the hash inputs of an earlier one) and copied
//! into the output, so the hot path does not allocate.

use crate::error::Error;
use crate::hash::{md5_hex, sha256_hex12};
use crate::memo::Memo;
use crate::out::Out;
use crate::INPUT_CAP;
use std::cell::Cell;

const RECORD_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
const RECORD_HEADER: usize = 5;
const HANDSHAKE_HEADER: usize = 4;

const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_ALPN: u16 = 0x0010;
const EXT_PADDING: u16 = 0x0015;
const EXT_SESSION_TICKET: u16 = 0x0023;
const EXT_PRE_SHARED_KEY: u16 = 0x0029;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// How many more bytes `buf` (a connection's first client bytes) needs before it holds the whole first
/// ClientHello: 0 when complete, otherwise a lower bound.
pub fn client_hello_needed(buf: &[u8]) -> Result<usize, Error> {
    walk_records(buf, |_| {})
}

/// Writes the twelve fields documented on `hfp_tls_fingerprint` for the first ClientHello in `buf`.
pub fn fingerprint(buf: &[u8], out: &mut Out) -> Result<(), Error> {
    // A hello that spans records is joined into one buffer; the common single-record hello is read in place.
    let mut first: &[u8] = &[];
    let mut joined = Vec::new();
    let mut pieces = 0;
    let needed = walk_records(buf, |piece| {
        match pieces {
            0 => first = piece,
            1 => {
                joined.extend_from_slice(first);
                joined.extend_from_slice(piece);
            }
            _ => joined.extend_from_slice(piece),
        }
        pieces += 1;
    })?;
    if needed > 0 {
        return Err(Error::NeedMore);
    }
    let message = if pieces > 1 { &joined[..] } else { first };
    let hello = Hello::parse(message.get(HANDSHAKE_HEADER..).unwrap_or_default())?;
    let mut scratch = SCRATCH.try_with(Cell::take).unwrap_or_default();
    let result = write_fields(&hello, &mut scratch, out);
    let _ = SCRATCH.try_with(|s| s.set(scratch));
    result
}

/// Walks the records at the start of `buf` and hands `piece` each part of the first handshake message
/// (its 4-byte header included), in order. Returns how many more bytes that message needs: 0 once it is
/// complete, else a lower bound (the rest of the message plus one more record header if it cannot fit
/// in the current record). Bytes after the message are never looked at.
fn walk_records<'a>(buf: &'a [u8], mut piece: impl FnMut(&'a [u8])) -> Result<usize, Error> {
    match buf.first() {
        None => return Ok(RECORD_HEADER + HANDSHAKE_HEADER),
        Some(&RECORD_HANDSHAKE) => {}
        Some(b) if b & 0x80 != 0 => return Err(Error::Unsupported),
        Some(_) => return Err(Error::NotProtocol),
    }
    let more = |n: usize| if buf.len().saturating_add(n) > INPUT_CAP { Err(Error::OverLimit) } else { Ok(n) };
    let mut rest = buf;
    let mut header = [0u8; HANDSHAKE_HEADER];
    // Message bytes seen so far, and the message's total size once its header has been read.
    let mut have = 0;
    let mut total = HANDSHAKE_HEADER;
    loop {
        let mut r = Reader(rest);
        let (kind, len) = match (r.u8(), r.u16(), r.u16()) {
            (Ok(kind), Ok(_version), Ok(len)) => (kind, len as usize),
            _ => return more(RECORD_HEADER - rest.len() + total - have),
        };
        // Handshake fragments must not be empty, and nothing may be interleaved with them (RFC 8446 5.1).
        if kind != RECORD_HANDSHAKE || len == 0 {
            return Err(Error::Malformed);
        }
        let body = r.0.get(..len).unwrap_or(r.0);
        let mut used = 0;
        for &b in body.iter().take(HANDSHAKE_HEADER.saturating_sub(have)) {
            if let Some(slot) = header.get_mut(have) {
                *slot = b;
            }
            have += 1;
            used += 1;
            if have == HANDSHAKE_HEADER {
                if header[0] != HANDSHAKE_CLIENT_HELLO {
                    return Err(Error::Malformed);
                }
                total = HANDSHAKE_HEADER + u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
            }
        }
        let take = (body.len() - used).min(total - have);
        have += take;
        piece(body.get(..used + take).unwrap_or(body));
        if have == total {
            return Ok(0);
        }
        let missing = total - have;
        if body.len() < len {
            let record_left = len - body.len();
            return more(if missing <= record_left { missing } else { missing + RECORD_HEADER });
        }
        rest = r.0.get(len..).unwrap_or_default();
    }
}

/// Bounds-checked big-endian reads; running out of bytes means a declared length overran its structure.
#[derive(Clone)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let head = self.0.get(..n).ok_or(Error::Malformed)?;
        self.0 = self.0.get(n..).unwrap_or_default();
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        self.bytes(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        self.bytes(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a 1-byte length prefix.
    fn vec8(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u8()?;
        self.bytes(n as usize)
    }

    /// A vector with a 2-byte length prefix.
    fn vec16(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u16()?;
        self.bytes(n as usize)
    }
}

/// The parts of a ClientHello the fingerprints read, as slices of the message. Lists of `u16` have an
/// even length. Where an extension repeats, the first occurrence counts, except for JA3's supported_groups
/// and ec_point_formats, where the last one does (as in salesforce/ja3).
#[derive(Default)]
struct Hello<'a> {
    legacy_version: u16,
    ciphers: &'a [u8],
    /// The extension entries, already checked to fit exactly.
    extensions: &'a [u8],
    server_name: Option<&'a [u8]>,
    /// ALPN's protocol_name_list: entries of a 1-byte length and a name, already checked.
    alpn: &'a [u8],
    versions: &'a [u8],
    signature_algorithms: &'a [u8],
    groups: &'a [u8],
    point_formats: &'a [u8],
}

impl<'a> Hello<'a> {
    /// Parses a ClientHello body (after the handshake header); any overrun is `Malformed`.
    fn parse(body: &'a [u8]) -> Result<Hello<'a>, Error> {
        let mut r = Reader(body);
        let mut hello = Hello { legacy_version: r.u16()?, ..Hello::default() };
        r.bytes(32)?; // random
        r.vec8()?; // legacy_session_id
        hello.ciphers = even(r.vec16()?)?;
        r.vec8()?; // legacy_compression_methods

        // Old clients may end the hello here: no extensions at all.
        hello.extensions = if r.0.is_empty() { &[] } else { r.vec16()? };
        let mut exts = Reader(hello.extensions);
        while !exts.0.is_empty() {
            let kind = exts.u16()?;
            let data = exts.vec16()?;
            match kind {
                EXT_SERVER_NAME => {
                    let name = server_name(data)?;
                    hello.server_name = hello.server_name.or(Some(name));
                }
                EXT_ALPN => first(&mut hello.alpn, alpn(data)?),
                EXT_SUPPORTED_VERSIONS => first(&mut hello.versions, even(list(data, Reader::vec8)?)?),
                EXT_SIGNATURE_ALGORITHMS => {
                    first(&mut hello.signature_algorithms, even(list(data, Reader::vec16)?)?)
                }
                EXT_SUPPORTED_GROUPS => hello.groups = even(list(data, Reader::vec16)?)?,
                EXT_EC_POINT_FORMATS => hello.point_formats = list(data, Reader::vec8)?,
                _ => {}
            }
        }
        Ok(hello)
    }
}

/// Keeps the first occurrence of a repeated extension. An empty first occurrence is indistinguishable
/// from an absent one here, which no fingerprint needs to tell apart.
fn first<'a>(slot: &mut &'a [u8], value: &'a [u8]) {
    if slot.is_empty() {
        *slot = value;
    }
}

fn even(list: &[u8]) -> Result<&[u8], Error> {
    if list.len() % 2 == 0 {
        Ok(list)
    } else {
        Err(Error::Malformed)
    }
}

/// The length-prefixed list inside an extension's data; extension data of length 0 is an empty list.
fn list<'a>(
    data: &'a [u8],
    prefixed: fn(&mut Reader<'a>) -> Result<&'a [u8], Error>,
) -> Result<&'a [u8], Error> {
    if data.is_empty() {
        return Ok(data);
    }
    prefixed(&mut Reader(data))
}

/// The first host_name in a server_name extension (RFC 6066 3), empty if there is none.
fn server_name(data: &[u8]) -> Result<&[u8], Error> {
    let mut names = Reader(list(data, Reader::vec16)?);
    let mut host = None;
    while !names.0.is_empty() {
        let kind = names.u8()?;
        let name = names.vec16()?;
        if kind == 0 {
            host = host.or(Some(name));
        }
    }
    Ok(host.unwrap_or_default())
}

/// ALPN's protocol_name_list (RFC 7301 3.1), with every entry checked to fit.
fn alpn(data: &[u8]) -> Result<&[u8], Error> {
    let names = list(data, Reader::vec16)?;
    let mut r = Reader(names);
    while !r.0.is_empty() {
        r.vec8()?;
    }
    Ok(names)
}

/// JA4_s1 leaves out the extensions a client adds or drops with resumption and hello size (spec 2.6).
fn is_stable(kind: u16) -> bool {
    !matches!(kind, EXT_SESSION_TICKET | EXT_PRE_SHARED_KEY | EXT_PADDING)
}

fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

fn u16s(list: &[u8]) -> impl Iterator<Item = u16> + '_ {
    list.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).filter(|&v| !is_grease(v))
}

/// Non-GREASE extension types in wire order, from entries already checked by `Hello::parse`.
fn extension_types(entries: &[u8]) -> impl Iterator<Item = u16> + '_ {
    let mut r = Reader(entries);
    std::iter::from_fn(move || {
        let kind = r.u16().ok()?;
        r.vec16().ok()?;
        Some(kind)
    })
    .filter(|&v| !is_grease(v))
}

/// Buffers reused across calls so that fingerprinting does not allocate once they have grown, and the
/// hash memos, which serve later connections.
#[derive(Default)]
struct Scratch {
    text: Vec<u8>,
    /// Non-GREASE cipher suites and extension types in wire order, and sorted for JA4.
    ciphers: Vec<u16>,
    sorted_ciphers: Vec<u16>,
    extensions: Vec<u16>,
    /// Sorted, without SNI and ALPN (JA4 part c).
    sorted_extensions: Vec<u16>,
    sha256: Memo<12>,
    md5: Memo<32>,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = const {
        Cell::new(Scratch {
            text: Vec::new(),
            ciphers: Vec::new(),
            sorted_ciphers: Vec::new(),
            extensions: Vec::new(),
            sorted_extensions: Vec::new(),
            sha256: Memo::new(),
            md5: Memo::new(),
        })
    };
}

fn write_fields(hello: &Hello, scratch: &mut Scratch, out: &mut Out) -> Result<(), Error> {
    let Scratch { text, ciphers, sorted_ciphers, extensions, sorted_extensions, sha256, md5 } = scratch;
    ciphers.clear();
    ciphers.extend(u16s(hello.ciphers));
    sorted_ciphers.clear();
    sorted_ciphers.extend_from_slice(ciphers);
    sorted_ciphers.sort_unstable();
    extensions.clear();
    extensions.extend(extension_types(hello.extensions));
    sorted_extensions.clear();
    sorted_extensions.extend(extensions.iter().filter(|&&k| k != EXT_SERVER_NAME && k != EXT_ALPN));
    sorted_extensions.sort_unstable();
    let stable_count = extensions.iter().filter(|&&k| is_stable(k)).count();
    let sigalgs = hello.signature_algorithms;

    // Every string below, formatted once: at most 5 bytes per hex value and 6 per decimal one. JA3 writes
    // each cipher and extension once more, and the sigalg list follows each of the three c strings.
    let bound = 16
        + SLACK
        + 16 * ciphers.len()
        + 21 * extensions.len()
        + 3 * (5 * sigalgs.len() / 2 + 1)
        + 6 * hello.groups.len() / 2
        + 4 * hello.point_formats.len();
    if text.len() < bound {
        text.resize(bound, 0);
    }
    let mut w = Cursor { buf: text, pos: 0, overflow: false };
    let sorted_b = w.span(|w| w.hex_list(sorted_ciphers.iter().copied()));
    let sorted_c = w.span(|w| w.part_c(sorted_extensions.iter().copied(), sigalgs));
    let original_b = w.span(|w| w.hex_list(ciphers.iter().copied()));
    let original_c = w.span(|w| w.part_c(extensions.iter().copied(), sigalgs));
    let stable_c = if stable_count == extensions.len() {
        sorted_c
    } else {
        w.span(|w| {
            let stable = sorted_extensions.iter().copied().filter(|&k| is_stable(k));
            w.part_c(stable, sigalgs)
        })
    };
    let ja3 = w.span(|w| w.ja3(hello, ciphers, extensions));
    if w.overflow {
        return Err(Error::OverLimit);
    }
    let text = |(start, end): (usize, usize)| w.buf.get(start..end).unwrap_or_default();

    let a = part_a(hello, ciphers.len(), extensions.len());
    let mut stable_a = a;
    stable_a[6..8].copy_from_slice(&two_digits(stable_count));
    // A hashed JA4 part; an empty list is written as twelve zeros, not hashed.
    let mut hash12 = |s: &[u8]| if s.is_empty() { [b'0'; 12] } else { sha256.get(s, sha256_hex12) };
    let (b_hash, c_hash) = (hash12(text(sorted_b)), hash12(text(sorted_c)));
    let stable_c_hash = if stable_c == sorted_c { c_hash } else { hash12(text(stable_c)) };
    ja4(out, &a, &b_hash, &c_hash)?;
    ja4(out, &a, text(sorted_b), text(sorted_c))?;
    ja4(out, &a, &hash12(text(original_b)), &hash12(text(original_c)))?;
    ja4(out, &a, text(original_b), text(original_c))?;
    ja4(out, &stable_a, &b_hash, &stable_c_hash)?;
    ja4(out, &stable_a, text(sorted_b), text(stable_c))?;
    out.field(text(ja3))?;
    out.field(&md5.get(text(ja3), md5_hex))?;

    out.field(hello.server_name.unwrap_or_default())?;
    out.field(hello.alpn)?;
    out.begin_field();
    for v in u16s(hello.versions) {
        out.extend(&v.to_be_bytes());
    }
    out.end_field()?;
    out.field(&[u8::from(hello.server_name.is_some())])
}

/// One JA4 form: `a_b_c`.
fn ja4(out: &mut Out, a: &[u8], b: &[u8], c: &[u8]) -> Result<(), Error> {
    out.begin_field();
    out.extend(a);
    out.push(b'_');
    out.extend(b);
    out.push(b'_');
    out.extend(c);
    out.end_field()
}

/// JA4 part a (spec 2.2) with the given cipher and extension counts.
fn part_a(hello: &Hello, ciphers: usize, extensions: usize) -> [u8; 10] {
    let version = u16s(hello.versions).max().unwrap_or(hello.legacy_version);
    let [v1, v2] = version_code(version);
    let [c1, c2] = two_digits(ciphers);
    let [e1, e2] = two_digits(extensions);
    let [l1, l2] = alpn_chars(hello.alpn);
    let sni = if hello.server_name.is_some() { b'd' } else { b'i' };
    [b't', v1, v2, sni, c1, c2, e1, e2, l1, l2]
}

fn version_code(version: u16) -> [u8; 2] {
    match version {
        0x0304 => *b"13",
        0x0303 => *b"12",
        0x0302 => *b"11",
        0x0301 => *b"10",
        0x0300 => *b"s3",
        0x0002 => *b"s2",
        0xfeff => *b"d1",
        0xfefd => *b"d2",
        0xfefc => *b"d3",
        _ => *b"00",
    }
}

fn two_digits(n: usize) -> [u8; 2] {
    let n = n.min(99) as u8;
    [b'0' + n / 10, b'0' + n % 10]
}

/// The two ALPN characters of part a from the first protocol name, treated as bytes (spec 2.2).
fn alpn_chars(names: &[u8]) -> [u8; 2] {
    let name = Reader(names).vec8().unwrap_or_default();
    match (name.first(), name.last()) {
        (Some(&f), Some(&l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() => [f, l],
        (Some(&f), Some(&l)) => [HEX[usize::from(f >> 4)], HEX[usize::from(l & 0x0f)]],
        _ => *b"00",
    }
}

/// Formats into a buffer sized beforehand, one 8-byte store per list item: cheaper in wasm than pushing
/// byte by byte to a `Vec`, whose length must be reloaded after every byte stored.
struct Cursor<'b> {
    buf: &'b mut [u8],
    pos: usize,
    /// Set if the size bound was wrong; the output is then discarded rather than written short.
    overflow: bool,
}

/// Room `Cursor` needs past the end of what it writes.
const SLACK: usize = 8;

impl Cursor<'_> {
    /// Writes the first `len` bytes of `word` (least significant byte first).
    fn put(&mut self, word: u64, len: usize) {
        match self.buf.get_mut(self.pos..self.pos + SLACK) {
            Some(dst) => dst.copy_from_slice(&word.to_le_bytes()),
            None => self.overflow = true,
        }
        self.pos += len;
    }

    /// Runs `write` and returns the range it wrote.
    fn span(&mut self, write: impl FnOnce(&mut Self)) -> (usize, usize) {
        let start = self.pos;
        write(self);
        (start, self.pos)
    }

    /// `xxxx,yyyy,…` in lowercase hex.
    fn hex_list(&mut self, values: impl Iterator<Item = u16>) {
        let hex = |v: u16, shift: u16| HEX[usize::from((v >> shift) & 0x0f)];
        for (i, v) in values.enumerate() {
            let item = [b',', hex(v, 12), hex(v, 8), hex(v, 4), hex(v, 0), 0, 0, 0];
            let first = usize::from(i == 0); // no separator before the first item
            self.put(u64::from_le_bytes(item) >> (8 * first), 5 - first);
        }
    }

    /// JA4 part c before hashing: the extension list, then `_` and the signature algorithms if any.
    fn part_c(&mut self, extensions: impl Iterator<Item = u16>, sigalgs: &[u8]) {
        self.hex_list(extensions);
        if u16s(sigalgs).next().is_some() {
            self.put(u64::from(b'_'), 1);
            self.hex_list(u16s(sigalgs));
        }
    }

    /// The JA3 string (spec 3): `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`.
    fn ja3(&mut self, hello: &Hello, ciphers: &[u16], extensions: &[u16]) {
        self.decimal_list(std::iter::once(hello.legacy_version));
        self.put(u64::from(b','), 1);
        self.decimal_list(ciphers.iter().copied());
        self.put(u64::from(b','), 1);
        self.decimal_list(extensions.iter().copied());
        self.put(u64::from(b','), 1);
        self.decimal_list(u16s(hello.groups));
        self.put(u64::from(b','), 1);
        self.decimal_list(hello.point_formats.iter().map(|&f| u16::from(f)));
    }

    /// `n-n-…` in decimal.
    fn decimal_list(&mut self, values: impl Iterator<Item = u16>) {
        for (i, v) in values.enumerate() {
            let v = u32::from(v);
            let digit = |d: u32| u64::from(b'0') + u64::from(d % 10);
            // "-ddddd" with leading zeros, then shifted right past the zeros the value does not need.
            let item = u64::from(b'-')
                | digit(v / 10000) << 8
                | digit(v / 1000) << 16
                | digit(v / 100) << 24
                | digit(v / 10) << 32
                | digit(v) << 40;
            let zeros = [10000, 1000, 100, 10].iter().filter(|&&p| v < p).count();
            let item = (item & 0xff) | (item >> (8 * zeros) & !0xff);
            let first = usize::from(i == 0);
            self.put(item >> (8 * first), 6 - zeros - first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// curl 7.88.1 / OpenSSL 3.0.19 from the JA4 vectors: the spec's worked example in 2.6 and 3.
    const CURL: &str = "1603010200010001fc03035528bd19ab1550c008ec4e9b4b5430f050c3290047f853a60e985512ce2fe96720cd9e1c0f6737aefc961bbf987fbf99cd604fdddf1fee5c93ceb3c5608d7aec4d003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010001750000000e000c0000096c6f63616c686f7374000b000403000102000a00160014001d0017001e00190018010001010102010301040010000e000c02683208687474702f312e31001600000017000000310000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d0020e6be2ffb67279171a074b09218ceb5ce62e789e1664039e59885004f4978876c001500b4";

    fn curl() -> Vec<u8> {
        let hex = CURL.as_bytes();
        let mut bytes: Vec<u8> =
            hex.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect();
        bytes.resize(517, 0); // the padding extension's zeros
        bytes
    }

    /// The same hello re-framed into records of at most `size` body bytes.
    fn reframe(record: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for body in record[RECORD_HEADER..].chunks(size) {
            out.extend_from_slice(&[RECORD_HANDSHAKE, 3, 1]);
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    fn fields(buf: &[u8]) -> Result<Vec<String>, Error> {
        let mut out = Out::with_capacity(crate::OUTPUT_CAP);
        fingerprint(buf, &mut out)?;
        Ok(out.fields().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect())
    }

    #[test]
    fn curl_matches_the_worked_examples() {
        for hello in [curl(), reframe(&curl(), 100), reframe(&curl(), 1)] {
            assert_eq!(client_hello_needed(&hello), Ok(0));
            let f = fields(&hello).unwrap();
            assert_eq!(f.len(), 12);
            assert_eq!(f[0], "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6");
            assert_eq!(f[4], "t13d3111h2_e8f1e7e78f70_375ca2c5e164");
            assert_eq!(f[7], "0149f47eabf9a20d0893e2a44e5a6323");
            assert_eq!(f[8], "localhost");
        }
    }

    /// No input panics (a trap in wasm; overflow checks are on in test builds), and `fingerprint` agrees
    /// with `client_hello_needed` on whether the hello is complete, incomplete or rejected.
    #[test]
    fn mutated_and_truncated_hellos_never_panic() {
        let mut out = Out::with_capacity(crate::OUTPUT_CAP);
        let mut check = |buf: &[u8]| {
            out.clear();
            let got = fingerprint(buf, &mut out);
            match client_hello_needed(buf) {
                Ok(0) => assert_ne!(got, Err(Error::NeedMore)),
                Ok(_) => assert_eq!(got, Err(Error::NeedMore)),
                Err(e) => assert_eq!(got, Err(e)),
            }
        };
        let originals = [curl(), reframe(&curl(), 7)];
        for hello in &originals {
            for n in 0..=hello.len() {
                check(&hello[..n]);
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for round in 0..20_000 {
            let mut hello = originals[round % 2].clone();
            for _ in 0..1 + next(4) {
                // Most structure (lengths, lists) sits in the first 300 bytes; the rest is padding.
                let at = next(300.min(hello.len()));
                hello[at] = match next(4) {
                    0 => 0,
                    1 => 0xff,
                    2 => hello[at].wrapping_add(1),
                    _ => next(256) as u8,
                };
            }
            let len = if next(4) == 0 { next(hello.len() + 1) } else { hello.len() };
            check(&hello[..len]);
        }
    }
}
