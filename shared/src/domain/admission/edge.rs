//! The edge's ticket list ([`TicketList`]) in step with the ledger. The
//! cloud's edge function is told which SKUs and campaigns changed (their
//! tables' streams) and lists each as stored now: a sale whose guard asks
//! a ticket is listed, any other (or one gone) is not. The Function in
//! front of grab and claim refuses a listed sale's taps that bring no
//! ticket signed with the listed key, so a script's blind taps at the
//! opening stop at CloudFront; the grab and claim functions still check
//! every ticket, and whose it is, themselves.

use super::Sale;
use crate::{
    error::Error,
    ports::{CampaignStore, SkuStore, TicketList},
};

/// The entry holding the key tickets are signed with
/// (`tickets::ticket_key`).
pub const TICKET_KEY: &str = "ticket-key";
/// A listed sale's value.
pub const ASKS_TICKET: &str = "1";

/// Lists these sales as stored now, and the ticket key, writing only what
/// differs (in one update, so a sale is never listed without the key).
pub async fn list_stored(
    ledger: &(impl SkuStore + CampaignStore),
    list: &impl TicketList,
    ticket_key: &str,
    sales: &[Sale<'_>],
) -> Result<(), Error> {
    let mut puts = Vec::new();
    let mut removes = Vec::new();
    if list.entry(TICKET_KEY).await?.as_deref() != Some(ticket_key) {
        puts.push((TICKET_KEY.to_owned(), ticket_key.to_owned()));
    }
    for &sale in sales {
        let asks = match sale {
            Sale::Sku(id) => ledger
                .get_sku(id)
                .await?
                .is_some_and(|sku| sku.fields.guard.needs_ticket()),
            Sale::Campaign(id) => ledger
                .get_campaign(id)
                .await?
                .is_some_and(|campaign| campaign.guard.needs_ticket()),
        };
        let name = sale.key();
        match (asks, list.entry(&name).await?.is_some()) {
            (true, false) => puts.push((name, ASKS_TICKET.to_owned())),
            (false, true) => removes.push(name),
            _ => {}
        }
    }
    if puts.is_empty() && removes.is_empty() {
        return Ok(());
    }
    Ok(list.update(&puts, &removes).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        memory::{Memory, MemoryTicketList, published_sku},
        ports::SkuStore,
    };

    const KEY: &str = "k1";

    async fn sku(memory: &Memory, id: &str, tickets: bool) {
        let mut sku = published_sku(id, "Phone");
        sku.fields.guard.ticket_required = tickets;
        memory.ledger.put_sku(&sku).await.unwrap();
    }

    #[tokio::test]
    async fn a_sale_that_asks_tickets_is_listed_with_the_key_and_unlisted_when_it_stops() {
        let memory = Memory::default();
        let list = MemoryTicketList::default();
        sku(&memory, "a", true).await;
        sku(&memory, "b", false).await;
        list_stored(&memory.ledger, &list, KEY, &[Sale::Sku("a"), Sale::Sku("b")])
            .await
            .unwrap();
        assert_eq!(list.names(), ["sku:a", TICKET_KEY]);
        assert_eq!(list.entry(TICKET_KEY).await.unwrap().as_deref(), Some(KEY));

        sku(&memory, "a", false).await;
        list_stored(&memory.ledger, &list, KEY, &[Sale::Sku("a")])
            .await
            .unwrap();
        assert_eq!(list.names(), [TICKET_KEY]);
    }

    #[tokio::test]
    async fn a_gone_sale_is_unlisted_and_nothing_is_written_when_nothing_differs() {
        let memory = Memory::default();
        let list = MemoryTicketList::default();
        sku(&memory, "a", true).await;
        list_stored(&memory.ledger, &list, KEY, &[Sale::Sku("a")])
            .await
            .unwrap();
        list_stored(&memory.ledger, &list, KEY, &[Sale::Sku("a")])
            .await
            .unwrap();
        assert_eq!(list.updates(), 1, "the second saw nothing to change");

        memory.ledger.delete_sku("a").await.unwrap();
        list_stored(&memory.ledger, &list, KEY, &[Sale::Sku("a")])
            .await
            .unwrap();
        assert_eq!(list.names(), [TICKET_KEY]);
    }

    #[tokio::test]
    async fn a_new_key_replaces_the_old() {
        let memory = Memory::default();
        let list = MemoryTicketList::default();
        list_stored(&memory.ledger, &list, "old", &[]).await.unwrap();
        list_stored(&memory.ledger, &list, "new", &[]).await.unwrap();
        assert_eq!(list.entry(TICKET_KEY).await.unwrap().as_deref(), Some("new"));
    }
}
