//! [`RateLimiter`] in memory: the GCRA of `rate_limit.lua`, on the
//! process's monotonic clock.

use std::time::{Duration, Instant};

use super::{MemoryGate, Op};
use crate::ports::{Admission, PortResult, Rate, RateLimiter};

impl RateLimiter for MemoryGate {
    async fn admit(&self, key: &str, rate: Rate) -> PortResult<Admission> {
        self.faults
            .run(Op::Admit, || {
                let now = Instant::now();
                let interval = rate.period / rate.count.max(1);
                let tolerance = interval * rate.count.max(1).saturating_sub(1);
                let mut state = self.state();
                let tat = state.limits.get(key).copied().filter(|tat| *tat > now).unwrap_or(now);
                let wait = tat.saturating_duration_since(now + tolerance);
                if wait > Duration::ZERO {
                    return Ok(Admission::Limited { retry_after: wait });
                }
                state.limits.insert(key.to_owned(), tat + interval);
                Ok(Admission::Admitted)
            })
            .await
    }

    async fn reset(&self, key: &str) -> PortResult<()> {
        self.faults
            .run(Op::ResetLimit, || {
                self.state().limits.remove(key);
                Ok(())
            })
            .await
    }
}
