//! The rules every input is checked by: lengths, ranges, ids, names,
//! windows, and money with checked arithmetic. Each domain flow checks its
//! forms with these, so a rule (and its message) is written once.

use std::ops::RangeInclusive;

use chrono::{DateTime, Duration, Utc};

use crate::{
    error::{Error, invalid},
    model::Guard,
};

/// The largest amount of money anywhere in the system: ¥100,000,000 in cents.
pub const MAX_CENTS: i64 = 10_000_000_000;

/// The longest a sale or a campaign may last.
pub const MAX_WINDOW_DAYS: i64 = 366;

/// The longest a shopper may be given to pay for a held unit.
pub const MAX_PAY_TIMEOUT_SECONDS: i64 = 86_400;

/// `value`, trimmed, is `chars` characters long.
pub fn length(field: &str, value: &str, chars: RangeInclusive<usize>) -> Result<(), Error> {
    if chars.contains(&value.trim().chars().count()) {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{field}` must be {}-{} characters",
            chars.start(),
            chars.end()
        )))
    }
}

/// An optional text of at most `max` characters.
pub fn optional_length(field: &str, value: Option<&str>, max: usize) -> Result<(), Error> {
    match value {
        Some(v) if v.chars().count() > max => Err(invalid(format!("`{field}` must be at most {max} characters"))),
        _ => Ok(()),
    }
}

pub fn range(field: &str, value: i64, allowed: RangeInclusive<i64>) -> Result<(), Error> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{field}` must be between {} and {}",
            allowed.start(),
            allowed.end()
        )))
    }
}

/// The seed's `"0"` / `"1"` flags (`is_show`, `is_default`, …).
pub fn flag(field: &str, value: &str) -> Result<(), Error> {
    match value {
        "0" | "1" => Ok(()),
        _ => Err(invalid(format!("`{field}` must be \"0\" or \"1\""))),
    }
}

/// Ids are ULIDs, operator-chosen codes or login names. Anything outside
/// `[A-Za-z0-9_.-]{1,64}` cannot exist, and must never reach a Redis key,
/// where a brace would break the hash tag.
pub fn is_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// An id an operator chooses (`PUT /admin/…/{id}`).
pub fn id(id: &str) -> Result<(), Error> {
    if is_id(id) {
        Ok(())
    } else {
        Err(invalid("ids are 1-64 characters of letters, digits, `_`, `.` or `-`"))
    }
}

/// Usernames and login names: they end up in Redis keys and URLs, so they
/// keep to a safe alphabet.
pub fn account_name(field: &str, value: &str) -> Result<(), Error> {
    let ok_len = (3..=50).contains(&value.chars().count());
    let ok_chars = value.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{field}` must be 3-50 characters of letters, digits, `_`, `.` or `-`"
        )))
    }
}

/// A password given to sign in: any the account may have been given
/// (the first operator's comes from the deployment), but not none, nor
/// a book for the hasher to chew on.
pub fn offered_password(password: &str) -> Result<(), Error> {
    length("password", password, 1..=128)
}

pub fn password(password: &str) -> Result<(), Error> {
    if (8..=128).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(invalid("`password` must be 8-128 characters"))
    }
}

/// A window that ends after it begins and lasts at most `max_days`.
pub fn window(
    (begin_field, begin): (&str, DateTime<Utc>),
    (end_field, end): (&str, DateTime<Utc>),
    max_days: i64,
) -> Result<(), Error> {
    if end <= begin {
        return Err(invalid(format!("`{end_field}` must be after `{begin_field}`")));
    }
    if end - begin > Duration::days(max_days) {
        return Err(invalid(format!("it may last at most {max_days} days")));
    }
    Ok(())
}

/// A duration in hours within `0..=max`, rounded to the thousandth of an
/// hour (a float DynamoDB stores as given, never a subnormal it refuses).
pub fn hours(field: &str, value: &mut Option<f64>, max: f64) -> Result<(), Error> {
    if let Some(hours) = value {
        if !(0.0..=max).contains(hours) {
            return Err(invalid(format!("`{field}` must be between 0 and {max} hours")));
        }
        *hours = (*hours * 1000.0).round() / 1000.0;
    }
    Ok(())
}

/// The most work a challenge may ask: 2^24 hashes on average, seconds
/// for a script and longer for a phone's browser.
pub const MAX_DIFFICULTY: u8 = 24;

/// The most places a waiting room calls a second: each admission is one
/// script on the room's master, which takes tens of thousands a second.
pub const MAX_ROOM_RATE: u32 = 100_000;

/// A sale's guard: a difficulty a client can pay, an age in hours of at
/// most ten years, a waiting room's rate one master can keep.
pub fn guard(guard: &Guard) -> Result<(), Error> {
    range(
        "guard.challenge_difficulty",
        i64::from(guard.challenge_difficulty),
        0..=i64::from(MAX_DIFFICULTY),
    )?;
    range(
        "guard.min_account_age_hours",
        i64::from(guard.min_account_age_hours),
        0..=87_600,
    )?;
    range(
        "guard.waiting_room_rate",
        i64::from(guard.waiting_room_rate),
        0..=i64::from(MAX_ROOM_RATE),
    )
}

/// `each × count` cents, refused rather than wrapped if it overflows.
pub fn cents_times(field: &str, each: i64, count: u32) -> Result<i64, Error> {
    each.checked_mul(i64::from(count))
        .ok_or_else(|| invalid(format!("`{field}` × count is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_to_the_safe_alphabet() {
        assert!(is_id("01JD3S6Y0000000000000000AB"));
        assert!(is_id("acme.phone-5_x"));
        for bad in ["", "a{b}", "a b", "a/b", &"x".repeat(65)] {
            assert!(!is_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn money_multiplication_never_wraps() {
        assert_eq!(cents_times("min_amount", 3, 4).unwrap(), 12);
        assert!(matches!(
            cents_times("min_amount", i64::MAX / 2, 3),
            Err(Error::Validation(_))
        ));
    }

    #[test]
    fn lengths_count_characters_not_bytes_and_ignore_padding() {
        assert!(length("name", "  红包  ", 1..=2).is_ok());
        assert!(length("name", "   ", 1..=2).is_err());
        assert!(optional_length("alias", Some("红包雨"), 3).is_ok());
        assert!(optional_length("alias", Some("红包雨!"), 3).is_err());
    }
}
