//! Peak writes per second per partition key, for every table and index of
//! `tables::ALL`, at Double-11 sizes: a sale of 10,000 units selling out in
//! one second (its winners paying within ten), and a rain of 100,000
//! packets claimed in ten seconds and paid out as fast as the payout job
//! can go. DynamoDB takes about 1,000
//! writes per second per partition key (tables and indexes alike), so this
//! fails above that: a later change cannot quietly bring back a hot key.
//!
//! The hot figures are computed from the sharding constants and the payout
//! limits; the rest are the writes one key can see in a second by the
//! nature of its key (one order, one shopper, one operator), which a key
//! change would have to revisit here. The printout is the capacity
//! table of docs/design.md.

use shared::{
    domain::red_packet::PayoutLimits,
    ledger::tables::{self, CAMPAIGN_TOTALS_SHARDS, ORDER_SHARDS, OWED_SHARDS},
};

const DYNAMODB_WRITES_PER_KEY: f64 = 1_000.0;
const SALE_ORDERS_PER_SECOND: f64 = 10_000.0;
/// Its 10,000 winners all paying within ten seconds.
const SALE_PAYS_PER_SECOND: f64 = 1_000.0;
/// A 51-item transaction answered in 10 ms: faster than DynamoDB usually
/// is, so the payout's figure is an upper bound.
const FASTEST_TRANSACTION_SECONDS: f64 = 0.010;
/// A rain of 100,000 packets claimed in ten seconds.
const RAIN_CLAIMS_PER_SECOND: f64 = 10_000.0;

fn payout_credits_per_second() -> f64 {
    let limits = PayoutLimits::default();
    (limits.concurrency * limits.per_transaction) as f64 / FASTEST_TRANSACTION_SECONDS
}

/// Who writes one table or index, and the peak per partition key.
struct Load {
    table: &'static str,
    index: Option<&'static str>,
    writers: &'static str,
    per_key: f64,
}

fn loads() -> Vec<Load> {
    let credits = payout_credits_per_second();
    let per_transaction = PayoutLimits::default().per_transaction as f64;
    let load = |table, index, writers, per_key| Load {
        table,
        index,
        writers,
        per_key,
    };
    vec![
        load(
            "orders",
            None,
            "grab puts the order; pay, cancel, timeout rewrite it, seconds apart",
            2.0,
        ),
        load("orders", Some("by_user"), "a shopper's orders: one per SKU", 2.0),
        load(
            "orders",
            Some("by_sku"),
            "every order of the SKU in the sale's first second, over ORDER_SHARDS",
            SALE_ORDERS_PER_SECOND / f64::from(ORDER_SHARDS),
        ),
        load(
            "orders",
            Some("by_status"),
            "every new PENDING_PAYMENT order in that second, over ORDER_SHARDS",
            SALE_ORDERS_PER_SECOND / f64::from(ORDER_SHARDS),
        ),
        load(
            "orders",
            Some("by_payment_due"),
            "each pay enters (attempt) and leaves (PAID) this sparse index, over ORDER_SHARDS",
            2.0 * SALE_PAYS_PER_SECOND / f64::from(ORDER_SHARDS),
        ),
        load(
            "sandbox_payments",
            None,
            "the sandbox provider's charge of one order, and its refund",
            2.0,
        ),
        load(
            "credits",
            None,
            "a claim records the packet's credit; the payout marks it paid, once",
            2.0,
        ),
        load(
            "credits",
            Some("owed"),
            "claims put credits on the payout queue while the payout takes them off, over OWED_SHARDS",
            (RAIN_CLAIMS_PER_SECOND + credits) / OWED_SHARDS as f64,
        ),
        load(
            "claimants",
            None,
            "a claim records the shopper's packet: one per rain",
            1.0,
        ),
        load(
            "credits",
            Some("by_user"),
            "a shopper's credit: one packet per rain",
            1.0,
        ),
        load("balances", None, "a shopper's balance: one credit per rain", 1.0),
        load(
            "campaign_totals",
            None,
            "one shard per credit transaction, at the payout's top speed",
            credits / per_transaction / CAMPAIGN_TOTALS_SHARDS as f64,
        ),
        load("campaigns", None, "an operator creates a campaign", 1.0),
        load(
            "packet_splits",
            None,
            "a campaign's split, written once at creation",
            1.0,
        ),
        load("skus", None, "an operator edits or publishes a SKU", 1.0),
        load(
            "skus",
            Some("on_sale"),
            "publish puts SKUs on it; the reconciliation job takes each one over and paid for off once",
            10.0,
        ),
        load("users", None, "a shopper registers or edits a profile", 1.0),
        load("admins", None, "an operator is added, disabled or logs in", 1.0),
        load("addresses", None, "a shopper's address book", 5.0),
        load("activities", None, "an operator", 1.0),
        load("slots", None, "an operator", 1.0),
        load("brands", None, "an operator", 1.0),
        load("categories", None, "an operator", 1.0),
        load(
            "categories",
            Some("by_parent"),
            "an operator adding categories under one parent",
            10.0,
        ),
        load("sku_activities", None, "an operator linking SKUs to an activity", 10.0),
        load("sku_activities", Some("by_sku"), "an operator linking one SKU", 1.0),
    ]
}

#[test]
fn every_table_and_index_has_its_load_and_none_exceeds_a_partition() {
    let loads = loads();
    let mut problems = Vec::new();
    for table in tables::ALL {
        let indexes = std::iter::once(None).chain(table.indexes.iter().map(|index| Some(index.name)));
        for index in indexes {
            if !loads.iter().any(|load| load.table == table.name && load.index == index) {
                problems.push(format!(
                    "{}{:?}: no load here; say who writes it and how fast",
                    table.name, index
                ));
            }
        }
    }
    println!("| table | index | writers | peak writes/s per partition key |");
    println!("|---|---|---|---:|");
    for load in &loads {
        let known = tables::ALL
            .iter()
            .find(|t| t.name == load.table)
            .is_some_and(|t| load.index.is_none_or(|name| t.indexes.iter().any(|i| i.name == name)));
        if !known {
            problems.push(format!("{}{:?}: no such table or index", load.table, load.index));
        }
        println!(
            "| `{}` | {} | {} | {:.0} |",
            load.table,
            load.index.map_or("—".to_owned(), |i| format!("`{i}`")),
            load.writers,
            load.per_key
        );
        if load.per_key > DYNAMODB_WRITES_PER_KEY {
            problems.push(format!(
                "{}{:?}: {:.0} writes/s per partition key, above DynamoDB's {DYNAMODB_WRITES_PER_KEY}",
                load.table, load.index, load.per_key
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
