//! Token buckets: rates and bursts in bits, turned into the kernel's tbf parameters exactly
//! as the reference computes them (Go's `vishvananda/netlink` arithmetic, 25 ms latency),
//! except that overflowing values saturate instead of wrapping.

use cni_linux::netlink::TbfParams;

/// The latency the reference gives every token bucket (`latencyInMillis`).
pub const LATENCY_MS: f64 = 25.0;

/// One direction's shaping: a rate in bits per second and a burst in bits, both non-zero
/// and validated (see [`crate::BandwidthConf`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Bits per second.
    pub rate: u64,
    /// Bits.
    pub burst: u64,
}

/// Go's `uint32(f)` for the values the reference can produce, but saturating: a value past
/// `u32::MAX` becomes `u32::MAX` where Go (on amd64) keeps the low 32 bits of the integer.
fn saturate(f: f64) -> u32 {
    // `as` truncates toward zero and saturates, which is Go's conversion in range.
    f as u32
}

impl TokenBucket {
    /// Rate in bytes per second.
    pub fn rate_bytes(&self) -> u64 {
        self.rate / 8
    }

    /// Burst in bytes (validation keeps it under 2^32).
    pub fn burst_bytes(&self) -> u32 {
        u32::try_from(self.burst / 8).unwrap_or(u32::MAX)
    }

    /// The tbf parameters, with `tick_in_usec` psched ticks per microsecond
    /// ([`cni_linux::netlink::tc::tick_in_usec`]):
    ///
    /// - rate: `rate / 8` bytes per second;
    /// - buffer: the time the burst lasts at the rate, `burst_bytes * 1e6 / rate_bytes`
    ///   microseconds, in ticks;
    /// - limit: `rate_bytes * 25 ms` plus the burst, in bytes.
    ///
    /// Where the reference's 32-bit conversions wrap (containerd's burst of `2^32 - 1` bits
    /// at most rates, or rates under 1 Mbit/s with large bursts) this saturates: the kernel
    /// then caps the bucket at about 4.29 s of the rate, which is also what it does with most
    /// of the reference's wrapped values, while some wrapped values give the reference a
    /// bucket smaller than one packet.
    pub fn tbf(&self, tick_in_usec: f64) -> TbfParams {
        let rate = self.rate_bytes();
        let burst = self.burst_bytes();
        let micros = saturate(f64::from(burst) * 1_000_000.0 / rate as f64);
        let buffer = saturate(f64::from(micros) * tick_in_usec);
        let latency_us = 1_000_000.0 * (LATENCY_MS / 1000.0);
        let limit = saturate(rate as f64 * latency_us / 1_000_000.0).saturating_add(burst);
        TbfParams {
            rate,
            buffer,
            limit,
        }
    }
}

/// The buffer the kernel reports for one it was given: it keeps the bucket as nanoseconds
/// in 32 bits (`min(ticks * 64, 2^32 - 1)`), and reports that back in ticks.
pub fn kernel_buffer(ticks: u32) -> u32 {
    let ns = (u64::from(ticks) << 6).min(u64::from(u32::MAX));
    u32::try_from(ns >> 6).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: f64 = 15.625;

    #[test]
    fn values_match_the_reference() {
        // tc shows the reference's qdisc for 8 Mbit/s, 80000 bits as
        // "rate 8Mbit burst 10000b lat 25ms": 1 MB/s, 10 kB, limit 25 kB + 10 kB.
        let t = TokenBucket {
            rate: 8_000_000,
            burst: 80_000,
        }
        .tbf(TICK);
        assert_eq!(t.rate, 1_000_000);
        // 10000 B at 1 MB/s is 10 ms = 10000 us = 156250 ticks.
        assert_eq!(t.buffer, 156_250);
        assert_eq!(t.limit, 25_000 + 10_000);
        assert_eq!(kernel_buffer(t.buffer), t.buffer);
    }

    #[test]
    fn containerds_burst_saturates_and_the_kernel_caps_it() {
        let t = TokenBucket {
            rate: 10_000_000,
            burst: u64::from(u32::MAX),
        }
        .tbf(TICK);
        // Go: uint32(429496728 us * 15.625) wraps to 2415919079; we keep u32::MAX.
        assert_eq!(t.buffer, u32::MAX);
        assert_eq!(kernel_buffer(t.buffer), (u32::MAX >> 6));
        assert_eq!(t.limit, 31_250 + 536_870_911);
    }
}
