//! Kept-alive connections through the real server (`serve_until`, plain
//! HTTP on a loopback port), spoken to byte by byte: an answer given before
//! the request's body was read leaves the connection usable for the next
//! request, or says `Connection: close` and closes it. Never does the
//! server answer as if the connection went on and then close it under a
//! client about to reuse it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

struct Running {
    address: SocketAddr,
    admin: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: TempDir,
}

async fn start() -> Running {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "patchwell-keepalive-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let options = server::ServeOptions {
        data_dir: dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: None,
        transport: server::Transport::PlainHttp { insecure: false },
        audit_anchor: server::audit_anchor::AnchorOptions::default(),
        config: server::Config {
            feed_refresh: None,
            // A body that does not come is given up on soon.
            body_timeout: std::time::Duration::from_secs(2),
            ..server::Config::default()
        },
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (told, listening) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        server::serve_until(
            options,
            move |address| {
                let _ = told.send(address);
            },
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    });
    let address = listening.await.expect("the server listens");
    let admin = std::fs::read_to_string(dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    Running {
        address,
        admin,
        _stop: stop,
        _dir: TempDir(dir),
    }
}

/// One answer as it came off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    closes: bool,
    body: String,
}

/// Reads one answer (its head, then as many bytes as its `Content-Length`
/// says); `None` when the connection ends before a whole head came.
async fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let mut length = None;
    let mut closes = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "connection" => closes = value.split(',').any(|v| v.trim() == "close"),
            _ => {}
        }
    }
    let length = length.unwrap_or_else(|| panic!("an answer without a length: {head}"));
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(Answer {
        status,
        closes,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn head(method: &str, path: &str, auth: Option<&str>, length: usize, extra: &str) -> String {
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {length}\r\n{extra}\r\n"
    )
}

/// Sends a request whose body follows its head in a write of its own, as
/// many clients send them, and reads the answer.
async fn exchange(stream: &mut TcpStream, head: &str, body: &[u8]) -> Option<Answer> {
    stream.write_all(head.as_bytes()).await.ok()?;
    stream.flush().await.ok()?;
    // Let the server read the head alone and answer it, when it will
    // answer without the body.
    tokio::task::yield_now().await;
    if !body.is_empty() {
        // The server may already have closed; the answer (or its absence)
        // tells.
        let _ = stream.write_all(body).await;
    }
    read_answer(stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_given_before_the_body_was_read_keep_the_connection() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let big = vec![b'x'; 20_000];
    // Each: the request, its body, the status it must get.
    let requests: Vec<(String, &[u8], u16)> = vec![
        // No credential, with a body: refused before the body is read.
        (
            head("POST", "/api/v1/agent/heartbeat", None, 2, ""),
            b"{}",
            401,
        ),
        // A wrong credential, with a larger body.
        (
            head("PUT", "/api/v1/groups/web", Some("wrong"), big.len(), ""),
            &big,
            401,
        ),
        // No such route.
        (
            head("POST", "/api/v1/nowhere", Some(&server.admin), 2, ""),
            b"{}",
            404,
        ),
        // A form posted from another origin: refused before its body is
        // read, by the same-origin layer.
        (
            head(
                "POST",
                "/console/login",
                None,
                big.len(),
                "Origin: https://evil.example\r\n",
            ),
            &big,
            403,
        ),
        // A gzip body from a sender with no credential: refused unread.
        (
            head(
                "PUT",
                "/api/v1/agent/inventory",
                None,
                big.len(),
                "Content-Encoding: gzip\r\n",
            ),
            &big,
            401,
        ),
        // A body that is not JSON, read and refused.
        (
            head("POST", "/api/v1/tokens", Some(&server.admin), 9, ""),
            b"{not json",
            400,
        ),
        // And a request that succeeds.
        (
            head("GET", "/api/v1/hosts", Some(&server.admin), 0, ""),
            b"",
            200,
        ),
    ];
    for round in 0..40 {
        for (i, (head, body, status)) in requests.iter().enumerate() {
            let answer = exchange(&mut stream, head, body).await.unwrap_or_else(|| {
                panic!(
                    "round {round}, request {i}: the server closed the connection \
                     without a word, after an answer that let it be reused"
                )
            });
            assert_eq!(
                answer.status, *status,
                "round {round}, request {i}: {answer:?}"
            );
            assert!(
                !answer.closes,
                "round {round}, request {i}: a small body is read, the connection kept: {answer:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_come_is_answered_408_and_the_connection_closes() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    // The head only: the body is declared but never sent. Every body is
    // read whole before any handler, so the answer waits for the body's
    // deadline, and says the connection ends.
    let answer = exchange(
        &mut stream,
        &head("POST", "/api/v1/agent/heartbeat", None, 2, ""),
        b"",
    )
    .await
    .expect("an answer");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.body.contains("did not arrive in time"), "{answer:?}");
    assert!(
        answer.closes,
        "the server closes, so it must say so: {answer:?}"
    );
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "nothing after the last answer: {rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_too_large_closes_and_a_waiting_client_is_told_to_continue() {
    let server = start().await;

    // Declared larger than the server accepts: 413, and the connection ends.
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let answer = exchange(
        &mut stream,
        &head(
            "PUT",
            "/api/v1/agent/inventory",
            None,
            server::Config::default().max_wire_bytes + 1,
            "",
        ),
        b"",
    )
    .await
    .expect("an answer");
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(answer.body.contains("too large"), "{answer:?}");
    assert!(answer.closes, "{answer:?}");

    // A client waiting to be told to send its body is told to (every body
    // is read before the answer is known), then answered on a connection
    // it may keep.
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(
            head(
                "POST",
                "/api/v1/agent/heartbeat",
                None,
                2,
                "Expect: 100-continue\r\n",
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "{interim:?}");
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    let answer = exchange(&mut stream, "", b"{}").await.expect("an answer");
    assert_eq!(answer.status, 401, "{answer:?}");
    assert!(!answer.closes, "{answer:?}");
}
