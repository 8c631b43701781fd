//! The Akamai HTTP/2 fingerprint `S|WU|P|PS` of a client's first frames (spec section 4).
//!
//! Frames are read from right after the connection preface up to the end of the first header block;
//! nothing after it matters. The whole input is re-read on every call, which is cheap for the few KB a
//! client sends before its first request.

use crate::error::Error;
use crate::hpack;
use crate::out::Out;
use std::borrow::Cow;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;

const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const SETTINGS: u8 = 0x4;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// The Akamai fingerprint of `buf`, the client's bytes from the start of the connection, written to
/// `out` as one field. `NeedMore` until the first header block is complete.
pub fn akamai(buf: &[u8], out: &mut Out) -> Result<(), Error> {
    let preamble = preamble(buf)?;
    out.begin_field();
    write_settings(out, preamble.settings);
    out.push(b'|');
    match preamble.window_update {
        Some(increment) => decimal(out, increment),
        None => out.extend(b"00"),
    }
    out.push(b'|');
    write_priorities(out, &preamble.priorities);
    out.push(b'|');
    write_pseudo_headers(out, &preamble.header_block)?;
    out.end_field()
}

/// What the fingerprint is made of, chosen as spec 4.2 says.
struct Preamble<'a> {
    /// The payload of the first non-ACK SETTINGS frame on stream 0.
    settings: &'a [u8],
    /// The increment of the first WINDOW_UPDATE on stream 0, reserved bit cleared.
    window_update: Option<u32>,
    /// Every PRIORITY frame before the first HEADERS.
    priorities: Vec<Frame<'a>>,
    /// The first complete header block.
    header_block: Cow<'a, [u8]>,
}

fn preamble(buf: &[u8]) -> Result<Preamble<'_>, Error> {
    let prefix = buf.get(..PREFACE.len()).unwrap_or(buf);
    if PREFACE.get(..prefix.len()) != Some(prefix) {
        return Err(Error::NotProtocol);
    }
    let mut frames = Frames {
        rest: buf.get(PREFACE.len()..).ok_or(Error::NeedMore)?,
    };
    let mut settings = None;
    let mut window_update = None;
    let mut priorities = Vec::new();
    loop {
        let frame = frames.next()?;
        match frame.kind {
            SETTINGS if frame.stream == 0 && frame.flags & FLAG_ACK == 0 && settings.is_none() => {
                settings = Some(frame.payload);
            }
            WINDOW_UPDATE if frame.stream == 0 && window_update.is_none() => {
                window_update = Some(be(frame.payload) & 0x7fff_ffff);
            }
            PRIORITY => priorities.push(frame),
            HEADERS => {
                // RFC 9113 §3.4 makes SETTINGS the first frame; without one the preamble has no S.
                let settings = settings.ok_or(Error::Malformed)?;
                let header_block = header_block(frame, &mut frames)?;
                return Ok(Preamble {
                    settings,
                    window_update,
                    priorities,
                    header_block,
                });
            }
            // Only valid right after a HEADERS frame without END_HEADERS (RFC 9113 §6.10).
            CONTINUATION => return Err(Error::Malformed),
            _ => {}
        }
    }
}

/// `id:value` for each parameter, joined with `;`.
fn write_settings(out: &mut Out, payload: &[u8]) {
    for (i, param) in payload.chunks_exact(6).enumerate() {
        if i > 0 {
            out.push(b';');
        }
        decimal(out, be(&param[..2]));
        out.push(b':');
        decimal(out, be(&param[2..]));
    }
}

/// `stream:exclusive:dependsOn:weight` for each frame, joined with `,`; `0` when there is none.
fn write_priorities(out: &mut Out, priorities: &[Frame]) {
    if priorities.is_empty() {
        out.push(b'0');
    }
    for (i, frame) in priorities.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Frames::next let through only 5-octet PRIORITY payloads.
        let (dependency, weight) = frame.payload.split_at(4);
        let dependency = be(dependency);
        decimal(out, frame.stream);
        out.push(b':');
        decimal(out, dependency >> 31);
        out.push(b':');
        decimal(out, dependency & 0x7fff_ffff);
        out.push(b':');
        decimal(out, be(weight) + 1);
    }
}

/// One letter per `:method`, `:authority`, `:scheme` or `:path` field, in block order, joined with `,`.
fn write_pseudo_headers(out: &mut Out, header_block: &[u8]) -> Result<(), Error> {
    let mut letters = 0;
    hpack::decode_block(header_block, |name| {
        let letter = match name.get() {
            Some(b":method") => b'm',
            Some(b":authority") => b'a',
            Some(b":scheme") => b's',
            Some(b":path") => b'p',
            // `:protocol` and unknown pseudo-headers are ignored (spec 4.3), like regular fields.
            _ => return,
        };
        if letters > 0 {
            out.push(b',');
        }
        out.push(letter);
        letters += 1;
    })
}

struct Frame<'a> {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: &'a [u8],
}

/// The frames of the unread input.
struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    /// The next whole frame, or `NeedMore`. Length rules are checked on the frame header alone, so a bad
    /// length fails before its payload has arrived.
    fn next(&mut self) -> Result<Frame<'a>, Error> {
        let header = self.rest.get(..FRAME_HEADER_LEN).ok_or(Error::NeedMore)?;
        let (len, kind, flags) = (be(&header[..3]) as usize, header[3], header[4]);
        let valid = match kind {
            // RFC 9113 §6.5: an ACK carries no parameters.
            SETTINGS => len % 6 == 0 && (flags & FLAG_ACK == 0 || len == 0),
            WINDOW_UPDATE => len == 4,
            PRIORITY => len == 5,
            _ => true,
        };
        if !valid {
            return Err(Error::Malformed);
        }
        let end = FRAME_HEADER_LEN + len;
        let payload = self
            .rest
            .get(FRAME_HEADER_LEN..end)
            .ok_or(Error::NeedMore)?;
        let stream = be(&header[5..]) & 0x7fff_ffff;
        self.rest = self.rest.get(end..).unwrap_or_default();
        Ok(Frame {
            kind,
            flags,
            stream,
            payload,
        })
    }
}

/// The complete header block started by `headers`: its fragment plus those of the CONTINUATION frames
/// that must follow it until END_HEADERS (RFC 9113 §4.3).
fn header_block<'a>(headers: Frame<'a>, frames: &mut Frames<'a>) -> Result<Cow<'a, [u8]>, Error> {
    if headers.stream == 0 {
        return Err(Error::Malformed);
    }
    let fragment = headers_fragment(&headers)?;
    if headers.flags & FLAG_END_HEADERS != 0 {
        return Ok(Cow::Borrowed(fragment));
    }
    let mut block = fragment.to_vec();
    loop {
        let next = frames.next()?;
        if next.kind != CONTINUATION || next.stream != headers.stream {
            return Err(Error::Malformed);
        }
        block.extend_from_slice(next.payload);
        if next.flags & FLAG_END_HEADERS != 0 {
            return Ok(Cow::Owned(block));
        }
    }
}

/// The header block fragment of a HEADERS payload, without padding and priority fields (RFC 9113 §6.2).
fn headers_fragment<'a>(headers: &Frame<'a>) -> Result<&'a [u8], Error> {
    let mut payload = headers.payload;
    let mut pad = 0;
    if headers.flags & FLAG_PADDED != 0 {
        let (&len, rest) = payload.split_first().ok_or(Error::Malformed)?;
        pad = usize::from(len);
        payload = rest;
    }
    if headers.flags & FLAG_PRIORITY != 0 {
        payload = payload.get(5..).ok_or(Error::Malformed)?;
    }
    let end = payload.len().checked_sub(pad).ok_or(Error::Malformed)?;
    payload.get(..end).ok_or(Error::Malformed)
}

/// A big-endian number of at most 4 octets.
fn be(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |n, &b| n << 8 | u32::from(b))
}

fn decimal(out: &mut Out, n: u32) {
    if n >= 10 {
        decimal(out, n / 10);
    }
    out.push(b'0' + (n % 10) as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fingerprint(buf: &[u8]) -> Result<String, Error> {
        let mut out = Out::with_capacity(256);
        akamai(buf, &mut out)?;
        assert_eq!(out.fields().len(), 1);
        Ok(String::from_utf8(out.fields()[0].to_vec()).unwrap())
    }

    /// curl 7.88.1 h2c and nghttp 1.52 from the shared H2 vectors.
    const VECTORS: [(&str, &str); 2] = [
        (
            "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a000012040000000000000300000064000402000000000200\
             00000000000408000000000001ff00010000230105000000018204846096d94786418a089d5c0b8170dc780f037a8825\
             b650c3abbcf2e153032a2f2a",
            "3:100;4:33554432;2:0|33488897|0|m,p,s,a",
        ),
        (
            "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a00000c04000000000000030000006400040000ffff000000\
             04010000000000000502000000000300000000c800000502000000000500000000640000050200000000070000000000\
             000005020000000009000000070000000502000000000b000000030000002c01250000000d0000000b0f82048562a9a7\
             4a6b86418a089d5c0b8170dc780f0353032a2f2a907a8aaa69d29ac4c0576c4b83",
            "3:100;4:65535|00|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:0:3:1|m,p,s,a",
        ),
    ];

    #[test]
    fn every_prefix_needs_more_and_mutations_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (hex_bytes, want) in VECTORS {
            let bytes = hex(hex_bytes);
            assert_eq!(fingerprint(&bytes).as_deref(), Ok(want));
            for end in 0..bytes.len() {
                assert_eq!(fingerprint(&bytes[..end]), Err(Error::NeedMore));
            }
            for _ in 0..20_000 {
                let mut mutated = bytes.clone();
                for _ in 0..1 + random() % 4 {
                    let at = PREFACE.len() + (random() as usize) % (bytes.len() - PREFACE.len());
                    mutated[at] = random() as u8;
                }
                let _ = fingerprint(&mutated);
            }
        }
    }
}
