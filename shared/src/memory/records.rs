//! [`RecordStore`] in memory: records kept as the JSON they are stored as.

use serde::de::DeserializeOwned;

use super::{MemoryLedger, Op, page};
use crate::{
    model::{CategoryFields, Record, RecordKind, SkuActivity, Stored},
    ports::{Page, PortError, PortResult, RecordStore},
};

fn decode<T: DeserializeOwned>(value: &serde_json::Value) -> PortResult<T> {
    serde_json::from_value(value.clone()).map_err(|e| PortError::Unavailable(format!("stored record unreadable: {e}")))
}

impl MemoryLedger {
    fn records_of<F: Record>(&self, kind: RecordKind) -> PortResult<Vec<Stored<F>>> {
        let state = self.state();
        let mut records: Vec<Stored<F>> = state
            .records
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, value)| decode(value))
            .collect::<PortResult<_>>()?;
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }
}

fn encode<F: Record>(record: &Stored<F>) -> serde_json::Value {
    serde_json::to_value(record).expect("a record serialises")
}

impl RecordStore for MemoryLedger {
    async fn insert_record<F: Record>(&self, record: &Stored<F>) -> PortResult<()> {
        self.faults
            .run(Op::InsertRecord, || {
                let mut state = self.state();
                let key = (F::KIND, record.id.clone());
                if state.records.contains_key(&key) {
                    return Err(PortError::ConditionFailed);
                }
                state.records.insert(key, encode(record));
                Ok(())
            })
            .await
    }

    async fn put_record<F: Record>(&self, record: &Stored<F>) -> PortResult<()> {
        self.faults
            .run(Op::PutRecord, || {
                self.state()
                    .records
                    .insert((F::KIND, record.id.clone()), encode(record));
                Ok(())
            })
            .await
    }

    async fn get_record<F: Record>(&self, id: &str) -> PortResult<Option<Stored<F>>> {
        self.faults
            .run(Op::GetRecord, || {
                self.state()
                    .records
                    .get(&(F::KIND, id.to_owned()))
                    .map(decode)
                    .transpose()
            })
            .await
    }

    async fn delete_record<F: Record>(&self, id: &str) -> PortResult<()> {
        self.faults
            .run(Op::DeleteRecord, || {
                self.state().records.remove(&(F::KIND, id.to_owned()));
                Ok(())
            })
            .await
    }

    async fn page_records<F: Record>(&self, limit: usize, cursor: Option<&str>) -> PortResult<Page<Stored<F>>> {
        self.faults
            .run(Op::PageRecords, || page(self.records_of(F::KIND)?, limit, cursor))
            .await
    }

    async fn child_categories(
        &self,
        parent_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> PortResult<Page<Stored<CategoryFields>>> {
        self.faults
            .run(Op::ChildCategories, || {
                let mut children: Vec<Stored<CategoryFields>> = self.records_of(RecordKind::Category)?;
                children.retain(|c| c.fields.parent_id == parent_id);
                page(children, limit, cursor)
            })
            .await
    }

    async fn link(&self, link: &SkuActivity) -> PortResult<()> {
        self.faults
            .run(Op::Link, || {
                self.state()
                    .links
                    .insert((link.activity_id.clone(), link.sku_id.clone()));
                Ok(())
            })
            .await
    }

    async fn unlink(&self, link: &SkuActivity) -> PortResult<()> {
        self.faults
            .run(Op::Unlink, || {
                self.state()
                    .links
                    .remove(&(link.activity_id.clone(), link.sku_id.clone()));
                Ok(())
            })
            .await
    }

    async fn skus_of_activity(
        &self,
        activity_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> PortResult<Page<SkuActivity>> {
        self.faults
            .run(Op::SkusOfActivity, || {
                let links = self
                    .state()
                    .links
                    .iter()
                    .filter(|(activity, _)| activity == activity_id)
                    .map(|(activity_id, sku_id)| SkuActivity {
                        activity_id: activity_id.clone(),
                        sku_id: sku_id.clone(),
                    })
                    .collect();
                page(links, limit, cursor)
            })
            .await
    }

    async fn activities_of_sku(&self, sku_id: &str) -> PortResult<Vec<SkuActivity>> {
        self.faults
            .run(Op::ActivitiesOfSku, || {
                Ok(self
                    .state()
                    .links
                    .iter()
                    .filter(|(_, sku)| sku == sku_id)
                    .map(|(activity_id, sku_id)| SkuActivity {
                        activity_id: activity_id.clone(),
                        sku_id: sku_id.clone(),
                    })
                    .collect())
            })
            .await
    }
}
