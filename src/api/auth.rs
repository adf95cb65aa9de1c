//! Bearer API keys: the key format, its SHA-256 (the only form stored) and the middleware that
//! answers 401 without a valid key. Keys are never logged.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;

/// Prefix of every key, so a leaked key is recognisable by secret scanners.
pub const KEY_PREFIX: &str = "trunx_";

/// A new key from 32 random bytes (given by the caller: randomness is injected).
pub fn new_key(random: &[u8; 32]) -> String {
    let mut s = String::with_capacity(KEY_PREFIX.len() + 64);
    s.push_str(KEY_PREFIX);
    for b in random {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: lets the request through only with an active key.
pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = bearer(&req) else {
        return ApiError::unauthorized().into_response();
    };
    let hash = hash_key(token);
    match state.run(move |s| s.authenticate(&hash)).await {
        Ok(Some(_)) => next.run(req).await,
        Ok(None) => ApiError::unauthorized().into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_format_and_hash() {
        let k = new_key(&[0xab; 32]);
        assert_eq!(k.len(), 6 + 64);
        assert!(k.starts_with("trunx_abab"));
        assert_eq!(hash_key(&k), hash_key(&k));
        assert_ne!(hash_key(&k), hash_key("trunx_other"));
    }
}
