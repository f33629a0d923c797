//! Listing cursors, all made here: URL-safe base64 of JSON. Only a cursor
//! this API issued for the very listing it is given back to is accepted;
//! anything else would reach DynamoDB as a malformed key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Serialize, de::DeserializeOwned};

use crate::ports::{PortError, PortResult};

pub(super) fn encode<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).expect("a cursor position serialises"))
}

pub(super) fn decode<T: DeserializeOwned>(cursor: &str) -> PortResult<T> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| PortError::InvalidCursor)?;
    serde_json::from_slice(&bytes).map_err(|_| PortError::InvalidCursor)
}

/// A `LastEvaluatedKey` as plain strings (every key attribute here is one).
pub(super) type KeyStrings = HashMap<String, String>;

pub(super) fn key_strings(key: HashMap<String, AttributeValue>) -> KeyStrings {
    key.into_iter()
        .filter_map(|(name, value)| value.as_s().ok().map(|s| (name, s.clone())))
        .collect()
}

pub(super) fn key_values(key: KeyStrings) -> HashMap<String, AttributeValue> {
    key.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect()
}

/// `key` holds exactly the attributes `names`, and `pinned` ones (the
/// caller's own partition) with the values the query uses.
pub(super) fn key_fits(key: &KeyStrings, names: &[&str], pinned: &[(&str, &str)]) -> bool {
    key.len() == names.len()
        && names.iter().all(|k| key.contains_key(*k))
        && pinned
            .iter()
            .all(|(k, v)| key.get(*k).is_some_and(|actual| actual == v))
}

/// The cursor of the page after the one that ended at `last_key`.
pub(super) fn of_last_key(last_key: Option<HashMap<String, AttributeValue>>) -> Option<String> {
    last_key.map(|key| encode(&key_strings(key)))
}

/// The start key a cursor of [`of_last_key`] stands for.
pub(super) fn start_key(
    cursor: &str,
    names: &[&str],
    pinned: &[(&str, &str)],
) -> PortResult<HashMap<String, AttributeValue>> {
    let key: KeyStrings = decode(cursor)?;
    if !key_fits(&key, names, pinned) {
        return Err(PortError::InvalidCursor);
    }
    Ok(key_values(key))
}
