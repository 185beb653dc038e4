//! What the server asks of browsers and tells them: a change made with the
//! console's session cookie must come from the console's own origin, and
//! every answer carries the headers that keep a page from being framed,
//! sniffed, downgraded or fed another site's script.
//!
//! A key design decision made here is that the same-origin rule is one
//! layer over the whole application rather than a call in each handler:
//! a form or an API route added later cannot forget it. It applies to a
//! request that changes something (any method but GET, HEAD and OPTIONS)
//! and either is for the console or carries the session cookie without an
//! `Authorization` header; agents and API tokens send no cookie and are
//! not affected. The request's own authority is the `Host` header over
//! HTTP/1.1 and the `:authority` pseudo-header over HTTP/2, which hyper
//! puts in the request URI.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// The Content-Security-Policy of every answer: scripts and styles from
/// the server's own files only, nothing inline, no framing.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// HSTS over HTTPS: a year, so a browser never tries plain HTTP first.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// The authority a request was sent to: `:authority` (HTTP/2, or an
/// absolute URI) or else `Host`.
pub(crate) fn request_authority<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
}

/// Why a change is refused as coming from elsewhere; `None` when its
/// `Origin` names the server it was sent to (with the scheme the server
/// speaks, when it speaks HTTPS).
pub(crate) fn cross_origin(uri: &Uri, headers: &HeaderMap, https: bool) -> Option<String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Some(
            "a change made through the console or with its session cookie must say where it \
             comes from (an Origin header); this one did not, so it is refused"
                .into(),
        );
    };
    let origin = String::from_utf8_lossy(origin.as_bytes());
    if origin == "null" {
        return Some(
            "a change from an opaque origin (Origin: null) is refused: post from the console itself"
                .into(),
        );
    }
    let Some(authority) = request_authority(uri, headers) else {
        return Some("the request names no host (no Host header or :authority)".into());
    };
    let (scheme, rest) = origin.split_once("://").unwrap_or(("", &origin));
    let scheme_ok = if https {
        scheme == "https"
    } else {
        scheme == "http" || scheme == "https"
    };
    if scheme_ok && rest.eq_ignore_ascii_case(authority) {
        return None;
    }
    // Bounded: the header is the sender's text.
    let shown: String = origin.chars().take(200).collect();
    Some(format!(
        "a change posted from {shown} is refused: post from the console itself ({}://{authority})",
        if https { "https" } else { "http" }
    ))
}

/// Whether this request is one the same-origin rule covers.
fn guarded(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let console = uri.path() == "/console" || uri.path().starts_with("/console/");
    let cookie_only = headers.get(header::AUTHORIZATION).is_none()
        && crate::auth::session_cookie(headers).is_some();
    console || cookie_only
}

/// The layer: refuses a cross-origin change, then adds the security
/// headers to whatever is answered.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let https = state.config.https;
    let mut response = if guarded(request.method(), request.uri(), request.headers()) {
        match cross_origin(request.uri(), request.headers(), https) {
            Some(why) => {
                tracing::warn!(path = %request.uri().path(), "Cross-origin change refused: {why}");
                refusal(request.uri(), why)
            }
            None => next.run(request).await,
        }
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // What a signed-in person saw stays out of shared and disk caches.
    set(headers, header::CACHE_CONTROL, "no-store");
    if https {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            STRICT_TRANSPORT_SECURITY,
        );
    }
    response
}

/// A 403: a page for the console, JSON for the API.
fn refusal(uri: &Uri, why: String) -> Response {
    let error = ApiError::new(StatusCode::FORBIDDEN, why);
    if uri.path().starts_with("/console") {
        crate::console::PageError(error).into_response()
    } else {
        error.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn http2_authority_stands_for_the_missing_host_header() {
        // An HTTP/2 request: the authority is in the URI, no Host header.
        let uri: Uri = "https://127.0.0.1:8443/console/login".parse().unwrap();
        let h = headers(&[("origin", "https://127.0.0.1:8443")]);
        assert_eq!(cross_origin(&uri, &h, true), None);
        let h = headers(&[("origin", "https://evil.example")]);
        assert!(cross_origin(&uri, &h, true)
            .unwrap()
            .contains("evil.example"));
    }

    #[test]
    fn http1_compares_with_host_and_the_scheme_served() {
        let uri: Uri = "/console/login".parse().unwrap();
        let h = headers(&[
            ("host", "console.example:8443"),
            ("origin", "https://Console.Example:8443"),
        ]);
        assert_eq!(cross_origin(&uri, &h, true), None);
        // Plain HTTP from the same host and port is another origin when the
        // server speaks HTTPS.
        let h = headers(&[
            ("host", "console.example:8443"),
            ("origin", "http://console.example:8443"),
        ]);
        assert!(cross_origin(&uri, &h, true).is_some());
        // Another port is another origin.
        let h = headers(&[
            ("host", "console.example:8443"),
            ("origin", "https://console.example:9443"),
        ]);
        assert!(cross_origin(&uri, &h, true).is_some());
    }

    #[test]
    fn no_origin_and_the_null_origin_are_refused() {
        let uri: Uri = "/console/login".parse().unwrap();
        let h = headers(&[("host", "127.0.0.1:8443")]);
        assert!(cross_origin(&uri, &h, true)
            .unwrap()
            .contains("Origin header"));
        let h = headers(&[("host", "127.0.0.1:8443"), ("origin", "null")]);
        assert!(cross_origin(&uri, &h, true).unwrap().contains("null"));
    }

    #[test]
    fn only_changes_by_cookie_or_to_the_console_are_guarded() {
        let api: Uri = "/api/v1/tokens/abc".parse().unwrap();
        let console: Uri = "/console/login".parse().unwrap();
        let cookie = headers(&[("cookie", "a=b; patchwell_session=pws_x")]);
        let bearer = headers(&[
            ("cookie", "patchwell_session=pws_x"),
            ("authorization", "Bearer t"),
        ]);
        assert!(guarded(&Method::DELETE, &api, &cookie));
        assert!(!guarded(&Method::DELETE, &api, &bearer));
        assert!(!guarded(&Method::DELETE, &api, &HeaderMap::new()));
        assert!(!guarded(&Method::GET, &api, &cookie));
        assert!(guarded(&Method::POST, &console, &HeaderMap::new()));
        assert!(!guarded(&Method::GET, &console, &HeaderMap::new()));
    }
}
