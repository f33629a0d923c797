//! [`HotItems`] in memory: the buckets and marks as plain maps (nothing
//! expires: a test reads only the seconds it wrote).

use std::collections::{BTreeMap, HashMap};

use super::MemoryGate;
use crate::ports::{HotItems, HotMark, PortResult};

impl HotItems for MemoryGate {
    async fn add_hits(&self, second: i64, hits: &[(String, u64)]) -> PortResult<()> {
        let mut state = self.state();
        let bucket = state.hits.entry(second).or_default();
        for (item, count) in hits {
            *bucket.entry(item.clone()).or_default() += count;
        }
        Ok(())
    }

    async fn hits(&self, seconds: std::ops::Range<i64>) -> PortResult<Vec<HashMap<String, u64>>> {
        let state = self.state();
        Ok(seconds
            .map(|second| state.hits.get(&second).cloned().unwrap_or_default())
            .collect())
    }

    async fn hits_of(&self, seconds: std::ops::Range<i64>, fields: &[String]) -> PortResult<Vec<Vec<u64>>> {
        let state = self.state();
        Ok(seconds
            .map(|second| {
                let bucket = state.hits.get(&second);
                fields
                    .iter()
                    .map(|field| bucket.and_then(|bucket| bucket.get(field)).copied().unwrap_or_default())
                    .collect()
            })
            .collect())
    }

    async fn hot_marks(&self) -> PortResult<BTreeMap<String, HotMark>> {
        Ok(self.state().hot_marks.clone())
    }

    async fn set_hot_mark(&self, sku_id: &str, mark: Option<HotMark>) -> PortResult<()> {
        let mut state = self.state();
        match mark {
            Some(mark) => state.hot_marks.insert(sku_id.to_owned(), mark),
            None => state.hot_marks.remove(sku_id),
        };
        Ok(())
    }
}
