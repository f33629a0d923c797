//! [`WaitingRoom`] in memory: the line of `room_join.lua`,
//! `room_admit.lua` and `room_status.lua`, draws ordered as a sorted set
//! orders them (by draw, then by name). Places never expire here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{MemoryGate, Op};
use crate::ports::{Place, PortResult, RoomAdmission, RoomLine, RoomSchedule, WaitingRoom};

#[derive(Debug, Clone, Default)]
pub(super) struct Room {
    drawn: BTreeSet<(u64, String)>,
    draws: BTreeMap<String, u64>,
    arrived: BTreeMap<String, u64>,
    admitted: BTreeSet<String>,
}

impl Room {
    fn place(&self, username: &str) -> Option<Place> {
        match (self.draws.get(username), self.arrived.get(username)) {
            (Some(&draw), _) => Some(Place::Drawn { draw }),
            (_, Some(&number)) => Some(Place::Arrived { number }),
            _ => None,
        }
    }

    /// The place's position in the line (0 first).
    fn position(&self, place: Place, username: &str) -> u64 {
        match place {
            Place::Drawn { draw } => self.drawn.range(..(draw, username.to_owned())).count() as u64,
            Place::Arrived { number } => self.drawn.len() as u64 + number - 1,
        }
    }
}

impl WaitingRoom for MemoryGate {
    async fn join_room(
        &self,
        room: &str,
        username: &str,
        draw: u64,
        schedule: RoomSchedule,
        now: DateTime<Utc>,
    ) -> PortResult<Place> {
        self.faults
            .run(Op::JoinRoom, || {
                let mut state = self.state();
                let room = state.rooms.entry(room.to_owned()).or_default();
                if let Some(place) = room.place(username) {
                    return Ok(place);
                }
                if now < schedule.opening {
                    room.drawn.insert((draw, username.to_owned()));
                    room.draws.insert(username.to_owned(), draw);
                    return Ok(Place::Drawn { draw });
                }
                let number = room.arrived.len() as u64 + 1;
                room.arrived.insert(username.to_owned(), number);
                Ok(Place::Arrived { number })
            })
            .await
    }

    async fn admit_from_room(
        &self,
        room: &str,
        username: &str,
        schedule: RoomSchedule,
        now: DateTime<Utc>,
    ) -> PortResult<RoomAdmission> {
        self.faults
            .run(Op::AdmitFromRoom, || {
                let mut state = self.state();
                let room = state.rooms.entry(room.to_owned()).or_default();
                if room.admitted.contains(username) {
                    return Ok(RoomAdmission::Admitted);
                }
                let Some(place) = room.place(username) else {
                    return Ok(RoomAdmission::NoPlace);
                };
                let position = room.position(place, username);
                let admitted = room.admitted.len() as u64;
                let called = schedule.calls(now, admitted);
                if position >= called {
                    return Ok(RoomAdmission::Waiting {
                        ahead: position - called,
                    });
                }
                if admitted >= schedule.scheduled(now) {
                    return Ok(RoomAdmission::Waiting { ahead: 0 });
                }
                room.admitted.insert(username.to_owned());
                Ok(RoomAdmission::Admitted)
            })
            .await
    }

    async fn room_line(&self, room: &str, schedule: RoomSchedule, now: DateTime<Utc>) -> PortResult<RoomLine> {
        self.faults
            .run(Op::RoomLine, || {
                let state = self.state();
                let Some(room) = state.rooms.get(room) else {
                    return Ok(RoomLine {
                        called: schedule.calls(now, 0),
                        ..RoomLine::default()
                    });
                };
                let (draws, arrivals) = (room.drawn.len() as u64, room.arrived.len() as u64);
                let admitted = room.admitted.len() as u64;
                let called = schedule.calls(now, admitted);
                let last_called = usize::try_from(called.min(draws)).unwrap_or(usize::MAX);
                Ok(RoomLine {
                    draws,
                    arrivals,
                    admitted,
                    called,
                    last_called_draw: last_called
                        .checked_sub(1)
                        .and_then(|last| room.drawn.iter().nth(last))
                        .map(|(draw, _)| *draw),
                    arrivals_called: called.saturating_sub(draws).min(arrivals),
                })
            })
            .await
    }
}
