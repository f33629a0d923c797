//! [`Recent`]: what an instance learned lately, kept for a bounded time and
//! looked up on every tap of a crowd.
//!
//! A general cache (moka) keeps popularity estimates and read buffers up to
//! date on every hit; measured over HTTP, that bookkeeping on the sold-out
//! path cost more than the rest of the answer. These maps are small (the
//! sales sold out lately, the tokens verified lately), so a plain map under
//! a read lock, emptied when it fills, does the job in a fraction.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

pub struct Recent<V> {
    entries: RwLock<HashMap<String, (V, Instant)>>,
    ttl: Duration,
    capacity: usize,
}

impl<V: Clone> Recent<V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Recent {
            entries: RwLock::new(HashMap::new()),
            ttl,
            capacity,
        }
    }

    /// The value, if it was put less than the time to live ago.
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (value, put_at) = entries.get(key)?;
        (put_at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Keeps `value` for the time to live. A full map drops what expired,
    /// or everything if nothing did: each entry is only a shortcut.
    pub fn put(&self, key: &str, value: V) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            entries.retain(|_, (_, put_at)| put_at.elapsed() < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (value, Instant::now()));
    }

    pub fn remove(&self, key: &str) {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_for_its_time_to_live() {
        let recent = Recent::new(Duration::from_millis(50), 10);
        recent.put("a", 1);
        assert_eq!(recent.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(recent.get("a"), None);
    }

    #[test]
    fn a_full_map_makes_room() {
        let recent = Recent::new(Duration::from_secs(60), 2);
        recent.put("a", 1);
        recent.put("b", 2);
        recent.put("a", 3);
        assert_eq!(
            (recent.get("a"), recent.get("b")),
            (Some(3), Some(2)),
            "a key already in"
        );
        recent.put("c", 4);
        assert_eq!(recent.get("c"), Some(4));
        assert!(recent.entries.read().unwrap().len() <= 2);
    }

    #[test]
    fn a_removed_entry_is_gone() {
        let recent = Recent::new(Duration::from_secs(60), 2);
        recent.put("a", ());
        recent.remove("a");
        assert_eq!(recent.get("a"), None);
    }
}
