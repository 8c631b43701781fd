//! Typed parse errors, shared by every parser and mapped to the negative return codes of the C ABI.

/// Why no fingerprint could be produced. The codes are part of the ABI read by `shared/fingerprint.ts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The input is a valid prefix; more bytes are needed.
    NeedMore,
    /// The input is not the protocol expected (not a TLS handshake, no HTTP/2 preface, not IPv4/IPv6 TCP).
    NotProtocol,
    /// The input ends inside a structure whose length it declared (only where "need more" cannot apply).
    Truncated,
    /// A declared length or value is inconsistent.
    Malformed,
    /// The input exceeds the capture limit.
    OverLimit,
    /// Valid input that this fingerprint does not cover (SSLv2 hello, IPv6 extension headers, not a SYN).
    Unsupported,
}

impl Error {
    pub fn code(self) -> i32 {
        match self {
            Error::NeedMore => -1,
            Error::NotProtocol => -2,
            Error::Truncated => -3,
            Error::Malformed => -4,
            Error::OverLimit => -5,
            Error::Unsupported => -6,
        }
    }
}
