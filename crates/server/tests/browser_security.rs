//! The console as a browser meets it in a deployment: the real server over
//! HTTPS with its own CA, spoken to over HTTP/2 and HTTP/1.1; the
//! same-origin rule for changes made with the session cookie; the security
//! headers; the session cookie's flags; and the data directory's modes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{StatusCode, Version};
use serde_json::{json, Value};

/// A server started by `serve_until`, as `patchwell server` starts it.
struct Deployment {
    url: String,
    dir: PathBuf,
    password: String,
    token: String,
    ca: reqwest::Certificate,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Deployment {
    /// Serves HTTPS from a data directory that exists already with the
    /// usual 0755 of a directory made by hand.
    async fn start(name: &str) -> Deployment {
        let dir = std::env::temp_dir().join(format!("patchwell-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let options = server::ServeOptions {
            data_dir: dir.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: None,
            transport: server::Transport::GeneratedTls { names: vec![] },
            audit_anchor: server::audit_anchor::AnchorOptions::default(),
            config: server::Config {
                feed_refresh: None,
                ..server::Config::default()
            },
        };
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(server::serve_until(
            options,
            move |a| {
                let _ = bound_tx.send(a);
            },
            async move {
                let _ = stop_rx.await;
            },
        ));
        let address = bound_rx.await.expect("the server listens");
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .trim()
                .to_owned()
        };
        let ca = reqwest::Certificate::from_pem(read("tls/ca.pem").as_bytes()).unwrap();
        Deployment {
            url: format!("https://127.0.0.1:{}", address.port()),
            password: read("admin-password"),
            token: read("admin-token"),
            dir,
            ca,
            stop: Some(stop_tx),
            served: Some(served),
        }
    }

    /// A browser-like client: trusts the server's CA, follows no
    /// redirects, keeps no cookies (the test carries the session itself).
    fn client(&self, version: Version) -> reqwest::Client {
        let builder = reqwest::Client::builder()
            .add_root_certificate(self.ca.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30));
        match version {
            Version::HTTP_2 => builder.http2_prior_knowledge(),
            _ => builder.http1_only(),
        }
        .build()
        .unwrap()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Signs in through the console's form, from the console's own origin;
/// the answer and the session cookie (`name=value`).
async fn sign_in(
    d: &Deployment,
    http: &reqwest::Client,
    origin: Option<&str>,
    password: &str,
) -> (reqwest::Response, Option<String>) {
    let mut req = http.post(format!("{}/console/login", d.url)).form(&[
        ("username", "admin"),
        ("password", password),
        ("next", "/console/hosts"),
    ]);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    let resp = req.send().await.unwrap();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
    (resp, cookie)
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap_or(""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_and_out_over_https_with_http2_and_http1() {
    let d = Deployment::start("https-console").await;
    for version in [Version::HTTP_2, Version::HTTP_11] {
        let http = d.client(version);
        let login = http
            .get(format!("{}/console/login", d.url))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        assert_eq!(login.version(), version, "the protocol spoken");
        // The headers that keep the console safe in a browser.
        let csp = header(&login, "content-security-policy");
        for part in [
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "default-src 'none'",
        ] {
            assert!(csp.contains(part), "{version:?}: CSP {csp:?} lacks {part}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(
            header(&login, "strict-transport-security"),
            "max-age=31536000"
        );
        assert_eq!(header(&login, "x-content-type-options"), "nosniff");
        assert_eq!(header(&login, "referrer-policy"), "same-origin");
        assert_eq!(header(&login, "x-frame-options"), "DENY");

        // Sign in from the console's own origin: a Secure cookie.
        let (resp, cookie) = sign_in(&d, &http, Some(&d.url), &d.password).await;
        assert_eq!(
            (resp.status(), header(&resp, "location")),
            (StatusCode::SEE_OTHER, "/console/hosts"),
            "{version:?}"
        );
        let set_cookie = header(&resp, "set-cookie").to_owned();
        for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set_cookie.contains(flag), "{set_cookie} lacks {flag}");
        }
        let cookie = cookie.expect("a session cookie");
        let hosts = http
            .get(format!("{}/console/hosts", d.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(hosts.status(), StatusCode::OK, "{version:?}");
        assert!(hosts.text().await.unwrap().contains("<h1>Hosts</h1>"));

        // Signing out ends the session on the server, not only in the
        // browser: the old cookie, sent again, opens nothing.
        let out = http
            .post(format!("{}/console/logout", d.url))
            .header("cookie", &cookie)
            .header("origin", &d.url)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), StatusCode::SEE_OTHER, "{version:?}");
        assert!(header(&out, "set-cookie").contains("Max-Age=0"));
        let again = http
            .get(format!("{}/console/hosts", d.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::SEE_OTHER, "{version:?}");
        assert!(header(&again, "location").starts_with("/console/login"));
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_with_the_session_cookie_must_come_from_the_console() {
    let d = Deployment::start("cross-origin").await;
    let http = d.client(Version::HTTP_2);
    // Sign-in itself: another origin, an opaque one or none are refused.
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let (resp, cookie) = sign_in(&d, &http, origin, &d.password).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "origin {origin:?}");
        assert!(cookie.is_none(), "origin {origin:?} got a session");
        let page = resp.text().await.unwrap();
        assert!(page.contains("refused"), "{page}");
    }
    // The same host over plain HTTP is another origin of an HTTPS console.
    let downgraded = d.url.replace("https://", "http://");
    let (resp, _) = sign_in(&d, &http, Some(&downgraded), &d.password).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let (_, cookie) = sign_in(&d, &http, Some(&d.url), &d.password).await;
    let cookie = cookie.expect("a session");
    // An enrollment token to revoke.
    let created: Value = http
        .post(format!("{}/api/v1/tokens", d.url))
        .bearer_auth(&d.token)
        .json(&json!({"max_uses": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("a token id").to_owned();
    let revoke = |origin: Option<&'static str>| {
        let mut req = http
            .delete(format!("{}/api/v1/tokens/{id}", d.url))
            .header("cookie", &cookie);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    // The API with the console's cookie from elsewhere, or from nowhere:
    // refused with a JSON error, and the token stays.
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let resp = revoke(origin).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "origin {origin:?}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("refused")
                || body["error"].as_str().unwrap().contains("Origin"),
            "{body}"
        );
    }
    let tokens: Value = http
        .get(format!("{}/api/v1/tokens", d.url))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = tokens.as_array().unwrap();
    let ours = listed.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert!(ours["revoked_at"].is_null(), "{ours}");
    // Reading with the cookie needs no origin; a change from the console's
    // own origin goes through; a bearer token needs none (the CLI, scripts).
    let read = http
        .get(format!("{}/api/v1/me", d.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let origin: &'static str = Box::leak(d.url.clone().into_boxed_str());
    let resp = revoke(Some(origin)).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let resp = http
        .post(format!("{}/api/v1/tokens", d.url))
        .bearer_auth(&d.token)
        .json(&json!({"max_uses": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_its_files_are_its_owners_alone() {
    let d = Deployment::start("modes").await;
    // Something written, so the database's WAL exists.
    let resp = d
        .client(Version::HTTP_11)
        .post(format!("{}/api/v1/tokens", d.url))
        .bearer_auth(&d.token)
        .json(&json!({"max_uses": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.dir), 0o700, "the data directory, made 0755 by hand");
    let mut seen = Vec::new();
    let mut stack = vec![d.dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            assert_eq!(
                mode(&path) & 0o077,
                0,
                "{} is {:o}",
                path.display(),
                mode(&path)
            );
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    for file in [
        "patchwell.db",
        "patchwell.db-wal",
        "admin-password",
        "admin-token",
    ] {
        assert!(seen.iter().any(|s| s == file), "{file} in {seen:?}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_report_months_and_return_paths_are_refused_not_failed() {
    let d = Deployment::start("bad-input").await;
    let http = d.client(Version::HTTP_2);
    for month in ["9999-12", "0001-01", "2026-13", "12-2026"] {
        let resp = http
            .get(format!("{}/api/v1/reports/monthly?month={month}", d.url))
            .bearer_auth(&d.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "month {month}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(month),
            "{month}: {body}"
        );
    }
    // A control character in the page to return to after signing in.
    let page = http
        .get(format!(
            "{}/console/login?next=/console%0D%0ASet-Cookie:x=y",
            d.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let resp = http
        .post(format!("{}/console/login", d.url))
        .header("origin", &d.url)
        .form(&[
            ("username", "admin"),
            ("password", d.password.as_str()),
            ("next", "/console\u{1}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp.text().await.unwrap().contains("next"));

    // A NUL character, which no field may hold (and PostgreSQL's text
    // cannot), is refused wherever it comes: JSON, a form, a path.
    let resp = http
        .put(format!("{}/api/v1/groups/nul", d.url))
        .bearer_auth(&d.token)
        .header("content-type", "application/json")
        .body(r#"{"query": "tag = a\u0000b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("NUL"), "{body}");
    let groups: Value = http
        .get(format!("{}/api/v1/groups", d.url))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !groups.to_string().contains("\"nul\""),
        "nothing stored: {groups}"
    );
    let resp = http
        .get(format!("{}/api/v1/hosts/a%00b", d.url))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = http
        .post(format!("{}/console/login", d.url))
        .header("origin", &d.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=ad%00min&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    d.stop().await;
}
