//! Passive client fingerprints as pure functions over bytes, exported to JavaScript through a small C ABI.
//!
//! The ABI is deliberately allocation-free on the JS side: the host copies its input into a fixed buffer
//! (`hfp_input_ptr`, `hfp_input_cap` bytes), calls one entry point with the input length, and reads the
//! result from `hfp_output_ptr`. Every entry point returns a length (>= 0) or one of the negative `ERR_*`
//! codes below; no input can make an entry point panic, because a panic in wasm32 is a trap that would
//! take the host's instance down with it.
//!
//! Output framing (shared with `shared/fingerprint.ts`): a sequence of fields, each a little-endian u16
//! length followed by that many bytes. Fields are raw bytes so that hostile SNI or ALPN values cannot
//! break the framing.

pub mod error;
pub mod h2;
pub mod hash;
pub mod hpack;
pub mod huffman;
pub mod memo;
pub mod out;
pub mod syn;
pub mod tls;

use error::Error;
use out::Out;

/// Largest input any entry point accepts: the ClientHello buffering cap and the HTTP/2 capture cap.
pub const INPUT_CAP: usize = 64 * 1024;
/// Large enough for every field of the biggest ClientHello that fits in `INPUT_CAP`.
pub const OUTPUT_CAP: usize = 256 * 1024;

static mut INPUT: [u8; INPUT_CAP] = [0; INPUT_CAP];
static mut OUTPUT: Option<Out> = None;

fn input(len: u32) -> Result<&'static [u8], Error> {
    let len = len as usize;
    if len > INPUT_CAP {
        return Err(Error::OverLimit);
    }
    // SAFETY: wasm32 is single-threaded and the host only writes INPUT between calls.
    Ok(unsafe { &INPUT[..len] })
}

fn output() -> &'static mut Out {
    // SAFETY: single-threaded; the host reads OUTPUT only between calls.
    unsafe {
        if OUTPUT.is_none() {
            OUTPUT = Some(Out::with_capacity(OUTPUT_CAP));
        }
        OUTPUT.as_mut().unwrap_or_else(|| core::hint::unreachable_unchecked())
    }
}

fn finish(result: Result<(), Error>) -> i32 {
    match result {
        Ok(()) => output().len() as i32,
        Err(e) => e.code(),
    }
}

#[no_mangle]
pub extern "C" fn hfp_input_ptr() -> *mut u8 {
    // SAFETY: only the address is taken.
    unsafe { INPUT.as_mut_ptr() }
}

#[no_mangle]
pub extern "C" fn hfp_input_cap() -> u32 {
    INPUT_CAP as u32
}

#[no_mangle]
pub extern "C" fn hfp_output_ptr() -> *const u8 {
    output().as_ptr()
}

/// Bytes still needed before the first ClientHello in the input is complete: 0 when it is complete,
/// a positive count (at least that many more) while buffering, or a negative error code.
#[no_mangle]
pub extern "C" fn hfp_tls_needed(len: u32) -> i32 {
    match input(len).and_then(tls::client_hello_needed) {
        Ok(n) => n.min(i32::MAX as usize) as i32,
        Err(e) => e.code(),
    }
}

/// Fingerprints the first ClientHello. Output fields, in order: ja4, ja4_r, ja4_o, ja4_or, ja4_s1,
/// ja4_s1r, ja3, ja3_hash, sni (raw bytes, empty when absent), alpn (each name as u8 length + bytes),
/// versions (supported_versions values without GREASE, u16 big-endian each; empty when absent),
/// has_sni (one byte, 0 or 1).
#[no_mangle]
pub extern "C" fn hfp_tls_fingerprint(len: u32) -> i32 {
    let out = output();
    out.clear();
    finish(input(len).and_then(|b| tls::fingerprint(b, out)))
}

/// Akamai HTTP/2 fingerprint from the client's cleartext bytes starting at the connection preface.
/// Output: one field, the `S|WU|P|PS` string. `ERR_NEED_MORE` until the first header block is complete.
#[no_mangle]
pub extern "C" fn hfp_akamai(len: u32) -> i32 {
    let out = output();
    out.clear();
    finish(input(len).and_then(|b| h2::akamai(b, out)))
}

/// p0f v3 raw signature of a SYN, from the first byte of its IP header. The capture may stop after the
/// TCP header; the payload length comes from the IP length fields. Output: one field, the signature.
#[no_mangle]
pub extern "C" fn hfp_p0f(len: u32) -> i32 {
    let out = output();
    out.clear();
    finish(input(len).and_then(|b| syn::p0f(b, out)))
}
