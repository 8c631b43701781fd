//! A minimal but exact HPACK decoder (RFC 7541) that reports the name of every field of a header block.
//!
//! Everything is decoded and validated (integers, Huffman strings, the static and dynamic tables, size
//! updates and eviction), but only names are reported: the fingerprint needs no values. A block is
//! decoded with a fresh dynamic table, which is exact for the first header block of a connection.

use crate::error::Error;
use crate::huffman;
use std::collections::VecDeque;

/// The largest dynamic table size accepted. A client's encoder is bound by the SETTINGS_HEADER_TABLE_SIZE
/// of the *server*, not by its own; the proxy's HTTP/2 server leaves it at the default 4096 (RFC 9113
/// §6.5.2), so a larger size update is a decoding error (RFC 7541 §4.2). Raise this if the proxy ever
/// advertises more.
pub const MAX_TABLE_SIZE: usize = 4096;

/// Octets kept of each name: enough for every pseudo-header, so that names need no allocation.
const NAME_CAP: usize = 16;

/// A field name: its first `NAME_CAP` octets and its full length.
#[derive(Clone, Copy)]
pub struct Name {
    head: [u8; NAME_CAP],
    len: usize,
}

impl Name {
    const fn of(bytes: &[u8]) -> Name {
        let mut name = Name {
            head: [0; NAME_CAP],
            len: bytes.len(),
        };
        let mut i = 0;
        while i < NAME_CAP && i < bytes.len() {
            name.head[i] = bytes[i];
            i += 1;
        }
        name
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.head.get_mut(self.len) {
            *slot = b;
        }
        self.len += 1;
    }

    /// The whole name, or `None` when it is longer than the octets kept.
    pub fn get(&self) -> Option<&[u8]> {
        self.head.get(..self.len)
    }
}

/// Names of the static table (RFC 7541 Appendix A). Values are left out: nothing reads them, and a static
/// entry's value never reaches the dynamic table (a literal carries its own).
const STATIC_NAMES: [Name; 61] = [
    Name::of(b":authority"),
    Name::of(b":method"),
    Name::of(b":method"),
    Name::of(b":path"),
    Name::of(b":path"),
    Name::of(b":scheme"),
    Name::of(b":scheme"),
    Name::of(b":status"),
    Name::of(b":status"),
    Name::of(b":status"),
    Name::of(b":status"),
    Name::of(b":status"),
    Name::of(b":status"),
    Name::of(b":status"),
    Name::of(b"accept-charset"),
    Name::of(b"accept-encoding"),
    Name::of(b"accept-language"),
    Name::of(b"accept-ranges"),
    Name::of(b"accept"),
    Name::of(b"access-control-allow-origin"),
    Name::of(b"age"),
    Name::of(b"allow"),
    Name::of(b"authorization"),
    Name::of(b"cache-control"),
    Name::of(b"content-disposition"),
    Name::of(b"content-encoding"),
    Name::of(b"content-language"),
    Name::of(b"content-length"),
    Name::of(b"content-location"),
    Name::of(b"content-range"),
    Name::of(b"content-type"),
    Name::of(b"cookie"),
    Name::of(b"date"),
    Name::of(b"etag"),
    Name::of(b"expect"),
    Name::of(b"expires"),
    Name::of(b"from"),
    Name::of(b"host"),
    Name::of(b"if-match"),
    Name::of(b"if-modified-since"),
    Name::of(b"if-none-match"),
    Name::of(b"if-range"),
    Name::of(b"if-unmodified-since"),
    Name::of(b"last-modified"),
    Name::of(b"link"),
    Name::of(b"location"),
    Name::of(b"max-forwards"),
    Name::of(b"proxy-authenticate"),
    Name::of(b"proxy-authorization"),
    Name::of(b"range"),
    Name::of(b"referer"),
    Name::of(b"refresh"),
    Name::of(b"retry-after"),
    Name::of(b"server"),
    Name::of(b"set-cookie"),
    Name::of(b"strict-transport-security"),
    Name::of(b"transfer-encoding"),
    Name::of(b"user-agent"),
    Name::of(b"vary"),
    Name::of(b"via"),
    Name::of(b"www-authenticate"),
];

/// Per-entry overhead counted in the table size (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

struct Entry {
    name: Name,
    size: usize,
}

/// The dynamic table, newest entry first. Its size bound keeps it at most 128 entries; it is allocated
/// on first use, since many blocks (browsers' indexed pseudo-headers) never add an entry.
struct Table {
    entries: Option<VecDeque<Entry>>,
    size: usize,
    max: usize,
}

impl Table {
    /// The name at `index` in the combined static + dynamic index space (RFC 7541 §2.3.3).
    fn name(&self, index: usize) -> Result<Name, Error> {
        if let Some(name) = index.checked_sub(1).and_then(|i| STATIC_NAMES.get(i)) {
            return Ok(*name);
        }
        index
            .checked_sub(STATIC_NAMES.len() + 1)
            .and_then(|i| self.entries.as_ref()?.get(i))
            .map(|e| e.name)
            .ok_or(Error::Malformed)
    }

    /// Adds an entry, evicting the oldest ones first; one larger than the table empties it (§4.4).
    fn insert(&mut self, name: Name, value_len: usize) {
        let size = name.len + value_len + ENTRY_OVERHEAD;
        self.evict_to(self.max.saturating_sub(size));
        if size <= self.max {
            self.entries
                .get_or_insert_with(VecDeque::new)
                .push_front(Entry { name, size });
            self.size += size;
        }
    }

    fn resize(&mut self, max: usize) -> Result<(), Error> {
        if max > MAX_TABLE_SIZE {
            return Err(Error::Malformed);
        }
        self.max = max;
        self.evict_to(max);
        Ok(())
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.as_mut().and_then(VecDeque::pop_back) {
                Some(e) => self.size -= e.size,
                None => break,
            }
        }
    }
}

/// The unread part of a header block.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }

    /// An integer with an N-bit prefix taken from `first` (RFC 7541 §5.1). Values above 2^28 are refused:
    /// they exceed every index, length and table size that can occur in a block this size.
    fn integer(&mut self, first: u8, prefix_bits: u32) -> Result<usize, Error> {
        let max_prefix = (1usize << prefix_bits) - 1;
        let mut value = first as usize & max_prefix;
        if value < max_prefix {
            return Ok(value);
        }
        let mut shift = 0;
        loop {
            let b = self.byte().ok_or(Error::Malformed)?;
            value += ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 21 {
                return Err(Error::Malformed);
            }
        }
    }

    /// A string literal (§5.2), each decoded octet passed to `emit`; returns the decoded length.
    fn string(&mut self, mut emit: impl FnMut(u8)) -> Result<usize, Error> {
        let first = self.byte().ok_or(Error::Malformed)?;
        let len = self.integer(first, 7)?;
        let raw = self.bytes.get(..len).ok_or(Error::Malformed)?;
        self.bytes = self.bytes.get(len..).unwrap_or_default();
        if first & 0x80 == 0 {
            raw.iter().for_each(|&b| emit(b));
            return Ok(len);
        }
        let mut decoded = 0;
        huffman::decode(raw, |b| {
            decoded += 1;
            emit(b);
        })?;
        Ok(decoded)
    }

    /// The name of a literal field: indexed when the prefix integer is non-zero, else a string literal.
    fn name(&mut self, first: u8, prefix_bits: u32, table: &Table) -> Result<Name, Error> {
        match self.integer(first, prefix_bits)? {
            0 => {
                let mut name = Name::of(b"");
                self.string(|b| name.push(b))?;
                Ok(name)
            }
            index => table.name(index),
        }
    }
}

/// Decodes one complete header block, calling `field` with the name of each field in order.
pub fn decode_block(block: &[u8], mut field: impl FnMut(&Name)) -> Result<(), Error> {
    let mut input = Input { bytes: block };
    let mut table = Table {
        entries: None,
        size: 0,
        max: MAX_TABLE_SIZE,
    };
    let mut after_field = false;
    while let Some(first) = input.byte() {
        let name = if first & 0x80 != 0 {
            // Indexed field (§6.1).
            table.name(input.integer(first, 7)?)?
        } else if first & 0x40 != 0 {
            // Literal with incremental indexing (§6.2.1).
            let name = input.name(first, 6, &table)?;
            let value_len = input.string(|_| ())?;
            table.insert(name, value_len);
            name
        } else if first & 0x20 != 0 {
            // Dynamic table size update (§6.3): only at the start of the block (§4.2).
            if after_field {
                return Err(Error::Malformed);
            }
            table.resize(input.integer(first, 5)?)?;
            continue;
        } else {
            // Literal without indexing or never indexed (§6.2.2, §6.2.3): the same layout.
            let name = input.name(first, 4, &table)?;
            input.string(|_| ())?;
            name
        };
        after_field = true;
        field(&name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn names(block: &str) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        decode_block(&hex(block), |n| {
            names.push(
                n.get()
                    .map_or("<long>".into(), |b| String::from_utf8_lossy(b).into_owned()),
            )
        })
        .map(|()| names)
    }

    #[test]
    fn decodes_the_rfc_7541_c3_and_c4_requests_as_one_block() {
        // C.3.1-C.3.3 (and C.4.1-C.4.3, Huffman-coded) share one dynamic table, as in a single block.
        let c3 = "828684410f7777772e6578616d706c652e636f6d 828684be58086e6f2d6361636865
                  828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565";
        let c4 = "828684418cf1e3c2e5f23a6ba0ab90f4ff 828684be5886a8eb10649cbf
                  828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf";
        let want = [
            ":method",
            ":scheme",
            ":path",
            ":authority",
            ":method",
            ":scheme",
            ":path",
            ":authority",
            "cache-control",
            ":method",
            ":scheme",
            ":path",
            ":authority",
            "custom-key",
        ];
        assert_eq!(names(c3).unwrap(), want);
        assert_eq!(names(c4).unwrap(), want);
    }

    /// RFC 7541 C.5.1-C.5.3: responses encoded for a 256-octet table.
    const C5: [&str; 3] = [
        "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d54
         6e1768747470733a2f2f7777772e6578616d706c652e636f6d",
        "4803333037c1c0bf",
        "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a6970
         7738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d33
         3630303b2076657273696f6e3d31",
    ];

    #[test]
    fn evicts_the_oldest_entries_of_a_resized_table() {
        let want = [
            ":status",
            "cache-control",
            "date",
            "location",
            ":status",
            "cache-control",
            "date",
            "location",
            ":status",
            "cache-control",
            "date",
            "location",
            "content-encoding",
            "set-cookie",
        ];
        assert_eq!(
            names(&format!("3fe101 {} {} {}", C5[0], C5[1], C5[2])).unwrap(),
            want
        );
        // After the second response the 256-octet table holds 4 entries: ":status: 302" was evicted, so
        // index 66 is out of range. With the default 4096 octets it is still there.
        assert_eq!(
            names(&format!("3fe101 {} {} c2", C5[0], C5[1])),
            Err(Error::Malformed)
        );
        assert_eq!(
            names(&format!("{} {} c2", C5[0], C5[1]))
                .unwrap()
                .last()
                .unwrap(),
            ":status"
        );
    }

    #[test]
    fn rejects_bad_representations() {
        assert_eq!(names("80"), Err(Error::Malformed)); // index 0
        assert_eq!(names("be"), Err(Error::Malformed)); // dynamic index 62 in an empty table
        assert_eq!(names("3fe21f"), Err(Error::Malformed)); // size update to 4097
        assert_eq!(names("82 20"), Err(Error::Malformed)); // size update after a field
        assert_eq!(names("7f"), Err(Error::Malformed)); // truncated integer
        assert_eq!(names("ffffffffff01"), Err(Error::Malformed)); // integer beyond 2^28
        assert_eq!(names("0003616263"), Err(Error::Malformed)); // string longer than the block
        assert_eq!(names("00 8118 00"), Err(Error::Malformed)); // Huffman name with zero padding
        assert_eq!(names("20 3fe11f 82").unwrap(), [":method"]); // size updates at the start: 0, 4096
    }

    #[test]
    fn sizes_entries_by_the_full_length_of_long_names() {
        // access-control-allow-origin (27 octets) indexed with an empty value takes 27 + 0 + 32 = 59
        // octets: a 58-octet table cannot hold it, so index 62 is then out of range.
        assert_eq!(names("54 00 be").unwrap(), ["<long>", "<long>"]);
        assert_eq!(names("3f1b 54 00 be"), Err(Error::Malformed));
    }
}
