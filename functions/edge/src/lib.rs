//! The edge function: keeps what CloudFront knows of the ledger in step
//! with it. The SKUs' and campaigns' tables stream their changed keys to
//! it, whoever changed them (an operator's edit, publishing, the
//! end-of-sale sweep), and it reads each as stored now:
//!
//! * a SKU's rendered page, into the pages bucket (or away, once the SKU
//!   is gone);
//! * the edge's ticket list: which sales ask a ticket, and the key tickets
//!   are signed with, for the Function that refuses ticketless grabs and
//!   claims before they reach the API.
//!
//! Only this function links S3 and the KeyValueStore; the ones that write
//! SKUs render nothing in the cloud (`shared::pages::Pages::FromTableStream`).

use aws_lambda_events::{
    dynamodb::{Event, EventRecord},
    streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse},
};
use lambda_runtime::LambdaEvent;
use shared::{
    BoxError,
    app::{dynamodb_client, key_value_store_client, s3_client},
    config,
    domain::{
        admission::{Sale, edge::list_stored},
        storefront,
        tickets::ticket_key,
    },
    ledger::{Dynamo, tables},
    pages::BucketPages,
    ports::{CampaignStore, PageStore, SkuStore, TicketList},
    ticket_list::KeyValueStoreTicketList,
};

/// What the function writes to, and how it tells the two streams apart.
pub struct Edge<Ledger, Pages, List> {
    pub ledger: Ledger,
    pub pages: Pages,
    pub list: List,
    /// `tickets::ticket_key` of the token secret.
    pub ticket_key: String,
    /// The campaigns table's name: a record from its stream is a rain's.
    pub campaigns: String,
}

/// The ledger, the pages bucket (`PAGES_BUCKET`; the pages link the shop at
/// `/`, the root of the distribution that serves them), the ticket list
/// (`TICKET_LIST`) and the token secret the ticket key derives from.
pub async fn from_env() -> Result<Edge<Dynamo, BucketPages, KeyValueStoreTicketList>, BoxError> {
    let prefix = config::table_prefix();
    Ok(Edge {
        ledger: Dynamo::new(dynamodb_client(None).await, &prefix),
        pages: BucketPages::new(s3_client(None).await, config::required("PAGES_BUCKET")?, "/"),
        list: KeyValueStoreTicketList::new(key_value_store_client(None).await, config::required("TICKET_LIST")?),
        ticket_key: ticket_key(config::jwt_secret().await?.0.as_bytes()),
        campaigns: format!("{prefix}{}", tables::CAMPAIGNS.name),
    })
}

impl<Ledger, Pages, List> Edge<Ledger, Pages, List> {
    /// The sale a change is about: the table is named in the stream's ARN
    /// (`…:table/<name>/stream/<time>`), the record by its `id` key.
    fn sale_of<'a>(&self, record: &'a EventRecord) -> Option<Sale<'a>> {
        let Some(serde_dynamo::AttributeValue::S(id)) = record.change.keys.get("id") else {
            return None;
        };
        let table = record
            .event_source_arn
            .as_deref()
            .and_then(|arn| arn.split_once(":table/"))
            .and_then(|(_, rest)| rest.split('/').next());
        Some(match table {
            Some(table) if table == self.campaigns => Sale::Campaign(id),
            _ => Sale::Sku(id),
        })
    }
}

fn failure(record: &EventRecord) -> DynamoDbEventResponse {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = record.change.sequence_number.clone();
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
    response
}

/// Renders each changed SKU's page once, in the order the stream first
/// names it, then lists every changed sale. On the first page that fails it
/// stops and reports that record: the stream gives it and everything after
/// it again (doing either twice is harmless) and holds back later changes
/// of its shard until it succeeds. If the list cannot be written, the
/// whole batch is given again.
pub async fn handler(
    edge: &Edge<impl SkuStore + CampaignStore, impl PageStore, impl TicketList>,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, BoxError> {
    let records = &event.payload.records;
    let mut sales = Vec::new();
    let mut failed = None;
    for record in records {
        let Some(sale) = edge.sale_of(record) else {
            tracing::warn!(event_id = record.event_id, "a change without an `id` key; skipped");
            continue;
        };
        if sales.contains(&sale) {
            continue;
        }
        if let Sale::Sku(id) = sale
            && let Err(error) = storefront::render_stored_item_page(&edge.ledger, &edge.pages, id).await
        {
            tracing::error!(sku_id = id, %error, "rendering a SKU's page failed; the stream gives it again");
            failed = Some(record);
            break;
        }
        sales.push(sale);
    }
    if let Err(error) = list_stored(&edge.ledger, &edge.list, &edge.ticket_key, &sales).await {
        tracing::error!(%error, "listing the sales that ask tickets failed; the stream gives the batch again");
        failed = records.first();
    }
    Ok(failed.map(failure).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use shared::{
        memory::{Fault, MemoryLedger, MemoryPages, MemoryTicketList, Op, published_sku},
        model::{Campaign, Guard},
    };

    use super::*;

    type MemoryEdge = Edge<MemoryLedger, MemoryPages, MemoryTicketList>;

    const CAMPAIGNS: &str = "flashsale-campaigns";

    fn edge() -> MemoryEdge {
        Edge {
            ledger: MemoryLedger::default(),
            pages: MemoryPages::default(),
            list: MemoryTicketList::default(),
            ticket_key: "k1".into(),
            campaigns: CAMPAIGNS.into(),
        }
    }

    async fn stored(edge: &MemoryEdge, id: &str, name: &str) {
        edge.ledger.put_sku(&published_sku(id, name)).await.unwrap();
    }

    /// The stream's event for these (table, id, sequence number) changes,
    /// as Lambda delivers it with keys only.
    fn changes_in(changed: &[(&str, &str, &str)]) -> LambdaEvent<Event> {
        let records: Vec<_> = changed
            .iter()
            .map(|(table, id, sequence)| {
                serde_json::json!({
                    "eventID": format!("e-{sequence}"), "eventName": "MODIFY", "awsRegion": "us-east-1",
                    "eventSourceARN": format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-12-05T00:00:00.000"),
                    "dynamodb": {"Keys": {"id": {"S": id}}, "SequenceNumber": sequence,
                                 "SizeBytes": 10, "StreamViewType": "KEYS_ONLY"}
                })
            })
            .collect();
        let event = serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
        LambdaEvent::new(event, lambda_runtime::Context::default())
    }

    /// SKU changes.
    fn changes(changed: &[(&str, &str)]) -> LambdaEvent<Event> {
        let changed: Vec<_> = changed
            .iter()
            .map(|&(id, sequence)| ("flashsale-skus", id, sequence))
            .collect();
        changes_in(&changed)
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
        let edge = edge();
        stored(&edge, "a", "Phone").await;
        let response = handler(&edge, changes(&[("a", "1"), ("gone", "2"), ("a", "3")]))
            .await
            .unwrap();
        assert!(failed(&response).is_empty());
        assert!(edge.pages.page("a").unwrap().contains("<h1>Phone</h1>"));
        assert_eq!(edge.pages.page("gone"), None);
        assert_eq!(
            edge.ledger.faults.calls(Op::GetSku),
            4,
            "a read per SKU for its page and one for the list, not per change"
        );
    }

    #[tokio::test]
    async fn the_first_failure_is_reported_and_nothing_after_it_is_rendered_or_listed() {
        let edge = edge();
        for id in ["a", "b", "c"] {
            let mut sku = published_sku(id, id);
            sku.fields.guard.ticket_required = true;
            edge.ledger.put_sku(&sku).await.unwrap();
        }
        edge.ledger.faults.inject(Op::GetSku, 2, Fault::Fail);
        let response = handler(&edge, changes(&[("a", "1"), ("b", "2"), ("c", "3")]))
            .await
            .unwrap();
        assert_eq!(failed(&response), [Some("2")]);
        assert!(edge.pages.page("a").is_some());
        assert_eq!((edge.pages.page("b"), edge.pages.page("c")), (None, None));
        assert_eq!(edge.list.names(), ["sku:a", "ticket-key"]);
    }

    #[tokio::test]
    async fn a_rain_that_asks_tickets_is_listed_from_the_campaigns_stream() {
        let edge = edge();
        let now = Utc::now();
        let rain = Campaign {
            id: "r1".into(),
            name: "Rain".into(),
            total_amount: 100,
            count: 10,
            min_amount: 1,
            begin: now,
            end: now,
            create_time: now,
            guard: Guard {
                waiting_room_rate: 50,
                ..Guard::default()
            },
            credited: 0,
            credited_amount: 0,
        };
        edge.ledger.insert_campaign(&rain).await.unwrap();
        let response = handler(&edge, changes_in(&[(CAMPAIGNS, "r1", "1")])).await.unwrap();
        assert!(failed(&response).is_empty());
        assert_eq!(edge.list.names(), ["rp:r1", "ticket-key"]);
        assert_eq!(edge.pages.page("r1"), None, "a rain has no item page");
    }

    #[tokio::test]
    async fn a_list_that_cannot_be_written_gives_the_whole_batch_again() {
        let edge = edge();
        stored(&edge, "a", "Phone").await;
        edge.list.refuse_writes();
        let response = handler(&edge, changes(&[("a", "1"), ("b", "2")])).await.unwrap();
        assert_eq!(failed(&response), [Some("1")]);
    }
}
