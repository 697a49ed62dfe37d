//! The configuration machinery, owning no setting: layers merged as built-in defaults <
//! optional file (`--config PATH`) < the program's own prefixed environment variables <
//! the platform's variables, each key's source remembered, sections read into serde types
//! with every problem collected, and the value types and rules sections share.
//!
//! What the keys are, their defaults, which platform variables map onto them and the checks
//! across sections belong to the program (the aggregate in `crate::settings`); each module
//! owns its own section's type and checks. Here:
//!
//! - `layers.rs`: [`Layers`], merged with the `config` crate from a [`Schema`]; reports
//!   unknown keys and secrets written in files;
//! - `section.rs`: [`Reader`], reads each section, reporting every bad key, not only the
//!   first, and the effective value of every key (for `mcp-obo config`);
//! - `de.rs`: the serde helpers the sections use, each error saying what is allowed;
//! - `values.rs`: [`Secret`], [`Problem`] and the URL rules the modules share.
//!
//! This module depends on no other module of the crate.

pub mod de;

mod layers;
mod section;
mod values;

use std::fmt;
use std::path::PathBuf;

pub use layers::{Layers, Schema, Table};
pub use section::Reader;
pub use values::{
    Problem, Secret, https_url, is_guid, is_loopback_authority, is_loopback_url,
    redact_credentials, trim_slash,
};

/// Where a setting's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    /// Derived from another setting (e.g. `public_url` from `listen`).
    Derived(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "env {name}"),
            Self::Derived(from) => write!(f, "derived from {from}"),
        }
    }
}

/// Configuration could not be loaded; every problem found is listed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read configuration: {0}")]
    Read(String),
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// The process environment as a list, so loading is a pure function tests can call.
pub type Env = Vec<(String, String)>;

/// Read the process environment, once, for loading.
pub fn process_env() -> Env {
    std::env::vars().collect()
}

/// `name`'s value in `env`, trimmed, if not blank.
pub fn var(env: &Env, name: &str) -> Option<String> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests;
