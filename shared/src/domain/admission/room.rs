//! A sale's waiting room (排队): when its guard asks for one, the crowd
//! takes places in a line (`POST …/queue`), the line is called at the
//! operator's rate from the opening, and only a called shopper gets a
//! ticket, without which no grab or claim is taken.
//!
//! Fair, and cheap for the crowd:
//! * Places taken before the opening are random draws: the early crowd is
//!   called in the order of its draws, so arriving a millisecond sooner,
//!   or nearer the region, wins nothing. Later arrivals are numbered and
//!   called first come, first served, after every draw.
//! * A place is the shopper's (by account): a closed tab that comes back,
//!   or another device, has the same place.
//! * A called place not taken within [`ADMISSION_GRACE`] goes to the next
//!   in line, so abandoned places do not hold the line
//!   (`ports::RoomSchedule::calls`); admissions are capped at the schedule,
//!   so they never outrun the rate however many of the called come back.
//! * Waiting costs no function: the room's document (`GET …/queue`) says
//!   which places have been called and is kept a second at the edge, so
//!   each page tells for itself when its place comes up and asks for its
//!   ticket once.
//!
//! A room's places live on one Redis master (its keys share the sale's
//! hash tag): joins and admissions are one script each there, a few sorted
//! set operations, so one room takes tens of thousands a second.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CrowdControl, Sale, Terms};
use crate::{
    domain::auth::Claims,
    error::Error,
    ids,
    ports::{CampaignStore, Place, Ports, RoomAdmission, RoomSchedule, SkuStore, WaitingRoom},
    ts,
};

/// How long a called place waits for its shopper to take it before it
/// goes to the next in line: a waiting page looks every second or two.
pub const ADMISSION_GRACE: Duration = Duration::from_secs(20);

/// How long after its sale ends a room's places are kept.
const KEPT_AFTER_END: chrono::Duration = chrono::Duration::days(1);

fn schedule(terms: &Terms) -> RoomSchedule {
    RoomSchedule {
        opening: terms.begin,
        rate: terms.guard.waiting_room_rate,
        grace: ADMISSION_GRACE,
        expires: terms.end + KEPT_AFTER_END,
    }
}

/// `POST …/queue`: the shopper's place, and what the page needs to wait.
#[derive(Debug, Clone, Serialize)]
pub struct Joined {
    #[serde(flatten)]
    pub place: Place,
    /// Places called a second from the opening.
    pub rate: u32,
    #[serde(with = "ts")]
    pub opens_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub server_time: DateTime<Utc>,
}

/// `GET …/queue`: the room as every waiting page reads it (kept a second
/// at the edge, `304` while its level is unchanged).
#[derive(Debug, Clone, Serialize)]
pub struct RoomDocument {
    #[serde(flatten)]
    pub level: RoomLevel,
    #[serde(with = "ts")]
    pub server_time: DateTime<Utc>,
}

/// The room's line: a drawn place has been called once its draw is at most
/// `last_called_draw`; an arrived one once its number is at most
/// `arrivals_called`.
#[derive(Debug, Clone, Serialize)]
pub struct RoomLevel {
    pub rate: u32,
    #[serde(with = "ts")]
    pub opens_at: DateTime<Utc>,
    /// Places drawn before the opening, and numbered after it.
    pub draws: u64,
    pub arrivals: u64,
    /// Places not yet taken (called or not).
    pub waiting: u64,
    pub admitted: u64,
    /// Called places left untaken past the grace, given to the next.
    pub abandoned: u64,
    pub called: u64,
    pub last_called_draw: Option<u64>,
    pub arrivals_called: u64,
}

/// A sale's terms, if it has a waiting room.
async fn room_terms(
    ledger: &(impl SkuStore + CampaignStore),
    control: &CrowdControl,
    sale: Sale<'_>,
) -> Result<Terms, Error> {
    let terms = control.known_terms(ledger, sale).await?;
    if !terms.guard.has_waiting_room() {
        return Err(Error::NoWaitingRoom);
    }
    Ok(terms)
}

/// `POST …/queue`: a place in the sale's line, from any time before it
/// ends; the one the shopper has, if any.
pub async fn join(
    ports: Ports<'_, impl WaitingRoom, impl SkuStore + CampaignStore, impl Sync>,
    control: &CrowdControl,
    claims: &Claims,
    sale: Sale<'_>,
    now: DateTime<Utc>,
) -> Result<Joined, Error> {
    let terms = room_terms(ports.ledger, control, sale).await?;
    if now >= terms.end {
        return Err(Error::Ended);
    }
    terms.admits(claims, now)?;
    let place = ports
        .gate
        .join_room(&sale.key(), &claims.sub, ids::draw(), schedule(&terms), now)
        .await?;
    Ok(Joined {
        place,
        rate: terms.guard.waiting_room_rate,
        opens_at: terms.begin,
        server_time: now,
    })
}

/// `GET …/queue`: the room's line now.
pub async fn line(
    ports: Ports<'_, impl WaitingRoom, impl SkuStore + CampaignStore, impl Sync>,
    control: &CrowdControl,
    sale: Sale<'_>,
    now: DateTime<Utc>,
) -> Result<RoomDocument, Error> {
    let terms = room_terms(ports.ledger, control, sale).await?;
    let schedule = schedule(&terms);
    let line = ports.gate.room_line(&sale.key(), schedule, now).await?;
    Ok(RoomDocument {
        level: RoomLevel {
            rate: schedule.rate,
            opens_at: terms.begin,
            draws: line.draws,
            arrivals: line.arrivals,
            waiting: (line.draws + line.arrivals).saturating_sub(line.admitted),
            admitted: line.admitted,
            abandoned: schedule.abandoned(now, line.admitted),
            called: line.called,
            last_called_draw: line.last_called_draw,
            arrivals_called: line.arrivals_called,
        },
        server_time: now,
    })
}

/// Admits the shopper to a sale with a waiting room if their place has
/// been called (nothing to do without one): before a challenge or ticket.
pub(super) async fn admit(
    gate: &impl WaitingRoom,
    terms: &Terms,
    sale: Sale<'_>,
    username: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if !terms.guard.has_waiting_room() {
        return Ok(());
    }
    let schedule = schedule(terms);
    match gate.admit_from_room(&sale.key(), username, schedule, now).await? {
        RoomAdmission::Admitted => Ok(()),
        RoomAdmission::Waiting { ahead } => Err(Error::InLine {
            ahead,
            retry_after: Duration::from_millis((ahead * 1000 / u64::from(schedule.rate.max(1))).max(1000)),
        }),
        RoomAdmission::NoPlace => Err(Error::NoPlace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{
            admission::{challenge, grab, tests::*},
            tickets::Challenge,
        },
        model::Guard,
        ports::SkuStore,
    };

    /// The SKU of [`on_sale`] with a waiting room calling `rate` places a
    /// second, and its opening.
    async fn roomed(memory: &Memory, rate: u32) -> (String, DateTime<Utc>) {
        let sku = on_sale(memory, 100).await;
        let mut stored = memory.ledger.get_sku(&sku).await.unwrap().unwrap();
        stored.fields.guard = Guard {
            waiting_room_rate: rate,
            ..Guard::default()
        };
        memory.ledger.put_sku(&stored).await.unwrap();
        (sku, stored.fields.seckill_begin)
    }

    fn at(opening: DateTime<Utc>, millis: i64) -> DateTime<Utc> {
        opening + Span::milliseconds(millis)
    }

    async fn join_at(memory: &Memory, control: &CrowdControl, sku: &str, username: &str, when: DateTime<Utc>) -> Place {
        join(memory.ports(), control, &claims_of(username), Sale::Sku(sku), when)
            .await
            .unwrap()
            .place
    }

    /// `count` shoppers named `{prefix}{i}` who took places at `when`.
    async fn joined(
        memory: &Memory,
        control: &CrowdControl,
        sku: &str,
        (prefix, count): (&str, usize),
        when: DateTime<Utc>,
    ) -> Vec<String> {
        let crowd: Vec<String> = (0..count).map(|i| format!("{prefix}{i:02}")).collect();
        for username in &crowd {
            join_at(memory, control, sku, username, when).await;
        }
        crowd
    }

    /// A challenge `username` asks at `when`: admitted, or why not.
    async fn ask(
        memory: &Memory,
        control: &CrowdControl,
        sku: &str,
        username: &str,
        when: DateTime<Utc>,
    ) -> Result<Challenge, Error> {
        challenge(memory.ports(), control, &claims_of(username), Sale::Sku(sku), when).await
    }

    /// Where `username`'s place is in the line at `opening`, before anyone
    /// is called.
    async fn position(
        memory: &Memory,
        control: &CrowdControl,
        sku: &str,
        username: &str,
        opening: DateTime<Utc>,
    ) -> u64 {
        match ask(memory, control, sku, username, opening).await {
            Err(Error::InLine { ahead, .. }) => ahead,
            other => panic!("{username} should wait at the opening: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_early_crowd_is_called_in_a_random_order_and_later_arrivals_in_turn() {
        let memory = Memory::default();
        let control = control();
        let (sku, opening) = roomed(&memory, 10).await;
        let early = joined(&memory, &control, &sku, ("early", 40), at(opening, -60_000)).await;
        let late = joined(&memory, &control, &sku, ("late", 3), at(opening, 1)).await;
        for (i, username) in late.iter().enumerate() {
            let again = join_at(&memory, &control, &sku, username, at(opening, 2)).await;
            assert_eq!(again, Place::Arrived { number: i as u64 + 1 });
        }

        let mut positions = Vec::new();
        for username in &early {
            assert!(matches!(
                join_at(&memory, &control, &sku, username, opening).await,
                Place::Drawn { .. }
            ));
            positions.push(position(&memory, &control, &sku, username, opening).await);
        }
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..40).collect::<Vec<u64>>(), "every early place, once");
        assert_ne!(positions, sorted, "not in the order they came: {positions:?}");
        for (i, username) in late.iter().enumerate() {
            assert_eq!(
                position(&memory, &control, &sku, username, opening).await,
                40 + i as u64
            );
        }
    }

    #[tokio::test]
    async fn places_are_called_at_the_rate_and_only_the_called_get_tickets() {
        let memory = Memory::default();
        let control = control();
        let (sku, opening) = roomed(&memory, 10).await;
        let crowd = joined(&memory, &control, &sku, ("shopper", 30), at(opening, -1_000)).await;
        let mut admitted = 0;
        for username in &crowd {
            match ask(&memory, &control, &sku, username, at(opening, 1_000)).await {
                Ok(_) => admitted += 1,
                Err(Error::InLine { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(admitted, 10, "a second of ten a second");

        let blind = grab(
            memory.ports(),
            &control,
            who("shopper00"),
            None,
            &sku,
            at(opening, 1_000),
        )
        .await;
        assert!(matches!(blind, Err(Error::TicketRequired(_))), "{blind:?}");
        let stranger = ask(&memory, &control, &sku, "stranger", at(opening, 1_000)).await;
        assert!(matches!(stranger, Err(Error::NoPlace)), "{stranger:?}");
    }

    #[tokio::test]
    async fn a_room_calls_no_faster_than_the_deployment_serves() {
        let memory = Memory::default();
        let control = control().with_room_rate_cap(Some(4));
        let (sku, opening) = roomed(&memory, 10).await;
        let crowd = joined(&memory, &control, &sku, ("shopper", 12), at(opening, -1_000)).await;
        let joined = join(
            memory.ports(),
            &control,
            &claims_of("shopper00"),
            Sale::Sku(&sku),
            opening,
        )
        .await
        .unwrap();
        assert_eq!(joined.rate, 4, "the operator's 10 held to what is warm");
        let mut admitted = 0;
        for username in &crowd {
            if ask(&memory, &control, &sku, username, at(opening, 1_000)).await.is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 4);
    }

    #[tokio::test]
    async fn a_place_called_and_left_goes_to_the_next_and_a_returning_shopper_keeps_theirs() {
        let memory = Memory::default();
        let control = control();
        let (sku, opening) = roomed(&memory, 1).await;
        let crowd = joined(&memory, &control, &sku, ("shopper", 30), at(opening, -1_000)).await;
        let mut by_position = vec![String::new(); 30];
        for username in &crowd {
            let at_opening = position(&memory, &control, &sku, username, opening).await;
            by_position[at_opening as usize] = username.clone();
        }
        let past_grace = at(opening, 21_000);
        ask(&memory, &control, &sku, &by_position[21], past_grace)
            .await
            .expect("the first place, called 20 s ago and never taken, went to the 22nd");
        let after = ask(&memory, &control, &sku, &by_position[22], past_grace).await;
        assert!(matches!(after, Err(Error::InLine { ahead: 1, .. })), "{after:?}");
        ask(&memory, &control, &sku, &by_position[0], past_grace)
            .await
            .expect("the first comes back to a place still theirs");
        let room = line(memory.ports(), &control, Sale::Sku(&sku), past_grace)
            .await
            .unwrap();
        assert_eq!(
            (room.level.admitted, room.level.waiting, room.level.abandoned),
            (2, 28, 0)
        );
    }

    #[tokio::test]
    async fn however_many_of_the_called_come_back_no_more_are_let_in_than_the_rate() {
        let memory = Memory::default();
        let control = control();
        let (sku, opening) = roomed(&memory, 1).await;
        let crowd = joined(&memory, &control, &sku, ("shopper", 60), at(opening, -1_000)).await;
        let mut by_position = vec![String::new(); 60];
        for username in &crowd {
            let at_opening = position(&memory, &control, &sku, username, opening).await;
            by_position[at_opening as usize] = username.clone();
        }
        // Forty seconds in, nobody has come: the first twenty places, long
        // called, are offered on to the next twenty. Then everyone asks, the
        // last places first.
        let forty_seconds_in = at(opening, 40_000);
        let mut admitted = 0;
        for username in by_position.iter().rev() {
            match ask(&memory, &control, &sku, username, forty_seconds_in).await {
                Ok(_) => admitted += 1,
                Err(Error::InLine { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(admitted, 40, "forty seconds of one a second");
    }

    #[tokio::test]
    async fn a_sale_without_a_room_has_no_line() {
        let memory = Memory::default();
        let control = control();
        let sku = on_sale(&memory, 5).await;
        let joined = join(memory.ports(), &control, &claims_of("alice"), Sale::Sku(&sku), now()).await;
        assert!(matches!(joined, Err(Error::NoWaitingRoom)), "{joined:?}");
    }
}
