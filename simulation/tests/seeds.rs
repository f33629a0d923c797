//! The simulation in the test command: two thousand seeds, each a sale
//! under a crowd with faults at every port call and every guarantee
//! checked after every step. `SIM_SEEDS=<n>` runs more (a soak);
//! `SIM_SEED=<n>` replays one seed and prints what it did.

use simulation::{Settings, Summary, run};

fn setting(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|value| value.parse().ok())
}

#[test]
fn every_seed_keeps_every_guarantee() {
    let settings = Settings::default();
    if let Some(seed) = setting("SIM_SEED") {
        match run(seed, &settings) {
            Ok(summary) => eprintln!("seed {seed}: {summary:?}"),
            Err(failure) => panic!("{failure}"),
        }
        return;
    }
    let seeds = setting("SIM_SEEDS").unwrap_or(2_000);
    let mut total = Summary::default();
    for seed in 0..seeds {
        match run(seed, &settings) {
            Ok(summary) => total += summary,
            Err(failure) => panic!("{failure}"),
        }
    }
    eprintln!("{seeds} seeds: {total:?}");
    // The runs reached what they are for.
    assert!(total.won > 0 && total.sold_out > 0 && total.claims > 0, "{total:?}");
    assert!(total.faults > 0 && total.kills > 0 && total.wipes > 0, "{total:?}");
}

#[test]
fn a_seed_replays_exactly() {
    let settings = Settings::default();
    for seed in [3, 42, 1778] {
        let first = format!("{:?}", run(seed, &settings));
        assert_eq!(first, format!("{:?}", run(seed, &settings)), "seed {seed}");
    }
}

/// Seeds that once broke a guarantee, each kept as it was found.
#[test]
fn seeds_that_once_failed_keep_every_guarantee() {
    let settings = Settings::default();
    // The cache lost everything while the reconciliation job, checking
    // two SKUs side by side, still held a split's shares to open.
    for seed in [19229] {
        if let Err(failure) = run(seed, &settings) {
            panic!("{failure}");
        }
    }
}
