//! [`WarmCapacity`] in memory: what each function was asked for, and how
//! many times it changed.

use std::{collections::BTreeMap, sync::Mutex};

use crate::ports::{CrowdFunction, PortResult, WarmCapacity};

#[derive(Debug, Default)]
pub struct MemoryWarmCapacity {
    asked: Mutex<(BTreeMap<CrowdFunction, u32>, usize)>,
}

impl MemoryWarmCapacity {
    pub fn changes(&self) -> usize {
        self.asked.lock().expect("warm").1
    }
}

impl WarmCapacity for MemoryWarmCapacity {
    async fn warm(&self, function: CrowdFunction) -> PortResult<u32> {
        Ok(self.asked.lock().expect("warm").0.get(&function).copied().unwrap_or(0))
    }

    async fn set_warm(&self, function: CrowdFunction, instances: u32) -> PortResult<()> {
        let mut asked = self.asked.lock().expect("warm");
        asked.0.insert(function, instances);
        asked.1 += 1;
        Ok(())
    }
}
