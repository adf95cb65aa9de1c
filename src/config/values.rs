//! The public value types of the configuration: where a value came from, the enumerated
//! choices, the never-printed [`Secret`] and how secrets are masked, and [`ConfigError`]. It
//! must not read files or the environment.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("invalid value for {key} (from {source_name}): {value:?}: {reason}")]
    Invalid {
        key: &'static str,
        source_name: String,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("unknown key {key:?} in config file {path}; known keys: {known}")]
    UnknownKey {
        key: String,
        path: String,
        known: String,
    },
}

/// Where an effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File(String),
    Env(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {p}"),
            Source::Env(v) => write!(f, "env {v}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmdProviderKind {
    Builtin,
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Masks a secret; for URLs only the password part is hidden so the target stays visible.
pub fn mask_secret(key: &str, value: &str) -> String {
    if key == "database_url"
        && let Some((scheme, rest)) = value.split_once("://")
    {
        if let Some((userinfo, host)) = rest.rsplit_once('@') {
            let user = userinfo.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:****@{host}");
        }
        return value.to_string();
    }
    "****".to_string()
}
