//! [`PaymentProvider`] in memory: every method's books in one place. The
//! sandbox answers at once, as its DynamoDB twin does; the others open a
//! trade that the shopper pays (or is declined) "on the provider's page"
//! ([`shopper_pays`](MemoryPayments::shopper_pays)), which yields the
//! notification that provider would send. A record of every charge and
//! refund lets a test count the money.

use std::{collections::BTreeMap, sync::Mutex};

use super::{Faults, Op};
use crate::{
    model::PayMethod,
    payments::sandbox_answer,
    ports::{
        ChargeLookup, ChargeOutcome, ChargeRequest, Notice, NoticeEvent, PayAction, PaymentProvider, PortError,
        PortResult,
    },
};

/// One order's trade at one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trade {
    Open { amount: i64 },
    Closed,
    Charged { transaction_id: String, amount: i64 },
}

#[derive(Debug, Default)]
struct Moves {
    /// (transaction id, amount) of each approved charge, repeats included.
    charges: Vec<(String, i64)>,
    /// (refund key, transaction id, amount) of each refund paid. As at a
    /// real provider, a transaction may be refunded in parts, never
    /// beyond what was charged, and a refund is asked again by its key.
    refunds: Vec<(String, String, i64)>,
    /// Each provider's trade of each order.
    trades: BTreeMap<(PayMethod, String), Trade>,
    /// Notifications sent so far: their ids.
    notices: u32,
}

impl Moves {
    /// What is left to refund of a transaction.
    fn kept_of(&self, transaction_id: &str) -> i64 {
        let charged = self
            .charges
            .iter()
            .find(|(id, _)| id == transaction_id)
            .map_or(0, |(_, amount)| *amount);
        let refunded: i64 = self
            .refunds
            .iter()
            .filter(|(_, id, _)| id == transaction_id)
            .map(|(_, _, amount)| amount)
            .sum();
        charged - refunded
    }

    fn charge(&mut self, method: PayMethod, order_id: &str, amount: i64) -> String {
        let transaction_id = match method {
            PayMethod::Sandbox => match sandbox_answer(order_id, amount) {
                ChargeOutcome::Approved { transaction_id } => transaction_id,
                other => unreachable!("the sandbox approves a positive amount, not {other:?}"),
            },
            other => format!("{}-{order_id}", other.as_str()),
        };
        self.charges.push((transaction_id.clone(), amount));
        self.trades.insert(
            (method, order_id.to_owned()),
            Trade::Charged {
                transaction_id: transaction_id.clone(),
                amount,
            },
        );
        transaction_id
    }

    fn lookup(&self, method: PayMethod, order_id: &str) -> ChargeLookup {
        match self.trades.get(&(method, order_id.to_owned())) {
            Some(Trade::Charged { transaction_id, amount }) => ChargeLookup::Charged {
                transaction_id: transaction_id.clone(),
                amount_cents: *amount,
            },
            _ => ChargeLookup::NotCharged,
        }
    }

    fn notice(&mut self, method: PayMethod, order_id: &str, event: NoticeEvent) -> Notice {
        self.notices += 1;
        Notice {
            method,
            id: format!("{}-notice-{}", method.as_str(), self.notices),
            order_id: order_id.to_owned(),
            event,
        }
    }
}

/// What the shopper's client is handed for each method in memory.
fn action(method: PayMethod, order_id: &str) -> PayAction {
    let at = format!("memory://{}/{order_id}", method.as_str());
    match method {
        PayMethod::Wechat => PayAction::QrCode { code_url: at },
        PayMethod::Stripe => PayAction::ClientSecret { client_secret: at },
        PayMethod::Sandbox | PayMethod::Alipay => PayAction::Redirect { url: at },
    }
}

#[derive(Debug, Default)]
pub struct MemoryPayments {
    moves: Mutex<Moves>,
    pub faults: Faults,
}

impl MemoryPayments {
    fn moves(&self) -> std::sync::MutexGuard<'_, Moves> {
        self.moves.lock().expect("payments lock")
    }

    /// Charges approved so far, repeats of one trade included.
    pub fn charges(&self) -> Vec<(String, i64)> {
        self.moves().charges.clone()
    }

    /// (transaction id, amount) of each refund paid.
    pub fn refunds(&self) -> Vec<(String, i64)> {
        let moves = self.moves();
        moves
            .refunds
            .iter()
            .map(|(_, id, amount)| (id.clone(), *amount))
            .collect()
    }

    /// What the provider kept: each approved transaction once, less what
    /// was refunded of it, by transaction id (those refunded in full
    /// left out).
    pub fn kept(&self) -> BTreeMap<String, i64> {
        let moves = self.moves();
        let mut kept: BTreeMap<String, i64> = moves.charges.iter().cloned().collect();
        for (_, transaction_id, amount) in &moves.refunds {
            if let Some(left) = kept.get_mut(transaction_id) {
                *left -= amount;
            }
        }
        kept.retain(|_, left| *left > 0);
        kept
    }

    /// The shopper pays the order's open trade at `method`'s page: the
    /// notification the provider then sends (as often as it likes).
    pub fn shopper_pays(&self, method: PayMethod, order_id: &str) -> Result<Notice, String> {
        let mut moves = self.moves();
        let Some(Trade::Open { amount }) = moves.trades.get(&(method, order_id.to_owned())).cloned() else {
            return Err(format!("{method:?} holds no open trade for {order_id}"));
        };
        let transaction_id = moves.charge(method, order_id, amount);
        let event = NoticeEvent::Charged {
            transaction_id,
            amount_cents: amount,
        };
        Ok(moves.notice(method, order_id, event))
    }

    /// A page of `method` shown before its trade was closed opens the
    /// trade now, as Alipay's cashier does: a close that came first found
    /// nothing to close, and the shopper may still pay.
    pub fn page_opened_late(&self, method: PayMethod, order_id: &str, amount: i64) {
        self.moves()
            .trades
            .insert((method, order_id.to_owned()), Trade::Open { amount });
    }

    /// The provider declines the shopper's attempt on its page; the trade
    /// stays open for another.
    pub fn shopper_is_declined(&self, method: PayMethod, order_id: &str) -> Notice {
        let event = NoticeEvent::Declined {
            reason: "card declined".into(),
        };
        self.moves().notice(method, order_id, event)
    }
}

impl PaymentProvider for MemoryPayments {
    fn offers(&self, _method: PayMethod) -> bool {
        true
    }

    async fn charge(&self, method: PayMethod, request: &ChargeRequest<'_>) -> PortResult<ChargeOutcome> {
        self.faults
            .run(Op::Charge, || {
                let mut moves = self.moves();
                let key = (method, request.order_id.to_owned());
                if request.amount_cents <= 0 {
                    return Ok(ChargeOutcome::Declined("amount must be positive".into()));
                }
                Ok(match moves.trades.get(&key).cloned() {
                    Some(Trade::Closed) => ChargeOutcome::Declined("the trade is closed".into()),
                    Some(Trade::Charged { transaction_id, amount }) => {
                        moves.charges.push((transaction_id.clone(), amount));
                        ChargeOutcome::Approved { transaction_id }
                    }
                    _ if method == PayMethod::Sandbox => ChargeOutcome::Approved {
                        transaction_id: moves.charge(method, request.order_id, request.amount_cents),
                    },
                    _ => {
                        moves.trades.insert(
                            key,
                            Trade::Open {
                                amount: request.amount_cents,
                            },
                        );
                        ChargeOutcome::Pending {
                            action: action(method, request.order_id),
                            trade_id: None,
                        }
                    }
                })
            })
            .await
    }

    async fn close(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        let order_id = trade.order_id;
        self.faults
            .run(Op::Close, || {
                let mut moves = self.moves();
                let found = moves.lookup(method, order_id);
                if found == ChargeLookup::NotCharged {
                    moves.trades.insert((method, order_id.to_owned()), Trade::Closed);
                }
                Ok(found)
            })
            .await
    }

    async fn refund(
        &self,
        _method: PayMethod,
        transaction_id: &str,
        amount_cents: i64,
        refund_key: &str,
    ) -> PortResult<()> {
        self.faults
            .run(Op::Refund, || {
                let mut moves = self.moves();
                if let Some((_, refunded, _)) = moves.refunds.iter().find(|(key, _, _)| key == refund_key) {
                    return match refunded == transaction_id {
                        true => Ok(()),
                        false => Err(PortError::Unavailable(format!("refund {refund_key} is of {refunded}"))),
                    };
                }
                let left = moves.kept_of(transaction_id);
                if amount_cents > left {
                    return Err(PortError::Unavailable(format!(
                        "refund of {amount_cents} exceeds the {left} left of {transaction_id}"
                    )));
                }
                moves
                    .refunds
                    .push((refund_key.to_owned(), transaction_id.to_owned(), amount_cents));
                Ok(())
            })
            .await
    }

    async fn lookup(&self, method: PayMethod, trade: &ChargeRequest<'_>) -> PortResult<ChargeLookup> {
        let found = || Ok(self.moves().lookup(method, trade.order_id));
        let behind = || Ok(ChargeLookup::NotCharged);
        self.faults.run_read(Op::Lookup, found, behind).await
    }
}
