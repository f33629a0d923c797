//! Instants as RFC 3339 UTC with fixed millisecond precision
//! (`2026-11-23T12:00:00.000Z`). Fixed width makes the strings sort in time
//! order, which DynamoDB sort keys and range conditions rely on.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Accepts any RFC 3339 offset and normalises it to UTC.
pub fn parse(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(t))
}

fn parse_field<E: serde::de::Error>(s: &str) -> Result<DateTime<Utc>, E> {
    parse(s).map_err(|e| E::custom(format!("`{s}` is not an RFC 3339 instant: {e}")))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    parse_field(&String::deserialize(d)?)
}

/// The same for optional instants (`#[serde(with = "ts::option", default)]`).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?.map(|s| parse_field(&s)).transpose()
    }
}

/// Milliseconds since the epoch, the unit the Lua scripts compare in.
pub fn millis(t: &DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
