//! The pages function: keeps each SKU's rendered page in the pages bucket
//! in step with its record. The SKUs table's stream (keys only) starts it
//! with the SKUs that changed, whoever changed them (an operator's edit,
//! publishing, the end-of-sale sweep), and it renders each from the record
//! as stored now. Only this function links S3; the ones that write SKUs
//! render nothing in the cloud (`shared::pages::Pages::FromTableStream`).

use std::collections::BTreeSet;

use aws_lambda_events::{
    dynamodb::{Event, EventRecord},
    streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse},
};
use lambda_runtime::LambdaEvent;
use shared::{
    BoxError,
    app::{dynamodb_client, s3_client},
    config,
    domain::storefront,
    ledger::Dynamo,
    pages::BucketPages,
    ports::{PageStore, SkuStore},
};

/// The ledger's SKUs and the pages bucket (`PAGES_BUCKET`). The pages link
/// the shop at `/`: the console is the root of the distribution that
/// serves them.
pub async fn from_env() -> Result<(Dynamo, BucketPages), BoxError> {
    let skus = Dynamo::new(dynamodb_client(None).await, &config::table_prefix());
    let pages = BucketPages::new(s3_client(None).await, config::required("PAGES_BUCKET")?, "/");
    Ok((skus, pages))
}

fn sku_id(record: &EventRecord) -> Option<&str> {
    match record.change.keys.get("id") {
        Some(serde_dynamo::AttributeValue::S(id)) => Some(id),
        _ => None,
    }
}

/// Renders each changed SKU once, in the order the stream first names it.
/// On the first that fails, stops and reports that record: the stream
/// gives it and everything after it again (rendering twice is harmless),
/// and holds back later changes of its shard until it succeeds.
pub async fn handler(
    skus: &impl SkuStore,
    pages: &impl PageStore,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, BoxError> {
    let mut rendered = BTreeSet::new();
    let mut response = DynamoDbEventResponse::default();
    for record in &event.payload.records {
        let Some(id) = sku_id(record) else {
            tracing::warn!(event_id = record.event_id, "a SKU change without an `id` key; skipped");
            continue;
        };
        if !rendered.insert(id) {
            continue;
        }
        if let Err(error) = storefront::render_stored_item_page(skus, pages, id).await {
            tracing::error!(sku_id = id, %error, "rendering a SKU's page failed; the stream gives it again");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = record.change.sequence_number.clone();
            response.batch_item_failures.push(failure);
            break;
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use shared::memory::{Fault, Memory, MemoryPages, Op, published_sku};

    use super::*;

    async fn stored(memory: &Memory, id: &str, name: &str) {
        memory.ledger.put_sku(&published_sku(id, name)).await.unwrap();
    }

    /// The stream's event for these (SKU id, sequence number) changes, as
    /// Lambda delivers it with keys only.
    fn changes(changed: &[(&str, &str)]) -> LambdaEvent<Event> {
        let records: Vec<_> = changed
            .iter()
            .map(|(id, sequence)| {
                serde_json::json!({
                    "eventID": format!("e-{sequence}"), "eventName": "MODIFY", "awsRegion": "us-east-1",
                    "dynamodb": {"Keys": {"id": {"S": id}}, "SequenceNumber": sequence,
                                 "SizeBytes": 10, "StreamViewType": "KEYS_ONLY"}
                })
            })
            .collect();
        let event = serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
        LambdaEvent::new(event, lambda_runtime::Context::default())
    }

    fn failed(response: &DynamoDbEventResponse) -> Vec<Option<&str>> {
        response
            .batch_item_failures
            .iter()
            .map(|failure| failure.item_identifier.as_deref())
            .collect()
    }

    #[tokio::test]
    async fn each_changed_sku_is_rendered_once_as_stored_now() {
        let memory = Memory::default();
        let pages = MemoryPages::default();
        stored(&memory, "a", "Phone").await;
        let response = handler(
            &memory.ledger,
            &pages,
            changes(&[("a", "1"), ("gone", "2"), ("a", "3")]),
        )
        .await
        .unwrap();
        assert!(failed(&response).is_empty());
        assert!(pages.page("a").unwrap().contains("<h1>Phone</h1>"));
        assert_eq!(pages.page("gone"), None);
        assert_eq!(
            memory.ledger.faults.calls(Op::GetSku),
            2,
            "a read per SKU, not per change"
        );
    }

    #[tokio::test]
    async fn the_first_failure_is_reported_and_nothing_after_it_is_rendered() {
        let memory = Memory::default();
        let pages = MemoryPages::default();
        for id in ["a", "b", "c"] {
            stored(&memory, id, id).await;
        }
        memory.ledger.faults.inject(Op::GetSku, 2, Fault::Fail);
        let response = handler(&memory.ledger, &pages, changes(&[("a", "1"), ("b", "2"), ("c", "3")]))
            .await
            .unwrap();
        assert_eq!(failed(&response), [Some("2")]);
        assert!(pages.page("a").is_some());
        assert_eq!((pages.page("b"), pages.page("c")), (None, None));
    }
}
