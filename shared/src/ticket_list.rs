//! [`TicketList`] in CloudFront's KeyValueStore, which the Function in
//! front of grab and claim reads at every edge (`EdgeTicketCheck` in
//! `infra/template.yaml`). Writes name the store's current version
//! (`If-Match`), so two writers at once (the streams' shards) cannot lose
//! each other's changes: the one that lost the race reads the new version
//! and writes again. The store is global; its API is signed with SigV4A.

use aws_sdk_cloudfrontkeyvaluestore::{
    Client,
    error::DisplayErrorContext,
    types::{DeleteKeyRequestListItem, PutKeyRequestListItem},
};

use crate::ports::{PortError, PortResult, TicketList};

/// How many changes one `UpdateKeys` carries at most (the batch size AWS's
/// own tools use), and how often a write lost to another is tried again.
const CHANGES_PER_UPDATE: usize = 50;
const UPDATE_TRIES: usize = 5;

#[derive(Debug, Clone)]
pub struct KeyValueStoreTicketList {
    client: Client,
    arn: String,
}

impl KeyValueStoreTicketList {
    pub fn new(client: Client, arn: impl Into<String>) -> Self {
        KeyValueStoreTicketList {
            client,
            arn: arn.into(),
        }
    }

    async fn update_once(
        &self,
        puts: Vec<PutKeyRequestListItem>,
        removes: Vec<DeleteKeyRequestListItem>,
    ) -> PortResult<()> {
        for _ in 0..UPDATE_TRIES {
            let version = self
                .client
                .describe_key_value_store()
                .kvs_arn(&self.arn)
                .send()
                .await
                .map_err(unavailable)?
                .e_tag;
            let written = self
                .client
                .update_keys()
                .kvs_arn(&self.arn)
                .if_match(version)
                .set_puts(Some(puts.clone()).filter(|puts| !puts.is_empty()))
                .set_deletes(Some(removes.clone()).filter(|removes| !removes.is_empty()))
                .send()
                .await;
            match written {
                Ok(_) => return Ok(()),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|error| error.is_conflict_exception()) =>
                {
                    tracing::info!("the edge's ticket list changed meanwhile; writing again");
                }
                Err(error) => return Err(unavailable(error)),
            }
        }
        Err(PortError::Unavailable(format!(
            "the edge's ticket list changed under each of {UPDATE_TRIES} writes"
        )))
    }
}

fn unavailable(error: impl std::error::Error) -> PortError {
    PortError::Unavailable(format!("the edge's ticket list: {}", DisplayErrorContext(error)))
}

fn built<T>(item: Result<T, impl std::error::Error>) -> PortResult<T> {
    item.map_err(|error| PortError::Unavailable(format!("an entry of the edge's ticket list: {error}")))
}

impl TicketList for KeyValueStoreTicketList {
    async fn entry(&self, name: &str) -> PortResult<Option<String>> {
        match self.client.get_key().kvs_arn(&self.arn).key(name).send().await {
            Ok(found) => Ok(Some(found.value)),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Puts go first, so a batch larger than one update never lists a sale
    /// before the key it is checked with.
    async fn update(&self, puts: &[(String, String)], removes: &[String]) -> PortResult<()> {
        let mut changes = Vec::with_capacity(puts.len() + removes.len());
        for (name, value) in puts {
            changes.push(Ok(built(
                PutKeyRequestListItem::builder().key(name).value(value).build(),
            )?));
        }
        for name in removes {
            changes.push(Err(built(DeleteKeyRequestListItem::builder().key(name).build())?));
        }
        for chunk in changes.chunks(CHANGES_PER_UPDATE) {
            let (puts, removes): (Vec<_>, Vec<_>) = chunk.iter().cloned().partition(Result::is_ok);
            self.update_once(
                puts.into_iter().flatten().collect(),
                removes.into_iter().filter_map(Result::err).collect(),
            )
            .await?;
        }
        Ok(())
    }
}
