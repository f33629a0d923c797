//! [`TicketList`] in memory: the entries, how many updates wrote them,
//! and a switch that makes every write fail.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use crate::ports::{PortError, PortResult, TicketList};

#[derive(Debug, Default)]
pub struct MemoryTicketList {
    entries: Mutex<(BTreeMap<String, String>, usize)>,
    refusing: AtomicBool,
}

impl MemoryTicketList {
    /// Every name listed, in order.
    pub fn names(&self) -> Vec<String> {
        self.entries.lock().expect("list").0.keys().cloned().collect()
    }

    /// Every update from now on fails, as the store would unreachable.
    pub fn refuse_writes(&self) {
        self.refusing.store(true, Ordering::Relaxed);
    }

    /// How many updates were made.
    pub fn updates(&self) -> usize {
        self.entries.lock().expect("list").1
    }
}

impl TicketList for MemoryTicketList {
    async fn entry(&self, name: &str) -> PortResult<Option<String>> {
        Ok(self.entries.lock().expect("list").0.get(name).cloned())
    }

    async fn update(&self, puts: &[(String, String)], removes: &[String]) -> PortResult<()> {
        if self.refusing.load(Ordering::Relaxed) {
            return Err(PortError::Unavailable("the ticket list refuses writes".into()));
        }
        let mut entries = self.entries.lock().expect("list");
        entries.0.extend(puts.iter().cloned());
        for name in removes {
            entries.0.remove(name);
        }
        entries.1 += 1;
        Ok(())
    }
}
