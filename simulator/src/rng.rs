//! A tiny deterministic PRNG (SplitMix64 seeding, xoshiro256** generation) with independent streams per
//! (purpose, entity), so that simulated results depend only on the seed, never on call order or platform.
//!
//! Every transcendental function used for sampling (`ln`, `cos`) is computed here from IEEE basic
//! operations, which are correctly rounded everywhere: the same seed gives the same numbers on every
//! platform and in every process. [`Dist`] is the truncated normal law the parameters use for durations.

use serde::Deserialize;

/// Adds the SplitMix64 increment to `state` and returns the next SplitMix64 output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix64(*state)
}

/// SplitMix64's finaliser: a bijective avalanche of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a hash of a stream name (stable across builds, unlike `std`'s hashers).
fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// A xoshiro256** generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from `seed` through SplitMix64.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        Rng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// The stream of `stream` (a purpose such as `"boot"`) for entity `index` (a node index): streams
    /// with different names or indices are independent of each other and of the order they are made in.
    pub fn for_entity(seed: u64, stream: &str, index: u64) -> Self {
        Self::keyed(seed, &[fnv1a(stream), index])
    }

    /// The stream of the `counter`-th event of `stream` for entity `index` (e.g. a node's third boot).
    pub fn for_event(seed: u64, stream: &str, index: u64, counter: u64) -> Self {
        Self::keyed(seed, &[fnv1a(stream), index, counter])
    }

    fn keyed(seed: u64, words: &[u64]) -> Self {
        let key = words.iter().fold(mix64(seed), |h, &w| {
            mix64(h ^ mix64(w.wrapping_add(0x9E37_79B9_7F4A_7C15)))
        });
        Rng::new(key)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform float in `[a, b)`.
    pub fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.next_f64()
    }

    /// A uniform integer in `[0, n)` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p` (clamped to `[0, 1]`).
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A normal deviate (Box-Muller; always consumes two draws so streams stay aligned, see [`Dist::skip`]).
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]
        let u2 = self.next_f64();
        let z = (-2.0 * portable_ln(u1)).sqrt() * cos_2pi(u2);
        mean + sd * z
    }
}

/// A duration drawn per node from a normal law truncated at `min` (draws below `min` become `min`).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dist {
    /// Mean in seconds (required when the distribution is given).
    pub mean: f64,
    /// Standard deviation in seconds (0 when not given).
    #[serde(default)]
    pub sd: f64,
    /// Lower bound in seconds (0 when not given).
    #[serde(default)]
    pub min: f64,
}

impl Dist {
    /// A distribution with `mean`, `sd` and `min`.
    pub const fn new(mean: f64, sd: f64, min: f64) -> Self {
        Dist { mean, sd, min }
    }

    /// One draw from `rng` (always consumes the same number of draws).
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        rng.normal(self.mean, self.sd).max(self.min)
    }

    /// Consumes the draws of one [`Dist::sample`] without computing it (for a duration that will not be
    /// used: the draws after it stay the same).
    pub fn skip(rng: &mut Rng) {
        rng.next_u64();
        rng.next_u64();
    }
}

/// Natural logarithm of a positive normal `x` from basic operations only (about 1 ulp).
pub(crate) fn portable_ln(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return x;
    }
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7FF) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | (1023u64 << 52));
    if e == -1023 {
        // Subnormal: renormalise.
        let n = x * (1u64 << 54) as f64;
        return portable_ln(n) - 54.0 * std::f64::consts::LN_2;
    }
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716.
    // Horner's scheme on constant reciprocals: multiplications only (a division per term made the
    // boot draws of a million nodes a visible share of kasim's time).
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let poly = ATANH_COEFFS.iter().rev().fold(0.0, |acc, c| acc * s2 + c);
    e as f64 * std::f64::consts::LN_2 + 2.0 * s * poly
}

/// `1 / (2k + 1)` for k = 0..14: the series of atanh.
const ATANH_COEFFS: [f64; 14] = [
    1.0,
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
    1.0 / 19.0,
    1.0 / 21.0,
    1.0 / 23.0,
    1.0 / 25.0,
    1.0 / 27.0,
];

/// `cos(2πu)` from basic operations only, with an exact reduction on `u`.
pub(crate) fn cos_2pi(u: f64) -> f64 {
    if !u.is_finite() {
        return f64::NAN;
    }
    let mut v = (u - u.round()).abs(); // [0, 0.5]
    let mut sign = 1.0;
    if v > 0.25 {
        v = 0.5 - v;
        sign = -1.0;
    }
    let tau = 2.0 * std::f64::consts::PI;
    if v > 0.125 {
        sign * sin_series(tau * (0.25 - v))
    } else {
        sign * cos_series(tau * v)
    }
}

/// Taylor series of `sin` on `[0, π/4]`.
fn sin_series(x: f64) -> f64 {
    let x2 = x * x;
    let (mut term, mut sum) = (x, 0.0);
    for k in 1..=10u32 {
        sum += term;
        term *= -x2 / f64::from((2 * k) * (2 * k + 1));
    }
    sum
}

/// Taylor series of `cos` on `[0, π/4]`.
fn cos_series(x: f64) -> f64 {
    let x2 = x * x;
    let (mut term, mut sum) = (1.0, 0.0);
    for k in 1..=10u32 {
        sum += term;
        term *= -x2 / f64::from((2 * k - 1) * (2 * k));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference() {
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn xoshiro_output_is_pinned() {
        // Pins the whole pipeline (seeding + generator): a change here changes every simulation.
        let mut r = Rng::new(42);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, PINNED_42);
    }

    // Cross-checked against an independent implementation of SplitMix64 + xoshiro256**.
    const PINNED_42: [u64; 3] = [
        1_546_998_764_402_558_742,
        6_990_951_692_964_543_102,
        12_544_586_762_248_559_009,
    ];

    #[test]
    fn same_seed_same_numbers_and_streams_are_independent() {
        let a: Vec<u64> = (0..5)
            .map(|i| Rng::for_entity(7, "boot", i).next_u64())
            .collect();
        let b: Vec<u64> = (0..5)
            .rev()
            .map(|i| Rng::for_entity(7, "boot", i).next_u64())
            .collect();
        assert_eq!(a, b.into_iter().rev().collect::<Vec<_>>());
        assert_ne!(Rng::for_entity(7, "boot", 0), Rng::for_entity(7, "disk", 0));
        assert_ne!(Rng::for_entity(7, "boot", 0), Rng::for_entity(8, "boot", 0));
        assert_ne!(
            Rng::for_event(7, "boot", 0, 1),
            Rng::for_event(7, "boot", 0, 2)
        );
        assert_ne!(
            Rng::for_event(7, "boot", 1, 0),
            Rng::for_event(7, "boot", 0, 1)
        );
    }

    #[test]
    fn distributions_have_the_right_moments() {
        let mut r = Rng::new(1);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal(10.0, 2.0)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!((mean - 10.0).abs() < 0.05, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "sd {}", var.sqrt());
        let hits = (0..n).filter(|_| r.chance(0.25)).count();
        assert!((hits as f64 / n as f64 - 0.25).abs() < 0.02);
        for _ in 0..1000 {
            let u = r.uniform(3.0, 5.0);
            assert!((3.0..5.0).contains(&u));
            assert!(r.below(7) < 7);
        }
        assert_eq!(r.below(0), 0);
        assert!(!r.chance(0.0));
    }

    #[test]
    fn portable_functions_match_std() {
        let mut r = Rng::new(3);
        for _ in 0..10_000 {
            let x = 1.0 - r.next_f64();
            assert!(
                (portable_ln(x) - x.ln()).abs() <= 1e-14 * (1.0 + x.ln().abs()),
                "ln {x}"
            );
            let u = r.next_f64();
            let c = (2.0 * std::f64::consts::PI * u).cos();
            assert!((cos_2pi(u) - c).abs() < 1e-14, "cos {u}");
        }
        assert!((portable_ln(1e300) - 1e300f64.ln()).abs() < 1e-10);
        assert!((portable_ln(5e-320) - 5e-320f64.ln()).abs() < 1e-10);
        assert!(portable_ln(-1.0).is_nan());
    }

    #[test]
    fn truncated_draws_respect_min() {
        let d = Dist::new(1.0, 10.0, 0.5);
        let mut rng = Rng::new(9);
        assert!((0..1000).all(|_| d.sample(&mut rng) >= 0.5));
    }
}
