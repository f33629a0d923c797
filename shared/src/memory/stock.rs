//! [`StockGate`] in memory, decision for decision as `grab.lua`,
//! `release.lua`, `confirm.lua` and `publish.lua` make it.

use chrono::{DateTime, Utc};

use super::{MemoryGate, Op, SkuGate};
use crate::{
    model::{Order, OrderStatus, ReservedUnit, Sku},
    ports::{Hold, HoldOutcome, PortResult, PublishOutcome, RETIRE_AFTER_END_MS, Reservation, Restored, StockGate},
    ts,
};

fn set_terms(gate: &mut SkuGate, sku: &Sku) {
    let fields = &sku.fields;
    gate.num = fields.seckill_num;
    gate.begin_ms = ts::millis(&fields.seckill_begin);
    gate.end_ms = ts::millis(&fields.seckill_end);
    gate.pay_timeout_ms = i64::from(fields.pay_timeout_seconds) * 1000;
    gate.price = fields.seckill_price;
    gate.name = fields.name.clone();
}

/// Records a live order of the ledger in the gate, as `publish.lua` and
/// `restore.lua` do: its shopper a buyer, its unit held if unpaid, its id
/// among the paid otherwise.
fn hold(gate: &mut SkuGate, order: &Order) {
    gate.buyers.insert(order.username.clone());
    if order.status == OrderStatus::PendingPayment {
        gate.pending.insert(order.id.clone(), ts::millis(&order.pay_deadline));
        gate.holders.insert(order.id.clone(), order.username.clone());
    } else {
        gate.paid.insert(order.id.clone());
    }
}

fn release(gate: &mut SkuGate, order_id: &str) -> HoldOutcome {
    let Some(username) = gate.holders.remove(order_id) else {
        return HoldOutcome::NotHeld;
    };
    gate.pending.remove(order_id);
    gate.buyers.remove(&username);
    gate.stock += 1;
    HoldOutcome::Released
}

impl StockGate for MemoryGate {
    async fn publish(&self, sku: &Sku, ledger: Option<&[Order]>) -> PortResult<PublishOutcome> {
        self.faults.run(Op::Publish, || {
            let mut state = self.state();
            let num = sku.fields.seckill_num;
            let outcome = if let Some(gate) = state.skus.get_mut(&sku.id) {
                let sold = gate.num - gate.stock;
                if num < sold {
                    return Ok(PublishOutcome::BelowSold { sold });
                }
                gate.stock = num - sold;
                set_terms(gate, sku);
                PublishOutcome::Republished { remaining: gate.stock }
            } else {
                let Some(orders) = ledger else {
                    return Ok(PublishOutcome::NeedsLedger);
                };
                let live = i64::try_from(orders.len()).unwrap_or(i64::MAX);
                if num < live {
                    return Ok(PublishOutcome::BelowSold { sold: live });
                }
                let mut gate = SkuGate {
                    shards: sku.shards.unwrap_or(1),
                    ..SkuGate::default()
                };
                for order in orders {
                    hold(&mut gate, order);
                }
                gate.stock = num - live;
                set_terms(&mut gate, sku);
                let remaining = gate.stock;
                state.skus.insert(sku.id.clone(), gate);
                PublishOutcome::Published { remaining }
            };
            state.live_skus.insert(sku.id.clone());
            Ok(outcome)
        })
    }

    async fn reserve(
        &self,
        sku_id: &str,
        username: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Reservation> {
        self.faults.run(Op::Reserve, || {
            let mut state = self.state();
            let Some(gate) = state.skus.get_mut(sku_id) else {
                return Ok(Reservation::NotPublished);
            };
            let now = ts::millis(&now);
            let unit = |deadline: i64, gate: &SkuGate| {
                Reservation::Reserved(ReservedUnit {
                    pay_deadline: ts::from_millis(deadline),
                    price: gate.price,
                    name: gate.name.clone(),
                })
            };
            if now < gate.begin_ms {
                return Ok(Reservation::NotStarted);
            }
            if now >= gate.end_ms {
                return Ok(Reservation::Ended);
            }
            if gate.buyers.contains(username) {
                if gate.holders.get(order_id).map(String::as_str) == Some(username) {
                    return Ok(unit(gate.pending[order_id], gate));
                }
                return Ok(Reservation::AlreadyPurchased);
            }
            if gate.stock <= 0 {
                return Ok(Reservation::SoldOut);
            }
            let deadline = now + gate.pay_timeout_ms;
            gate.stock -= 1;
            gate.buyers.insert(username.to_owned());
            gate.pending.insert(order_id.to_owned(), deadline);
            gate.holders.insert(order_id.to_owned(), username.to_owned());
            Ok(unit(deadline, gate))
        })
    }

    async fn release(&self, sku_id: &str, _username: &str, order_id: &str) -> PortResult<HoldOutcome> {
        self.faults.run(Op::Release, || {
            Ok(match self.state().skus.get_mut(sku_id) {
                Some(gate) => release(gate, order_id),
                None => HoldOutcome::NotHeld,
            })
        })
    }

    async fn confirm(&self, sku_id: &str, _username: &str, order_id: &str) -> PortResult<HoldOutcome> {
        self.faults.run(Op::Confirm, || {
            let mut state = self.state();
            let Some(gate) = state.skus.get_mut(sku_id) else {
                return Ok(HoldOutcome::NotHeld);
            };
            if gate.holders.remove(order_id).is_none() {
                return Ok(HoldOutcome::NotHeld);
            }
            gate.pending.remove(order_id);
            gate.paid.insert(order_id.to_owned());
            Ok(HoldOutcome::Confirmed)
        })
    }

    async fn remaining(&self, sku_id: &str) -> PortResult<Option<i64>> {
        self.faults.run(Op::Remaining, || {
            Ok(self.state().skus.get(sku_id).map(|gate| gate.stock))
        })
    }

    async fn remaining_of(&self, sku_ids: &[&str]) -> PortResult<Vec<Option<i64>>> {
        self.faults.run(Op::RemainingOf, || {
            let state = self.state();
            Ok(sku_ids
                .iter()
                .map(|id| state.skus.get(*id).map(|gate| gate.stock))
                .collect())
        })
    }

    async fn live_skus(&self) -> PortResult<Vec<String>> {
        self.faults
            .run(Op::LiveSkus, || Ok(self.state().live_skus.iter().cloned().collect()))
    }

    async fn overdue(&self, sku_id: &str, due: DateTime<Utc>, limit: usize) -> PortResult<Vec<Hold>> {
        self.faults.run(Op::Overdue, || {
            let state = self.state();
            let Some(gate) = state.skus.get(sku_id) else {
                return Ok(Vec::new());
            };
            let mut due: Vec<(&String, i64)> = gate
                .pending
                .iter()
                .filter(|(_, deadline)| **deadline <= ts::millis(&due))
                .map(|(id, deadline)| (id, *deadline))
                .collect();
            due.sort_by_key(|(id, deadline)| (*deadline, (*id).clone()));
            Ok(due
                .into_iter()
                .take(limit)
                .map(|(order_id, deadline)| Hold {
                    sku_id: sku_id.to_owned(),
                    order_id: order_id.clone(),
                    username: gate.holders[order_id].clone(),
                    pay_deadline: ts::from_millis(deadline),
                    price: gate.price,
                    name: gate.name.clone(),
                })
                .collect())
        })
    }

    async fn retire_if_finished(&self, sku_id: &str, now: DateTime<Utc>) -> PortResult<bool> {
        self.faults.run(Op::RetireIfFinished, || {
            let mut state = self.state();
            // A SKU the gate no longer has is gone from the live set too.
            let done = state
                .skus
                .get(sku_id)
                .is_none_or(|gate| gate.end_ms + RETIRE_AFTER_END_MS <= ts::millis(&now) && gate.pending.is_empty());
            if done {
                state.live_skus.remove(sku_id);
            }
            Ok(done)
        })
    }

    async fn unknown_orders(&self, sku_id: &str, orders: &[Order]) -> PortResult<Option<Vec<String>>> {
        self.faults.run(Op::UnknownOrders, || {
            let state = self.state();
            Ok(state.skus.get(sku_id).map(|gate| {
                orders
                    .iter()
                    .filter(|order| !knows(gate, order))
                    .map(|order| order.id.clone())
                    .collect()
            }))
        })
    }

    async fn restore(&self, sku_id: &str, orders: &[Order]) -> PortResult<Option<Restored>> {
        self.faults.run(Op::Restore, || {
            let mut state = self.state();
            state.live_skus.insert(sku_id.to_owned());
            let Some(gate) = state.skus.get_mut(sku_id) else {
                return Ok(None);
            };
            let mut restored = Restored::default();
            let unknown: Vec<&Order> = orders.iter().filter(|order| !knows(gate, order)).collect();
            for order in unknown {
                hold(gate, order);
                restored.orders.push(order.id.clone());
                gate.stock -= 1;
                if gate.stock < 0 {
                    restored.oversold.push(order.id.clone());
                }
            }
            Ok(Some(restored))
        })
    }

    async fn split(&self, sku_id: &str, shards: u32) -> PortResult<Option<u32>> {
        self.faults.run(Op::Split, || {
            Ok(self.state().skus.get_mut(sku_id).map(|gate| {
                if gate.shards <= 1 {
                    gate.shards = shards;
                }
                gate.shards
            }))
        })
    }

    async fn repair(&self, _sku_id: &str, _now: DateTime<Utc>) -> PortResult<()> {
        // Nothing here is ever left half done: every call is one step.
        self.faults.run(Op::Repair, || Ok(()))
    }

    async fn masters(&self) -> PortResult<u32> {
        Ok(1)
    }
}

/// Whether the gate knows this live order, by its id as `restore.lua`
/// does: held, or (once paid) among the paid.
fn knows(gate: &SkuGate, order: &Order) -> bool {
    gate.holders.contains_key(&order.id)
        || (order.status != OrderStatus::PendingPayment && gate.paid.contains(&order.id))
}
