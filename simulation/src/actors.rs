//! The actors: shoppers grabbing, paying, cancelling and claiming;
//! operators re-publishing and marking SKUs hot; the scheduled jobs. Each
//! is one flow of the domain, as a Lambda runs it, on one instance's view
//! of the ports, recording what its shopper was told.

use std::rc::Rc;

use shared::{
    domain::{
        catalog,
        flash_sale::{self, Fulfilment, Viewer},
        hot::{self, HotSettings},
        payments, reconcile,
        red_packet::{self, PayoutLimits},
    },
    error::Error,
    model::{Order, OrderStatus, PayMethod},
    ports::SkuStore,
};

use crate::world::World;

/// What a shopper does with a unit they won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Pay,
    /// Pays, and once delivered sends it back: the operator accepts.
    PayAndReturn,
    /// Chooses cash on delivery; the operator ships and collects.
    PayOnDelivery,
    /// Is sent to Alipay's cashier, then chooses cash on delivery; the
    /// cashier page, opened after the close found nothing to close, is
    /// paid anyway, and its notification arrives or is lost for good.
    CashierThenOnDelivery,
    Cancel,
    /// Leaves it unpaid: the timeout job cancels it.
    Leave,
}

/// A shopper taps grab, then pays, cancels or walks away.
pub async fn grab(world: Rc<World>, instance: usize, sku_id: String, username: String, then: Then) {
    let ports = world.ports(instance);
    let grab = world.grab_begins(&sku_id, &username);
    let answer = flash_sale::grab(ports, &username, &sku_id, world.now()).await;
    world.grab_answered(grab, &answer);
    let Ok(order) = answer else { return };
    match then {
        Then::Pay | Then::PayAndReturn => {
            if let Ok(paid) = payments::pay(ports, &username, &order.id, PayMethod::Sandbox, None, world.now()).await
                && paid.order.status == OrderStatus::Paid
            {
                world.told.borrow_mut().paid.insert(paid.order.id);
                if then == Then::PayAndReturn {
                    send_back(&world, instance, &username, &order.id).await;
                }
            }
        }
        Then::PayOnDelivery | Then::CashierThenOnDelivery => {
            // Only a shopper who was given the cashier's page can pay on it.
            let sent_to_cashier = then == Then::CashierThenOnDelivery
                && payments::pay(ports, &username, &order.id, PayMethod::Alipay, None, world.now())
                    .await
                    .is_ok_and(|payment| payment.pay_action.is_some());
            if payments::pay_on_delivery(ports, &username, &order.id, None, world.now())
                .await
                .is_err()
            {
                return;
            }
            if sent_to_cashier {
                pays_the_old_cashier(&world, instance, &order).await;
            }
            deliver(&world, instance, &username, &order.id, Fulfilment::Collect).await;
        }
        Then::Cancel => {
            let _ = flash_sale::cancel(ports, &username, &order.id, world.now()).await;
        }
        Then::Leave => {}
    }
}

/// The shopper pays on an Alipay cashier page shown before choosing cash
/// on delivery: Alipay holds the money until it is paid back. An odd
/// order's notification is delivered; an even order's is lost for good.
async fn pays_the_old_cashier(world: &World, instance: usize, order: &Order) {
    world
        .payments
        .page_opened_late(PayMethod::Alipay, &order.id, order.price);
    let Ok(notice) = world.payments.shopper_pays(PayMethod::Alipay, &order.id) else {
        return;
    };
    if order.id.bytes().map(u32::from).sum::<u32>() % 2 == 1 {
        let _ = payments::notified(world.ports(instance), &notice, world.now()).await;
    }
}

/// The operator ships the order, and it is received (by its shopper) or
/// its cash collected (by the operator); every step a Lambda of its own.
async fn deliver(world: &World, instance: usize, username: &str, order_id: &str, last: Fulfilment) {
    let ledger = world.ports(instance).ledger;
    let now = world.now();
    let _ = flash_sale::advance(ledger, order_id, Viewer::Operator, Fulfilment::Ship, now).await;
    let viewer = match last {
        Fulfilment::Receive => Viewer::Shopper(username),
        _ => Viewer::Operator,
    };
    let _ = flash_sale::advance(ledger, order_id, viewer, last, world.now()).await;
}

/// A paid order is delivered and sent back; the operator takes it back.
async fn send_back(world: &World, instance: usize, username: &str, order_id: &str) {
    deliver(world, instance, username, order_id, Fulfilment::Receive).await;
    let ports = world.ports(instance);
    let _ = payments::request_return(ports.ledger, username, order_id, None, world.now()).await;
    let _ = payments::accept_return(ports, order_id, world.now()).await;
}

/// A shopper taps a falling red packet.
pub async fn claim(world: Rc<World>, instance: usize, campaign_id: String, username: String) {
    let answer = red_packet::claim(world.ports(instance), &campaign_id, &username, world.now()).await;
    let packet = match answer {
        Ok(packet) | Err(Error::AlreadyClaimed(packet)) => packet,
        _ => return,
    };
    let mut told = world.told.borrow_mut();
    let key = (campaign_id, username);
    if let Some(before) = told.packets.get(&key).filter(|before| **before != packet) {
        let broken = format!(
            "{} was told packet {} and then packet {}",
            key.1, before.red_packet_id, packet.red_packet_id
        );
        told.broken.push(broken);
    }
    told.packets.insert(key, packet);
}

/// An operator changes a sale's units, which re-publishes it.
pub async fn republish(world: Rc<World>, instance: usize, sku_id: String, units: i64) {
    let ports = world.ports(instance);
    let Ok(Some(sku)) = ports.ledger.get_sku(&sku_id).await else {
        return;
    };
    let mut fields = sku.fields;
    fields.seckill_num = units;
    let _ = catalog::put_sku(ports, &sku_id, fields, world.now()).await;
}

/// An operator marks a SKU hot: its stock is split over `shards`.
pub async fn mark_hot(world: Rc<World>, instance: usize, sku_id: String, shards: u32) {
    let settings = HotSettings {
        shards: Some(shards),
        ..HotSettings::default()
    };
    let _ = hot::split(world.ports(instance), settings, &sku_id).await;
}

/// The scheduled jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Timeout,
    Reconcile,
    Payments,
    Payout,
}

impl Job {
    pub const ALL: [Job; 4] = [Job::Timeout, Job::Reconcile, Job::Payments, Job::Payout];
}

/// One run of a job.
pub async fn job(world: Rc<World>, instance: usize, job: Job) {
    let ports = world.ports(instance);
    let now = world.now();
    let _ = match job {
        Job::Timeout => flash_sale::sweep(ports, now, 100).await.map(drop),
        Job::Reconcile => reconcile::reconcile(ports, now).await.map(drop),
        Job::Payments => payments::settle_payments(ports, now, 100).await.map(drop),
        Job::Payout => {
            // Small batches, several at once: the batching and the
            // overlapping transactions are what is under test.
            let limits = PayoutLimits {
                take: 4,
                per_transaction: 2,
                concurrency: 3,
                ..PayoutLimits::default()
            };
            red_packet::payout(ports, now, limits).await.map(drop)
        }
    };
}
