//! The one error shape of the API: `{"error":{"code","message", ...}}` with extra fields
//! (`field`, `index`, `value`, `status`) where they help the client fix the request.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::campaign::FieldError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// 422 naming the invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
            .with("field", field)
    }

    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer <key>",
        )
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid(e.field, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} {id} not found"),
            ),
            StoreError::WrongStatus { action, current } => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_status",
                format!("cannot {action} a campaign that is {current}"),
            )
            .with("status", current.as_str()),
            StoreError::Prospect(e) => {
                ApiError::new(StatusCode::CONFLICT, "invalid_status", e.to_string())
                    .with("status", e.from.as_str())
            }
            StoreError::Suppressed { .. } => {
                ApiError::new(StatusCode::CONFLICT, "suppressed", e.to_string())
            }
            StoreError::Blocked { reason, .. } => {
                ApiError::new(StatusCode::CONFLICT, reason, e.to_string())
            }
            StoreError::WrongChannel { .. } => {
                ApiError::new(StatusCode::CONFLICT, "wrong_channel", e.to_string())
            }
            StoreError::MessageState { status, .. } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_status", e.to_string())
                    .with("status", status.as_str())
            }
            StoreError::Duplicate { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("code".into(), self.code.into());
        body.insert("message".into(), self.message.into());
        body.extend(self.extra);
        let mut resp = (self.status, axum::Json(json!({ "error": body }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
