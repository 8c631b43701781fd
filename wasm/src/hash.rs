//! SHA-256 (FIPS 180-4) and MD5 (RFC 1321), one-shot, in plain Rust: the crate has no dependencies and
//! the inputs are the short JA4/JA3 strings, so no streaming interface is needed.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The first 12 lowercase hex digits of SHA-256(`data`): a JA4 hash part.
pub fn sha256_hex12(data: &[u8]) -> [u8; 12] {
    let mut out = [0; 12];
    hex(&sha256(data), &mut out);
    out
}

/// MD5(`data`) as 32 lowercase hex digits: the JA3 hash.
pub fn md5_hex(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    hex(&md5(data), &mut out);
    out
}

/// Writes `bytes` as lowercase hex into `out`, stopping when `out` is full.
fn hex(bytes: &[u8], out: &mut [u8]) {
    for (pair, &b) in out.chunks_mut(2).zip(bytes) {
        for (o, nibble) in pair.iter_mut().zip([b >> 4, b & 0x0f]) {
            *o = HEX[nibble as usize];
        }
    }
}

/// Feeds `data` followed by the Merkle–Damgård padding (0x80, zeros, `bit_len`) to `compress`, one
/// 64-byte block at a time. Full blocks are read in place; only the tail is copied.
fn blocks(data: &[u8], bit_len: [u8; 8], mut compress: impl FnMut(&[u8])) {
    let mut full = data.chunks_exact(64);
    for block in &mut full {
        compress(block);
    }
    let rest = full.remainder();
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let end = if rest.len() < 56 { 64 } else { 128 };
    tail[end - 8..end].copy_from_slice(&bit_len);
    for block in tail[..end].chunks_exact(64) {
        compress(block);
    }
}

const SHA256_K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut state: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    blocks(data, (data.len() as u64).wrapping_mul(8).to_be_bytes(), |block| sha256_block(&mut state, block));
    let mut out = [0u8; 32];
    for (o, v) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// One SHA-256 compression. The 64 rounds are written out and the message schedule is a rolling window
/// of 16 words: with every index a constant, the whole state lives in registers (wasm locals) instead
/// of linear memory, which is what makes the hashing fast enough in wasm.
#[inline(always)]
fn sha256_block(state: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 16];
    for (w, b) in w.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    macro_rules! round {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $i:expr) => {
            let i: usize = $i;
            if i >= 16 {
                let (w15, w2) = (w[(i + 1) & 15], w[(i + 14) & 15]);
                let s0 = w15.rotate_right(7) ^ w15.rotate_right(18) ^ (w15 >> 3);
                let s1 = w2.rotate_right(17) ^ w2.rotate_right(19) ^ (w2 >> 10);
                w[i & 15] = w[i & 15].wrapping_add(s0).wrapping_add(w[(i + 9) & 15]).wrapping_add(s1);
            }
            let s1 = $e.rotate_right(6) ^ $e.rotate_right(11) ^ $e.rotate_right(25);
            // Ch and Maj of FIPS 180-4 4.1.2, each rewritten to need one operation fewer.
            let ch = $g ^ ($e & ($f ^ $g));
            let t1 = $h.wrapping_add(s1).wrapping_add(ch).wrapping_add(SHA256_K[i]).wrapping_add(w[i & 15]);
            let s0 = $a.rotate_right(2) ^ $a.rotate_right(13) ^ $a.rotate_right(22);
            let maj = ($a & $b) | ($c & ($a | $b));
            $d = $d.wrapping_add(t1);
            $h = t1.wrapping_add(s0).wrapping_add(maj);
        };
    }
    // After eight rounds the working variables are back in their original roles.
    macro_rules! eight {
        ($i:expr) => {
            round!(a, b, c, d, e, f, g, h, $i);
            round!(h, a, b, c, d, e, f, g, $i + 1);
            round!(g, h, a, b, c, d, e, f, $i + 2);
            round!(f, g, h, a, b, c, d, e, $i + 3);
            round!(e, f, g, h, a, b, c, d, $i + 4);
            round!(d, e, f, g, h, a, b, c, $i + 5);
            round!(c, d, e, f, g, h, a, b, $i + 6);
            round!(b, c, d, e, f, g, h, a, $i + 7);
        };
    }
    eight!(0);
    eight!(8);
    eight!(16);
    eight!(24);
    eight!(32);
    eight!(40);
    eight!(48);
    eight!(56);
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

const MD5_K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

fn md5(data: &[u8]) -> [u8; 16] {
    let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    blocks(data, (data.len() as u64).wrapping_mul(8).to_le_bytes(), |block| md5_block(&mut state, block));
    let mut out = [0u8; 16];
    for (o, v) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// One MD5 compression, written out like `sha256_block` and for the same reason.
#[inline(always)]
fn md5_block(state: &mut [u32; 4], block: &[u8]) {
    let mut m = [0u32; 16];
    for (m, b) in m.iter_mut().zip(block.chunks_exact(4)) {
        *m = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    let [mut a, mut b, mut c, mut d] = *state;
    macro_rules! step {
        ($a:ident, $b:ident, $c:ident, $d:ident, $i:expr, $shift:expr) => {
            let i: usize = $i;
            let (f, g) = match i / 16 {
                0 => (($b & $c) | (!$b & $d), i),
                1 => (($d & $b) | (!$d & $c), (5 * i + 1) % 16),
                2 => ($b ^ $c ^ $d, (3 * i + 5) % 16),
                _ => ($c ^ ($b | !$d), (7 * i) % 16),
            };
            let sum = $a.wrapping_add(f).wrapping_add(MD5_K[i]).wrapping_add(m[g]);
            $a = $b.wrapping_add(sum.rotate_left($shift));
        };
    }
    // Four steps rotate the roles of a, b, c and d; each round has its own shift amounts (RFC 1321 3.4).
    macro_rules! four {
        ($i:expr, $s0:expr, $s1:expr, $s2:expr, $s3:expr) => {
            step!(a, b, c, d, $i, $s0);
            step!(d, a, b, c, $i + 1, $s1);
            step!(c, d, a, b, $i + 2, $s2);
            step!(b, c, d, a, $i + 3, $s3);
        };
    }
    four!(0, 7, 12, 17, 22);
    four!(4, 7, 12, 17, 22);
    four!(8, 7, 12, 17, 22);
    four!(12, 7, 12, 17, 22);
    four!(16, 5, 9, 14, 20);
    four!(20, 5, 9, 14, 20);
    four!(24, 5, 9, 14, 20);
    four!(28, 5, 9, 14, 20);
    four!(32, 4, 11, 16, 23);
    four!(36, 4, 11, 16, 23);
    four!(40, 4, 11, 16, 23);
    four!(44, 4, 11, 16, 23);
    four!(48, 6, 10, 15, 21);
    four!(52, 6, 10, 15, 21);
    four!(56, 6, 10, 15, 21);
    four!(60, 6, 10, 15, 21);
    for (s, v) in state.iter_mut().zip([a, b, c, d]) {
        *s = s.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(data: &[u8]) -> String {
        let mut out = [0u8; 64];
        hex(&sha256(data), &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn md5_str(data: &[u8]) -> String {
        String::from_utf8(md5_hex(data).to_vec()).unwrap()
    }

    /// FIPS 180-2 appendix B / NIST CSRC examples, plus lengths around the one- and two-block padding
    /// boundaries (55, 56, 63, 64 and 119 bytes) from Python's `hashlib`.
    #[test]
    fn sha256_known_answers() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sha256_hex(input), want);
        }
        assert_eq!(
            sha256_hex(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        let boundaries = [
            (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
            (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
            (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
            (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
            (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
        ];
        for (len, want) in boundaries {
            assert_eq!(sha256_hex(&vec![b'a'; len]), want, "{len} bytes");
        }
    }

    /// The JA4.md worked examples (spec 2.3, 2.4).
    #[test]
    fn sha256_hex12_matches_ja4_examples() {
        let b = b"002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9";
        assert_eq!(&sha256_hex12(b), b"8daaf6152771");
        assert_eq!(&sha256_hex12(b"0000"), b"9af15b336e6a");
    }

    /// The RFC 1321 appendix A.5 test suite, plus the padding boundaries from Python's `hashlib`.
    #[test]
    fn md5_known_answers() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (b"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(md5_str(input), want);
        }
        let boundaries = [
            (55, "ef1772b6dff9a122358552954ad0df65"),
            (56, "3b0c8ac703f828b04c6c197006d17218"),
            (63, "b06521f39153d618550606be297466d5"),
            (64, "014842d480b571495a4a0363793f7367"),
            (119, "8a7bd0732ed6a28ce75f6dabc90e1613"),
        ];
        for (len, want) in boundaries {
            assert_eq!(md5_str(&vec![b'a'; len]), want, "{len} bytes");
        }
    }
}
