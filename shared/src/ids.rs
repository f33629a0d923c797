//! Fresh identifiers (ULIDs: unique, and sortable by when they were made)
//! and the randomness of the flows (a campaign's split). Both come from
//! the system's clock and entropy, except on a thread a simulation has
//! seeded: there they follow the seed, so a run replays exactly.

use std::cell::RefCell;

use rand::{RngExt, SeedableRng, rngs::StdRng};
use ulid::Ulid;

struct Seeded {
    rng: StdRng,
    /// The next id's time part: counts up from the seeded start.
    next_ms: u64,
}

thread_local! {
    static SEEDED: RefCell<Option<Seeded>> = const { RefCell::new(None) };
}

/// A new ULID, as text.
pub fn fresh() -> String {
    SEEDED
        .with_borrow_mut(|seeded| match seeded {
            Some(seeded) => {
                seeded.next_ms += 1;
                Ulid::from_parts(seeded.next_ms, seeded.rng.random())
            }
            None => Ulid::generate(),
        })
        .to_string()
}

/// A random generator for a flow: the thread's seeded one, or fresh
/// entropy.
pub fn rng() -> StdRng {
    SEEDED.with_borrow_mut(|seeded| match seeded {
        Some(seeded) => StdRng::seed_from_u64(seeded.rng.random()),
        None => rand::make_rng(),
    })
}

/// A waiting room's random draw: below 2^53, so a sorted set's score (a
/// double) holds it exactly.
pub fn draw() -> u64 {
    rng().random::<u64>() >> 11
}

/// Makes this thread's ids and randomness follow `seed` (and ids' time
/// parts count up from `start_ms`), until [`unseed`].
#[cfg(any(test, feature = "memory"))]
pub fn seed(seed: u64, start_ms: u64) {
    SEEDED.set(Some(Seeded {
        rng: StdRng::seed_from_u64(seed),
        next_ms: start_ms,
    }));
}

/// Back to the system's clock and entropy.
#[cfg(any(test, feature = "memory"))]
pub fn unseed() {
    SEEDED.set(None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_thread_replays_its_ids_and_they_sort_as_made() {
        seed(7, 1_000);
        let first: Vec<String> = (0..3).map(|_| fresh()).collect();
        seed(7, 1_000);
        let again: Vec<String> = (0..3).map(|_| fresh()).collect();
        unseed();
        assert_eq!(first, again);
        assert!(first.windows(2).all(|pair| pair[0] < pair[1]), "{first:?}");
        assert_ne!(fresh(), first[0]);
    }
}
