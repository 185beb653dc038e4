//! Keeping an HTTP/1.1 connection usable after an answer given before its
//! request's body was read.
//!
//! Handlers see every body read whole (`body.rs`), but a few answers still
//! come before the body is read: a change refused as cross-origin
//! (`browser.rs`), a gzip body from an unknown sender, a NUL in the path,
//! a body declared far too large, a spent body budget. hyper cannot read the next request on that connection until the
//! rest of the body has gone by, so when the body has not fully arrived by
//! the time the answer is written, it closes the connection just after the
//! answer. The answer itself went out saying nothing of it, so a client
//! that keeps connections alive sends its next request into a connection
//! being closed, and sees it fail ("RemoteDisconnected", a broken pipe).
//!
//! The layer here takes the body back when the handler drops it unread,
//! and reads the rest before the answer goes out when the rest is small
//! and arrives promptly. Otherwise the answer says `Connection: close`, so
//! the client knows not to reuse the connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// The most of an unread body read (and thrown away) to keep its
/// connection: small bodies, as sent with a refused credential or to a
/// mistyped route. A larger one closes the connection instead; reading it
/// would cost more than a new connection.
pub(crate) const MOST_DRAINED: usize = 64 << 10;

/// How long the rest of an unread body may take to arrive. A client sends
/// it right behind the head, but possibly in its own packet, which may
/// wait for the acknowledgement of the first.
const PATIENCE: Duration = Duration::from_secs(2);

/// The middleware: passes the request on, then reads what the handler left
/// of its body, or marks the answer as the connection's last.
pub(crate) async fn finish_request_body(request: Request, next: Next) -> Response {
    // HTTP/2 ends a stream, not the connection, when a body goes unread.
    if !matches!(request.version(), Version::HTTP_10 | Version::HTTP_11) {
        return next.run(request).await;
    }
    let worth_reading = worth_reading(request.headers());
    let (parts, body) = request.into_parts();
    let left = Arc::new(Mutex::new(None));
    let body = Body::new(HandedBack {
        inner: Some(body),
        ended: false,
        left: Arc::clone(&left),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let unread = left.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(unread) = unread {
        let drained = worth_reading
            && tokio::time::timeout(PATIENCE, axum::body::to_bytes(unread, MOST_DRAINED))
                .await
                .is_ok_and(|read| read.is_ok());
        if !drained {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// Whether an unread body is worth reading to keep the connection: not one
/// declared larger than [`MOST_DRAINED`], nor one the client holds back
/// until told to go on (`Expect: 100-continue`), which it would then send
/// only to have it thrown away.
fn worth_reading(headers: &HeaderMap) -> bool {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    !headers.contains_key(header::EXPECT) && declared.is_none_or(|n| n <= MOST_DRAINED as u64)
}

/// A request body that, dropped before its end, hands what is left back
/// to [`finish_request_body`].
struct HandedBack {
    inner: Option<Body>,
    ended: bool,
    left: Arc<Mutex<Option<Body>>>,
}

impl http_body::Body for HandedBack {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended
            || self
                .inner
                .as_ref()
                .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

impl Drop for HandedBack {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            if !self.ended && !http_body::Body::is_end_stream(&inner) {
                *self.left.lock().unwrap_or_else(PoisonError::into_inner) = Some(inner);
            }
        }
    }
}
