//! The p0f v3 raw signature of a TCP SYN (spec section 5): `ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass`.
//!
//! The input starts at the IP header and may stop right after the TCP header, as the eBPF agent captures
//! it; the payload class therefore comes from the IP length fields, never from the captured length. Every
//! read is bounds-checked: a panic in wasm32 is a trap.

use crate::error::Error;
use crate::out::Out;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const TCP_URG: u8 = 0x20;
const TCP_ECE: u8 = 0x40;
const TCP_CWR: u8 = 0x80;

/// p0f records at most this many options; bytes after them make the options `bad`.
const MAX_OPTIONS: usize = 24;
/// Beyond this hop distance p0f prints `+?`: the initial TTL is then a guess.
const MAX_DIST: u8 = 35;

/// Quirk names in their fixed print order (spec 5.5); bit `i` of a quirk set is `QUIRKS[i]`. `ack-`
/// (ACK set, ack = 0) is left out: it cannot occur on the pure SYNs fingerprinted here.
const QUIRKS: [&[u8]; 16] = [
    b"df", b"id+", b"id-", b"ecn", b"0+", b"flow", b"seq-", b"ack+", b"uptr+", b"urgf+", b"pushf+", b"ts1-",
    b"ts2+", b"opt+", b"exws", b"bad",
];
const Q_DF: u16 = 1 << 0;
const Q_ID_NZ: u16 = 1 << 1;
const Q_ID_ZERO: u16 = 1 << 2;
const Q_ECN: u16 = 1 << 3;
const Q_MBZ: u16 = 1 << 4;
const Q_FLOW: u16 = 1 << 5;
const Q_SEQ_ZERO: u16 = 1 << 6;
const Q_ACK_NZ: u16 = 1 << 7;
const Q_URG_PTR: u16 = 1 << 8;
const Q_URG: u16 = 1 << 9;
const Q_PUSH: u16 = 1 << 10;
const Q_TS1_ZERO: u16 = 1 << 11;
const Q_TS2_NZ: u16 = 1 << 12;
const Q_OPT_NZ: u16 = 1 << 13;
const Q_EXWS: u16 = 1 << 14;
const Q_BAD: u16 = 1 << 15;

/// IPv6 Next Header values that announce an extension header (IANA registry), which p0f does not walk.
const IPV6_EXTENSIONS: [u8; 11] = [0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254];

/// What the IP layer contributes.
struct Ip<'a> {
    v6: bool,
    ttl: u8,
    /// IPv4 option bytes (IHL * 4 - 20); always 0 for IPv6.
    olen: u8,
    header_len: usize,
    /// The TCP segment as captured, cut at the IP-declared end (drops Ethernet padding).
    tcp: &'a [u8],
    /// The TCP segment's length according to the IP length fields.
    tcp_len: usize,
    quirks: u16,
}

/// What the TCP options contribute.
struct Options {
    layout: [u8; MAX_OPTIONS],
    count: usize,
    /// Option-area bytes after an EOL, printed as `eol+N`.
    eol_pad: u16,
    mss: u16,
    scale: u8,
    ts_val: u32,
    quirks: u16,
}

/// What the TCP header contributes.
struct Tcp {
    /// TCP header length including options (data offset * 4).
    header_len: usize,
    window: u16,
    options: Options,
    quirks: u16,
}

/// Writes the p0f raw signature of the SYN in `buf` (from the first byte of its IP header) as one field.
pub fn p0f(buf: &[u8], out: &mut Out) -> Result<(), Error> {
    let ip = match buf.first().map(|b| b >> 4) {
        None => return Err(Error::Truncated),
        Some(4) => ipv4(buf)?,
        Some(6) => ipv6(buf)?,
        Some(_) => return Err(Error::NotProtocol),
    };
    let tcp = tcp(ip.tcp)?;
    write_signature(out, &ip, &tcp)
}

fn tcp(segment: &[u8]) -> Result<Tcp, Error> {
    let h: &[u8; 20] = fixed(segment).ok_or(Error::Truncated)?;
    let header_len = usize::from(h[12] >> 4) * 4;
    if header_len < 20 {
        return Err(Error::Malformed);
    }
    let flags = h[13];
    if flags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST) != TCP_SYN {
        return Err(Error::Unsupported);
    }
    let options = parse_options(segment.get(20..header_len).ok_or(Error::Truncated)?);

    let mut quirks = options.quirks;
    // NS is the low bit of the data-offset byte; the other reserved bits there do not count.
    if flags & (TCP_ECE | TCP_CWR) != 0 || h[12] & 0x01 != 0 {
        quirks |= Q_ECN;
    }
    if u32_at(h, 4) == 0 {
        quirks |= Q_SEQ_ZERO;
    }
    // The documented meaning, not p0f 3.09b's test of the network-order field (spec 5.6). ACK and RST
    // are known clear on a pure SYN.
    if u32_at(h, 8) != 0 {
        quirks |= Q_ACK_NZ;
    }
    if flags & TCP_URG != 0 {
        quirks |= Q_URG;
    } else if u16_at(h, 18) != 0 {
        quirks |= Q_URG_PTR;
    }
    if flags & TCP_PSH != 0 {
        quirks |= Q_PUSH;
    }
    Ok(Tcp { header_len, window: u16_at(h, 14), options, quirks })
}

/// `ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass`, written straight into `out`.
fn write_signature(out: &mut Out, ip: &Ip, tcp: &Tcp) -> Result<(), Error> {
    let opts = &tcp.options;
    out.begin_field();
    out.push(if ip.v6 { b'6' } else { b'4' });
    out.push(b':');
    decimal(out, ip.ttl.into());
    out.push(b'+');
    let dist = initial_ttl(ip.ttl) - ip.ttl;
    if dist > MAX_DIST {
        out.push(b'?');
    } else {
        decimal(out, dist.into());
    }
    out.push(b':');
    decimal(out, ip.olen.into());
    out.push(b':');
    decimal(out, opts.mss);
    out.push(b':');
    let header_len = (ip.header_len + tcp.header_len) as u32;
    match window_multiple(tcp.window, opts.mss, opts.ts_val != 0, ip.v6, header_len) {
        Some((unit, n)) => {
            out.extend(unit);
            decimal(out, n);
        }
        None => decimal(out, tcp.window),
    }
    out.push(b',');
    decimal(out, opts.scale.into());
    out.push(b':');
    for (i, &kind) in opts.layout.iter().take(opts.count).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        option_name(out, kind, opts.eol_pad);
    }
    out.push(b':');
    let mut quirks = ip.quirks | tcp.quirks;
    while quirks != 0 {
        out.extend(QUIRKS.get(quirks.trailing_zeros() as usize).copied().unwrap_or_default());
        quirks &= quirks - 1;
        if quirks != 0 {
            out.push(b',');
        }
    }
    out.push(b':');
    out.push(if ip.tcp_len > tcp.header_len { b'+' } else { b'0' });
    out.end_field()
}

fn ipv4(buf: &[u8]) -> Result<Ip<'_>, Error> {
    let h: &[u8; 20] = fixed(buf).ok_or(Error::Truncated)?;
    let header_len = usize::from(h[0] & 0x0f) * 4;
    if header_len < 20 {
        return Err(Error::Malformed);
    }
    if h[9] != 6 {
        return Err(Error::NotProtocol);
    }
    let flags_offset = u16_at(h, 6);
    // MF or a non-zero fragment offset: a fragment.
    if flags_offset & 0x3fff != 0 {
        return Err(Error::Unsupported);
    }
    let total = usize::from(u16_at(h, 2));
    let tcp = buf.get(header_len..total.min(buf.len())).ok_or(Error::Truncated)?;

    let mut quirks = 0;
    if h[1] & 0x03 != 0 {
        quirks |= Q_ECN;
    }
    if flags_offset & 0x8000 != 0 {
        quirks |= Q_MBZ;
    }
    let id_zero = u16_at(h, 4) == 0;
    if flags_offset & 0x4000 != 0 {
        quirks |= Q_DF;
        if !id_zero {
            quirks |= Q_ID_NZ;
        }
    } else if id_zero {
        quirks |= Q_ID_ZERO;
    }
    Ok(Ip {
        v6: false,
        ttl: h[8],
        olen: (header_len - 20) as u8,
        header_len,
        tcp,
        tcp_len: total - header_len,
        quirks,
    })
}

fn ipv6(buf: &[u8]) -> Result<Ip<'_>, Error> {
    let h: &[u8; 40] = fixed(buf).ok_or(Error::Truncated)?;
    if h[6] != 6 {
        return Err(if IPV6_EXTENSIONS.contains(&h[6]) { Error::Unsupported } else { Error::NotProtocol });
    }
    let total = 40 + usize::from(u16_at(h, 4));
    let tcp = buf.get(40..total.min(buf.len())).ok_or(Error::Truncated)?;

    let ver_class_flow = u32_at(h, 0);
    let mut quirks = 0;
    if (ver_class_flow >> 20) & 0x03 != 0 {
        quirks |= Q_ECN;
    }
    if ver_class_flow & 0x000f_ffff != 0 {
        quirks |= Q_FLOW;
    }
    Ok(Ip { v6: true, ttl: h[7], olen: 0, header_len: 40, tcp, tcp_len: total - 40, quirks })
}

/// Walks the option area exactly as p0f 3.09b does (spec 5.4), including its fixed advances.
fn parse_options(area: &[u8]) -> Options {
    let mut o =
        Options { layout: [0; MAX_OPTIONS], count: 0, eol_pad: 0, mss: 0, scale: 0, ts_val: 0, quirks: 0 };
    let mut pos = 0;
    while o.count < MAX_OPTIONS {
        let (kind, rest) = match area.get(pos..).and_then(|r| r.split_first()) {
            Some((&kind, rest)) => (kind, rest),
            None => break,
        };
        if let Some(slot) = o.layout.get_mut(o.count) {
            *slot = kind;
        }
        o.count += 1;
        pos += 1;
        let advance = match kind {
            0 => {
                o.eol_pad = rest.len() as u16;
                if rest.iter().any(|&b| b != 0) {
                    o.quirks |= Q_OPT_NZ;
                }
                rest.len()
            }
            1 => 0,
            2 => match fixed::<3>(rest) {
                Some(f) => {
                    if f[0] != 4 {
                        o.quirks |= Q_BAD;
                    }
                    o.mss = u16::from_be_bytes([f[1], f[2]]);
                    3
                }
                None => break,
            },
            3 => match fixed::<2>(rest) {
                Some(f) => {
                    if f[0] != 3 {
                        o.quirks |= Q_BAD;
                    }
                    o.scale = f[1];
                    if o.scale > 14 {
                        o.quirks |= Q_EXWS;
                    }
                    2
                }
                None => break,
            },
            4 => match rest.first() {
                Some(&len) => {
                    if len != 2 {
                        o.quirks |= Q_BAD;
                    }
                    1
                }
                None => break,
            },
            8 => match fixed::<9>(rest) {
                Some(f) => {
                    if f[0] != 10 {
                        o.quirks |= Q_BAD;
                    }
                    o.ts_val = u32_at(f, 1);
                    if o.ts_val == 0 {
                        o.quirks |= Q_TS1_ZERO;
                    }
                    // p0f raises ts2+ only on a pure SYN, which is all this module accepts.
                    if u32_at(f, 5) != 0 {
                        o.quirks |= Q_TS2_NZ;
                    }
                    9
                }
                None => break,
            },
            _ => {
                let lengths = if kind == 5 { 10..=34 } else { 2..=40 };
                match rest.first() {
                    Some(&len) if lengths.contains(&len) && usize::from(len) - 1 <= rest.len() => {
                        usize::from(len) - 1
                    }
                    _ => break,
                }
            }
        };
        pos += advance;
    }
    // An aborted option, or bytes left after the 24th option.
    if pos != area.len() {
        o.quirks |= Q_BAD;
    }
    o
}

/// The smallest of the usual initial TTLs (32, 64, 128, 255) that is not below `ttl`.
fn initial_ttl(ttl: u8) -> u8 {
    match ttl {
        0..=32 => 32,
        33..=64 => 64,
        65..=128 => 128,
        _ => 255,
    }
}

/// The window as a multiple of the MSS or MTU (spec 5.3): `(unit, N)` for the first divisor that divides it.
fn window_multiple(
    window: u16,
    mss: u16,
    ts_nonzero: bool,
    v6: bool,
    header_len: u32,
) -> Option<(&'static [u8], u16)> {
    if window == 0 || mss < 100 {
        return None;
    }
    let (window, mss) = (u32::from(window), u32::from(mss));
    // (divisor, whether it applies), in p0f's order.
    let mss_units = [(mss, true), (mss - 12, ts_nonzero), (1460, true), (1448, true), (1440, v6), (1428, v6)];
    let mtu_units = [(mss + 40, true), (mss + header_len, true), (mss + 60, v6), (1500, true)];
    let multiple = |units: &[(u32, bool)]| {
        units.iter().find_map(|&(d, applies)| match window.checked_rem(d) {
            Some(0) if applies => window.checked_div(d).map(|n| n as u16),
            _ => None,
        })
    };
    match multiple(&mss_units) {
        Some(n) => Some((b"mss*", n)),
        None => multiple(&mtu_units).map(|n| (&b"mtu*"[..], n)),
    }
}

/// An olayout entry (spec 5.3).
fn option_name(out: &mut Out, kind: u8, eol_pad: u16) {
    match kind {
        0 => {
            out.extend(b"eol+");
            decimal(out, eol_pad);
        }
        1 => out.extend(b"nop"),
        2 => out.extend(b"mss"),
        3 => out.extend(b"ws"),
        4 => out.extend(b"sok"),
        5 => out.extend(b"sack"),
        8 => out.extend(b"ts"),
        _ => {
            out.push(b'?');
            decimal(out, kind.into());
        }
    }
}

/// Writes `v` in decimal without leading zeros.
fn decimal(out: &mut Out, mut v: u16) {
    let mut digits = [0; 5];
    let mut start = digits.len();
    while let Some(slot) = start.checked_sub(1).and_then(|i| digits.get_mut(i)) {
        *slot = b'0' + (v % 10) as u8;
        start -= 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend(digits.get(start..).unwrap_or_default());
}

/// The first `N` bytes of `b` as an array, so that constant indices need no runtime check.
fn fixed<const N: usize>(b: &[u8]) -> Option<&[u8; N]> {
    b.get(..N).and_then(|s| s.try_into().ok())
}

fn u16_at<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

fn u32_at<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn sig(packet: &[u8]) -> Result<String, Error> {
        let mut out = Out::with_capacity(256);
        p0f(packet, &mut out)?;
        Ok(String::from_utf8(out.fields()[0].to_vec()).unwrap())
    }

    /// Linux loopback SYN from the vectors.
    const LINUX: &str =
        "4500003cd35f40004006695a7f0000017f000001dd7c46a06a6279fe00000000a002ffd7fe3000000204ffd70402080ac1698491000000000103030a";

    /// An IPv4 SYN with `options` after the fixed TCP header, lengths set to match.
    fn with_options(options: &str) -> Vec<u8> {
        let opts = hex(options);
        let mut p = hex("4500000000014000400600007f0000017f000001a7a2232800000001000000000002faf000000000");
        let total = (40 + opts.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[32] = (((20 + opts.len()) / 4) as u8) << 4;
        p.extend(opts);
        p
    }

    #[test]
    fn linux_loopback() {
        assert_eq!(sig(&hex(LINUX)).unwrap(), "4:64+0:0:65495:mss*1,10:mss,sok,ts,nop,ws:df,id+:0");
    }

    #[test]
    fn fixed_advance_reads_bad_mss_as_mss_and_nops() {
        assert_eq!(
            sig(&with_options("0205 05b4 0101 0101".replace(' ', "").as_str())).unwrap(),
            "4:64+0:0:1460:mss*44,0:mss,nop,nop,nop,nop:df,id+,bad:0"
        );
    }

    #[test]
    fn opt_plus_when_only_last_byte_after_eol_is_non_zero() {
        assert_eq!(
            sig(&with_options("020405b400000001")).unwrap(),
            "4:64+0:0:1460:mss*44,0:mss,eol+3:df,id+,opt+:0"
        );
    }

    #[test]
    fn caps_options_at_24() {
        assert_eq!(
            sig(&with_options(&"01".repeat(28))).unwrap(),
            format!("4:64+0:0:0:64240,0:{}:df,id+,bad:0", vec!["nop"; 24].join(","))
        );
    }

    #[test]
    fn payload_class_comes_from_ip_length() {
        let mut p = hex(LINUX);
        p[3] += 10;
        assert!(sig(&p).unwrap().ends_with(":+"));
        p.extend([0; 6]);
        assert!(sig(&p).unwrap().ends_with(":+"));
        let mut padded = hex(LINUX);
        padded.extend([0; 6]);
        assert!(sig(&padded).unwrap().ends_with(":0"));
    }

    #[test]
    fn errors() {
        let linux = hex(LINUX);
        assert_eq!(sig(&[]), Err(Error::Truncated));
        assert_eq!(sig(&linux[..39]), Err(Error::Truncated));
        assert_eq!(sig(&linux[..59]), Err(Error::Truncated));
        let mut p = linux.clone();
        p[0] = 0x55;
        assert_eq!(sig(&p), Err(Error::NotProtocol));
        let mut p = linux.clone();
        p[0] = 0x44;
        assert_eq!(sig(&p), Err(Error::Malformed));
        let mut p = linux.clone();
        p[9] = 17;
        assert_eq!(sig(&p), Err(Error::NotProtocol));
        let mut p = linux.clone();
        p[6] |= 0x20;
        assert_eq!(sig(&p), Err(Error::Unsupported));
        let mut p = linux.clone();
        p[33] |= TCP_ACK;
        assert_eq!(sig(&p), Err(Error::Unsupported));
        let mut p = linux.clone();
        p[32] = 0x40;
        assert_eq!(sig(&p), Err(Error::Malformed));
        let mut p = linux;
        p[3] = 50;
        assert_eq!(sig(&p), Err(Error::Truncated));
    }

    /// Every prefix of every single-byte mutation must give a result, never a panic.
    #[test]
    fn never_panics() {
        let base = [hex(LINUX), with_options("0204ffd7 0303 0a 00 0101 0800".replace(' ', "").as_str())];
        for packet in base {
            for at in 0..packet.len() {
                for value in [0u8, 1, 2, 3, 4, 5, 8, 0x0f, 0x45, 0x60, 0xf0, 0xff] {
                    let mut p = packet.clone();
                    p[at] = value;
                    for len in 0..=p.len() {
                        let _ = sig(&p[..len]);
                    }
                }
            }
        }
    }
}
