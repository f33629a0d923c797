//! [`OrderStore`] in memory: conditional on absence and on version, as the
//! DynamoDB writes are.

use chrono::{DateTime, Utc};

use super::{MemoryLedger, Op, page};
use crate::{
    model::{Order, OrderStatus},
    ports::{OrderStore, Page, PortError, PortResult},
};

/// Newest first, as the indexes list them.
fn newest_first(mut orders: Vec<Order>) -> Vec<Order> {
    orders.sort_by(|a, b| (b.create_time, &b.id).cmp(&(a.create_time, &a.id)));
    orders
}

impl OrderStore for MemoryLedger {
    async fn insert_order(&self, order: &Order) -> PortResult<()> {
        self.faults
            .run(Op::InsertOrder, || {
                let mut state = self.state();
                if state.orders.contains_key(&order.id) {
                    return Err(PortError::ConditionFailed);
                }
                state.orders.insert(order.id.clone(), order.clone());
                Ok(())
            })
            .await
    }

    async fn replace_order(&self, next: &Order, current: &Order) -> PortResult<()> {
        self.faults
            .run(Op::ReplaceOrder, || {
                let mut state = self.state();
                match state.orders.get(&next.id) {
                    Some(stored) if stored.version == current.version => {
                        state.orders.insert(next.id.clone(), next.clone());
                        Ok(())
                    }
                    _ => Err(PortError::ConditionFailed),
                }
            })
            .await
    }

    async fn get_order(&self, id: &str) -> PortResult<Option<Order>> {
        self.faults
            .run(Op::GetOrder, || Ok(self.state().orders.get(id).cloned()))
            .await
    }

    async fn orders_of_user(&self, username: &str, limit: usize, cursor: Option<&str>) -> PortResult<Page<Order>> {
        self.faults
            .run(Op::OrdersOfUser, || {
                let mine = self
                    .state()
                    .orders
                    .values()
                    .filter(|o| o.username == username)
                    .cloned()
                    .collect();
                page(newest_first(mine), limit, cursor)
            })
            .await
    }

    async fn orders_with_status(
        &self,
        status: OrderStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> PortResult<Page<Order>> {
        self.faults
            .run(Op::OrdersWithStatus, || {
                let found = self
                    .state()
                    .orders
                    .values()
                    .filter(|o| o.status == status)
                    .cloned()
                    .collect();
                page(newest_first(found), limit, cursor)
            })
            .await
    }

    fn listing_lag(&self) -> std::time::Duration {
        self.listing_lag
    }

    async fn live_orders_of_sku(&self, sku_id: &str) -> PortResult<Vec<Order>> {
        self.faults
            .run(Op::LiveOrdersOfSku, || {
                Ok(self
                    .state()
                    .orders
                    .values()
                    .filter(|o| o.sku_id == sku_id && o.status.holds_unit())
                    .cloned()
                    .collect())
            })
            .await
    }

    async fn orders_of_sku(&self, sku_id: &str) -> PortResult<Vec<Order>> {
        self.faults
            .run(Op::OrdersOfSku, || {
                Ok(self
                    .state()
                    .orders
                    .values()
                    .filter(|o| o.sku_id == sku_id)
                    .cloned()
                    .collect())
            })
            .await
    }

    async fn orders_with_payment_due(&self, now: DateTime<Utc>, limit: usize) -> PortResult<Vec<Order>> {
        self.faults
            .run(Op::OrdersWithPaymentDue, || {
                let mut found: Vec<Order> = self
                    .state()
                    .orders
                    .values()
                    .filter(|o| o.payment_due().is_some_and(|due| due <= now))
                    .cloned()
                    .collect();
                found.sort_by_key(Order::payment_due);
                found.truncate(limit);
                Ok(found)
            })
            .await
    }
}
