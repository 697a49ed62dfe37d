//! The layers, merged with the `config` crate: built-in defaults < optional file <
//! `{PREFIX}SECTION__KEY` variables < the platform's variables. Records where each key's
//! value came from, and reports unknown keys and secrets written in files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use config::builder::DefaultState;
use config::{Config, ConfigBuilder, File, FileFormat, Map, Value, ValueKind};

use super::{Env, Error, Problem, Source};

/// What a program's configuration is made of.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The built-in defaults (TOML): one entry per key the program understands; any other
    /// key is reported as unknown.
    pub defaults: &'static str,
    /// Prefix of the program's own environment variables (`MCP_OBO__` for
    /// `MCP_OBO__SERVER__LISTEN`).
    pub env_prefix: &'static str,
    /// Keys holding lists; from the environment they are comma-separated.
    pub list_keys: &'static [&'static str],
}

/// One section's keys and values.
pub type Table = Map<String, Value>;

/// The merged layers, per section.
pub struct Layers {
    /// Section name → its merged keys (unknown keys left out: they are reported).
    pub tables: BTreeMap<String, Table>,
    /// Section name → the built-in defaults.
    pub defaults: BTreeMap<String, Table>,
    /// Every known key (`section.key`) → where its value came from.
    pub sources: BTreeMap<String, Source>,
    /// Unknown keys, secrets in files.
    pub problems: Vec<Problem>,
}

impl Layers {
    /// Merges the layers: `schema`'s defaults < `file` < `env`'s prefixed variables <
    /// `platform`, the values the program maps from its platform's variables, each given
    /// as (key, variable name, value).
    ///
    /// # Errors
    /// [`Error::Read`] when the defaults or the file cannot be read or parsed.
    pub fn merge(
        schema: &Schema,
        file: Option<&Path>,
        env: &Env,
        platform: Vec<(&'static str, &'static str, String)>,
    ) -> Result<Self, Error> {
        let defaults = Config::builder()
            .add_source(File::from_str(schema.defaults, FileFormat::Toml))
            .build()
            .map_err(|e| Error::Read(format!("built-in defaults: {e}")))?;
        let known: BTreeSet<String> = flatten_keys(&defaults).into_iter().collect();

        let mut sources: BTreeMap<String, Source> =
            known.iter().map(|k| (k.clone(), Source::Default)).collect();
        let mut problems = Vec::new();
        let mut builder =
            Config::builder().add_source(File::from_str(schema.defaults, FileFormat::Toml));

        if let Some(path) = file {
            let from_file = Config::builder()
                .add_source(File::from(path).required(true))
                .build()
                .map_err(|e| Error::Read(format!("{}: {e}", path.display())))?;
            for key in flatten_keys(&from_file) {
                if is_secret(&key) {
                    problems.push(Problem::new(
                    &key,
                    format!(
                        "secrets are not read from configuration files ({}); set the environment variable {} or point {key}_file at a file outside the repository",
                        path.display(),
                        env_name(schema.env_prefix, &key),
                    ),
                ));
                } else if known.contains(&key) {
                    sources.insert(key, Source::File(path.to_path_buf()));
                } else {
                    problems.push(unknown_key(&key, &format!("file {}", path.display())));
                }
            }
            builder = builder.add_source(File::from(path).required(true));
        }

        for (name, value) in env {
            let Some(rest) = name.strip_prefix(schema.env_prefix) else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            if !known.contains(&key) {
                problems.push(unknown_key(&key, &format!("env {name}")));
                continue;
            }
            builder = set(schema, builder, &key, value);
            sources.insert(key, Source::Env(name.clone()));
        }

        for (key, name, value) in platform {
            builder = set(schema, builder, key, &value);
            sources.insert(key.to_owned(), Source::Env(name.to_owned()));
        }

        let merged = builder
            .build()
            .map_err(|e| Error::Read(format!("merging layers: {e}")))?;
        let defaults = sections(&defaults, &known);
        let tables = sections(&merged, &known);
        Ok(Layers {
            tables,
            defaults,
            sources,
            problems,
        })
    }
}

/// `obo.client_secret` → `MCP_OBO__OBO__CLIENT_SECRET`.
fn env_name(prefix: &str, key: &str) -> String {
    format!("{prefix}{}", key.to_ascii_uppercase().replace('.', "__"))
}

fn unknown_key(key: &str, from: &str) -> Problem {
    Problem::new(
        key,
        format!("unknown key (from {from}); see docs/configuration.md for the keys that exist"),
    )
}

/// Sets `key` from a string; list keys split it on commas.
fn set(
    schema: &Schema,
    builder: ConfigBuilder<DefaultState>,
    key: &str,
    value: &str,
) -> ConfigBuilder<DefaultState> {
    let result = if schema.list_keys.contains(&key) {
        builder.clone().set_override(key, super::de::split(value))
    } else {
        builder.clone().set_override(key, value)
    };
    // set_override only fails for an unparsable key path; every key here comes from the
    // defaults file, so the fallback keeps the previous builder and is never taken.
    result.unwrap_or(builder)
}

/// The known keys of `config`, grouped by section. A table inside a section is a section of
/// its own, named by its path (`obo.shared_cache`), which its owner reads separately.
fn sections(config: &Config, known: &BTreeSet<String>) -> BTreeMap<String, Table> {
    fn walk(
        section: &str,
        keys: Table,
        known: &BTreeSet<String>,
        out: &mut BTreeMap<String, Table>,
    ) {
        for (name, value) in keys {
            let key = format!("{section}.{name}");
            if known.contains(&key) {
                out.entry(section.to_owned())
                    .or_default()
                    .insert(name, value);
            } else if let ValueKind::Table(inner) = value.kind {
                walk(&key, inner, known, out);
            }
        }
    }
    let mut out: BTreeMap<String, Table> = BTreeMap::new();
    for (section, value) in root(config) {
        if let ValueKind::Table(keys) = value.kind {
            walk(&section, keys, known, &mut out);
        }
    }
    out
}

fn root(config: &Config) -> Table {
    config
        .clone()
        .try_deserialize::<Table>()
        .unwrap_or_default()
}

fn flatten_keys(config: &Config) -> Vec<String> {
    fn walk(prefix: &str, table: Table, out: &mut Vec<String>) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            match value.kind {
                ValueKind::Table(inner) => walk(&key, inner, out),
                _ => out.push(key),
            }
        }
    }
    let mut out = Vec::new();
    walk("", root(config), &mut out);
    out
}

/// Keys whose values are never printed (a `*_file` key names where a secret is, and is not
/// one).
pub(super) fn is_secret(key: &str) -> bool {
    let name = key.rsplit('.').next().unwrap_or(key);
    !name.ends_with("_file")
        && (name.ends_with("secret") || name.contains("password") || name.ends_with("private_key"))
}

/// A value as `mcp-obo config` shows it: lists comma-separated.
pub(super) fn display_value(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return String::new();
    };
    match &value.kind {
        ValueKind::Array(items) => items
            .iter()
            .map(|v| display_value(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        _ => value.to_string(),
    }
}
