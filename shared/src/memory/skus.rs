//! [`SkuStore`] in memory, with the storefront's filters applied as the
//! DynamoDB query applies them.

use chrono::{DateTime, Utc};

use super::{MemoryLedger, Op, page};
use crate::{
    model::{Sku, SkuStatus},
    ports::{LiveFilter, Page, PortError, PortResult, SaleSearch, SkuStore},
};

fn on_sale(sku: &Sku, now: DateTime<Utc>) -> bool {
    sku.status == SkuStatus::Seckill && sku.fields.seckill_end > now
}

/// Whether the SKU is in the on-sale listing, as the DynamoDB index has it.
fn listed(off_sale: &std::collections::BTreeSet<String>, sku: &Sku, now: DateTime<Utc>) -> bool {
    on_sale(sku, now) && !off_sale.contains(&sku.id)
}

fn in_category(sku: &Sku, category: &str) -> bool {
    let fields = &sku.fields;
    [&fields.category1_id, &fields.category2_id, &fields.category3_id]
        .into_iter()
        .any(|id| id.as_deref() == Some(category))
}

fn matches(sku: &Sku, search: &SaleSearch) -> bool {
    let begin = sku.fields.seckill_begin;
    search.starting.is_none_or(|(from, to)| from <= begin && begin < to)
        && search.category.as_deref().is_none_or(|c| in_category(sku, c))
        && search
            .brand
            .as_deref()
            .is_none_or(|b| sku.fields.brand_id.as_deref() == Some(b))
        && search.q.as_deref().is_none_or(|q| sku.fields.name.contains(q))
}

impl SkuStore for MemoryLedger {
    async fn get_sku(&self, id: &str) -> PortResult<Option<Sku>> {
        self.faults
            .run(Op::GetSku, || Ok(self.state().skus.get(id).cloned()))
            .await
    }

    async fn put_sku(&self, sku: &Sku) -> PortResult<()> {
        self.faults
            .run(Op::PutSku, || {
                let mut state = self.state();
                if sku.listed_on_sale() {
                    state.off_sale.remove(&sku.id);
                } else {
                    state.off_sale.insert(sku.id.clone());
                }
                state.skus.insert(sku.id.clone(), sku.clone());
                Ok(())
            })
            .await
    }

    async fn delete_sku(&self, id: &str) -> PortResult<()> {
        self.faults
            .run(Op::DeleteSku, || {
                self.state().skus.remove(id);
                Ok(())
            })
            .await
    }

    async fn sku_page(&self, limit: usize, cursor: Option<&str>) -> PortResult<Page<Sku>> {
        self.faults
            .run(Op::SkuPage, || {
                let mut skus: Vec<Sku> = self.state().skus.values().cloned().collect();
                skus.sort_by(|a, b| a.id.cmp(&b.id));
                page(skus, limit, cursor)
            })
            .await
    }

    async fn skus_on_sale(
        &self,
        search: &SaleSearch,
        now: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> PortResult<Page<Sku>> {
        self.faults
            .run(Op::SkusOnSale, || {
                let state = self.state();
                let mut found: Vec<Sku> = state
                    .skus
                    .values()
                    .filter(|sku| listed(&state.off_sale, sku, now) && matches(sku, search))
                    .cloned()
                    .collect();
                found.sort_by(|a, b| (a.fields.seckill_begin, &a.id).cmp(&(b.fields.seckill_begin, &b.id)));
                page(found, limit, cursor)
            })
            .await
    }

    async fn live_skus_matching(&self, filter: LiveFilter<'_>, now: DateTime<Utc>) -> PortResult<Vec<String>> {
        self.faults
            .run(Op::LiveSkusMatching, || {
                let state = self.state();
                let live = state.skus.values().filter(|sku| listed(&state.off_sale, sku, now));
                Ok(match filter {
                    LiveFilter::Brand(brand) => live
                        .filter(|sku| sku.fields.brand_id.as_deref() == Some(brand))
                        .map(|sku| sku.id.clone())
                        .collect(),
                    LiveFilter::Category(category) => live
                        .filter(|sku| in_category(sku, category))
                        .map(|sku| sku.id.clone())
                        .collect(),
                    LiveFilter::Ids(ids) => live
                        .filter(|sku| ids.contains(&sku.id))
                        .map(|sku| sku.id.clone())
                        .collect(),
                })
            })
            .await
    }

    async fn mark_published(&self, id: &str, now: DateTime<Utc>) -> PortResult<Sku> {
        self.faults
            .run(Op::MarkPublished, || {
                let mut state = self.state();
                let sku = state.skus.get_mut(id).ok_or(PortError::ConditionFailed)?;
                sku.published_at.get_or_insert(now);
                sku.status = SkuStatus::Seckill;
                sku.update_time = now;
                let sku = sku.clone();
                state.off_sale.remove(id);
                Ok(sku)
            })
            .await
    }

    async fn set_sku_shards(&self, id: &str, shards: u32) -> PortResult<()> {
        self.faults
            .run(Op::SetSkuShards, || {
                let mut state = self.state();
                let sku = state.skus.get_mut(id).ok_or(PortError::ConditionFailed)?;
                if sku.shards.is_some_and(|recorded| recorded != shards) {
                    return Err(PortError::ConditionFailed);
                }
                sku.shards = Some(shards);
                Ok(())
            })
            .await
    }

    async fn take_off_sale(&self, id: &str, ended_before: DateTime<Utc>) -> PortResult<bool> {
        self.faults
            .run(Op::TakeOffSale, || {
                let mut state = self.state();
                let ended = state
                    .skus
                    .get(id)
                    .is_some_and(|sku| sku.fields.seckill_end < ended_before);
                Ok(ended && state.off_sale.insert(id.to_owned()))
            })
            .await
    }
}
