//! Fetching and preparing `voicemailAudioUrl` and `identificationAudioUrl`: the
//! [`VoicemailLibrary`] turns a URL into a shared, pre-encoded [`Prompt`] once per campaign,
//! before the first dial, and hands it to every call without I/O.
//!
//! Owns the HTTP(S) client, the cache of prepared prompts keyed by URL and its revalidation
//! (ETag / Last-Modified; a 304 reuses the prompt without decoding again), and reading the
//! API's own assets from the store. The decisions are pure and live elsewhere: which hosts and
//! addresses may be fetched in [`crate::egress`], what the bytes are in
//! [`crate::audio::sniff`], decoding and conditioning in [`crate::audio::prompt`]. It must not
//! be used on the call path: [`VoicemailLibrary::get`] is the only method calls may use.
//!
//! How a fetch stays inside the policy:
//! - Only `http` and `https`; no proxy from the environment (a proxy would make the policy
//!   check the proxy instead of the target); no `Referer` (it would carry query tokens).
//! - A host name is resolved by [`CheckedResolver`], which checks every address of the answer
//!   and hands exactly those addresses to the connector. There is no second lookup between
//!   check and connect, so DNS rebinding cannot swap in an internal address. An IP literal is
//!   checked before the request (the connector does not resolve literals).
//! - Each redirect target is checked again (scheme, allow-list, literal address) by the
//!   redirect policy, its name by the resolver; at most [`MAX_REDIRECTS`] are followed.
//! - The body is read chunk by chunk and refused as soon as it passes `max_bytes` (a larger
//!   Content-Length is refused before reading; a Content-Length that understates the body does
//!   not matter, the client never reads past it). The whole fetch has one deadline.
//! - URLs in errors and logs go through [`redact_url`]: no credentials, no query values.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, RwLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    CONTENT_TYPE, ETAG, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::{StatusCode, Url, redirect};

use crate::audio::prompt::{Prompt, PromptError, PromptOptions, decode_bytes};
use crate::audio::sniff::{AudioKind, sniff};
use crate::config::Config;
use crate::egress::{EgressError, EgressPolicy, LocalOrigins, redact_url};
use crate::store::{Store, StoreError};

/// Most redirects followed for one fetch.
pub const MAX_REDIRECTS: usize = 5;
/// Longest ETag or Last-Modified kept for revalidation; longer ones are not used.
const MAX_VALIDATOR_BYTES: usize = 1024;
/// Longest Content-Type quoted in a "not audio" error.
const MAX_CONTENT_TYPE_CHARS: usize = 100;

/// How URLs are fetched and prompts prepared.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// `voicemail_max_bytes`.
    pub max_bytes: u64,
    /// `fetch_connect_timeout`.
    pub connect_timeout: Duration,
    /// `fetch_timeout`: the whole fetch (lookup, redirects, body), not decoding.
    pub timeout: Duration,
    pub max_redirects: usize,
    /// `fetch_allow_hosts` and `fetch_allow_private`.
    pub policy: EgressPolicy,
    /// `public_base_url` and `api_addr`: URLs under them are this server's assets.
    pub origins: LocalOrigins,
    pub prompt: PromptOptions,
}

impl FetchConfig {
    pub fn from_config(config: &Config) -> FetchConfig {
        FetchConfig {
            max_bytes: config.voicemail_max_bytes,
            connect_timeout: Duration::from_secs(u64::from(config.fetch_connect_timeout_s)),
            timeout: Duration::from_secs(u64::from(config.fetch_timeout_s)),
            max_redirects: MAX_REDIRECTS,
            policy: EgressPolicy {
                allow_hosts: config.fetch_allow_hosts.clone(),
                allow_private: config.fetch_allow_private,
            },
            origins: LocalOrigins {
                public_base: config.public_base_url.clone(),
                listen: config.api_addr,
            },
            prompt: PromptOptions::default(),
        }
    }
}

impl Default for FetchConfig {
    /// The configuration defaults (API on 127.0.0.1:8080, no public base URL).
    fn default() -> Self {
        FetchConfig {
            max_bytes: 20_000_000,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_redirects: MAX_REDIRECTS,
            policy: EgressPolicy::default(),
            origins: LocalOrigins {
                public_base: None,
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            },
            prompt: PromptOptions::default(),
        }
    }
}

/// Why a URL could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum FetchFailure {
    #[error("not a valid URL ({reason})")]
    InvalidUrl { reason: String },
    #[error("{0}")]
    Refused(EgressError),
    #[error("{host}: {error}")]
    RefusedHost { host: String, error: EgressError },
    #[error("cannot resolve {host}: {reason}")]
    Lookup { host: String, reason: String },
    #[error("redirect to {target} refused: {error}")]
    RedirectRefused { target: String, error: EgressError },
    #[error("too many redirects (more than {max})")]
    TooManyRedirects { max: usize },
    #[error("connection timed out after {} s", secs(*.after))]
    ConnectTimeout { after: Duration },
    #[error("timed out after {} s", secs(*.after))]
    TimedOut { after: Duration },
    #[error("cannot connect: {reason}")]
    Connect { reason: String },
    #[error("HTTP error: {reason}")]
    Http { reason: String },
    #[error("HTTP status {}", status_text(*.status))]
    Status { status: StatusCode },
    #[error("larger than {limit} bytes{}", declared.map(|n| format!(" (Content-Length {n})")).unwrap_or_default())]
    TooLarge { limit: u64, declared: Option<u64> },
    #[error("not audio (sniffed: {sniffed}{})", content_type.as_ref().map(|c| format!("; Content-Type {c}")).unwrap_or_default())]
    NotAudio {
        sniffed: String,
        content_type: Option<String>,
    },
    #[error("{0}")]
    Decode(#[source] PromptError),
    #[error("no audio asset {id} on this server")]
    AssetNotFound { id: String },
    #[error("cannot read audio asset {id}: {reason}")]
    Store { id: String, reason: String },
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

/// A URL that could not be prepared: the URL (redacted) and why.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct FetchError {
    /// The URL as it may be shown: no credentials, no query values.
    pub url: String,
    #[source]
    pub reason: FetchFailure,
}

/// Building the HTTP client failed (a TLS set-up problem of the host).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.3}").trim_end_matches('0').to_string()
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// What the resolver or the redirect policy refused, carried through reqwest's error chain.
#[derive(Debug, thiserror::Error)]
enum HopRefusal {
    #[error("{host}: {error}")]
    Host { host: String, error: EgressError },
    #[error("cannot resolve {host}: {reason}")]
    Lookup { host: String, reason: String },
    #[error("redirect to {target} refused: {error}")]
    Redirect { target: String, error: EgressError },
    #[error("too many redirects (more than {max})")]
    TooManyRedirects { max: usize },
}

/// Resolves host names and lets through only answers whose every address passes the policy;
/// the connector then connects to exactly these addresses.
struct CheckedResolver {
    policy: EgressPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            let refuse = |error| -> Box<dyn StdError + Send + Sync> {
                Box::new(HopRefusal::Host {
                    host: host.clone(),
                    error,
                })
            };
            policy.check_host(&host).map_err(refuse)?;
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| HopRefusal::Lookup {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(HopRefusal::Lookup {
                    host: host.clone(),
                    reason: "no addresses".into(),
                }) as Box<dyn StdError + Send + Sync>);
            }
            policy.check_all(&addrs).map_err(refuse)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

static CRYPTO_PROVIDER: Once = Once::new();

/// Installs rustls' ring provider once per process; another provider already installed (by
/// another part of the process) is fine too.
pub fn ensure_crypto_provider() {
    CRYPTO_PROVIDER.call_once(|| {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The HTTP client every fetch uses: no proxy, no automatic redirects beyond the checked
/// policy, the checked resolver, the connect timeout.
fn build_client(config: &FetchConfig) -> Result<reqwest::Client, ClientError> {
    ensure_crypto_provider();
    let policy = config.policy.clone();
    let max = config.max_redirects;
    let redirects = redirect::Policy::custom(move |attempt| {
        // `previous` holds the first URL and every target followed so far.
        if attempt.previous().len() > max {
            return attempt.error(HopRefusal::TooManyRedirects { max });
        }
        match policy.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(error) => {
                let target = redact_url(attempt.url().as_str());
                attempt.error(HopRefusal::Redirect { target, error })
            }
        }
    });
    reqwest::Client::builder()
        .no_proxy()
        .referer(false)
        .redirect(redirects)
        .dns_resolver(Arc::new(CheckedResolver {
            policy: config.policy.clone(),
        }))
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.timeout)
        .user_agent(concat!("trunx/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError(error_chain(&e)))
}

/// The checked client for other outgoing requests (webhooks): the same resolver, redirect
/// policy and timeouts as the audio fetches.
pub(crate) fn checked_client(config: &FetchConfig) -> Result<reqwest::Client, ClientError> {
    build_client(config)
}

/// What the egress policy refused in a failed request (a host, an address or a redirect), if
/// that is why it failed, as one line.
pub(crate) fn refusal(e: &(dyn StdError + 'static)) -> Option<String> {
    find_in_chain::<HopRefusal>(e).map(ToString::to_string)
}

/// An error and its causes as one line, with reqwest's URL left out (it may hold secrets).
pub(crate) fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(e);
    while let Some(err) = current {
        let text = match err.downcast_ref::<reqwest::Error>() {
            Some(r) if r.url().is_some() => {
                // reqwest's own text names the URL; its kind is enough here.
                if r.is_connect() {
                    "connect error".to_string()
                } else if r.is_body() {
                    "body error".to_string()
                } else if r.is_request() {
                    "request error".to_string()
                } else {
                    "error".to_string()
                }
            }
            _ => err.to_string(),
        };
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

fn find_in_chain<'a, E: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// Validators of a fetched response; both `None` for local assets (their bytes never change).
#[derive(Clone, Debug, Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

#[derive(Clone, Debug)]
struct Prepared {
    prompt: Arc<Prompt>,
    validators: Validators,
}

/// What the library has done, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LibraryCounters {
    /// HTTP requests sent (redirects inside one request not counted).
    pub requests: u64,
    /// Revalidations answered 304 (the prepared prompt was reused).
    pub not_modified: u64,
    /// Files decoded (successful or not).
    pub decodes: u64,
    /// Asset files read from the store.
    pub asset_reads: u64,
}

#[derive(Default)]
struct AtomicCounters {
    requests: AtomicU64,
    not_modified: AtomicU64,
    decodes: AtomicU64,
    asset_reads: AtomicU64,
}

/// Prepared voicemail prompts by URL, shared (in an `Arc`) by the API, which prepares them at
/// campaign start, and the dialer, which reads them with [`VoicemailLibrary::get`].
///
/// The cache is a map of immutable `Arc<Prompt>` behind a `RwLock` held only to clone or
/// insert an entry (never across I/O), not protocol state. Entries stay until
/// [`VoicemailLibrary::forget`]; each is bounded by `max_bytes` and the prompt length limit.
pub struct VoicemailLibrary {
    config: FetchConfig,
    client: reqwest::Client,
    store: Arc<dyn Store>,
    prepared: RwLock<HashMap<String, Prepared>>,
    /// One lock per URL being prepared, so two campaigns starting with the same URL fetch and
    /// decode it once.
    in_progress: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    counters: AtomicCounters,
}

impl std::fmt::Debug for VoicemailLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoicemailLibrary")
            .field("config", &self.config)
            .field("prepared", &self.len())
            .finish()
    }
}

impl VoicemailLibrary {
    pub fn new(
        config: FetchConfig,
        store: Arc<dyn Store>,
    ) -> Result<VoicemailLibrary, ClientError> {
        Ok(VoicemailLibrary {
            client: build_client(&config)?,
            config,
            store,
            prepared: RwLock::new(HashMap::new()),
            in_progress: Mutex::new(HashMap::new()),
            counters: AtomicCounters::default(),
        })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// The prepared prompt of `url`, if [`VoicemailLibrary::prepare`] succeeded for it. No I/O:
    /// this is what a call uses.
    pub fn get(&self, url: &str) -> Option<Arc<Prompt>> {
        self.read_cache().get(url).map(|p| p.prompt.clone())
    }

    /// Drops the prompt of `url` (when no campaign uses it any more).
    pub fn forget(&self, url: &str) {
        self.write_cache().remove(url);
    }

    /// How many URLs have a prepared prompt.
    pub fn len(&self) -> usize {
        self.read_cache().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn counters(&self) -> LibraryCounters {
        let c = &self.counters;
        LibraryCounters {
            requests: c.requests.load(Ordering::Relaxed),
            not_modified: c.not_modified.load(Ordering::Relaxed),
            decodes: c.decodes.load(Ordering::Relaxed),
            asset_reads: c.asset_reads.load(Ordering::Relaxed),
        }
    }

    /// Fetches (or revalidates) and prepares `url`: this server's assets from the store, any
    /// other http(s) URL over the network within the policy. A cached prompt is reused when the
    /// server answers 304 or the URL is an asset; a changed file is decoded again. Every
    /// failure names the (redacted) URL and the reason.
    pub async fn prepare(&self, url: &str) -> Result<Arc<Prompt>, FetchError> {
        let shown = redact_url(url);
        let lock = self.url_lock(url);
        let result = {
            let _one_at_a_time = lock.lock().await;
            match self.config.origins.asset_id(url) {
                Some(id) => self.prepare_asset(url, &id).await,
                None => self.prepare_remote(url, &shown).await,
            }
        };
        self.release_url_lock(url, lock);
        result.map_err(|reason| FetchError { url: shown, reason })
    }

    fn url_lock(&self, url: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .in_progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(url.to_string()).or_default().clone()
    }

    fn release_url_lock(&self, url: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self
            .in_progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The map's copy and ours: nobody else waits for this URL.
        if Arc::strong_count(&lock) <= 2 {
            locks.remove(url);
        }
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Prepared>> {
        self.prepared
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Prepared>> {
        self.prepared
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn prepare_asset(&self, url: &str, id: &str) -> Result<Arc<Prompt>, FetchFailure> {
        if let Some(prompt) = self.get(url) {
            return Ok(prompt);
        }
        self.counters.asset_reads.fetch_add(1, Ordering::Relaxed);
        let store = self.store.clone();
        let asset_id = id.to_string();
        let read = tokio::task::spawn_blocking(move || store.get_audio_file(&asset_id))
            .await
            .map_err(|e| FetchFailure::Internal {
                reason: e.to_string(),
            })?;
        let bytes = match read {
            Ok((_, bytes)) => bytes,
            Err(StoreError::NotFound { .. }) => {
                return Err(FetchFailure::AssetNotFound { id: id.to_string() });
            }
            Err(e) => {
                return Err(FetchFailure::Store {
                    id: id.to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let prompt = self.decode(bytes, None).await?;
        self.write_cache().insert(
            url.to_string(),
            Prepared {
                prompt: prompt.clone(),
                validators: Validators::default(),
            },
        );
        Ok(prompt)
    }

    async fn prepare_remote(&self, url: &str, shown: &str) -> Result<Arc<Prompt>, FetchFailure> {
        let parsed = Url::parse(url).map_err(|e| FetchFailure::InvalidUrl {
            reason: e.to_string(),
        })?;
        self.config
            .policy
            .check_url(&parsed)
            .map_err(FetchFailure::Refused)?;
        let cached = self.read_cache().get(url).cloned();
        let fetched =
            tokio::time::timeout(self.config.timeout, self.fetch(parsed, cached.as_ref()))
                .await
                .map_err(|_| FetchFailure::TimedOut {
                    after: self.config.timeout,
                })??;
        let (bytes, validators, content_type) = match fetched {
            Fetched::NotModified => {
                if let Some(cached) = cached {
                    self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(url = %shown, "voicemail audio not modified");
                    return Ok(cached.prompt);
                }
                return Err(FetchFailure::Status {
                    status: StatusCode::NOT_MODIFIED,
                });
            }
            Fetched::Body {
                bytes,
                validators,
                content_type,
            } => (bytes, validators, content_type),
        };
        let prompt = self.decode(bytes, content_type).await?;
        self.write_cache().insert(
            url.to_string(),
            Prepared {
                prompt: prompt.clone(),
                validators,
            },
        );
        Ok(prompt)
    }

    /// One GET (with its redirects), conditional when a prompt is cached.
    async fn fetch(&self, url: Url, cached: Option<&Prepared>) -> Result<Fetched, FetchFailure> {
        let mut request = self.client.get(url);
        if let Some(cached) = cached {
            if let Some(etag) = &cached.validators.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(date) = &cached.validators.last_modified {
                request = request.header(IF_MODIFIED_SINCE, date);
            }
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchFailure::Status { status });
        }
        let limit = self.config.max_bytes;
        if let Some(declared) = response.content_length()
            && declared > limit
        {
            return Err(FetchFailure::TooLarge {
                limit,
                declared: Some(declared),
            });
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .filter(|v| v.len() <= MAX_VALIDATOR_BYTES)
                .map(str::to_string)
        };
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let content_type =
            header(CONTENT_TYPE).map(|c| c.chars().take(MAX_CONTENT_TYPE_CHARS).collect());
        let capacity = response.content_length().unwrap_or(64 * 1024).min(limit);
        let mut bytes = Vec::with_capacity(capacity as usize);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(FetchFailure::TooLarge {
                    limit,
                    declared: None,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body {
            bytes,
            validators,
            content_type,
        })
    }

    /// Sniffs and decodes on the blocking pool.
    async fn decode(
        &self,
        bytes: Vec<u8>,
        content_type: Option<String>,
    ) -> Result<Arc<Prompt>, FetchFailure> {
        let kind: AudioKind = sniff(&bytes).map_err(|e| FetchFailure::NotAudio {
            sniffed: e.sniffed,
            content_type,
        })?;
        self.counters.decodes.fetch_add(1, Ordering::Relaxed);
        let options = self.config.prompt.clone();
        tokio::task::spawn_blocking(move || {
            let what = format!("{kind} audio");
            let decoded = decode_bytes(&what, bytes, Some(kind.extension()), options.max_seconds)?;
            Prompt::from_decoded(&what, &decoded, &options)
        })
        .await
        .map_err(|e| FetchFailure::Internal {
            reason: e.to_string(),
        })?
        .map(Arc::new)
        .map_err(FetchFailure::Decode)
    }

    /// Maps a transport error to the reason an operator can act on.
    fn transport(&self, e: &reqwest::Error) -> FetchFailure {
        if let Some(refusal) = find_in_chain::<HopRefusal>(e) {
            return match refusal {
                HopRefusal::Host { host, error } => FetchFailure::RefusedHost {
                    host: host.clone(),
                    error: error.clone(),
                },
                HopRefusal::Lookup { host, reason } => FetchFailure::Lookup {
                    host: host.clone(),
                    reason: reason.clone(),
                },
                HopRefusal::Redirect { target, error } => FetchFailure::RedirectRefused {
                    target: target.clone(),
                    error: error.clone(),
                },
                HopRefusal::TooManyRedirects { max } => {
                    FetchFailure::TooManyRedirects { max: *max }
                }
            };
        }
        if e.is_timeout() && e.is_connect() {
            return FetchFailure::ConnectTimeout {
                after: self.config.connect_timeout,
            };
        }
        if e.is_timeout() {
            return FetchFailure::TimedOut {
                after: self.config.timeout,
            };
        }
        let reason = error_chain(e);
        if e.is_connect() {
            FetchFailure::Connect { reason }
        } else {
            FetchFailure::Http { reason }
        }
    }
}

enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        validators: Validators,
        content_type: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_well() {
        let e = FetchError {
            url: "https://cdn.example.com/a.mp3".into(),
            reason: FetchFailure::Status {
                status: StatusCode::NOT_FOUND,
            },
        };
        assert_eq!(
            e.to_string(),
            "https://cdn.example.com/a.mp3: HTTP status 404 Not Found"
        );
        let cases: [(FetchFailure, &str); 5] = [
            (
                FetchFailure::TimedOut {
                    after: Duration::from_millis(1500),
                },
                "timed out after 1.5 s",
            ),
            (
                FetchFailure::ConnectTimeout {
                    after: Duration::from_secs(5),
                },
                "connection timed out after 5 s",
            ),
            (
                FetchFailure::TooLarge {
                    limit: 100,
                    declared: Some(500),
                },
                "larger than 100 bytes (Content-Length 500)",
            ),
            (
                FetchFailure::NotAudio {
                    sniffed: "html".into(),
                    content_type: Some("text/html".into()),
                },
                "not audio (sniffed: html; Content-Type text/html)",
            ),
            (
                FetchFailure::TooManyRedirects { max: 5 },
                "too many redirects (more than 5)",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }
}
