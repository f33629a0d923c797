//! A waiting room under its crowd: joins before the opening (draws) and
//! after it (numbers), then the admissions of called places, each by a
//! shopper of its own on one room, so on one master, as deployed; and the
//! bytes a place holds there: the figures behind docs/design.md's "one
//! room admits far more shoppers a second than a sale can sell to".

use chrono::{DateTime, Duration, Utc};
use redis::aio::MultiplexedConnection;
use shared::{
    BoxError,
    gate::RedisGate,
    ports::{Place, RoomAdmission, RoomSchedule, WaitingRoom},
};

use crate::{Args, Figure, measure};

/// A line called a million places a second from `opening`: read an hour
/// or more after it, every place has been called, so an admission is the
/// script's whole work, never a wait.
fn schedule(opening: DateTime<Utc>) -> RoomSchedule {
    RoomSchedule {
        opening,
        rate: 1_000_000,
        grace: std::time::Duration::from_secs(20),
        expires: opening + Duration::days(1),
    }
}

/// Shopper `i`'s draw: below 2^53 and scattered over it, as the domain's
/// random draws are, so the draws' sorted set is built in no particular order.
fn draw(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11
}

/// What one room's places hold in Redis, waiting and once admitted.
pub struct Footprint {
    pub places: &'static str,
    pub count: usize,
    pub waiting: u64,
    pub admitted: u64,
}

/// A room of the benchmark: where its opening lies from now decides
/// whether its places are draws or numbers.
struct Room {
    id: &'static str,
    opens_in_minutes: i64,
    drawn: bool,
    joins: &'static str,
    admissions: &'static str,
    places: &'static str,
}

const ROOMS: [Room; 2] = [
    Room {
        id: "bench-room-early",
        opens_in_minutes: 60,
        drawn: true,
        joins: "room_join.lua, before the opening (a draw)",
        admissions: "room_admit.lua, called draws",
        places: "drawn places",
    },
    Room {
        id: "bench-room-late",
        opens_in_minutes: -1,
        drawn: false,
        joins: "room_join.lua, after the opening (a number)",
        admissions: "room_admit.lua, called numbers",
        places: "numbered places",
    },
];

/// Joins then admissions of `args.requests` shoppers in a room opening in
/// an hour (draws) and in one that opened a minute ago (numbers).
pub async fn figures(
    gate: &RedisGate,
    connection: &MultiplexedConnection,
    args: &Args,
    figures: &mut Vec<Figure>,
) -> Result<Vec<Footprint>, BoxError> {
    let mut footprints = Vec::new();
    for room in &ROOMS {
        let opening = Utc::now() + Duration::minutes(room.opens_in_minutes);
        let joining = schedule(opening);
        let joins = measure(room.joins, args, |i| async move {
            let joined = gate
                .join_room(room.id, &format!("shopper{i}"), draw(i), joining, Utc::now())
                .await
                .expect("redis answers");
            assert_eq!(matches!(joined, Place::Drawn { .. }), room.drawn, "{joined:?}");
        });
        figures.push(joins.await);
        let waiting = bytes_of(connection, room.id).await?;
        // Admitted as if two hours after an opening: every place called.
        let called = schedule(Utc::now() - Duration::hours(2));
        let admissions = measure(room.admissions, args, |i| async move {
            let admission = gate
                .admit_from_room(room.id, &format!("shopper{i}"), called, Utc::now())
                .await
                .expect("redis answers");
            assert_eq!(admission, RoomAdmission::Admitted);
        });
        figures.push(admissions.await);
        footprints.push(Footprint {
            places: room.places,
            count: args.requests,
            waiting,
            admitted: bytes_of(connection, room.id).await?,
        });
    }
    Ok(footprints)
}

/// The memory of every key of `room` (its places, its admitted, its
/// counters), counted exactly, not sampled.
async fn bytes_of(connection: &MultiplexedConnection, room: &str) -> Result<u64, BoxError> {
    let mut connection = connection.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{{{room}}}*"))
        .query_async(&mut connection)
        .await?;
    assert!(!keys.is_empty(), "the room's keys are found");
    let mut bytes = 0;
    for key in keys {
        let usage: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut connection)
            .await?;
        bytes += usage.unwrap_or_default();
    }
    Ok(bytes)
}
