//! Serde helpers for the settings sections (`#[serde(deserialize_with = ...)]`).
//!
//! Values from the environment are strings and values from a file may be typed, so every
//! helper reads a scalar as a string (the `config` crate turns numbers and booleans into
//! their text) and parses it itself. Each error message quotes the value and says what is
//! allowed; the loader (`section.rs`) puts the key and where the value came from around it.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use url::Url;

/// A scalar as a trimmed string.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(String::deserialize(d)?.trim().to_owned())
}

/// A scalar parsed by `parse`, whose error is the whole message.
pub fn with<'de, D, T>(d: D, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    parse(&string(d)?).map_err(de::Error::custom)
}

/// Like [`with`], with the empty string meaning "not set".
pub fn optional_with<'de, D, T>(
    d: D,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = string(d)?;
    if raw.is_empty() {
        return Ok(None);
    }
    parse(&raw).map(Some).map_err(de::Error::custom)
}

/// A parser for any `FromStr` type: `"{raw}" is not valid; expected {expected}`.
pub fn expecting<T: FromStr>(expected: &'static str) -> impl Fn(&str) -> Result<T, String> {
    move |raw| {
        raw.parse()
            .map_err(|_| format!("{raw:?} is not valid; expected {expected}"))
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    with(d, |raw| match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{raw:?} is not valid; expected true or false")),
    })
}

/// A duration such as `500ms`, `10s` or `2m` (humantime).
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    with(d, |raw| {
        humantime::parse_duration(raw).map_err(|_| {
            format!("{raw:?} is not valid; expected a duration such as 500ms, 10s or 2m")
        })
    })
}

/// A string, the empty string meaning "not set".
pub fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<String>,
{
    optional_with(d, |raw| Ok(T::from(raw.to_owned())))
}

/// An absolute https URL (plain http for loopback hosts only).
pub fn https_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    with(d, super::https_url)
}

/// [`https_url`], the empty string meaning "not set".
pub fn optional_https_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    optional_with(d, super::https_url)
}

/// A list of strings: a list, or one comma-separated string (from the environment, or
/// written so in a file). Items are trimmed; empty ones are dropped.
pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(ListVisitor(PhantomData))
}

/// [`list`] with each item parsed by `parse`; every bad item is named in the one message.
pub fn list_with<'de, D, T>(
    d: D,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let mut items = Vec::new();
    let mut bad = Vec::new();
    for raw in list(d)? {
        match parse(&raw) {
            Ok(item) => items.push(item),
            Err(message) => bad.push(message),
        }
    }
    if bad.is_empty() {
        Ok(items)
    } else {
        Err(de::Error::custom(bad.join("; ")))
    }
}

/// `parent:child`-style pairs, both sides non-empty.
pub fn pair(raw: &str) -> Option<(String, String)> {
    let (left, right) = raw.split_once(':')?;
    let (left, right) = (left.trim(), right.trim());
    (!left.is_empty() && !right.is_empty()).then(|| (left.to_owned(), right.to_owned()))
}

struct ListVisitor<'de>(PhantomData<&'de ()>);

impl<'de> Visitor<'de> for ListVisitor<'de> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings, or one comma-separated string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(split(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            let item = item.trim();
            if !item.is_empty() {
                out.push(item.to_owned());
            }
        }
        Ok(out)
    }
}

/// Comma-separated items, trimmed, empty ones dropped.
pub fn split(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `a`, `a or b`, `a, b or c`.
pub fn one_of(words: &[&str]) -> String {
    match words.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// For a fieldless enum written as fixed words: `WORDS`, `as_str`, `FromStr` and
/// `Deserialize`, the error listing the allowed words.
macro_rules! words {
    ($ty:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// The words accepted in configuration, in order.
            pub const WORDS: &'static [&'static str] = &[$($word),+];

            /// The value as written in configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(raw: &str) -> Result<Self, String> {
                match raw {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "{raw:?} is not valid; expected {}",
                        $crate::config::de::one_of(Self::WORDS)
                    )),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::config::de::with(d, |raw| raw.parse())
            }
        }
    };
}
pub(crate) use words;
