//! [`RateLimiter`] on Redis: `rate_limit.lua`, one key per client and
//! action, `<prefix>rl:{<key>}`: each its own hash tag, so a crowd's keys
//! spread over every master of a cluster.

use std::{sync::LazyLock, time::Duration};

use redis::Script;

use super::{RedisGate, field, split_reply, unexpected};
use crate::ports::{Admission, PortResult, Rate, RateLimiter};

static RATE_LIMIT: LazyLock<Script> = LazyLock::new(|| Script::new(lua::RATE_LIMIT));

/// The script's emission interval and burst tolerance for `rate`, in ms.
fn cells(rate: Rate) -> (u64, u64) {
    let period = u64::try_from(rate.period.as_millis()).unwrap_or(u64::MAX);
    let count = u64::from(rate.count.max(1));
    let interval = (period / count).max(1);
    (interval, interval.saturating_mul(count - 1))
}

impl RedisGate {
    fn limit_key(&self, key: &str) -> String {
        format!("{}rl:{{{key}}}", self.prefix)
    }
}

impl RateLimiter for RedisGate {
    async fn admit(&self, key: &str, rate: Rate) -> PortResult<Admission> {
        let key = self.limit_key(key);
        let (interval, tolerance) = cells(rate);
        let mut invocation = RATE_LIMIT.key(&key);
        invocation.arg(interval).arg(tolerance);
        let (status, values) = split_reply(self.run(&RATE_LIMIT, &invocation, &key).await?)?;
        match status.as_str() {
            "ADMITTED" => Ok(Admission::Admitted),
            "LIMITED" => Ok(Admission::Limited {
                retry_after: Duration::from_millis(field(&values, 0)?),
            }),
            other => Err(unexpected("rate_limit", other)),
        }
    }

    async fn reset(&self, key: &str) -> PortResult<()> {
        redis::cmd("DEL")
            .arg(self.limit_key(key))
            .exec_async(&mut self.connection())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_a_burst_then_a_steady_interval() {
        let per_second = Rate {
            count: 5,
            period: Duration::from_secs(1),
        };
        assert_eq!(cells(per_second), (200, 800));
        let one_a_minute = Rate {
            count: 1,
            period: Duration::from_secs(60),
        };
        assert_eq!(cells(one_a_minute), (60_000, 0));
    }
}
