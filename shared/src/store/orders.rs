//! Orders by status for the back office. A flash sale writes thousands of
//! PENDING_PAYMENT orders in its first second; on one index partition that
//! burst would be throttled, so the `by_status` index key is spread over
//! [`SHARDS`] partitions per status and a listing merges them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use super::{Dynamo, Page, StoreError, tables};
use crate::{
    Error,
    model::{Order, OrderStatus},
};

pub const SHARDS: u32 = 8;

fn shard_key(status: OrderStatus, shard: u32) -> String {
    format!("{}#{shard}", status.as_str())
}

/// Stable across builds (unlike `std`'s hasher), so an order stays in its shard.
fn shard_of(order_id: &str) -> u32 {
    order_id.bytes().map(u32::from).sum::<u32>() % SHARDS
}

/// An order's item, with its `by_status` index key.
pub(crate) fn item(order: &Order) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(order)?;
    item.insert(
        "status_shard".into(),
        AttributeValue::S(shard_key(order.status, shard_of(&order.id))),
    );
    Ok(item)
}

/// Where a listing stands in each shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Position {
    Start,
    /// After this index key (`id`, `status_shard`, `create_time`).
    After(HashMap<String, String>),
    Done,
}

fn key_of(order: &Order, status: OrderStatus, shard: u32) -> HashMap<String, String> {
    HashMap::from([
        ("id".to_owned(), order.id.clone()),
        ("status_shard".to_owned(), shard_key(status, shard)),
        ("create_time".to_owned(), crate::ts::format(&order.create_time)),
    ])
}

fn decode(cursor: &str, status: OrderStatus) -> Result<Vec<Position>, Error> {
    let bad = || Error::Validation("`cursor` is not one this API returned for this listing".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let positions: Vec<Position> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let fits = positions.len() == SHARDS as usize
        && positions.iter().zip(0..).all(|(position, shard)| match position {
            Position::After(key) => {
                key.len() == 3
                    && key.contains_key("id")
                    && key.contains_key("create_time")
                    && key.get("status_shard") == Some(&shard_key(status, shard))
            }
            _ => true,
        });
    if fits { Ok(positions) } else { Err(bad()) }
}

impl Dynamo {
    /// Orders in one status, newest first, `limit` per page.
    pub async fn orders_with_status(
        &self,
        status: OrderStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Order>, Error> {
        let mut positions = match cursor {
            Some(cursor) => decode(cursor, status)?,
            None => vec![Position::Start; SHARDS as usize],
        };
        // Each shard's next `limit` orders; the page is the newest `limit`
        // of all of them.
        let mut fetched: Vec<(u32, Order)> = Vec::new();
        let mut exhausted = vec![false; SHARDS as usize];
        for shard in 0..SHARDS {
            let start = match &positions[shard as usize] {
                Position::Done => continue,
                Position::Start => None,
                Position::After(key) => Some(
                    key.iter()
                        .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                        .collect(),
                ),
            };
            let output = self
                .client
                .query()
                .table_name(self.table(tables::ORDERS))
                .index_name(tables::ORDERS_BY_STATUS)
                .key_condition_expression("status_shard = :shard")
                .expression_attribute_values(":shard", AttributeValue::S(shard_key(status, shard)))
                .scan_index_forward(false)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::from)?;
            exhausted[shard as usize] = output.last_evaluated_key.is_none();
            let orders: Vec<Order> =
                serde_dynamo::from_items(output.items.unwrap_or_default()).map_err(StoreError::from)?;
            fetched.extend(orders.into_iter().map(|order| (shard, order)));
        }
        fetched.sort_by(|(_, a), (_, b)| (b.create_time, &b.id).cmp(&(a.create_time, &a.id)));
        let left_over = fetched.split_off(limit.min(fetched.len()));
        for shard in 0..SHARDS {
            let index = shard as usize;
            let taken_last = fetched.iter().rev().find(|(s, _)| *s == shard);
            let all_taken = !left_over.iter().any(|(s, _)| *s == shard);
            positions[index] = match (taken_last, all_taken && exhausted[index]) {
                (_, true) if positions[index] != Position::Done => Position::Done,
                (Some((_, order)), false) => Position::After(key_of(order, status, shard)),
                _ => positions[index].clone(),
            };
        }
        let next_cursor = positions
            .iter()
            .any(|p| *p != Position::Done)
            .then(|| URL_SAFE_NO_PAD.encode(serde_json::to_vec(&positions).expect("positions serialise")));
        Ok(Page {
            items: fetched.into_iter().map(|(_, order)| order).collect(),
            next_cursor,
        })
    }
}
