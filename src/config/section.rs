//! Reads each section into its module's serde type, reporting every bad key, and tells
//! each key's effective value.
//!
//! Serde stops at the first error in a struct. To still report them all, a section is
//! deserialized, and on an error the failing key (found with `serde_path_to_error`) is
//! reported, replaced by its built-in default, and the section is tried again — at most
//! once per key, since a key already replaced cannot fail again unless its default does.
//! The replaced keys are remembered: later checks about them are dropped, as they would be
//! about the stand-in default rather than the value the user wrote.

use std::collections::{BTreeMap, BTreeSet};

use config::{ConfigError, Value, ValueKind};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use super::layers::{Layers, Table, display_value, is_secret};
use super::{Problem, Source, redact_credentials};

/// The sections being read, and every problem found so far.
pub struct Reader {
    pub layers: Layers,
    /// Keys whose value was bad and replaced by the default.
    failed: BTreeSet<String>,
}

impl Reader {
    pub fn new(layers: Layers) -> Self {
        Self {
            layers,
            failed: BTreeSet::new(),
        }
    }

    /// Section `name` as `T`; `None` only when even its defaults do not deserialize.
    pub fn section<T: DeserializeOwned>(&mut self, name: &str) -> Option<T> {
        let mut table = self.layers.tables.get(name).cloned().unwrap_or_default();
        let empty = Table::new();
        let defaults = self.layers.defaults.get(name).unwrap_or(&empty);
        for _ in 0..=table.len() {
            let value = Value::new(None, ValueKind::Table(table.clone()));
            let error = match serde_path_to_error::deserialize::<_, T>(value) {
                Ok(settings) => return Some(settings),
                Err(error) => error,
            };
            let field = match error.path().iter().next() {
                Some(Segment::Map { key }) => key.clone(),
                _ => String::new(),
            };
            let key = format!("{name}.{field}");
            let message = match inner(error.inner()) {
                // The helpers' messages quote the value and say what is allowed.
                ConfigError::Message(message) => message.clone(),
                other if is_secret(&key) => format!("the value is not valid: {}", reason(other)),
                other => format!(
                    "{:?} is not valid: {}",
                    display_value(table.get(&field)),
                    reason(other)
                ),
            };
            let message = match self.layers.sources.get(&key) {
                Some(source @ (Source::File(_) | Source::Env(_))) => {
                    format!("{message} (from {source})")
                }
                _ => message,
            };
            self.layers.problems.push(Problem::new(&key, message));
            if field.is_empty() || !self.failed.insert(key) {
                return None;
            }
            match defaults.get(&field) {
                Some(default) => table.insert(field, default.clone()),
                None => table.remove(&field),
            };
        }
        None
    }

    /// Records the problems of a later check, leaving out those about replaced keys.
    pub fn check(&mut self, problems: impl IntoIterator<Item = Problem>) {
        let failed = &self.failed;
        self.layers
            .problems
            .extend(problems.into_iter().filter(|p| !failed.contains(&p.key)));
    }

    /// Every problem found.
    pub fn problems(&self) -> &[Problem] {
        &self.layers.problems
    }

    pub fn sources(&self) -> &BTreeMap<String, Source> {
        &self.layers.sources
    }

    /// Each known key's value and its source: `shown(key)` where the program uses another
    /// value than the layered one (derived or normalised), `<redacted>` for secrets, and
    /// passwords in URLs as `***`.
    pub fn effective(
        &self,
        shown: impl Fn(&str) -> Option<String>,
    ) -> BTreeMap<String, (String, Source)> {
        let layers = &self.layers;
        layers
            .sources
            .iter()
            .map(|(key, source)| {
                let value = match shown(key) {
                    Some(value) => value,
                    None if is_secret(key) => "<redacted>".to_owned(),
                    None => {
                        let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
                        display_value(layers.tables.get(section).and_then(|t| t.get(name)))
                    }
                };
                let value = redact_credentials(&value).into_owned();
                (key.clone(), (value, source.clone()))
            })
            .collect()
    }
}

/// The error under the `config` crate's key annotations (the key is named by the problem).
fn inner(error: &ConfigError) -> &ConfigError {
    match error {
        ConfigError::At { error, .. } => inner(error),
        other => other,
    }
}

/// A type error without the `config` crate's key suffix.
fn reason(error: &ConfigError) -> String {
    match error {
        ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("expected {expected}, found {unexpected}"),
        other => other.to_string(),
    }
}
