//! [`HotItems`] on Redis. Counts go to one hash per second,
//! `hot:{<second>}`, field per item, expiring after [`BUCKET_KEPT_SECONDS`]:
//! each instance adds its counts once a second (one `HINCRBY` per item it
//! saw, one pipeline), so a bucket takes one write per instance and item
//! that second, and the next second's bucket has another hash tag and most
//! likely another master. Hot SKUs are one hash, `hot:marks`, read by each
//! instance about once a second and written only when a SKU turns hot or
//! cools: with a thousand instances, a thousand cheap reads a second on
//! one master.

use std::collections::{BTreeMap, HashMap};

use super::RedisGate;
use crate::ports::{HotItems, HotMark, PortError, PortResult};

/// How long a bucket lives: the longest window read (60 s) with room for
/// instances whose clocks lag.
const BUCKET_KEPT_SECONDS: i64 = 180;

impl RedisGate {
    fn bucket(&self, second: i64) -> String {
        format!("{}hot:{{{second}}}", self.prefix)
    }

    fn marks_key(&self) -> String {
        format!("{}hot:marks", self.prefix)
    }
}

impl HotItems for RedisGate {
    async fn add_hits(&self, second: i64, hits: &[(String, u64)]) -> PortResult<()> {
        if hits.is_empty() {
            return Ok(());
        }
        let bucket = self.bucket(second);
        let mut pipe = redis::pipe();
        for (item, count) in hits {
            pipe.cmd("HINCRBY").arg(&bucket).arg(item).arg(count).ignore();
        }
        pipe.cmd("EXPIRE").arg(&bucket).arg(BUCKET_KEPT_SECONDS).ignore();
        pipe.exec_async(&mut self.connection()).await?;
        Ok(())
    }

    async fn hits(&self, seconds: std::ops::Range<i64>) -> PortResult<Vec<HashMap<String, u64>>> {
        if seconds.is_empty() {
            return Ok(Vec::new());
        }
        self.each(seconds.map(|second| redis::cmd("HGETALL").arg(self.bucket(second)).clone()))
            .await
    }

    async fn hits_of(&self, seconds: std::ops::Range<i64>, fields: &[String]) -> PortResult<Vec<Vec<u64>>> {
        if seconds.is_empty() || fields.is_empty() {
            return Ok(seconds.map(|_| vec![0; fields.len()]).collect());
        }
        let buckets: Vec<Vec<Option<u64>>> = self
            .each(seconds.map(|second| redis::cmd("HMGET").arg(self.bucket(second)).arg(fields).clone()))
            .await?;
        Ok(buckets
            .into_iter()
            .map(|counts| counts.into_iter().map(Option::unwrap_or_default).collect())
            .collect())
    }

    async fn hot_marks(&self) -> PortResult<BTreeMap<String, HotMark>> {
        let marks: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(self.marks_key())
            .query_async(&mut self.connection())
            .await?;
        marks
            .into_iter()
            .map(|(sku_id, mark)| {
                let mark = serde_json::from_str(&mark)
                    .map_err(|error| PortError::Unavailable(format!("hot mark of {sku_id}: {error}")))?;
                Ok((sku_id, mark))
            })
            .collect()
    }

    async fn set_hot_mark(&self, sku_id: &str, mark: Option<HotMark>) -> PortResult<()> {
        let command = match mark {
            Some(mark) => {
                let mark = serde_json::to_string(&mark).map_err(|error| PortError::Unavailable(error.to_string()))?;
                let mut command = redis::cmd("HSET");
                command.arg(self.marks_key()).arg(sku_id).arg(mark);
                command
            }
            None => {
                let mut command = redis::cmd("HDEL");
                command.arg(self.marks_key()).arg(sku_id);
                command
            }
        };
        command.exec_async(&mut self.connection()).await?;
        Ok(())
    }
}
