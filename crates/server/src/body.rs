//! Request bodies, read whole and bounded before any handler sees them.
//!
//! A key design decision made here is that one middleware reads every
//! request body into memory, under four limits, and hands the handler the
//! bytes: at most `max_wire_bytes` sent, at most `max_body_bytes` once
//! gzip is undone, the whole body within `body_timeout`, and the bytes of
//! all bodies held at once across requests within `body_budget_bytes`. A
//! body's share of that budget is taken as its bytes arrive, and for gzip
//! the most it may inflate to before it is inflated (what it did not need
//! is given back at once); the rest is given back when its answer is
//! ready. So forty gzip bombs at once hold no more than the budget, and
//! every way a body can be too large (a `Content-Length`, a chunked or
//! HTTP/2 stream that goes on, a bomb) gets the same 413 answer.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::AppState;

/// How long a body waits for its share of the budget before it is
/// answered 503.
const BUDGET_WAIT: Duration = Duration::from_secs(5);

/// Gzip is inflated this many bytes at a time.
const INFLATE_STEP: usize = 64 * 1024;

/// How much more of a refused body is read and thrown away before it is
/// answered: a client still sending when the server ends the exchange
/// often never reads the answer (HTTP/1.1 closes the connection under it,
/// HTTP/2 resets its stream, which some clients report as the error).
/// Beyond this, or the body's deadline, the exchange is ended at once.
const DRAIN: u64 = 16 << 20;

/// The bytes that request bodies may hold at once, across requests.
#[derive(Debug)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    total: usize,
    wait: Duration,
}

impl Budget {
    /// A budget of `total` bytes, raised to at least what one largest body
    /// needs (its wire bytes and its inflated bytes), so that any body
    /// within the limits can be read.
    pub fn new(total: usize, max_wire: usize, max_body: usize) -> Self {
        let total = total
            .max(max_wire.saturating_add(max_body))
            .min(Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            wait: BUDGET_WAIT,
        }
    }

    /// The bytes free now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// The whole budget.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// A body's share of the budget, given back when dropped.
struct Share {
    budget: Arc<Semaphore>,
    wait: Duration,
    held: Option<OwnedSemaphorePermit>,
}

impl Share {
    fn new(budget: &Budget) -> Self {
        Share {
            budget: Arc::clone(&budget.bytes),
            wait: budget.wait,
            held: None,
        }
    }

    /// Takes `n` more bytes, waiting a little for them.
    async fn take(&mut self, n: usize) -> Result<(), ApiError> {
        if n == 0 {
            return Ok(());
        }
        let n = u32::try_from(n).map_err(|_| too_busy())?;
        let permit =
            tokio::time::timeout(self.wait, Arc::clone(&self.budget).acquire_many_owned(n))
                .await
                .map_err(|_| too_busy())?
                .map_err(|_| too_busy())?;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }

    /// Gives back `n` of the bytes held.
    fn give_back(&mut self, n: usize) {
        if let Some(held) = &mut self.held {
            if let Some(part) = held.split(n) {
                drop(part);
            }
        }
    }
}

fn too_busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is reading too many request bodies at once: try again in a few seconds",
    )
    .retry_after(BUDGET_WAIT.as_secs())
}

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Plain,
    Gzip,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Plain);
    };
    let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Plain),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Encoding {:?} is not supported: send the body as it is, or gzip",
                String::from_utf8_lossy(value.as_bytes())
            ),
        )),
    }
}

/// The limits, from the configuration.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_wire: usize,
    max_body: usize,
    timeout: Duration,
}

impl Limits {
    fn too_large(&self) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is too large: at most {} bytes may be sent, \
                 and at most {} once decompressed",
                self.max_wire, self.max_body
            ),
        )
    }

    fn too_slow(&self) -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive in time: a whole body must arrive \
                 within {} s of its request",
                self.timeout.as_secs_f64()
            ),
        )
    }
}

/// The middleware: reads the body whole under the limits, then runs the
/// rest of the application with it, holding the body's share of the budget
/// until the answer is ready.
pub(crate) async fn read_whole(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request
        .uri()
        .path_and_query()
        .is_some_and(|p| carries_nul(p.as_str().as_bytes(), true))
    {
        return nul_refused("the request's path or query").into_response();
    }
    if http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    let limits = Limits {
        max_wire: state.config.max_wire_bytes,
        max_body: state.config.max_body_bytes,
        timeout: state.config.body_timeout,
    };
    let (mut parts, body) = request.into_parts();
    if matches!(encoding(&parts.headers), Ok(Encoding::Gzip)) {
        if let Err(e) = gzip_sender(&state, &mut parts).await {
            return e.into_response();
        }
    }
    let request = Request::from_parts(parts, body);
    let mut share = Share::new(&state.bodies);
    match read(request, limits, &mut share).await {
        Ok(request) => {
            let response = next.run(request).await;
            drop(share);
            response
        }
        Err(e) => e.into_response(),
    }
}

/// Whether text carries a NUL character: as a byte, as JSON's `\u0000`
/// escape (not itself escaped), or percent-encoded where `percent` (a
/// URI, a form). No field of the API may hold one, and PostgreSQL's text
/// cannot: it is refused here once rather than failed in the database.
fn carries_nul(bytes: &[u8], percent: bool) -> bool {
    if bytes.contains(&0) {
        return true;
    }
    if percent && bytes.windows(3).any(|w| w == b"%00") {
        return true;
    }
    bytes.windows(6).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(b"\\u0000")
            && bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    })
}

fn nul_refused(what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{what} holds a NUL character (\\u0000 or %00), which no field may hold"
    ))
}

/// Whoever sends a gzip body must be known first: a few kilobytes may
/// inflate to the most a body may be, and an unknown sender must not make
/// the server spend its budget on that. Agents (their host credential)
/// and API clients (a token or session) send gzip; nobody else needs to.
async fn gzip_sender(
    state: &AppState,
    parts: &mut axum::http::request::Parts,
) -> Result<(), ApiError> {
    let refused = || {
        ApiError::unauthorized(
            "a gzip-encoded body is accepted only with a valid credential \
             (Authorization: Bearer ...); send it uncompressed, or sign in first",
        )
    };
    let Ok(credential) = crate::auth::bearer(parts) else {
        return Err(refused());
    };
    if let Some((id, secret)) = credential.split_once('.') {
        let known =
            store::HostStore::authenticate(&state.store, id, &crate::secrets::hash(secret)).await?;
        if matches!(known, store::HostAuth::Active) {
            let host = crate::auth::CheckedHost(id.to_owned());
            parts.extensions.insert(host);
            return Ok(());
        }
    }
    match crate::auth::Caller::authenticate(parts, state).await {
        Ok(_) => Ok(()),
        Err(_) => Err(refused()),
    }
}

/// The request with its body read whole, inflated if it was gzip.
async fn read(request: Request, limits: Limits, share: &mut Share) -> Result<Request, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let deadline = Instant::now() + limits.timeout;
    let (mut parts, mut body) = request.into_parts();
    if let Some(n) = declared.filter(|n| *n > limits.max_wire as u64) {
        if n <= DRAIN {
            drain(body, deadline).await;
        }
        return Err(limits.too_large());
    }
    let encoding = match encoding(&parts.headers) {
        Ok(encoding) => encoding,
        Err(e) => {
            drain(body, deadline).await;
            return Err(e);
        }
    };

    let mut wire = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(limits.too_slow()),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ApiError::bad_request(format!(
                    "the request body could not be read: {e}"
                )))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if wire.len() + data.len() > limits.max_wire {
            drop(wire);
            drain(body, deadline).await;
            return Err(limits.too_large());
        }
        share.take(data.len()).await?;
        wire.extend_from_slice(&data);
    }
    drop(body);

    let bytes = match encoding {
        Encoding::Plain => {
            if wire.len() > limits.max_body {
                return Err(limits.too_large());
            }
            wire
        }
        Encoding::Gzip => {
            let inflated = inflate(&wire, limits, share, deadline).await?;
            share.give_back(wire.len());
            inflated
        }
    };
    let form = parts.headers.get(header::CONTENT_TYPE).is_some_and(|t| {
        t.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    if carries_nul(&bytes, form) {
        return Err(nul_refused("the request body"));
    }
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(Request::from_parts(parts, Body::from(Bytes::from(bytes))))
}

/// Reads what is left of a refused body, keeping none of it, up to
/// [`DRAIN`] bytes and the body's deadline.
async fn drain(mut body: Body, deadline: Instant) {
    let mut read = 0u64;
    while read <= DRAIN {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => return,
        }
    }
}

/// Inflates a gzip body a step at a time. The most it may inflate to is
/// taken from the budget first, in one piece, and what it did not use is
/// given back: a body that held part of the budget while it waited for
/// more could wait on others doing the same, none of them finishing.
async fn inflate(
    gzip: &[u8],
    limits: Limits,
    share: &mut Share,
    deadline: Instant,
) -> Result<Vec<u8>, ApiError> {
    // One byte past the limit tells a body over it from one exactly at it.
    let most = limits.max_body + 1;
    share.take(most).await?;
    let mut decoder = flate2::read::GzDecoder::new(gzip);
    // All of it at once, as taken from the budget: pages are only used as
    // they are written, and the buffer is never copied to grow.
    let mut out: Vec<u8> = Vec::with_capacity(most);
    loop {
        if Instant::now() >= deadline {
            return Err(limits.too_slow());
        }
        let start = out.len();
        let step = INFLATE_STEP.min(most - start);
        if step == 0 {
            return Err(limits.too_large());
        }
        out.resize(start + step, 0);
        let n = decoder.read(&mut out[start..]).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid gzip: {e}"))
        })?;
        out.truncate(start + n);
        if out.len() > limits.max_body {
            return Err(limits.too_large());
        }
        if n == 0 {
            share.give_back(most - out.len());
            return Ok(out);
        }
        // Inflating is work on this thread; let other tasks run between steps.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn nul_characters_are_found_however_written() {
        use super::carries_nul;
        assert!(carries_nul(b"{\"a\": \"x\\u0000y\"}", false));
        assert!(carries_nul(b"a\0b", false));
        assert!(carries_nul(b"/api/v1/hosts/a%00b", true));
        // An escaped backslash before `u0000` is text, not a NUL.
        assert!(!carries_nul(b"{\"a\": \"C:\\\\u0000\"}", false));
        assert!(carries_nul(b"{\"a\": \"\\\\\\u0000\"}", false));
        // `%00` in JSON is text.
        assert!(!carries_nul(b"{\"url\": \"http://x/%00\"}", false));
        assert!(!carries_nul(b"{\"a\": \"\\u00e9\"}", false));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn limits() -> Limits {
        Limits {
            max_wire: 1 << 20,
            max_body: 4 << 20,
            timeout: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn a_bomb_is_stopped_at_the_limit_and_gives_its_share_back() {
        let budget = Budget::new(0, 1 << 20, 4 << 20);
        let bomb = gzip(&vec![b' '; 8 << 20]);
        let mut share = Share::new(&budget);
        let deadline = Instant::now() + Duration::from_secs(60);
        let e = inflate(&bomb, limits(), &mut share, deadline)
            .await
            .unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(budget.available() < budget.total(), "the share is held");
        drop(share);
        assert_eq!(budget.available(), budget.total());
    }

    #[tokio::test]
    async fn a_body_inflates_within_its_share() {
        let budget = Budget::new(0, 1 << 20, 4 << 20);
        let text = b"{\"packages\": []}".repeat(10_000);
        let mut share = Share::new(&budget);
        let deadline = Instant::now() + Duration::from_secs(60);
        let out = inflate(&gzip(&text), limits(), &mut share, deadline)
            .await
            .unwrap();
        assert_eq!(out, text);
        assert_eq!(budget.total() - budget.available(), text.len());
        let damaged = &gzip(&text)[..100];
        let e = inflate(damaged, limits(), &mut Share::new(&budget), deadline)
            .await
            .unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.message().contains("not valid gzip"), "{}", e.message());
    }

    #[tokio::test]
    async fn a_body_that_finds_the_budget_spent_waits_then_is_told_to_retry() {
        let mut budget = Budget::new(0, 10, 10);
        budget.wait = Duration::from_millis(10);
        let mut first = Share::new(&budget);
        first.take(20).await.unwrap();
        let mut second = Share::new(&budget);
        let e = second.take(1).await.unwrap_err();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        second.take(20).await.unwrap();
    }
}
