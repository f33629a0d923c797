//! [`OrderStore`] on DynamoDB. A flash sale writes thousands of
//! PENDING_PAYMENT orders of one SKU in its first second, and on one index
//! partition that burst would be throttled, so the `by_sku` and `by_status`
//! index keys are spread over [`ORDER_SHARDS`] partitions each, by the order
//! id, and reads merge them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Dynamo, IndexPage, cursor, limit,
    tables::{self, ORDER_SHARDS},
};
use crate::{
    model::{Order, OrderRecord, OrderStatus},
    ports::{OrderStore, Page, PortError, PortResult},
    ts,
};

const SHARDS: u32 = ORDER_SHARDS;

fn shard_key(status: OrderStatus, shard: u32) -> String {
    format!("{}#{shard}", status.as_str())
}

fn sku_shard_key(sku_id: &str, shard: u32) -> String {
    format!("{sku_id}#{shard}")
}

/// Stable across builds (unlike `std`'s hasher), so an order stays in its shard.
fn shard_of(order_id: &str) -> u32 {
    order_id.bytes().map(u32::from).sum::<u32>() % SHARDS
}

fn payment_due_key(shard: u32) -> String {
    shard.to_string()
}

/// An order's item, with the seed's status columns, its `by_sku` and `by_status` index keys, and its
/// `by_payment_due` key while its money is unsettled (so it leaves that
/// sparse index once settled).
fn item(order: &Order) -> PortResult<HashMap<String, AttributeValue>> {
    // The seed's status columns go with it, for readers of the table.
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(OrderRecord::from(order.clone()))?;
    let shard = shard_of(&order.id);
    item.insert(
        "sku_shard".into(),
        AttributeValue::S(sku_shard_key(&order.sku_id, shard)),
    );
    item.insert("status_shard".into(), AttributeValue::S(shard_key(order.status, shard)));
    if let Some(due) = order.payment_due() {
        item.insert("payment_due_shard".into(), AttributeValue::S(payment_due_key(shard)));
        item.insert("payment_due".into(), AttributeValue::S(ts::format(&due)));
    }
    Ok(item)
}

/// Where a listing stands in each shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Position {
    Start,
    /// After this index key (`id`, `status_shard`, `create_time`).
    After(cursor::KeyStrings),
    Done,
}

fn key_of(order: &Order, status: OrderStatus, shard: u32) -> cursor::KeyStrings {
    HashMap::from([
        ("id".to_owned(), order.id.clone()),
        ("status_shard".to_owned(), shard_key(status, shard)),
        ("create_time".to_owned(), ts::format(&order.create_time)),
    ])
}

/// Where each shard stands, from a cursor of this very listing.
fn positions(cursor: &str, status: OrderStatus) -> PortResult<Vec<Position>> {
    let positions: Vec<Position> = cursor::decode(cursor)?;
    let keys = tables::ORDERS.cursor_keys(Some(tables::ORDERS_BY_STATUS));
    let fits = positions.len() == SHARDS as usize
        && positions.iter().zip(0..).all(|(position, shard)| match position {
            Position::After(key) => cursor::key_fits(key, &keys, &[("status_shard", &shard_key(status, shard))]),
            _ => true,
        });
    if fits {
        Ok(positions)
    } else {
        Err(PortError::InvalidCursor)
    }
}

impl Dynamo {
    /// Orders in one status, newest first, `size` per page: each shard's
    /// next `size` orders, of which the page is the newest `size`.
    async fn orders_by_status(
        &self,
        status: OrderStatus,
        size: usize,
        cursor: Option<&str>,
    ) -> PortResult<Page<Order>> {
        let mut positions = match cursor {
            Some(cursor) => positions(cursor, status)?,
            None => vec![Position::Start; SHARDS as usize],
        };
        let mut fetched: Vec<(u32, Order)> = Vec::new();
        let mut exhausted = vec![false; SHARDS as usize];
        for shard in 0..SHARDS {
            let start = match &positions[shard as usize] {
                Position::Done => continue,
                Position::Start => None,
                Position::After(key) => Some(cursor::key_values(key.clone())),
            };
            let output = self
                .client
                .query()
                .table_name(self.table(tables::ORDERS))
                .index_name(tables::ORDERS_BY_STATUS)
                .key_condition_expression("status_shard = :shard")
                .expression_attribute_values(":shard", AttributeValue::S(shard_key(status, shard)))
                .scan_index_forward(false)
                .limit(limit(size))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            exhausted[shard as usize] = output.last_evaluated_key.is_none();
            let orders: Vec<Order> = serde_dynamo::from_items(output.items.unwrap_or_default())?;
            fetched.extend(orders.into_iter().map(|order| (shard, order)));
        }
        fetched.sort_by(|(_, a), (_, b)| (b.create_time, &b.id).cmp(&(a.create_time, &a.id)));
        let left_over = fetched.split_off(size.min(fetched.len()));
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
            .then(|| cursor::encode(&positions));
        Ok(Page {
            items: fetched.into_iter().map(|(_, order)| order).collect(),
            next_cursor,
        })
    }
}

impl Dynamo {
    /// A SKU's orders from every `by_sku` shard; with `live_only`, those
    /// that still hold their unit.
    async fn sku_orders(&self, sku_id: &str, live_only: bool) -> PortResult<Vec<Order>> {
        let shards = (0..SHARDS).map(|shard| {
            let key = sku_shard_key(sku_id, shard);
            let mut query = self.partition(tables::ORDERS, Some(tables::ORDERS_BY_SKU), ("sku_shard", &key));
            if live_only {
                query = query
                    .filter_expression("#status <> :cancelled")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(
                        ":cancelled",
                        AttributeValue::S(OrderStatus::Cancelled.as_str().into()),
                    );
            }
            Self::all::<Order>(query)
        });
        let mut orders = Vec::new();
        for shard in futures::future::join_all(shards).await {
            orders.extend(shard?);
        }
        Ok(orders)
    }
}

impl OrderStore for Dynamo {
    async fn insert_order(&self, order: &Order) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(self.table(tables::ORDERS))
            .set_item(Some(item(order)?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await?;
        Ok(())
    }

    async fn replace_order(&self, next: &Order, current: &Order) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(self.table(tables::ORDERS))
            .set_item(Some(item(next)?))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", AttributeValue::N(current.version.to_string()))
            .send()
            .await?;
        Ok(())
    }

    async fn get_order(&self, id: &str) -> PortResult<Option<Order>> {
        self.get(tables::ORDERS, id).await
    }

    async fn orders_of_user(&self, username: &str, limit: usize, cursor: Option<&str>) -> PortResult<Page<Order>> {
        self.index_page(IndexPage {
            table: tables::ORDERS,
            index: Some(tables::ORDERS_BY_USER),
            partition: ("username", username),
            limit,
            cursor,
            newest_first: true,
        })
        .await
    }

    async fn orders_with_status(
        &self,
        status: OrderStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> PortResult<Page<Order>> {
        self.orders_by_status(status, limit, cursor).await
    }

    fn listing_lag(&self) -> std::time::Duration {
        self.listing_lag
    }

    async fn live_orders_of_sku(&self, sku_id: &str) -> PortResult<Vec<Order>> {
        self.sku_orders(sku_id, true).await
    }

    async fn orders_of_sku(&self, sku_id: &str) -> PortResult<Vec<Order>> {
        self.sku_orders(sku_id, false).await
    }

    async fn orders_with_payment_due(&self, now: DateTime<Utc>, limit: usize) -> PortResult<Vec<Order>> {
        let shards = (0..SHARDS).map(|shard| {
            self.partition(
                tables::ORDERS,
                Some(tables::ORDERS_BY_PAYMENT_DUE),
                ("payment_due_shard", &payment_due_key(shard)),
            )
            .key_condition_expression("#partition = :partition AND payment_due <= :now")
            .expression_attribute_values(":now", AttributeValue::S(ts::format(&now)))
            .limit(self::limit(limit))
            .send()
        });
        let mut orders = Vec::new();
        for output in futures::future::join_all(shards).await {
            let found: Vec<Order> = serde_dynamo::from_items(output?.items.unwrap_or_default())?;
            orders.extend(found);
        }
        orders.sort_by_key(Order::payment_due);
        orders.truncate(limit);
        Ok(orders)
    }
}
