//! Token buckets: rates and bursts in bits, turned into the kernel's tbf parameters exactly
//! as the reference computes them (Go's `vishvananda/netlink` arithmetic, 25 ms latency),
//! overflowing 32-bit conversions included, so both plugins install the same buckets and
//! each one's CHECK accepts the other's.

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

/// Go's `uint32(f)` as the reference's amd64 binaries compute it: the integer part (toward
/// zero) as a 64-bit integer, then its low 32 bits. Every value the arithmetic below can
/// produce is far below 2^63.
fn go_u32(f: f64) -> u32 {
    (f as i64) as u32
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
    /// The 32-bit conversions wrap as the reference's do. That matters for containerd's
    /// burst of `2^32 - 1` bits (Kubernetes annotations have no burst): the bucket in ticks
    /// overflows at every rate above about 1 Mbit/s and wraps to what is, for nearly all
    /// rates, minutes of the rate (about 193 MB at 10 Mbit/s), so the first hundreds of
    /// megabytes of a pod pass unshaped, with the reference as with this plugin.
    pub fn tbf(&self, tick_in_usec: f64) -> TbfParams {
        let rate = self.rate_bytes();
        let burst = self.burst_bytes();
        let micros = go_u32(f64::from(burst) * 1_000_000.0 / rate as f64);
        let buffer = go_u32(f64::from(micros) * tick_in_usec);
        let latency_us = 1_000_000.0 * (LATENCY_MS / 1000.0);
        let limit = go_u32(rate as f64 * latency_us / 1_000_000.0).wrapping_add(burst);
        TbfParams {
            rate,
            buffer,
            limit,
        }
    }
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
    }

    #[test]
    fn containerds_burst_wraps_as_in_the_reference() {
        let t = TokenBucket {
            rate: 10_000_000,
            burst: u64::from(u32::MAX),
        }
        .tbf(TICK);
        // 536870911 B at 1.25 MB/s is 429496728 us; times 15.625 is 6710886375 ticks,
        // which Go's uint32 conversion wraps to 2415919079 (154.6 s, 193 MB).
        assert_eq!(t.buffer, 2_415_919_079);
        assert_eq!(t.limit, 31_250 + 536_870_911);
    }
}
