//! [`WaitingRoom`] on Redis: `room_join.lua`, `room_admit.lua` and
//! `room_status.lua` over one room's keys, `<prefix>room:{<sale>}:…`, all
//! under the sale's hash tag, so one master holds a room and each script
//! sees all of it.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use redis::Script;

use super::{RedisGate, field, split_reply, unexpected};
use crate::ports::{Place, PortResult, RoomAdmission, RoomLine, RoomSchedule, WaitingRoom};

static ROOM_JOIN: LazyLock<Script> = LazyLock::new(|| Script::new(lua::ROOM_JOIN));
static ROOM_ADMIT: LazyLock<Script> = LazyLock::new(|| Script::new(lua::ROOM_ADMIT));
static ROOM_STATUS: LazyLock<Script> = LazyLock::new(|| Script::new(lua::ROOM_STATUS));

/// A room's keys: drawn, arrived, meta, admitted.
struct RoomKeys([String; 4]);

impl RedisGate {
    fn room_keys(&self, room: &str) -> RoomKeys {
        let key = |part: &str| format!("{}room:{{{room}}}:{part}", self.prefix);
        RoomKeys([key("drawn"), key("arrived"), key("meta"), key("admitted")])
    }
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn grace_ms(schedule: &RoomSchedule) -> u64 {
    u64::try_from(schedule.grace.as_millis()).unwrap_or(u64::MAX)
}

impl WaitingRoom for RedisGate {
    async fn join_room(
        &self,
        room: &str,
        username: &str,
        draw: u64,
        schedule: RoomSchedule,
        now: DateTime<Utc>,
    ) -> PortResult<Place> {
        let RoomKeys(keys) = self.room_keys(room);
        let mut invocation = ROOM_JOIN.key(&keys[0]);
        invocation.key(&keys[1]).key(&keys[2]).key(&keys[3]);
        invocation
            .arg(username)
            .arg(ms(now))
            .arg(ms(schedule.opening))
            .arg(draw)
            .arg(ms(schedule.expires));
        let (status, values) = split_reply(self.run(&ROOM_JOIN, &invocation, &keys[0]).await?)?;
        match status.as_str() {
            "DRAWN" => Ok(Place::Drawn {
                draw: field(&values, 0)?,
            }),
            "ARRIVED" => Ok(Place::Arrived {
                number: field(&values, 0)?,
            }),
            other => Err(unexpected("room_join", other)),
        }
    }

    async fn admit_from_room(
        &self,
        room: &str,
        username: &str,
        schedule: RoomSchedule,
        now: DateTime<Utc>,
    ) -> PortResult<RoomAdmission> {
        let RoomKeys(keys) = self.room_keys(room);
        let mut invocation = ROOM_ADMIT.key(&keys[0]);
        invocation.key(&keys[1]).key(&keys[2]).key(&keys[3]);
        invocation
            .arg(username)
            .arg(ms(now))
            .arg(ms(schedule.opening))
            .arg(schedule.rate)
            .arg(grace_ms(&schedule))
            .arg(ms(schedule.expires));
        let (status, values) = split_reply(self.run(&ROOM_ADMIT, &invocation, &keys[0]).await?)?;
        match status.as_str() {
            "ADMITTED" => Ok(RoomAdmission::Admitted),
            "WAITING" => Ok(RoomAdmission::Waiting {
                ahead: field(&values, 0)?,
            }),
            "NO_PLACE" => Ok(RoomAdmission::NoPlace),
            other => Err(unexpected("room_admit", other)),
        }
    }

    async fn room_line(&self, room: &str, schedule: RoomSchedule, now: DateTime<Utc>) -> PortResult<RoomLine> {
        let RoomKeys(keys) = self.room_keys(room);
        let mut invocation = ROOM_STATUS.key(&keys[0]);
        invocation.key(&keys[1]).key(&keys[2]);
        invocation
            .arg(ms(now))
            .arg(ms(schedule.opening))
            .arg(schedule.rate)
            .arg(grace_ms(&schedule));
        // Only reads: no replica to wait for.
        let (status, values) = split_reply(self.run_read(&ROOM_STATUS, &invocation, &keys[0]).await?)?;
        if status != "ROOM" {
            return Err(unexpected("room_status", &status));
        }
        let last_draw: i64 = field(&values, 4)?;
        Ok(RoomLine {
            draws: field(&values, 0)?,
            arrivals: field(&values, 1)?,
            admitted: field(&values, 2)?,
            called: field(&values, 3)?,
            last_called_draw: u64::try_from(last_draw).ok(),
            arrivals_called: field(&values, 5)?,
        })
    }
}
