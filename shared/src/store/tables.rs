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
//! | a SKU's orders (rebuild on publish) | orders | `by_sku`: `sku_id`, `id`            |
//! | red-packet campaign by id           | campaigns | `id`                             |
//! | credit by packet (exactly-once)     | credits | `red_packet_id`                    |
//! | a shopper's credits, newest first   | credits | `by_user`: `username`, `credited_at` |
//! | a shopper's balance                 | balances | `username`                        |

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

pub const SKUS: TableDef = TableDef {
    name: "skus",
    hash_key: "id",
    range_key: None,
    indexes: &[],
};

pub const ORDERS_BY_USER: &str = "by_user";
pub const ORDERS_BY_SKU: &str = "by_sku";

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
            hash_key: "sku_id",
            range_key: Some("id"),
        },
    ],
};

pub const CAMPAIGNS: TableDef = TableDef {
    name: "campaigns",
    hash_key: "id",
    range_key: None,
    indexes: &[],
};

pub const CREDITS_BY_USER: &str = "by_user";

pub const CREDITS: TableDef = TableDef {
    name: "credits",
    hash_key: "red_packet_id",
    range_key: None,
    indexes: &[IndexDef {
        name: CREDITS_BY_USER,
        hash_key: "username",
        range_key: Some("credited_at"),
    }],
};

pub const BALANCES: TableDef = TableDef {
    name: "balances",
    hash_key: "username",
    range_key: None,
    indexes: &[],
};

pub const ALL: &[TableDef] = &[USERS, ADMINS, SKUS, ORDERS, CAMPAIGNS, CREDITS, BALANCES];

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
