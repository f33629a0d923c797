//! Where a SKU's keys live. An unsharded SKU is one shard, its keys tagged
//! `{<id>}` as always. A hot SKU's stock is split over `n` shards (see
//! `split.lua`): the first keeps the `{<id>}` keys, each other one has keys
//! tagged `{<id>~<suffix>}`, the suffix chosen so that the shards' slots
//! fall in `n` different evenly split slot ranges. A cluster whose masters
//! split the slots evenly (what `redis-cli --cluster create` and ElastiCache
//! do) thus serves each shard from a different master when `n` is its
//! number of masters.
//!
//! Every shopper has a home shard, chosen from the username, where their
//! orders live: one live order per shopper needs no more than one shard.
//! Each instance remembers a SKU's number of shards; every script checks it
//! (`RESHARDED` when stale), so the memory costs no round trip.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

/// Hash slots in a Redis Cluster.
const SLOTS: u32 = 16384;

/// Beyond this many SKUs remembered, an instance forgets them all and
/// learns again (one `RESHARDED` per SKU).
const REMEMBERED_LAYOUTS: usize = 10_000;

/// The cluster slot of a hash tag (CRC16/XMODEM, as Redis computes it).
fn slot(tag: &str) -> u32 {
    u32::from(crc16::State::<crc16::XMODEM>::calculate(tag.as_bytes())) % SLOTS
}

/// Which of `n` even slot ranges a slot falls in.
fn range(slot: u32, n: u32) -> u32 {
    slot * n / SLOTS
}

/// The shard of `n` that holds `username`'s orders.
pub fn home(username: &str, n: u32) -> u32 {
    if n <= 1 { 0 } else { slot(username) % n }
}

/// The hash tag of shard `index` of a SKU split in `n`: the SKU's own id for
/// the first, and for the others the id with the first suffix whose slot
/// lands in a range no other shard has.
pub fn tag(sku_id: &str, index: u32, n: u32) -> String {
    if index == 0 {
        return sku_id.to_owned();
    }
    let first = range(slot(sku_id), n);
    // The ranges left once the first shard has taken its own, in order.
    let target = if index - 1 < first { index - 1 } else { index };
    (0u32..)
        .map(|suffix| format!("{sku_id}~{suffix}"))
        .find(|tag| range(slot(tag), n) == target)
        .expect("every range holds some slot")
}

/// Whether `tag` is the hash tag of a shard of `sku_id`.
pub fn of_sku(tag: &str, sku_id: &str) -> bool {
    tag.strip_prefix(sku_id)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('~'))
}

/// How many shards each SKU has, as far as this instance knows.
#[derive(Debug, Clone, Default)]
pub struct Layouts(Arc<RwLock<HashMap<String, u32>>>);

impl Layouts {
    pub fn get(&self, sku_id: &str) -> u32 {
        let known = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        known.get(sku_id).copied().unwrap_or(1)
    }

    pub fn set(&self, sku_id: &str, shards: u32) {
        let mut known = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if known.len() >= REMEMBERED_LAYOUTS && !known.contains_key(sku_id) {
            known.clear();
        }
        known.insert(sku_id.to_owned(), shards);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shards_of_a_sku_land_in_distinct_slot_ranges() {
        for n in 1..=6 {
            for sku in ["01HZX", "sku-1", "a", "01J0000000000000000000000"] {
                let mut ranges: Vec<u32> = (0..n).map(|i| range(slot(&tag(sku, i, n)), n)).collect();
                ranges.sort_unstable();
                ranges.dedup();
                assert_eq!(ranges.len(), n as usize, "{sku} in {n}");
            }
        }
    }

    #[test]
    fn the_first_shard_keeps_the_unsharded_keys() {
        assert_eq!(tag("sku-1", 0, 3), "sku-1");
    }

    #[test]
    fn a_slot_matches_the_one_redis_computes() {
        // CLUSTER KEYSLOT foo = 12182, as in the Redis Cluster specification.
        assert_eq!(slot("foo"), 12182);
    }

    #[test]
    fn shoppers_spread_over_the_shards() {
        let mut counts = [0u32; 3];
        for i in 0..3000 {
            counts[home(&format!("shopper-{i}"), 3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert_eq!(home("anyone", 1), 0);
    }
}
