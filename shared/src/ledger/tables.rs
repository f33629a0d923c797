//! The DynamoDB tables: one definition, used to create them locally and in
//! tests, and compared against `infra/template.yaml` by a test so the two
//! cannot drift. Every key attribute is a string.
//!
//! | query                               | table  | key / index                         |
//! |-------------------------------------|--------|-------------------------------------|
//! | account by username                 | users  | `username`                          |
//! | operator by login name              | admins | `login_name`                        |
//! | SKU by id                           | skus   | `id`                                |
//! | order by id                         | orders | `id`                                |
//! | a shopper's orders, newest first    | orders | `by_user`: `username`, `create_time`|
//! | a SKU's orders (rebuild, reconcile) | orders | `by_sku`: `sku_shard`, `id` (16 shards, merged on read) |
//! | red-packet campaign by id           | campaigns | `id`                             |
//! | campaigns not yet over (reconciliation) | campaigns | `Scan` with a filter (a few per promotion) |
//! | a campaign's split, in pool order   | packet_splits | `campaign_id`, `chunk`       |
//! | a campaign's credited totals        | campaign_totals | `campaign_id`, `shard` (16 shards, summed on read) |
//! | credits of given packets (rebuild)  | credits | `BatchGetItem` by `red_packet_id`  |
//! | credit by packet (claimed once, credited once) | credits | `red_packet_id`         |
//! | a shopper's credits, newest first   | credits | `by_user`: `username`, `credited_at` (credited ones only) |
//! | credits owed, the oldest first (payout) | credits | `owed`: `payout_shard`, `claimed_at` (sparse, 32 shards, merged on read) |
//! | a shopper's packet of a campaign    | claimants | `username`, `campaign_id`         |
//! | a shopper's balance                 | balances | `username`                        |
//! | SKUs on sale, by start (storefront) | skus   | `on_sale`: `on_sale`, `seckill_begin` (sparse: published SKUs until their sale is over and settled) |
//! | orders by status, newest first      | orders | `by_status`: `status_shard`, `create_time` (16 shards, merged on read) |
//! | orders whose money is due to settle (payments job) | orders | `by_payment_due`: `payment_due_shard`, `payment_due` (sparse, 16 shards) |
//! | a charge by idempotency key (sandbox provider) | sandbox_payments | `idempotency_key` |
//! | activity / slot / brand by id       | activities / slots / brands | `id`        |
//! | category by id; children of one     | categories | `id`; `by_parent`: `parent_id`, `id` |
//! | SKUs of an activity; activities of a SKU | sku_activities | `activity_id`, `sku_id`; `by_sku`: `sku_id`, `activity_id` |
//! | a shopper's addresses               | addresses | `username`, `id`                 |
//! | catalog listings (admin)            | any    | paged `Scan` with `Limit` and a cursor, one page per request |

use crate::model::RecordKind;
use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType,
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// The logical name; the deployed name is `TABLE_PREFIX` + this.
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
    pub indexes: &'static [IndexDef],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
}

pub const USERS: TableDef = TableDef {
    name: "users",
    hash_key: "username",
    range_key: None,
    indexes: &[],
};

pub const ADMINS: TableDef = TableDef {
    name: "admins",
    hash_key: "login_name",
    range_key: None,
    indexes: &[],
};

pub const SKUS_ON_SALE: &str = "on_sale";

pub const SKUS: TableDef = TableDef {
    name: "skus",
    hash_key: "id",
    range_key: None,
    indexes: &[IndexDef {
        name: SKUS_ON_SALE,
        hash_key: "on_sale",
        range_key: Some("seckill_begin"),
    }],
};

/// Partitions a SKU's orders spread over in `by_sku` (`<sku_id>#<n>`) and
/// a status's in `by_status` (`<status>#<n>`): a sale of 10,000 units
/// selling out in a second writes 625 a second to each, under DynamoDB's
/// 1,000 per partition key (`shared/tests/capacity.rs` holds it there).
pub const ORDER_SHARDS: u32 = 16;

/// Shards of a campaign's credited totals (`campaign_totals`): each credit
/// transaction adds to one, so no item is written by every credit.
pub const CAMPAIGN_TOTALS_SHARDS: u64 = 16;

pub const ORDERS_BY_USER: &str = "by_user";
pub const ORDERS_BY_SKU: &str = "by_sku";
pub const ORDERS_BY_STATUS: &str = "by_status";
pub const ORDERS_BY_PAYMENT_DUE: &str = "by_payment_due";

pub const ORDERS: TableDef = TableDef {
    name: "orders",
    hash_key: "id",
    range_key: None,
    indexes: &[
        IndexDef {
            name: ORDERS_BY_USER,
            hash_key: "username",
            range_key: Some("create_time"),
        },
        IndexDef {
            name: ORDERS_BY_SKU,
            hash_key: "sku_shard",
            range_key: Some("id"),
        },
        IndexDef {
            name: ORDERS_BY_STATUS,
            hash_key: "status_shard",
            range_key: Some("create_time"),
        },
        // Sparse: only orders whose money is unsettled have the key.
        IndexDef {
            name: ORDERS_BY_PAYMENT_DUE,
            hash_key: "payment_due_shard",
            range_key: Some("payment_due"),
        },
    ],
};

pub const CAMPAIGNS: TableDef = TableDef {
    name: "campaigns",
    hash_key: "id",
    range_key: None,
    indexes: &[],
};

/// A campaign's split in chunks of amounts (`model::SplitChunk`).
pub const PACKET_SPLITS: TableDef = TableDef {
    name: "packet_splits",
    hash_key: "campaign_id",
    range_key: Some("chunk"),
    indexes: &[],
};

/// A campaign's credited count and sum, in shards (each credit
/// transaction adds to one), summed on read.
pub const CAMPAIGN_TOTALS: TableDef = TableDef {
    name: "campaign_totals",
    hash_key: "campaign_id",
    range_key: Some("shard"),
    indexes: &[],
};

pub const CREDITS_BY_USER: &str = "by_user";
pub const CREDITS_OWED: &str = "owed";

/// Shards of the payout queue. Claims put credits on it while the payout
/// takes them off: a rain claimed at 10,000 packets a second, paid out at
/// the payout's top speed of 20,000, writes each shard some 940 times a
/// second (`tests/capacity.rs`).
pub const OWED_SHARDS: u64 = 32;

pub const CREDITS: TableDef = TableDef {
    name: "credits",
    hash_key: "red_packet_id",
    range_key: None,
    indexes: &[
        IndexDef {
            name: CREDITS_BY_USER,
            hash_key: "username",
            range_key: Some("credited_at"),
        },
        IndexDef {
            name: CREDITS_OWED,
            hash_key: "payout_shard",
            range_key: Some("claimed_at"),
        },
    ],
};

/// Which packet each shopper has of each campaign (`model::Claimant`).
pub const CLAIMANTS: TableDef = TableDef {
    name: "claimants",
    hash_key: "username",
    range_key: Some("campaign_id"),
    indexes: &[],
};

pub const BALANCES: TableDef = TableDef {
    name: "balances",
    hash_key: "username",
    range_key: None,
    indexes: &[],
};

/// The sandbox payment provider's books (`payments::SandboxPayments`):
/// one item per charge, by its idempotency key.
pub const SANDBOX_PAYMENTS: TableDef = TableDef {
    name: "sandbox_payments",
    hash_key: "idempotency_key",
    range_key: None,
    indexes: &[],
};

pub const ACTIVITIES: TableDef = TableDef {
    name: "activities",
    hash_key: "id",
    range_key: None,
    indexes: &[],
};

pub const SLOTS: TableDef = TableDef {
    name: "slots",
    hash_key: "id",
    range_key: None,
    indexes: &[],
};

pub const BRANDS: TableDef = TableDef {
    name: "brands",
    hash_key: "id",
    range_key: None,
    indexes: &[],
};

pub const CATEGORIES_BY_PARENT: &str = "by_parent";

pub const CATEGORIES: TableDef = TableDef {
    name: "categories",
    hash_key: "id",
    range_key: None,
    indexes: &[IndexDef {
        name: CATEGORIES_BY_PARENT,
        hash_key: "parent_id",
        range_key: Some("id"),
    }],
};

pub const SKU_ACTIVITIES_BY_SKU: &str = "by_sku";

pub const SKU_ACTIVITIES: TableDef = TableDef {
    name: "sku_activities",
    hash_key: "activity_id",
    range_key: Some("sku_id"),
    indexes: &[IndexDef {
        name: SKU_ACTIVITIES_BY_SKU,
        hash_key: "sku_id",
        range_key: Some("activity_id"),
    }],
};

pub const ADDRESSES: TableDef = TableDef {
    name: "addresses",
    hash_key: "username",
    range_key: Some("id"),
    indexes: &[],
};

/// The table of one kind of catalog record.
pub fn of(kind: RecordKind) -> TableDef {
    match kind {
        RecordKind::Activity => ACTIVITIES,
        RecordKind::Slot => SLOTS,
        RecordKind::Brand => BRANDS,
        RecordKind::Category => CATEGORIES,
    }
}

pub const ALL: &[TableDef] = &[
    USERS,
    ADMINS,
    SKUS,
    ORDERS,
    CAMPAIGNS,
    PACKET_SPLITS,
    CAMPAIGN_TOTALS,
    CREDITS,
    CLAIMANTS,
    BALANCES,
    ACTIVITIES,
    SLOTS,
    BRANDS,
    CATEGORIES,
    SKU_ACTIVITIES,
    ADDRESSES,
    SANDBOX_PAYMENTS,
];

fn key_schema(hash: &str, range: Option<&str>) -> Vec<KeySchemaElement> {
    std::iter::once((hash, KeyType::Hash))
        .chain(range.map(|r| (r, KeyType::Range)))
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type are set")
        })
        .collect()
}

impl TableDef {
    /// Every attribute that is a key of the table or one of its indexes.
    pub fn key_attributes(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = std::iter::once(self.hash_key)
            .chain(self.range_key)
            .chain(
                self.indexes
                    .iter()
                    .flat_map(|i| std::iter::once(i.hash_key).chain(i.range_key)),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The attributes of a `LastEvaluatedKey` from this table, or from one of
    /// its indexes: the table's key plus the index's.
    pub fn cursor_keys(&self, index: Option<&str>) -> Vec<&'static str> {
        let index = self.indexes.iter().find(|i| Some(i.name) == index);
        let mut names: Vec<&'static str> = [Some(self.hash_key), self.range_key]
            .into_iter()
            .chain(index.map_or([None, None], |i| [Some(i.hash_key), i.range_key]))
            .flatten()
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Creates the table (on-demand billing) unless it exists.
    pub async fn create_if_missing(&self, client: &Client, prefix: &str) -> Result<(), aws_sdk_dynamodb::Error> {
        let name = format!("{prefix}{}", self.name);
        let mut request = client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(key_schema(self.hash_key, self.range_key)));
        for attribute in self.key_attributes() {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("name and type are set"),
            );
        }
        for index in self.indexes {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .set_key_schema(Some(key_schema(index.hash_key, index.range_key)))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .expect("name and key schema are set"),
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// Creates every table of the system that is missing.
pub async fn create_all(client: &Client, prefix: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    for table in ALL {
        table.create_if_missing(client, prefix).await?;
    }
    Ok(())
}
