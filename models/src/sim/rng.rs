//! The simulator's random source: a small, portable, seeded generator
//! (oorandom's PCG) plus the few distributions the scenarios draw from.
//! Same seed, same stream, on every platform and build.

/// Seeded random source.
pub struct Rng(oorandom::Rand64);

impl Rng {
    /// A generator for `seed`. Different seeds give independent-looking streams.
    pub fn new(seed: u64) -> Rng {
        // Spread the seed over both halves of PCG's 128-bit state.
        let s = u128::from(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)) << 64 | u128::from(seed);
        Rng(oorandom::Rand64::new(s))
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0.rand_float()
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [lo, hi] (inclusive).
    pub fn int(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.0.rand_range(0..u64::from(hi - lo + 1)) as u32
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Normal draw (Box–Muller).
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Log-normal draw with the given median and spread (sd of the log),
    /// clamped to [lo, hi]: durations, counts and rates are skewed like this.
    pub fn log_normal(&mut self, median: f64, spread: f64, lo: f64, hi: f64) -> f64 {
        (median.ln() + spread * self.normal(0.0, 1.0)).exp().clamp(lo, hi)
    }

    /// Picks an index with the given relative weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// An hour of the day around `center` (may be outside 0–24) with spread `sd`.
    pub fn hour_around(&mut self, center: f64, sd: f64) -> u8 {
        (self.normal(center, sd).round() as i64).rem_euclid(24) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_bounds_hold() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.unit().to_bits(), b.unit().to_bits());
        }
        let mut r = Rng::new(8);
        for _ in 0..1000 {
            let i = r.int(3, 5);
            assert!((3..=5).contains(&i));
            assert!(r.hour_around(-30.0, 5.0) < 24);
            let x = r.log_normal(10.0, 2.0, 1.0, 50.0);
            assert!((1.0..=50.0).contains(&x));
        }
        assert_ne!(Rng::new(1).unit(), Rng::new(2).unit());
    }
}
