//! Who is calling: a person (a session from signing in, or an API token
//! that acts as its user within its scopes), or an enrolled host with its
//! credential. All come as `Authorization: Bearer ...`; the console's
//! session may come as a cookie instead.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use patchwell_core::people::{self, Access, Role};
use store::{ApiTokenStore, HostAuth, HostStore, PeopleStore};

use crate::error::ApiError;
use crate::{secrets, AppState};

pub(crate) fn bearer(parts: &Parts) -> Result<&str, ApiError> {
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

/// A signed-in person: a user with a session, or an API token acting as
/// its user within its scopes.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The user.
    pub(crate) username: String,
    /// Their role.
    pub(crate) role: Role,
    /// The token's scopes; `None` for a session.
    pub(crate) scopes: Option<Vec<Access>>,
    /// The session's secret hash, to end it on sign-out.
    pub(crate) session: Option<Vec<u8>>,
}

/// The cookie the console's session travels in.
pub(crate) const SESSION_COOKIE: &str = "patchwell_session";

/// A session secret starts so, an API token's does not.
pub(crate) const SESSION_PREFIX: &str = "pws_";

pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// The user behind a presented secret, enabled, with their role.
async fn enabled_user(state: &AppState, username: &str) -> Result<Role, ApiError> {
    let Some((user, _)) = state.store.user(username).await? else {
        return Err(ApiError::unauthorized(format!(
            "user {username} no longer exists"
        )));
    };
    if user.disabled_at.is_some() {
        return Err(ApiError::unauthorized(format!(
            "user {username} is disabled"
        )));
    }
    Role::parse(&user.role).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "user {username} has an unknown role {:?}",
            user.role
        ))
    })
}

impl Caller {
    pub(crate) async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
        let secret = match session_cookie(&parts.headers) {
            Some(cookie) if parts.headers.get(header::AUTHORIZATION).is_none() => cookie,
            _ => bearer(parts)?,
        };
        let hash = secrets::hash(secret);
        if secret.starts_with(SESSION_PREFIX) {
            let now = (state.clock)();
            let Some(username) = state.store.session_user(&hash, now).await? else {
                return Err(ApiError::unauthorized(
                    "the session has ended or expired: sign in again",
                ));
            };
            let role = enabled_user(state, &username).await?;
            return Ok(Caller {
                username,
                role,
                scopes: None,
                session: Some(hash),
            });
        }
        let Some(token) = state.store.api_token(&hash).await? else {
            return Err(ApiError::unauthorized("unknown or revoked API token"));
        };
        let Some(username) = token.username else {
            return Err(ApiError::unauthorized(
                "this API token belongs to no user: restart the server to give it to the first administrator",
            ));
        };
        let role = enabled_user(state, &username).await?;
        let scopes = Access::parse_scopes(&token.scopes)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("API token {}: {e}", token.id)))?;
        Ok(Caller {
            username,
            role,
            scopes: Some(scopes),
            session: None,
        })
    }

    /// The caller if they may have `access`, else 403 saying why not.
    pub(crate) fn require(self, access: Access) -> Result<Caller, ApiError> {
        if people::allowed(self.role, self.scopes.as_deref(), access) {
            return Ok(self);
        }
        let message = if self.role.permits(access) {
            format!(
                "this API token's scopes ({}) do not include {}",
                Access::join(self.scopes.as_deref().unwrap_or_default()),
                access.as_str()
            )
        } else {
            format!(
                "user {} has role {}, which may not {}",
                self.username,
                self.role,
                access.as_str()
            )
        };
        Err(ApiError::new(StatusCode::FORBIDDEN, message))
    }
}

/// Extractors, one per access a route asks for: each authenticates the
/// caller and checks their role and scopes before the handler runs.
macro_rules! access_extractor {
    ($($(#[$doc:meta])* $name:ident => $access:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub(crate) struct $name(pub(crate) Caller);

        impl From<$name> for Caller {
            fn from(who: $name) -> Caller {
                who.0
            }
        }

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                Ok($name(Caller::authenticate(parts, state).await?.require($access)?))
            }
        }
    )*};
}

access_extractor! {
    /// May read anything.
    Reader => Access::Read;
    /// May operate the fleet.
    Operator => Access::Operate;
    /// May make planning decisions.
    Approver => Access::Approve;
    /// May administer users, policies and settings.
    Administrator => Access::Administer;
    /// Any signed-in user, acting on their own account.
    Member => Access::Member;
}

/// An enrolled host, authenticated by its credential (`<host id>.<secret>`),
/// and within its request rate.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// The host's identity: every agent route acts on this host only.
    pub(crate) id: String,
}

/// A host whose credential was found active earlier in the same request
/// (before its body was read), so that [`Host`] need not ask the store again.
#[derive(Debug, Clone)]
pub(crate) struct CheckedHost(pub(crate) String);

impl FromRequestParts<AppState> for Host {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = bearer(parts)?;
        let (id, secret) = credential.split_once('.').ok_or_else(|| {
            ApiError::unauthorized("a host credential has the form <host id>.<secret>")
        })?;
        // Checked already while this request's gzip body was let in.
        let checked = parts
            .extensions
            .get::<CheckedHost>()
            .is_some_and(|c| c.0 == id);
        let known = if checked {
            HostAuth::Active
        } else {
            state.store.authenticate(id, &secrets::hash(secret)).await?
        };
        match known {
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
        if let Err(wait) = state.limiter.allow(id, (state.clock)()) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "host {id} sends more than {} requests a minute",
                    state.config.host_requests_per_minute
                ),
            )
            .retry_after(wait));
        }
        Ok(Host { id: id.to_owned() })
    }
}
