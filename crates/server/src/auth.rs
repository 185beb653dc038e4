//! Who is calling: an administrator with an API token, or an enrolled host
//! with its credential. Both come as `Authorization: Bearer ...`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use store::{ApiTokenStore, HostAuth, HostStore};

use crate::error::ApiError;
use crate::{secrets, AppState};

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("no Authorization header: send `Authorization: Bearer <token>`")
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))
}

/// An administrator, authenticated by an API token.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    /// The token's identifier, for the log.
    pub(crate) token_id: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = bearer(parts)?;
        match state.store.api_token(&secrets::hash(secret)).await? {
            Some(token) => Ok(Admin { token_id: token.id }),
            None => Err(ApiError::unauthorized("unknown or revoked API token")),
        }
    }
}

/// An enrolled host, authenticated by its credential (`<host id>.<secret>`),
/// and within its request rate.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// The host's identity: every agent route acts on this host only.
    pub(crate) id: String,
}

impl FromRequestParts<AppState> for Host {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = bearer(parts)?;
        let (id, secret) = credential.split_once('.').ok_or_else(|| {
            ApiError::unauthorized("a host credential has the form <host id>.<secret>")
        })?;
        match state.store.authenticate(id, &secrets::hash(secret)).await? {
            HostAuth::Active => {}
            HostAuth::Revoked => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "this host's enrollment was revoked",
                ))
            }
            HostAuth::Unknown => {
                return Err(ApiError::unauthorized("unknown host or wrong credential"))
            }
        }
        if !state.limiter.allow(id, (state.clock)()) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "host {id} sends more than {} requests a minute",
                    state.config.host_requests_per_minute
                ),
            ));
        }
        Ok(Host { id: id.to_owned() })
    }
}
