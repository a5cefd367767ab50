//! The host's one seeded generator, for generated traffic: benchmark
//! corpora and drill phases. Same seed, same bytes, on every machine.

use std::collections::BTreeMap;

/// SplitMix64: tiny, fast, and good enough for synthetic text and traffic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

/// The benchmark corpora's salt (`Rng::new`); other users pick their own
/// with [`Rng::salted`] so a shared seed does not give them the same stream.
const BENCH_SALT: u64 = 0x6a09_e667_f3bc_c908;

impl Rng {
    /// A generator from `seed`; the same seed gives the same sequence.
    pub fn new(seed: u64) -> Rng {
        Rng::salted(seed, BENCH_SALT)
    }

    /// A generator from `seed` mixed with a user's own `salt`.
    pub fn salted(seed: u64, salt: u64) -> Rng {
        Rng(seed ^ salt)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() <= p
    }

    /// One element of a non-empty list of references.
    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    /// One element of `items`, if there is any.
    pub fn choose<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    /// A key of `weights` chosen with probability proportional to its weight.
    pub fn weighted<'a>(&mut self, weights: &'a BTreeMap<String, f64>) -> Option<&'a str> {
        let total: f64 = weights.values().sum();
        let mut x = self.unit() * total;
        for (name, w) in weights {
            if x < *w {
                return Some(name);
            }
            x -= w;
        }
        weights.keys().next_back().map(String::as_str)
    }

    /// `n` characters drawn from `alphabet`.
    pub fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }
}
