//! A bounded, exact memo for the fingerprint hashes.
//!
//! Real traffic comes from a few client builds, so the same hash inputs (the sorted cipher list, the
//! sorted extensions and signature algorithms) recur across connections even though the random, session
//! id, key shares and GREASE values differ. A hit costs a compare instead of a SHA-256 or MD5.
//!
//! Direct-mapped with a fixed number of slots, each keyed by the whole input, so a result never comes
//! from another input. An input is kept only when it misses twice in a row in its slot: inputs seen once
//! (Chrome's per-connection extension orders, hostile hellos) cost no copy and evict nothing.

/// Slots per memo; a power of two, indexed by the top bits of `hash`. Room for a few hundred recurring
/// inputs with few of them sharing a slot.
const SLOTS: usize = 1024;
/// Longer inputs are not kept, which bounds a memo's keys to `SLOTS * MAX_KEY` bytes. Real clients'
/// inputs are a few hundred bytes (at most 238 in the JA4 test vectors).
pub const MAX_KEY: usize = 1024;

#[derive(Default)]
struct Slot<const N: usize> {
    /// The kept input, its hash and its result; `value` is `None` until an input is kept.
    key: Vec<u8>,
    hash: u64,
    value: Option<[u8; N]>,
    /// The hash of the last input that missed here.
    candidate: u64,
}

/// Results of one function of a byte string, `N` bytes each.
pub struct Memo<const N: usize> {
    /// Empty until first used, so that an unused memo costs nothing.
    slots: Vec<Slot<N>>,
}

impl<const N: usize> Memo<N> {
    pub const fn new() -> Memo<N> {
        Memo { slots: Vec::new() }
    }

    /// `compute(input)`, from the memo when `input` is the one kept in its slot.
    pub fn get(&mut self, input: &[u8], compute: impl FnOnce(&[u8]) -> [u8; N]) -> [u8; N] {
        if input.len() > MAX_KEY {
            return compute(input);
        }
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Slot::default);
        }
        let h = hash(input);
        let slot = match self.slots.get_mut((h >> (64 - SLOTS.trailing_zeros())) as usize) {
            Some(slot) => slot,
            None => return compute(input),
        };
        if let Some(value) = slot.value {
            if slot.hash == h && same(&slot.key, input) {
                return value;
            }
        }
        let value = compute(input);
        if slot.candidate == h {
            slot.key.clear();
            slot.key.reserve_exact(input.len());
            slot.key.extend_from_slice(input);
            slot.hash = h;
            slot.value = Some(value);
        }
        slot.candidate = h;
        value
    }
}

impl<const N: usize> Default for Memo<N> {
    fn default() -> Memo<N> {
        Memo::new()
    }
}

/// `a == b`, eight bytes at a time: the slice comparison calls a bytewise `memcmp` in wasm32.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    a8.by_ref().zip(b8.by_ref()).all(|(x, y)| word(x) == word(y)) && a8.remainder() == b8.remainder()
}

fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(<[u8; 8]>::try_from(bytes).unwrap_or_default())
}

/// A multiplicative hash over 8-byte words. The rotation after each multiply carries the high bits,
/// where a multiply puts a word's differences, down to where the next one spreads them again, so that
/// inputs differing in a digit or two (typical here) do not cancel out; the last multiply leaves the slot
/// bits depending on every bit. Not collision-resistant, and need not be: a collision only costs a miss.
fn hash(input: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |h: u64, v: u64| (h ^ v).wrapping_mul(K).rotate_left(31);
    let mut words = input.chunks_exact(8);
    let mut h = input.len() as u64;
    for w in &mut words {
        h = mix(h, word(w));
    }
    for &b in words.remainder() {
        h = mix(h, u64::from(b));
    }
    h.wrapping_mul(K)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(input: &[u8]) -> u64 {
        hash(input) >> (64 - SLOTS.trailing_zeros())
    }

    /// Calls `memo.get` and says whether it computed the result, checking the result either way.
    fn computed(memo: &mut Memo<1>, input: &[u8]) -> bool {
        let sum = |b: &[u8]| [b.iter().fold(7u8, |s, &x| s.wrapping_add(x))];
        let mut calls = 0;
        let got = memo.get(input, |b| {
            calls += 1;
            sum(b)
        });
        assert_eq!(got, sum(input));
        calls == 1
    }

    /// An input is kept on its second miss in a row and then hits; one seen once in between (sharing its
    /// slot, as every input does sooner or later) neither hits nor evicts it, and one that misses twice
    /// takes its place. A never-written slot matches nothing, not even the empty input.
    #[test]
    fn inputs_sharing_a_slot_keep_their_own_results() {
        let mut memo = Memo::<1>::new();
        assert!(computed(&mut memo, b""));
        let kept = b"0000,0001".to_vec();
        let others: Vec<Vec<u8>> = (0u32..)
            .map(|n| format!("{n:04x},0001").into_bytes())
            .filter(|k| slot(k) == slot(&kept) && *k != kept)
            .take(2)
            .collect();
        assert!(computed(&mut memo, &kept));
        assert!(computed(&mut memo, &kept));
        assert!(!computed(&mut memo, &kept));
        assert!(computed(&mut memo, &others[0]));
        assert!(!computed(&mut memo, &kept), "an input seen once evicts nothing");
        assert!(computed(&mut memo, &others[1]));
        assert!(computed(&mut memo, &others[1]));
        assert!(!computed(&mut memo, &others[1]));
        assert!(computed(&mut memo, &kept), "an input that missed twice took the slot");
    }

    /// Inputs over `MAX_KEY` are computed every time and never stored.
    #[test]
    fn long_inputs_are_not_kept() {
        let mut memo = Memo::<1>::new();
        let long = vec![b'a'; MAX_KEY + 1];
        for _ in 0..3 {
            assert!(computed(&mut memo, &long));
        }
        assert!(memo.slots.iter().all(|s| s.key.capacity() <= MAX_KEY));
    }
}
