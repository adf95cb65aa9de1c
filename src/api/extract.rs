//! Request extractors that fail with the API's error shape: a JSON body (415 without a JSON
//! content type, 413 over the body limit, 400 when it does not parse) and list queries
//! (`limit`, `cursor`, `status`; 422 naming the parameter).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::error::ApiError;
use crate::store::PageRequest;

/// Largest JSON body: 10,000 E.164 numbers take about 170 KB.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// Largest audio upload.
pub const AUDIO_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Page sizes.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;

/// `application/json` or any `+json` type, parameters ignored.
pub fn is_json(headers: &HeaderMap) -> bool {
    content_type(headers).is_some_and(|ct| ct == "application/json" || ct.ends_with("+json"))
}

/// The media type of the request, lower case, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next()?.trim().to_ascii_lowercase())
}

/// Reads the body within the route's limit; 413 past it.
pub async fn body_bytes(req: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is over the size limit",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", rej.body_text())
        }
    })
}

/// A JSON body as a `serde_json::Value`; the handler validates fields and names them.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = body_bytes(req).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))
    }
}

/// Query parameters of list endpoints.
pub struct ListQuery {
    pub page: PageRequest,
    pub status: Option<String>,
    pub state: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
        let limit = match map.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LIMIT}"),
                    ));
                }
            },
        };
        let after = match map.get("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => match c.parse::<i64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(ApiError::invalid(
                        "cursor",
                        "must be a nextCursor value from a previous page",
                    ));
                }
            },
        };
        Ok(ListQuery {
            page: PageRequest { limit, after },
            status: map.get("status").cloned(),
            state: map.get("state").cloned(),
        })
    }
}
