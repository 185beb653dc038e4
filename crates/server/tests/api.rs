//! The server's HTTP API, through the real server on a loopback port with a
//! fresh SQLite database per test, and a clock the test moves.

use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use jiff::Timestamp;
use protocol::{EnrollResponse, HeartbeatResponse, Inventory, Manager, Neighbour, Package};
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::api::{CreatedToken, HostDetail, HostView};
use server::{app, AppState, Config};

mod support;

use support::{inventory, package, TempDir, T0};

struct TestServer {
    url: String,
    admin: String,
    admin_password: String,
    clock: Arc<AtomicI64>,
    http: reqwest::Client,
    /// The server's state, for what runs in the background in `serve`.
    state: AppState,
    _dir: TempDir,
}

async fn spawn(config: Config) -> TestServer {
    static N: AtomicI64 = AtomicI64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "patchwell-api-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let clock = Arc::new(AtomicI64::new(T0));
    let now = Timestamp::from_second(T0).unwrap();
    let store = store::Store::open_sqlite(&dir, now).await.unwrap();
    let first = server::ensure_first_admin(&store, &dir, now).await.unwrap();
    let token_file = first.token_file.expect("first token");
    let password_file = first.password_file.expect("first password");
    let admin_password = std::fs::read_to_string(&password_file)
        .unwrap()
        .trim()
        .to_owned();
    let admin = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "the admin token is readable by its owner only"
    );
    let c = clock.clone();
    let state = AppState::with_clock(
        store,
        config,
        Arc::new(move || Timestamp::from_second(c.load(Ordering::SeqCst)).unwrap()),
    );
    // As `serve` does at start: the fleet's loader (nothing stored yet).
    server::fleet::load(&state.store, &state.fleet, &state.catalog, now)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let kept = state.clone();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    TestServer {
        url,
        admin,
        admin_password,
        clock,
        http: reqwest::Client::new(),
        state: kept,
        _dir: TempDir(dir),
    }
}

impl TestServer {
    fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_second(self.clock.load(Ordering::SeqCst)).unwrap()
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(Some(&self.admin), method, path, body).await
    }

    /// A request with any bearer secret (none: no Authorization header).
    async fn call(
        &self,
        secret: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(secret) = secret {
            req = req.bearer_auth(secret);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a user with a role and returns an API token acting as them.
    async fn user(&self, name: &str, role: &str) -> String {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/api/v1/users",
                Some(json!({"username": name, "role": role, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/api/v1/api-tokens",
                Some(json!({"name": format!("{name}'s token"), "user": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: impl AsRef<str>) -> (StatusCode, Value) {
        self.admin(reqwest::Method::GET, path.as_ref(), None).await
    }

    async fn token(&self, uses: u32) -> String {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(json!({"max_uses": uses, "group": "laptops"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        serde_json::from_value::<CreatedToken>(body).unwrap().token
    }

    async fn enroll(&self, token: &str, hostname: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/api/v1/agent/enroll", self.url))
            .json(&json!({"token": token, "hostname": hostname}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn enrolled(&self, hostname: &str) -> EnrollResponse {
        let token = self.token(1).await;
        let (status, body) = self.enroll(&token, hostname).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        serde_json::from_value(body).unwrap()
    }

    async fn agent(
        &self,
        method: reqwest::Method,
        path: &str,
        credential: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(credential)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn put_inventory(&self, credential: &str, inv: &Inventory) -> (StatusCode, Value) {
        self.agent(
            reqwest::Method::PUT,
            "/api/v1/agent/inventory",
            credential,
            serde_json::to_value(inv).unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn every_documented_route_exists() {
    let s = spawn(Config::default()).await;
    let resp = s
        .http
        .get(format!("{}/api/openapi.json", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum::<usize>(),
        server::openapi::ROUTES.len()
    );
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            let concrete = path.replace("{manager}", "dpkg").replace(['{', '}'], "");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let status = s
                .http
                .request(method.clone(), format!("{}{concrete}", s.url))
                .send()
                .await
                .unwrap()
                .status();
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but answers {status}"
            );
        }
    }
    let status = s
        .http
        .get(format!("{}/api/v1/nothing-here", s.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn enrollment_tokens_expire_run_out_and_can_be_revoked() {
    let s = spawn(Config::default()).await;
    let token = s.token(2).await;
    assert_eq!(s.enroll(&token, "a").await.0, StatusCode::CREATED);
    assert_eq!(s.enroll(&token, "b").await.0, StatusCode::CREATED);
    let (status, body) = s.enroll(&token, "c").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("no uses left"),
        "{body}"
    );

    let (status, body) = s.enroll("pwe_not-a-token", "c").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("unknown token"),
        "{body}"
    );

    let expiring = s.token(5).await;
    s.advance(25 * 3600);
    let (status, body) = s.enroll(&expiring, "c").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    let revoked = s.token(5).await;
    let (_, tokens) = s.admin(reqwest::Method::GET, "/api/v1/tokens", None).await;
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["uses"] == 0 && t["expires_at"].as_str() > Some(s.now().to_string().as_str()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = s.enroll(&revoked, "c").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    assert_eq!(
        s.admin(reqwest::Method::DELETE, "/api/v1/tokens/nope", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"max_uses": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("max_uses"),
        "{body}"
    );
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"max_uses": 1, "colour": "red"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("colour"), "{body}");

    let (_, hosts) = s.admin(reqwest::Method::GET, "/api/v1/hosts", None).await;
    let hosts: Vec<HostView> = serde_json::from_value(hosts).unwrap();
    assert_eq!(hosts.len(), 2);
    assert!(hosts.iter().all(|h| h.group.as_deref() == Some("laptops")));
}

#[tokio::test]
async fn credentials_are_checked_on_every_route_and_hosts_are_kept_apart() {
    let s = spawn(Config::default()).await;
    let a = s.enrolled("alpha").await;
    let b = s.enrolled("bravo").await;
    let beat = json!({"inventory_digest": "x"});

    // No credential, a malformed one, and another host's secret under one's own id.
    let status = s
        .http
        .post(format!("{}/api/v1/agent/heartbeat", s.url))
        .json(&beat)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.agent(
            reqwest::Method::POST,
            "/api/v1/agent/heartbeat",
            "garbage",
            beat.clone()
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let b_secret = b.credential.split_once('.').unwrap().1;
    let forged = format!("{}.{b_secret}", a.host_id);
    assert_eq!(
        s.agent(
            reqwest::Method::POST,
            "/api/v1/agent/heartbeat",
            &forged,
            beat.clone()
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // A host credential is not an admin token, nor the other way round.
    assert_eq!(
        s.agent(
            reqwest::Method::GET,
            "/api/v1/hosts",
            &a.credential,
            json!({})
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.agent(
            reqwest::Method::POST,
            "/api/v1/agent/heartbeat",
            &s.admin,
            beat.clone()
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );

    // Each host writes only its own inventory: the routes carry no host id.
    let now = s.now();
    assert_eq!(
        s.put_inventory(
            &a.credential,
            &inventory("alpha", now, vec![package("openssl", "3.0.11-1")])
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.put_inventory(
            &b.credential,
            &inventory("bravo", now, vec![package("bash", "5.2.15-2")])
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, detail) = s
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/hosts/{}", a.host_id),
            None,
        )
        .await;
    let detail: HostDetail = serde_json::from_value(detail).unwrap();
    assert_eq!(detail.host.hostname, "alpha");
    assert_eq!(
        detail
            .packages
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["openssl"]
    );

    // A revoked host is refused.
    assert_eq!(
        s.admin(
            reqwest::Method::POST,
            &format!("/api/v1/hosts/{}/revoke", a.host_id),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = s
        .agent(
            reqwest::Method::POST,
            "/api/v1/agent/heartbeat",
            &a.credential,
            beat.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    assert_eq!(
        s.agent(
            reqwest::Method::POST,
            "/api/v1/agent/heartbeat",
            &b.credential,
            beat
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn heartbeats_ask_for_nothing_a_delta_or_the_whole_inventory() {
    use protocol::InventoryWanted;
    let s = spawn(Config::default()).await;
    let h = s.enrolled("alpha").await;
    let inv = inventory(
        "alpha",
        s.now(),
        vec![package("openssl", "3.0.11-1"), package("bash", "5.2.15-2")],
    );
    let ask = |current: &Inventory, acknowledged: Option<&Inventory>| {
        let body = json!({"inventory_digest": current.digest(), "acknowledged_digest": acknowledged.map(Inventory::digest)});
        let s = &s;
        let credential = h.credential.clone();
        async move {
            let (status, body) = s
                .agent(
                    reqwest::Method::POST,
                    "/api/v1/agent/heartbeat",
                    &credential,
                    body,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            serde_json::from_value::<HeartbeatResponse>(body).unwrap()
        }
    };

    let first = ask(&inv, None).await;
    assert_eq!(
        (first.inventory, first.next_checkin_seconds),
        (InventoryWanted::Full, 900)
    );
    s.put_inventory(&h.credential, &inv).await;

    // Uptime and collection time change every minute; they do not count.
    let mut later = inv.clone();
    later.host.uptime_seconds += 600;
    later.collected_at = s
        .now()
        .checked_add(jiff::SignedDuration::from_secs(600))
        .unwrap();
    assert_eq!(
        ask(&later, Some(&inv)).await.inventory,
        InventoryWanted::None
    );

    // A change: the server holds the acknowledged base, so a delta will do.
    later.packages[0].version = "3.0.15-1".into();
    later.packages.remove(1);
    later.packages.push(package("curl", "7.88.1-10"));
    assert_eq!(
        ask(&later, Some(&inv)).await.inventory,
        InventoryWanted::Delta
    );
    let delta = later.delta_from(&inv);
    assert_eq!(
        (delta.packages_changed.len(), delta.packages_removed.len()),
        (2, 1)
    );
    let (status, body) = s
        .agent(
            reqwest::Method::PATCH,
            "/api/v1/agent/inventory",
            &h.credential,
            serde_json::to_value(&delta).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, detail) = s.get(format!("/api/v1/hosts/{}", h.host_id)).await;
    let detail: HostDetail = serde_json::from_value(detail).unwrap();
    let packages: Vec<(&str, &str)> = detail
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(packages, [("curl", "7.88.1-10"), ("openssl", "3.0.15-1")]);
    assert_eq!(
        ask(&later, Some(&later)).await.inventory,
        InventoryWanted::None
    );

    // A base the server does not hold, and a delta that does not produce what
    // it claims: 409, and nothing stored.
    let mut newer = later.clone();
    newer.collected_at = s
        .now()
        .checked_add(jiff::SignedDuration::from_secs(1200))
        .unwrap();
    newer.packages.push(package("zsh", "5.9-4"));
    let stale = newer.delta_from(&inv);
    let (status, body) = s
        .agent(
            reqwest::Method::PATCH,
            "/api/v1/agent/inventory",
            &h.credential,
            serde_json::to_value(&stale).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("send the full inventory"),
        "{body}"
    );
    let mut lying = newer.delta_from(&later);
    lying.packages_changed.clear();
    let (status, body) = s
        .agent(
            reqwest::Method::PATCH,
            "/api/v1/agent/inventory",
            &h.credential,
            serde_json::to_value(&lying).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("does not reproduce"),
        "{body}"
    );
    assert_eq!(
        ask(&later, None).await.inventory,
        InventoryWanted::None,
        "the stored inventory is unchanged"
    );
    assert_eq!(
        ask(&newer, None).await.inventory,
        InventoryWanted::Full,
        "no base kept: send it whole"
    );

    s.advance(3600);
    ask(&later, None).await;
    let (_, detail) = s.get(format!("/api/v1/hosts/{}", h.host_id)).await;
    assert_eq!(
        serde_json::from_value::<HostDetail>(detail)
            .unwrap()
            .host
            .last_seen,
        s.now()
    );
}

#[tokio::test]
async fn bad_reports_get_a_4xx_that_says_why_and_store_nothing() {
    let config = Config {
        max_body_bytes: 256 * 1024,
        max_wire_bytes: 64 * 1024,
        ..Config::default()
    };
    let s = spawn(config).await;
    let h = s.enrolled("alpha").await;
    let good = inventory("alpha", s.now(), vec![package("openssl", "3.0.11-1")]);
    assert_eq!(
        s.put_inventory(&h.credential, &good).await.0,
        StatusCode::NO_CONTENT
    );

    // Gzip, as agents send it.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut newer = good.clone();
    newer.collected_at = s
        .now()
        .checked_add(jiff::SignedDuration::from_secs(60))
        .unwrap();
    newer.packages.push(package("bash", "5.2.15-2"));
    gz.write_all(&serde_json::to_vec(&newer).unwrap()).unwrap();
    let resp = s
        .http
        .put(format!("{}/api/v1/agent/inventory", s.url))
        .bearer_auth(&h.credential)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"schema": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field",
        ),
        (
            {
                let mut v = serde_json::to_value(&newer).unwrap();
                v["schema"] = json!(99);
                v
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "schema 99",
        ),
        (
            {
                let mut v = serde_json::to_value(&newer).unwrap();
                v["packages"][0]["version"] = json!("1:");
                v["collected_at"] = json!(s
                    .now()
                    .checked_add(jiff::SignedDuration::from_secs(120))
                    .unwrap());
                v
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing after colon",
        ),
        (
            serde_json::to_value(&good).unwrap(),
            StatusCode::CONFLICT,
            "older",
        ),
    ];
    for (body, want, says) in cases {
        let (status, answer) = s
            .agent(
                reqwest::Method::PUT,
                "/api/v1/agent/inventory",
                &h.credential,
                body,
            )
            .await;
        assert_eq!(status, want, "{answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(says),
            "expected {says:?} in {answer}"
        );
    }
    let resp = s
        .http
        .put(format!("{}/api/v1/agent/inventory", s.url))
        .bearer_auth(&h.credential)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Oversized on the wire, and oversized once decompressed (a gzip bomb).
    let huge: Vec<Package> = (0..3000)
        .map(|i| package(&format!("p{i:05}"), "1.0-1"))
        .collect();
    let mut big = newer.clone();
    big.packages = huge;
    let (status, body) = s.put_inventory(&h.credential, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("the request body is too large: at most")),
        "{body}"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 4 << 20]).unwrap();
    let resp = s
        .http
        .put(format!("{}/api/v1/agent/inventory", s.url))
        .bearer_auth(&h.credential)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );

    // What was stored is the last good inventory, whole.
    let (_, detail) = s
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/hosts/{}", h.host_id),
            None,
        )
        .await;
    let detail: HostDetail = serde_json::from_value(detail).unwrap();
    assert_eq!(detail.packages.len(), 2);
}

#[tokio::test]
async fn a_host_that_sends_too_often_is_slowed_down() {
    let s = spawn(Config {
        host_requests_per_minute: 5,
        ..Config::default()
    })
    .await;
    let h = s.enrolled("alpha").await;
    let beat = json!({"inventory_digest": "x"});
    for _ in 0..5 {
        assert_eq!(
            s.agent(
                reqwest::Method::POST,
                "/api/v1/agent/heartbeat",
                &h.credential,
                beat.clone()
            )
            .await
            .0,
            StatusCode::OK
        );
    }
    let (status, body) = s
        .agent(
            reqwest::Method::POST,
            "/api/v1/agent/heartbeat",
            &h.credential,
            beat.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("5 requests a minute"),
        "{body}"
    );
    s.advance(60);
    assert_eq!(
        s.agent(
            reqwest::Method::POST,
            "/api/v1/agent/heartbeat",
            &h.credential,
            beat
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn fleet_questions_are_answered() {
    let s = spawn(Config::default()).await;
    let a = s.enrolled("alpha").await;
    let b = s.enrolled("bravo").await;
    let mut inv_a = inventory(
        "alpha",
        s.now(),
        vec![package("openssl", "3.0.11-1~deb12u1")],
    );
    inv_a.reboot.required = true;
    inv_a.neighbours = vec![Neighbour {
        address: "192.0.2.1".into(),
        mac: Some("02:fc:00:00:00:05".into()),
        interface: "eth0".into(),
        state: "REACHABLE".into(),
    }];
    s.put_inventory(&a.credential, &inv_a).await;
    s.put_inventory(
        &b.credential,
        &inventory(
            "bravo",
            s.now(),
            vec![package("openssl", "3.0.15-1~deb12u1")],
        ),
    )
    .await;
    let (status, below) = s
        .get("/api/v1/packages/dpkg/openssl/hosts?below=3.0.11-1~deb12u2")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(below.as_array().unwrap().len(), 1);
    assert_eq!(below[0]["hostname"], "alpha");
    let (status, body) = s.get("/api/v1/packages/dpkg/openssl/hosts?below=1:").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("nothing after colon"));
    let (status, body) = s.get("/api/v1/packages/msi/openssl/hosts?below=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("msi"));
    assert_eq!(
        s.get("/api/v1/packages/dpkg/openssl/hosts").await.0,
        StatusCode::BAD_REQUEST
    );

    let (_, os) = s.get("/api/v1/summary/os-releases").await;
    assert_eq!(os, json!([{"value": "debian 12", "hosts": 2}]));
    let (_, versions) = s.get("/api/v1/summary/packages/dpkg/openssl").await;
    assert_eq!(
        versions,
        json!([{"value": "3.0.11-1~deb12u1", "hosts": 1}, {"value": "3.0.15-1~deb12u1", "hosts": 1}])
    );
    let (_, devices) = s.get("/api/v1/devices/unmanaged").await;
    assert_eq!(
        devices,
        json!([{"mac": "02:fc:00:00:00:05", "addresses": ["192.0.2.1"], "seen_by": ["alpha"]}])
    );

    let (status, _) = s
        .admin(reqwest::Method::PUT, &format!("/api/v1/hosts/{}/attributes", b.host_id), Some(json!({"tags": ["laptop"], "criticality": "high", "owner": "ana", "department": "finance"})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/hosts/{}/attributes", b.host_id),
            Some(json!({"criticality": "extreme"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("extreme"));

    let names = |v: Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| h["hostname"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(s.get("/api/v1/hosts?tag=laptop").await.1), ["bravo"]);
    assert_eq!(
        names(s.get("/api/v1/hosts?reboot_required=true").await.1),
        ["alpha"]
    );
    assert_eq!(
        names(s.get("/api/v1/hosts?os=debian&os_version=12").await.1),
        ["alpha", "bravo"]
    );
    let (status, body) = s.get("/api/v1/hosts?stale=perhaps").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("stale"), "{body}");

    // Dynamic groups, and the same queries ad hoc.
    let (status, body) = s
        .admin(reqwest::Method::PUT, "/api/v1/groups/finance-laptops", Some(json!({"query": "os = debian and os_version >= 12 and tag = laptop and department = finance"})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    s.admin(
        reqwest::Method::PUT,
        "/api/v1/groups/needs-reboot",
        Some(json!({"query": "reboot_required = true"})),
    )
    .await;
    assert_eq!(
        names(s.get("/api/v1/groups/finance-laptops/hosts").await.1),
        ["bravo"]
    );
    let (_, groups) = s.get("/api/v1/groups").await;
    assert_eq!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["name"].as_str().unwrap(), g["hosts"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [("finance-laptops", 1), ("needs-reboot", 1)]
    );
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/groups/bad",
            Some(json!({"query": "os = debian and"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("expected a field"),
        "{body}"
    );
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/groups/no%20spaces",
            Some(json!({"query": "os = debian"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(names(s.get("/api/v1/hosts?query=criticality%20%3E%3D%20high%20or%20reboot_required%20%3D%20true").await.1), ["alpha", "bravo"]);
    assert_eq!(
        s.admin(reqwest::Method::DELETE, "/api/v1/groups/needs-reboot", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/api/v1/groups/needs-reboot/hosts").await.0,
        StatusCode::NOT_FOUND
    );

    // Laptops that are rarely online: stale after 7 days, last inventory kept.
    s.advance(8 * 86_400);
    let (_, stale) = s.get("/api/v1/hosts?stale=true").await;
    assert_eq!(names(stale.clone()), ["alpha", "bravo"]);
    assert!(stale.as_array().unwrap().iter().all(|h| h["stale"] == true));
    let (_, detail) = s.get(format!("/api/v1/hosts/{}", a.host_id)).await;
    assert_eq!(detail["packages"].as_array().unwrap().len(), 1);
    assert_eq!(s.get("/api/v1/hosts/nope").await.0, StatusCode::NOT_FOUND);
}

// ---- The advisory catalog: feeds, verification, findings -----------------

fn shared_data() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "{} is missing and CI=true",
        dir.display()
    );
    eprintln!("skipping: {} is missing", dir.display());
    None
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scratch(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("patchwell-catalog-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

impl TestServer {
    async fn put_feed(
        &self,
        name: &str,
        kind: &str,
        location: &str,
        verification: &str,
    ) -> (StatusCode, Value) {
        self.admin(
            reqwest::Method::PUT,
            &format!("/api/v1/feeds/{name}"),
            Some(json!({"kind": kind, "location": location, "verification": verification})),
        )
        .await
    }
}

impl TestServer {
    /// The monthly report of `month` in `format` (`pdf` or `csv`), as the
    /// admin downloads it.
    async fn report(&self, month: jiff::civil::Date, format: &str) -> reqwest::Response {
        self.http
            .get(format!(
                "{}/api/v1/reports/monthly?month={}&format={format}",
                self.url,
                month.strftime("%Y-%m")
            ))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
    }

    /// Imports Debian's real DSA list as the feed `dsa`, pinned; the
    /// scratch directory holding its copy lives as long as the result.
    async fn load_dsa(&self, data: &std::path::Path, name: &str) -> TempDir {
        let dir = scratch(name);
        let list = dir.0.join("DSA.list");
        let text = std::fs::read(data.join("debian-security-tracker/DSA.list")).unwrap();
        std::fs::write(&list, &text).unwrap();
        let pin = format!("sha256:{}", sha256_hex(&text));
        let (status, body) = self
            .put_feed("dsa", "debian-tracker", &list.display().to_string(), &pin)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        dir
    }
}

/// xserver-xorg-core at `version`, built from xorg-server (DSA-5380-1
/// fixed it in 2:1.20.11-1+deb11u6 on Debian 11).
fn xorg(version: &str) -> Package {
    let mut p = package("xserver-xorg-core", version);
    p.source = Some("xorg-server".into());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_finding_counts_toward_mean_time_to_remediate_and_deadlines_met() {
    let Some(data) = shared_data() else { return };
    let s = spawn(Config::default()).await;
    let _dir = s.load_dsa(&data, "remediation").await;
    // Two vulnerable Debian 11 hosts: one critical and internet-facing
    // (Critical, 24 hours), one neither (Medium, 30 days).
    let mut hosts = Vec::new();
    for name in ["edge", "office"] {
        let host = s.enrolled(name).await;
        let mut inv = inventory(name, s.now(), vec![xorg("2:1.20.11-1+deb11u5")]);
        inv.os.version_id = Some("11".into());
        assert_eq!(
            s.put_inventory(&host.credential, &inv).await.0,
            StatusCode::NO_CONTENT
        );
        hosts.push(host);
    }
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/hosts/{}/attributes", hosts[0].host_id),
            Some(json!({"criticality": "critical", "tags": ["internet-facing"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The server's look at the fleet records the first detections.
    server::posture::keep_today(&s.state).await.unwrap();
    // Both fixed two days later: past Critical's deadline, within Medium's.
    s.advance(2 * 86_400);
    for (host, name) in hosts.iter().zip(["edge", "office"]) {
        let mut inv = inventory(name, s.now(), vec![xorg("2:1.20.11-1+deb11u6")]);
        inv.os.version_id = Some("11".into());
        assert_eq!(
            s.put_inventory(&host.credential, &inv).await.0,
            StatusCode::NO_CONTENT
        );
    }
    server::posture::keep_today(&s.state).await.unwrap();
    // A second look counts nothing twice.
    server::posture::keep_today(&s.state).await.unwrap();
    let month = s.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let resp = s.report(month, "csv").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let csv = resp.text().await.unwrap();
    for row in [
        "remediated,critical,1,deadline met 0; mean seconds to remediate 172800",
        "remediated,medium,1,deadline met 1; mean seconds to remediate 172800",
        "remediated,all,2,deadline met 1; mean seconds to remediate 172800",
        "remediated,high,0,deadline met 0; mean seconds to remediate ",
    ] {
        assert!(csv.contains(row), "{row} missing from {csv}");
    }
    // The report's PDF says the same.
    let resp = s.report(month, "pdf").await;
    let text = pdf_text(&resp.bytes().await.unwrap());
    assert!(
        text.contains("Remediated in the month, per class"),
        "{text}"
    );
    assert!(text.contains("1 of 2 (50.0%)"), "{text}");
    assert!(text.contains("mean time to remediate"), "{text}");
    // The month before saw nothing fixed.
    let before = month.first_of_month().yesterday().unwrap();
    let resp = s.report(before, "csv").await;
    let csv = resp.text().await.unwrap();
    assert!(csv.contains("remediated,all,0,"), "{csv}");
}

#[tokio::test]
async fn a_verified_feed_finds_its_hosts_and_a_failed_one_changes_nothing() {
    let Some(data) = shared_data() else { return };
    let s = spawn(Config::default()).await;
    let dir = scratch("dsa");
    let list = dir.0.join("DSA.list");
    let text = std::fs::read(data.join("debian-security-tracker/DSA.list")).unwrap();
    std::fs::write(&list, &text).unwrap();
    let location = list.display().to_string();

    // A wrong pin is refused, and nothing is imported.
    let (status, body) = s
        .put_feed(
            "dsa",
            "debian-tracker",
            &location,
            &format!("sha256:{}", "0".repeat(64)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("is not the pinned"),
        "{body}"
    );
    let (_, found) = s.get("/api/v1/advisories?search=DSA-5380-1").await;
    assert_eq!(found["total"], 0);

    // The right pin imports; the one malformed record is reported.
    let pin = format!("sha256:{}", sha256_hex(&text));
    let (status, report) = s.put_feed("dsa", "debian-tracker", &location, &pin).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rejected_count"], 1);
    assert_eq!(report["rejected"][0]["record"], "DSA-423");
    let imported = report["records"].as_u64().unwrap();
    assert!(imported > 5000);

    // Two Debian 11 hosts: one with the vulnerable X server (a binary of
    // source xorg-server), one already fixed; and a Debian 12 host.
    let xorg = |version: &str| {
        let mut p = package("xserver-xorg-core", version);
        p.source = Some("xorg-server".into());
        p
    };
    let mut ids = Vec::new();
    for (name, os, version) in [
        ("old", "11", "2:1.20.11-1+deb11u5"),
        ("fixed", "11", "2:1.20.11-1+deb11u6"),
        ("newer", "12", "2:1.20.11-1+deb11u5"),
    ] {
        let host = s.enrolled(name).await;
        let mut inv = inventory(name, s.now(), vec![xorg(version)]);
        inv.os.version_id = Some(os.into());
        let (status, body) = s.put_inventory(&host.credential, &inv).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        ids.push(host.host_id);
    }
    let (status, detail) = s.get("/api/v1/advisories/DSA-5380-1").await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let hosts: Vec<&str> = detail["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["old"]);
    assert_eq!(detail["host_count"], 1);
    // A window past the last host: none explained, the count kept.
    let (_, window) = s
        .get("/api/v1/advisories/DSA-5380-1?offset=1&limit=50")
        .await;
    assert_eq!(window["hosts"], json!([]));
    assert_eq!(window["host_count"], 1);
    let (status, _) = s.get("/api/v1/advisories/DSA-5380-1?limit=many").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let finding = &detail["hosts"][0]["findings"][0];
    assert_eq!(
        finding["reason"],
        "xserver-xorg-core 2:1.20.11-1+deb11u5 (from source xorg-server 2:1.20.11-1+deb11u5) is below \
         2:1.20.11-1+deb11u6, which fixes DSA-5380-1 for Debian:11; the package manager does not offer the fix yet"
    );
    assert_eq!(finding["origin"]["feed"], "dsa");
    assert_eq!(
        finding["origin"]["sha256"],
        pin.trim_start_matches("sha256:")
    );
    assert_eq!(detail["advisory"]["aliases"][0], "CVE-2023-1393");
    let (_, findings) = s.get(format!("/api/v1/hosts/{}/findings", ids[0])).await;
    assert!(findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["advisory"] == "DSA-5380-1"));
    assert_eq!(findings["ecosystem"], "Debian:11");
    let (_, findings) = s.get(format!("/api/v1/hosts/{}/findings", ids[2])).await;
    assert_eq!(findings["findings"], json!([]));

    // The fleet in memory counts the same, and follows inventories.
    let (_, found) = s.get("/api/v1/advisories?search=DSA-5380-1").await;
    assert_eq!(found["advisories"][0]["hosts"], 1, "{found}");
    let (_, exposure) = s.get("/api/v1/summary/exposure?limit=500").await;
    let reach = |exposure: &Value, id: &str| {
        exposure["top"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["hosts"].as_u64().unwrap())
    };
    assert_eq!(reach(&exposure, "DSA-5380-1"), Some(1), "{exposure}");
    let old = s.enrolled("old-2").await;
    let mut inv = inventory("old-2", s.now(), vec![xorg("2:1.20.11-1+deb11u4")]);
    inv.os.version_id = Some("11".into());
    assert_eq!(
        s.put_inventory(&old.credential, &inv).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, exposure) = s.get("/api/v1/summary/exposure?limit=500").await;
    assert_eq!(reach(&exposure, "DSA-5380-1"), Some(2));
    // Revoked hosts leave the count.
    let (status, _) = s
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/hosts/{}/revoke", old.host_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, exposure) = s.get("/api/v1/summary/exposure?limit=500").await;
    assert_eq!(reach(&exposure, "DSA-5380-1"), Some(1));
    // A delta moves a host by its changed packages alone.
    let patched = s.enrolled("patched").await;
    let mut base = inventory(
        "patched",
        s.now(),
        vec![xorg("2:1.20.11-1+deb11u4"), package("bash", "5.1-2")],
    );
    base.os.version_id = Some("11".into());
    assert_eq!(
        s.put_inventory(&patched.credential, &base).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, exposure) = s.get("/api/v1/summary/exposure?limit=500").await;
    assert_eq!(reach(&exposure, "DSA-5380-1"), Some(2));
    let mut next = base.clone();
    next.packages[0] = xorg("2:1.20.11-1+deb11u6");
    s.advance(60);
    next.collected_at = s.now();
    let (status, body) = s
        .agent(
            reqwest::Method::PATCH,
            "/api/v1/agent/inventory",
            &patched.credential,
            serde_json::to_value(next.delta_from(&base)).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, exposure) = s.get("/api/v1/summary/exposure?limit=500").await;
    assert_eq!(reach(&exposure, "DSA-5380-1"), Some(1));

    // The file changes under its pin: refused whole; the import in force stays.
    std::fs::write(
        &list,
        [
            text.as_slice(),
            b"[01 Apr 2023] DSA-9999-1 evil - security update\n",
        ]
        .concat(),
    )
    .unwrap();
    let (status, body) = s
        .admin(reqwest::Method::POST, "/api/v1/feeds/dsa/import", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("catalog in force is unchanged"));
    let (_, feeds) = s.get("/api/v1/feeds").await;
    assert!(feeds[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("is not the pinned"));
    assert_eq!(feeds[0]["records"].as_u64(), Some(imported));
    let (status, _) = s.get("/api/v1/advisories/DSA-5380-1").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.get("/api/v1/advisories/DSA-9999-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // KEV enriches by CVE; the search finds known exploited ones.
    let kev = data.join("kev/known_exploited_vulnerabilities.json");
    let kev_pin = format!("sha256:{}", sha256_hex(&std::fs::read(&kev).unwrap()));
    let (status, report) = s
        .put_feed("kev", "kev", &kev.display().to_string(), &kev_pin)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["records"], 1404);
    let (_, exploited) = s.get("/api/v1/advisories?kev=true&search=webkit2gtk").await;
    let ids: Vec<&str> = exploited["advisories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"DSA-5351-1"), "{ids:?}");

    // Known exploited advisories come first in the exposure summary.
    let host = s.enrolled("browser").await;
    let mut webkit = package("libwebkit2gtk-4.0-37", "2.32.1-1+b1");
    webkit.source = Some("webkit2gtk".into());
    webkit.source_version = Some("2.32.1-1".into());
    let mut inv = inventory("browser", s.now(), vec![webkit]);
    inv.os.version_id = Some("11".into());
    assert_eq!(
        s.put_inventory(&host.credential, &inv).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, exposure) = s.get("/api/v1/summary/exposure").await;
    assert_eq!(exposure["top"][0]["kev"], true, "{exposure}");
    assert!(exposure["known_exploited_reaching_hosts"].as_u64().unwrap() >= 1);

    // Removing the feed takes its advisories out, from the fleet too.
    let (status, _) = s
        .admin(reqwest::Method::DELETE, "/api/v1/feeds/dsa", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.get("/api/v1/advisories/DSA-5380-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, exposure) = s.get("/api/v1/summary/exposure").await;
    assert_eq!(exposure["host_advisory_pairs"], 0, "{exposure}");
}

#[tokio::test]
async fn a_signed_vendor_feed_imports_and_an_altered_one_is_refused() {
    let s = spawn(Config::default()).await;
    let dir = scratch("vendor");
    let (secret, public) = feeds::vendor::generate_key().unwrap();
    let feed = |fixed: &str| {
        json!({
            "schema": 1,
            "publisher": "Example IT",
            "generated": "2026-11-01T00:00:00Z",
            "entries": [{
                "id": "PWV-2026-0001",
                "title": "Example Browser: security fixes",
                "vendor": "Example Inc.",
                "product": "Example Browser",
                "fixed_version": fixed,
                "severity": "high",
                "cves": ["CVE-2026-0001"],
                "released": "2026-10-30",
                "download": {"url": "https://downloads.example.com/b.deb", "sha256": "ab".repeat(32)},
                "install": "apt-get install -y ./b.deb",
                "uninstall": "apt-get remove -y example-browser",
                "detect": {"manager": "dpkg", "package": "example-browser"}
            }]
        })
        .to_string()
    };
    let path = dir.0.join("vendor.json");
    let signed = feed("122.0-1");
    std::fs::write(&path, &signed).unwrap();
    std::fs::write(
        dir.0.join("vendor.json.sig"),
        feeds::vendor::sign(signed.as_bytes(), &secret).unwrap(),
    )
    .unwrap();
    let location = path.display().to_string();
    let (status, report) = s.put_feed("example", "vendor", &location, &public).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["records"], 1);

    let host = s.enrolled("desk").await;
    let inv = inventory("desk", s.now(), vec![package("example-browser", "121.5-1")]);
    assert_eq!(
        s.put_inventory(&host.credential, &inv).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, found) = s
        .get(format!("/api/v1/hosts/{}/findings", host.host_id))
        .await;
    let f = &found["findings"][0];
    assert_eq!(f["advisory"], "PWV-2026-0001");
    assert_eq!(f["matched_by"], "vendor");
    assert_eq!(f["fixed"], "122.0-1");
    assert_eq!(f["severity"], "high");

    // The publisher's file is altered after signing: refused, the signed
    // one stays in force.
    std::fs::write(&path, feed("999.0-1")).unwrap();
    let (status, body) = s
        .admin(reqwest::Method::POST, "/api/v1/feeds/example/import", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("signature does not match"),
        "{body}"
    );
    let (_, found) = s
        .get(format!("/api/v1/hosts/{}/findings", host.host_id))
        .await;
    assert_eq!(found["findings"][0]["fixed"], "122.0-1");
    // A new definition that fails leaves the stored definition as it was.
    let (_, other_public) = feeds::vendor::generate_key().unwrap();
    let (status, _) = s
        .put_feed("example", "vendor", &location, &other_public)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, listed) = s.get("/api/v1/feeds").await;
    assert_eq!(listed[0]["verification"], public.as_str(), "{listed}");
    assert_eq!(listed[0]["records"], 1);

    // A sha256 pin or an ed25519 key on the wrong kind is a bad request.
    let (status, body) = s.put_feed("x", "osv", &location, &public).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s.put_feed("x", "osv", &location, "md5:abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn an_apt_security_suite_verified_by_openpgp_finds_missing_updates() {
    let lists = std::path::Path::new("/var/lib/apt/lists");
    let inrelease = std::fs::read_dir(lists).ok().and_then(|d| {
        d.filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with("-security_InRelease"))
    });
    let Some(inrelease) = inrelease else {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "no security suite in /var/lib/apt/lists and CI=true"
        );
        eprintln!("skipping: no security suite in /var/lib/apt/lists (apt-get update)");
        return;
    };
    // Work on a copy, to alter it later.
    let dir = scratch("apt");
    let prefix = inrelease
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches("InRelease")
        .to_owned();
    for entry in std::fs::read_dir(lists).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && (name.ends_with("InRelease") || name.contains("_Packages"))
        {
            std::fs::copy(&p, dir.0.join(&name)).unwrap();
        }
    }
    let copy = dir.0.join(inrelease.file_name().unwrap());
    let s = spawn(Config::default()).await;
    let keyring = "openpgp:/usr/share/keyrings/debian-archive-keyring.gpg";
    let (status, report) = s
        .put_feed("security", "apt", &copy.display().to_string(), keyring)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let imported = report["records"].as_u64().unwrap();
    assert!(imported > 50, "{report}");

    // Any bookworm host with an old openssl lacks the security suite's fix.
    let (_, found) = s
        .get("/api/v1/advisories?search=openssl&ecosystem=Debian:12")
        .await;
    let advisory = found["advisories"][0]["id"].as_str().unwrap().to_owned();
    assert!(
        advisory.starts_with("bookworm-security:openssl:"),
        "{advisory}"
    );
    let host = s.enrolled("db1").await;
    let mut libssl = package("libssl3", "3.0.0-1");
    libssl.source = Some("openssl".into());
    let inv = inventory("db1", s.now(), vec![libssl]);
    assert_eq!(
        s.put_inventory(&host.credential, &inv).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, detail) = s.get(format!("/api/v1/advisories/{advisory}")).await;
    assert_eq!(detail["hosts"][0]["hostname"], "db1", "{detail}");
    assert_eq!(detail["summary"]["update_type"], "security-update");

    // One changed byte in the signed text: refused whole, the import stays.
    let text = std::fs::read_to_string(&copy).unwrap();
    std::fs::write(&copy, text.replacen("Debian", "Debiam", 1)).unwrap();
    let (status, body) = s
        .admin(reqwest::Method::POST, "/api/v1/feeds/security/import", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, feeds) = s.get("/api/v1/feeds").await;
    assert_eq!(feeds[0]["records"].as_u64(), Some(imported));
    assert!(
        feeds[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("verification failed"),
        "{feeds}"
    );
    let (status, _) = s.get(format!("/api/v1/advisories/{advisory}")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_feed_is_fetched_from_a_url_with_its_signature() {
    let s = spawn(Config::default()).await;
    let (secret, public) = feeds::vendor::generate_key().unwrap();
    let feed = json!({
        "schema": 1,
        "publisher": "Example IT",
        "generated": "2026-11-01T00:00:00Z",
        "entries": [{
            "id": "PWV-2026-0002",
            "title": "Example Agent 2.0",
            "vendor": "Example Inc.",
            "product": "Example Agent",
            "fixed_version": "2.0-1",
            "released": "2026-10-30",
            "download": {"url": "https://downloads.example.com/a.deb", "sha256": "cd".repeat(32)},
            "install": "apt-get install -y ./a.deb",
            "uninstall": "apt-get remove -y example-agent",
            "detect": {"manager": "dpkg", "package": "example-agent"}
        }]
    })
    .to_string();
    let signature = feeds::vendor::sign(feed.as_bytes(), &secret).unwrap();
    // A publisher's web server on loopback.
    let publisher = axum::Router::new()
        .route(
            "/feeds/vendor.json",
            axum::routing::get(move || async move { feed }),
        )
        .route(
            "/feeds/vendor.json.sig",
            axum::routing::get(move || async move { signature }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, publisher).await.unwrap() });

    let (status, report) = s
        .put_feed(
            "remote",
            "vendor",
            &format!("{base}/feeds/vendor.json"),
            &public,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["records"], 1);
    let (_, found) = s.get("/api/v1/advisories/PWV-2026-0002").await;
    assert_eq!(found["summary"]["update_type"], "update");
    assert_eq!(
        found["advisory"]["database_specific"]["patchwell"]["origin"]["location"],
        format!("{base}/feeds/vendor.json")
    );
    // A URL that answers 404 is a refused import, naming the URL.
    let (status, body) = s
        .put_feed(
            "gone",
            "vendor",
            &format!("{base}/feeds/missing.json"),
            &public,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("HTTP 404"),
        "{body}"
    );
}

#[tokio::test]
async fn every_agent_route_wants_a_live_host_credential() {
    use server::openapi::{Auth, ROUTES};
    let s = spawn(Config::default()).await;
    let host = s.enrolled("checked").await;
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/hosts/{}/revoke", host.host_id),
            None,
        )
        .await;
    assert!(status.is_success(), "{body}");
    let mut checked = 0;
    for &(method, path, auth, _) in ROUTES {
        if auth != Auth::Host {
            continue;
        }
        let concrete = path.replace(['{', '}'], "");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        // No credential, an admin's token, a made-up one: not a host.
        for credential in [None, Some(s.admin.as_str()), Some("pwh_not-a-credential")] {
            let (status, body) = s
                .call(credential, method.clone(), &concrete, Some(json!({})))
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {credential:?}: {body}"
            );
            assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
        }
        // A revoked host's: known, and refused.
        let (status, body) = s
            .call(
                Some(&host.credential),
                method.clone(),
                &concrete,
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(body["error"], "this host's enrollment was revoked");
        checked += 1;
    }
    assert_eq!(checked, 6, "the agent routes");
}

#[tokio::test]
async fn every_route_checks_the_role_of_its_caller() {
    use patchwell_core::people::Role;
    use server::openapi::{Auth, ROUTES};
    let s = spawn(Config::default()).await;
    let mut callers = Vec::new();
    for role in Role::ALL {
        let token = if role == Role::Admin {
            s.admin.clone()
        } else {
            s.user(&format!("{role}-user"), role.as_str()).await
        };
        callers.push((role, token));
    }
    let mut checked = 0;
    for &(method, path, auth, _) in ROUTES {
        let Auth::User(access) = auth else { continue };
        let concrete = path.replace("{manager}", "dpkg").replace(['{', '}'], "");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, _) = s
            .call(None, method.clone(), &concrete, Some(json!({})))
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
        for (role, token) in &callers {
            let (status, body) = s
                .call(Some(token), method.clone(), &concrete, Some(json!({})))
                .await;
            if role.permits(access) {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{role} may {} but {method} {path} answered {status}: {body}",
                    access.as_str()
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} on {method} {path}: {body}"
                );
                let message = body["error"].as_str().unwrap();
                assert!(message.contains(role.as_str()), "{message}");
            }
            checked += 1;
        }
    }
    let user_routes = ROUTES
        .iter()
        .filter(|r| matches!(r.2, Auth::User(_)))
        .count();
    assert!(user_routes > 70, "{user_routes} routes");
    assert_eq!(checked, user_routes * Role::ALL.len());
    // A token's scopes narrow its user's role: an administrator's read-only
    // token reads, and changes nothing.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/api-tokens",
            Some(json!({"name": "dashboard", "scopes": "read"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let read_only = body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call(
            Some(&read_only),
            reqwest::Method::GET,
            "/api/v1/users",
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, body) = s
        .call(
            Some(&read_only),
            reqwest::Method::PUT,
            "/api/v1/policies/p",
            Some(json!({"hosts": "os = debian"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("scopes (read)"),
        "{body}"
    );
    // ...and cannot make itself a stronger token.
    let (status, body) = s
        .call(
            Some(&read_only),
            reqwest::Method::POST,
            "/api/v1/api-tokens",
            Some(json!({"name": "escalate", "scopes": "administer"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // An auditor cannot be given a scope their role lacks.
    let (status, _) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/api-tokens",
            Some(json!({"name": "x", "user": "auditor-user", "scopes": "operate"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn users_sign_in_sign_out_and_the_last_admin_stays() {
    let s = spawn(Config::default()).await;
    let s = &s;
    let sign_in = |user: &str, password: &str| {
        let body = json!({"username": user, "password": password});
        async move {
            s.call(None, reqwest::Method::POST, "/api/v1/session", Some(body))
                .await
        }
    };
    let (status, _) = sign_in("admin", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = sign_in("nobody", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, session) = sign_in("admin", &s.admin_password).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    let (status, me) = s
        .call(Some(&token), reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            me["username"].as_str(),
            me["role"].as_str(),
            me["via"].as_str()
        ),
        (Some("admin"), Some("admin"), Some("session"))
    );
    // The console's cookie works as well as the header.
    let resp = s
        .http
        .get(format!("{}/api/v1/me", s.url))
        .header("Cookie", format!("other=1; patchwell_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Sessions expire after 12 hours.
    s.advance(12 * 3600);
    let (status, _) = s
        .call(Some(&token), reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, session) = sign_in("admin", &s.admin_password).await;
    let token = session["token"].as_str().unwrap().to_owned();
    let (status, _) = s
        .call(
            Some(&token),
            reqwest::Method::DELETE,
            "/api/v1/session",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(Some(&token), reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out");

    // A short password is refused; a disabled user cannot sign in and
    // their tokens stop working.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({"username": "bob", "role": "operator", "password": "short"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let bob = s.user("bob", "operator").await;
    let (status, _) = s
        .admin(
            reqwest::Method::PATCH,
            "/api/v1/users/bob",
            Some(json!({"disabled": true, "reason": "left the company"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sign_in("bob", "correct horse battery").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.call(Some(&bob), reqwest::Method::GET, "/api/v1/hosts", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // The last administrator cannot be demoted.
    let (status, body) = s
        .admin(
            reqwest::Method::PATCH,
            "/api/v1/users/admin",
            Some(json!({"role": "auditor"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // The procedure: published, acknowledged by some, pending for others.
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/procedure",
            Some(json!({"text": "Critical within 24 hours."})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let carol = s.user("carol", "auditor").await;
    let (status, _) = s
        .call(
            Some(&carol),
            reqwest::Method::POST,
            "/api/v1/procedure/acknowledge",
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, procedure) = s.get("/api/v1/procedure").await;
    assert_eq!(procedure["acknowledged"][0]["user"], "carol");
    assert_eq!(procedure["not_acknowledged"], json!(["admin"]));
    let (_, me) = s
        .call(Some(&carol), reqwest::Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(me["procedure"], json!({"version": 1, "acknowledged": true}));
    // A new version needs acknowledging anew; the old one is refused.
    s.admin(
        reqwest::Method::PUT,
        "/api/v1/procedure",
        Some(json!({"text": "Critical within 12 hours."})),
    )
    .await;
    let (status, _) = s
        .call(
            Some(&carol),
            reqwest::Method::POST,
            "/api/v1/procedure/acknowledge",
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn planning_decisions_classify_clock_exempt_and_are_audited() {
    let Some(data) = shared_data() else { return };
    let s = spawn(Config::default()).await;
    let approver = s.user("alice", "approver").await;
    let operator = s.user("oscar", "operator").await;
    let _dir = s.load_dsa(&data, "planning").await;

    // Three Debian 11 hosts (group laptops): vulnerable, fixed, and newer
    // than anyone approved.
    let mut ids = Vec::new();
    for (name, version) in [
        ("old", "2:1.20.11-1+deb11u5"),
        ("fixed", "2:1.20.11-1+deb11u6"),
        ("newer", "2:1.20.11-1+deb11u7"),
    ] {
        let host = s.enrolled(name).await;
        let mut inv = inventory(name, s.now(), vec![xorg(version)]);
        inv.os.version_id = Some("11".into());
        assert_eq!(
            s.put_inventory(&host.credential, &inv).await.0,
            StatusCode::NO_CONTENT
        );
        ids.push(host.host_id);
    }
    let old = ids[0].clone();
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/hosts/{old}/attributes"),
            Some(json!({"group": "laptops", "criticality": "critical", "owner": "ceo", "tags": ["internet-facing"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The DSA list gives no severity: Medium, raised for a critical host,
    // raised again for an internet-facing one. The clock starts at first
    // detection: 24 hours for Critical.
    let finding = |findings: &Value| {
        findings["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["advisory"] == "DSA-5380-1")
            .cloned()
            .expect("DSA-5380-1 applies")
    };
    let (_, findings) = s.get(format!("/api/v1/hosts/{old}/findings")).await;
    let f = finding(&findings);
    assert_eq!(f["class"], "critical", "{f}");
    assert_eq!(
        f["class_rule"],
        "medium: default for a security update with no severity data; \
         raised to high: host criticality critical; raised to critical: internet-facing host"
    );
    assert_eq!(f["sla"]["state"], "within");
    assert_eq!(
        f["sla"]["deadline"],
        (s.now() + jiff::SignedDuration::from_hours(24)).to_string()
    );
    s.advance(25 * 3600);
    let (_, findings) = s.get(format!("/api/v1/hosts/{old}/findings")).await;
    assert_eq!(finding(&findings)["sla"]["state"], "breached");

    // The rules are configurable: without the host raises it is Medium.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/settings/classification",
            Some(json!({"raise_for_critical_hosts": false, "raise_for_internet_facing": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, findings) = s.get(format!("/api/v1/hosts/{old}/findings")).await;
    assert_eq!(finding(&findings)["class"], "medium");
    assert_eq!(
        finding(&findings)["sla"]["state"],
        "within",
        "30 days for Medium"
    );
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/settings/sla",
            Some(json!({"medium_days": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // An exemption: only an approver may grant it; it names its approver,
    // pauses the clock, and lapses by itself.
    let expires = s.now() + jiff::SignedDuration::from_hours(48);
    let exemption = json!({
        "host": old, "advisory": "DSA-5380-1", "reason": "kiosk image frozen until the vendor certifies",
        "control": "isolated VLAN", "expires": expires.to_string(),
    });
    let (status, _) = s
        .call(
            Some(&operator),
            reqwest::Method::PUT,
            "/api/v1/exemptions/kiosk-xorg",
            Some(exemption.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .call(
            Some(&approver),
            reqwest::Method::PUT,
            "/api/v1/exemptions/kiosk-xorg",
            Some(exemption),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approver"], "alice");
    assert_eq!(body["now"]["standing"], "in-force");
    let (_, findings) = s.get(format!("/api/v1/hosts/{old}/findings")).await;
    let f = finding(&findings);
    assert_eq!(
        (f["exempt_by"].as_str(), f["sla"]["state"].as_str()),
        (Some("kiosk-xorg"), Some("exempt"))
    );
    let (_, risk) = s.get("/api/v1/summary/risk").await;
    let row = risk["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == old.as_str())
        .unwrap();
    assert_eq!(
        row["open"]["medium"], 0,
        "an exempt finding does not count: {row}"
    );
    s.advance(49 * 3600);
    let (_, findings) = s.get(format!("/api/v1/hosts/{old}/findings")).await;
    assert_eq!(finding(&findings)["exempt_by"], Value::Null, "lapsed");

    // A baseline for the laptops: old is below, newer above, fixed at.
    let (status, body) = s
        .call(
            Some(&approver),
            reqwest::Method::PUT,
            "/api/v1/baselines/laptops",
            Some(json!({
                "group": "laptops",
                "minimum": [{"package": "xserver-xorg-core", "version": "2:1.20.11-1+deb11u6"}],
                "highest_approved": [{"package": "xserver-xorg-core", "version": "2:1.20.11-1+deb11u6"}],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, compliance) = s.get("/api/v1/baselines/laptops/compliance").await;
    let status_of = |c: &Value, name: &str| {
        c["compliance"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["hostname"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(compliance["hosts"], 3, "{compliance}");
    assert_eq!(status_of(&compliance, "old"), "below");
    assert_eq!(status_of(&compliance, "fixed"), "at");
    assert_eq!(status_of(&compliance, "newer"), "above");
    // Raised from the newer host (say, the pilot after a rollout).
    let (status, raised) = s
        .call(
            Some(&approver),
            reqwest::Method::POST,
            "/api/v1/baselines/laptops/raise",
            Some(json!({"host": ids[2]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{raised}");
    assert_eq!(raised["changes"].as_array().unwrap().len(), 2, "{raised}");
    let (_, compliance) = s.get("/api/v1/baselines/laptops/compliance").await;
    assert_eq!(status_of(&compliance, "newer"), "at");
    assert_eq!(status_of(&compliance, "fixed"), "below");
    // A bad version is refused whole, naming it.
    let (status, body) = s
        .call(
            Some(&approver),
            reqwest::Method::PUT,
            "/api/v1/baselines/laptops",
            Some(json!({"group": "laptops", "minimum": [{"package": "curl", "version": "not a version!"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("curl"), "{body}");

    // Approval by title, for the pilot ring only; an automatic rule for
    // Medium updates everywhere a week after release.
    let (status, body) = s
        .call(
            Some(&approver),
            reqwest::Method::PUT,
            "/api/v1/approvals/DSA-5380-1",
            Some(json!({"verdict": "approve", "rings": ["pilot"], "comment": "tested on the lab kiosk"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, e) = s
        .get("/api/v1/approvals/DSA-5380-1/eligibility?ring=pilot")
        .await;
    assert_eq!(
        e["decision"],
        json!({"eligible": true, "state": "approved", "by": "alice"})
    );
    let (_, e) = s
        .get("/api/v1/approvals/DSA-5380-1/eligibility?ring=broad")
        .await;
    assert_eq!(e["decision"]["state"], "not-approved", "{e}");
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/approval-rules/medium-weekly",
            Some(json!({"classes": ["medium"], "days_after_release": 7})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, e) = s
        .get("/api/v1/approvals/DSA-5380-1/eligibility?ring=broad")
        .await;
    assert_eq!(
        e["decision"]["by"], "rule medium-weekly",
        "released in 2023: {e}"
    );

    // Every decision is in the audit log with actor, before, after and
    // reason; the chain verifies, and an edit made behind the server's
    // back is found.
    let (_, log) = s.get("/api/v1/audit?subject=exemptions/").await;
    let entry = &log[0];
    assert_eq!(
        (entry["actor"].as_str(), entry["action"].as_str()),
        (Some("alice"), Some("exempt"))
    );
    assert_eq!(entry["before"], Value::Null);
    assert_eq!(entry["after"]["control"], "isolated VLAN");
    assert_eq!(
        entry["reason"],
        "kiosk image frozen until the vendor certifies (compensating control: isolated VLAN)"
    );
    let (_, log) = s.get("/api/v1/audit?subject=baselines/laptops").await;
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[1]["action"], "raise-baseline");
    assert!(log[1]["before"]["minimum"][0]["version"] == "2:1.20.11-1+deb11u6");
    let (_, log) = s
        .get(format!("/api/v1/audit?subject=hosts/{old}/attributes"))
        .await;
    assert_eq!(log[0]["actor"], "admin");
    assert_eq!(log[0]["before"]["criticality"], Value::Null);
    assert_eq!(log[0]["after"]["criticality"], "critical");
    assert_eq!(log[0]["after"]["tags"], json!(["internet-facing"]));
    let (_, verdict) = s.get("/api/v1/audit/verify").await;
    assert_eq!(verdict["intact"], true, "{verdict}");
    let seq = entry["seq"].as_i64().unwrap();
    let store = store::Store::open_sqlite(&s._dir.0, s.now()).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = $1")
        .bind(seq)
        .execute(store.pool())
        .await
        .unwrap();
    let (_, verdict) = s.get("/api/v1/audit/verify").await;
    assert_eq!(
        (
            verdict["intact"].as_bool(),
            verdict["first_bad_entry"].as_i64()
        ),
        (Some(false), Some(seq)),
        "{verdict}"
    );
}

/// A host with libssl3 at `installed` and its apt lists offering
/// `candidate` from the security suite.
fn host_offering(hostname: &str, at: Timestamp, installed: &str, candidate: &str) -> Inventory {
    let mut inv = inventory(
        hostname,
        at,
        vec![
            package("libssl3", installed),
            package("bash", "5.2.15-2+b2"),
        ],
    );
    inv.updates = vec![protocol::AvailableUpdate {
        manager: Manager::Dpkg,
        name: "libssl3".into(),
        arch: "amd64".into(),
        installed: installed.into(),
        candidate: candidate.into(),
        suite: Some("stable-security".into()),
        codename: Some("bookworm-security".into()),
        origin: Some("Debian".into()),
        security: true,
    }];
    inv
}

impl TestServer {
    /// The jobs a host's heartbeat hands it, opened with its job key.
    async fn jobs(&self, host: &EnrollResponse) -> Vec<protocol::job::Job> {
        let (status, body) = self
            .agent(
                reqwest::Method::POST,
                "/api/v1/agent/heartbeat",
                &host.credential,
                json!({"inventory_digest": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer: HeartbeatResponse = serde_json::from_value(body).unwrap();
        let key = protocol::job::parse_key(&host.job_key).unwrap();
        answer
            .jobs
            .iter()
            .map(|j| j.open(&key, &host.host_id, self.now()).unwrap())
            .collect()
    }

    async fn steps(
        &self,
        host: &EnrollResponse,
        job: &str,
        steps: &[(&str, Option<(&str, &str)>)],
    ) -> StatusCode {
        let steps: Vec<Value> = steps
            .iter()
            .map(|(step, change)| {
                let mut s = json!({"step": step, "at": self.now()});
                if let Some((from, to)) = change {
                    s["changes"] =
                        json!([{"name": "libssl3", "arch": "amd64", "from": from, "to": to}]);
                }
                if *step == "failed" {
                    s["message"] = json!("apt-get install failed");
                    s["exit_code"] = json!(100);
                    s["output_tail"] =
                        json!("E: Sub-process /usr/bin/dpkg returned an error code (1)");
                }
                s
            })
            .collect();
        self.agent(
            reqwest::Method::POST,
            &format!("/api/v1/agent/jobs/{job}/steps"),
            &host.credential,
            json!({"steps": steps}),
        )
        .await
        .0
    }

    /// Polls a rollout until `done` says so (the executor runs each second).
    async fn rollout_until(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            let (status, body) = self.get(format!("/api/v1/rollouts/{name}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if done(&body) {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("rollout {name} never got there");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_goes_ring_by_ring_with_signed_jobs_halts_at_its_threshold_and_rolls_back() {
    let s = spawn(Config::default()).await;
    // The patch team's chat hears of the rollout by webhook.
    let hook = WebhookSink::start().await;
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/contacts/chat",
            Some(json!({"audience": "patch-team", "webhook": hook.url})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names = ["pilot-1", "web-2", "web-3", "web-4"];
    let mut hosts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let host = s.enrolled(name).await;
        // One host's lists offer a newer fix than the others': that one is frozen.
        let candidate = if i == 2 {
            "3.0.17-1~deb12u2"
        } else {
            "3.0.16-1~deb12u1"
        };
        let inv = host_offering(name, s.now(), "3.0.15-1~deb12u1", candidate);
        assert_eq!(
            s.put_inventory(&host.credential, &inv).await.0,
            StatusCode::NO_CONTENT
        );
        hosts.push(host);
    }
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/hosts/{}/attributes", hosts[0].host_id),
            Some(json!({"tags": ["pilot"]})),
        )
        .await;
    assert!(status.is_success(), "{body}");

    // Bad input is refused with the reason, and nothing is created.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(json!({"name": "openssl", "reason": "", "updates": "security"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("reason"), "{body}");
    let rings = json!([
        {"name": "pilot", "size": "1", "gate_success_percent": 100},
        {"name": "broad", "size": "rest", "halt_failure_percent": 10}
    ]);
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(json!({"name": "openssl", "reason": "DSA-5999-1", "rings": [{"name": "x", "size": "lots"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("size \"lots\""),
        "{body}"
    );

    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(json!({"name": "openssl", "reason": "DSA-5999-1 for libssl3", "rings": rings})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created = hook.wait_for("rollout-created").await;
    assert_eq!(created["reason"], "DSA-5999-1 for libssl3");
    assert_eq!(created["rings"][0]["name"], "pilot");
    assert!(
        created["text"]
            .as_str()
            .unwrap()
            .contains("- ring broad (3 hosts, then a wait of"),
        "{created}"
    );
    // The newest version any host was offered is frozen for all.
    assert_eq!(body["packages"][0]["version"], "3.0.17-1~deb12u2");
    assert_eq!(body["rings"][0]["state"], "running");
    assert_eq!(body["rings"][0]["hosts"], 1);
    assert_eq!(body["rings"][1]["state"], "waiting");
    assert!(
        body["rings"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("0 of the 1 successes"),
        "{body}"
    );
    let broad_host = body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == json!(hosts[1].host_id))
        .unwrap();
    assert!(
        broad_host["action"]
            .as_str()
            .unwrap()
            .starts_with("its ring broad has not started"),
        "{broad_host}"
    );

    // The pinned pilot host gets its signed job at check-in; the others none.
    let jobs = s.jobs(&hosts[0]).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.kind, protocol::job::JobKind::Install);
    assert_eq!(
        (
            job.packages[0].name.as_str(),
            job.packages[0].version.as_str()
        ),
        ("libssl3", "3.0.17-1~deb12u2")
    );
    assert!(s.jobs(&hosts[1]).await.is_empty());
    // Another host cannot report it.
    assert_eq!(
        s.steps(&hosts[1], &job.id, &[("received", None)]).await,
        StatusCode::NOT_FOUND
    );
    let from_to = Some(("3.0.15-1~deb12u1", "3.0.17-1~deb12u2"));
    assert_eq!(
        s.steps(
            &hosts[0],
            &job.id,
            &[
                ("received", None),
                ("downloading", None),
                ("downloaded", None),
                ("installing", None)
            ],
        )
        .await,
        StatusCode::NO_CONTENT
    );
    // Received: not handed out again.
    assert!(s.jobs(&hosts[0]).await.is_empty());
    let body = s
        .rollout_until("openssl", |b| b["hosts"][0]["step"] == "installing")
        .await;
    assert_eq!(body["hosts"][0]["progress"], "in_progress");
    s.steps(
        &hosts[0],
        &job.id,
        &[
            ("installed", from_to),
            ("verifying", None),
            ("succeeded", None),
        ],
    )
    .await;

    // The pilot passed its gate: the broad ring starts (no wait).
    // (A plan shown says "running" as soon as the gate is met; the jobs
    // exist once the executor recorded it.)
    s.rollout_until("openssl", |b| {
        b["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["progress"] != "not_started")
    })
    .await;
    // A person's note on the rollout leaves the jobs waiting for delivery alone.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/openssl/notes",
            Some(json!({"note": "pilot fine, broad ring going"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["notes"][0]["text"], "pilot fine, broad ring going");
    let mut broad_jobs = Vec::new();
    for h in &hosts[1..] {
        let jobs = s.jobs(h).await;
        assert_eq!(jobs.len(), 1, "{}", h.host_id);
        broad_jobs.push(jobs[0].id.clone());
    }
    s.steps(
        &hosts[1],
        &broad_jobs[0],
        &[
            ("received", None),
            ("installed", from_to),
            ("succeeded", None),
        ],
    )
    .await;
    s.steps(
        &hosts[2],
        &broad_jobs[1],
        &[("received", None), ("failed", None)],
    )
    .await;
    s.steps(
        &hosts[3],
        &broad_jobs[2],
        &[("received", None), ("failed", None)],
    )
    .await;

    // Two of three failed, over 10%: the rollout halts by itself, and says
    // so to the chain of communication.
    let body = s
        .rollout_until("openssl", |b| b["status"] == "halted")
        .await;
    let halted = hook.wait_for("rollout-halted").await;
    assert_eq!(halted["rollout"], "openssl");
    assert!(
        halted["reason"]
            .as_str()
            .unwrap()
            .contains("2 of 3 hosts failed in ring broad"),
        "{halted}"
    );
    assert!(
        body["halt"]
            .as_str()
            .unwrap()
            .contains("2 of 3 hosts failed in ring broad, over its 10% threshold"),
        "{body}"
    );
    let failed = body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == json!(hosts[2].host_id))
        .unwrap();
    assert_eq!(
        failed["action"],
        "failed: apt-get install failed (exit code 100)"
    );
    // Resuming is refused: a threshold halt needs a redeploy or a rollback.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/openssl/resume",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Rolling back: the two hosts that installed get the versions they had.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/openssl/rollback",
            Some(json!({"reason": "the broad ring broke"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "rolling_back");
    assert_eq!(body["generation"], 2);
    for h in [&hosts[0], &hosts[1]] {
        let jobs = s.jobs(h).await;
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].kind, protocol::job::JobKind::Rollback);
        assert_eq!(jobs[0].generation, 2);
        assert_eq!(jobs[0].packages[0].version, "3.0.15-1~deb12u1");
        s.steps(
            h,
            &jobs[0].id,
            &[
                ("received", None),
                ("installed", Some(("3.0.17-1~deb12u2", "3.0.15-1~deb12u1"))),
                ("succeeded", None),
            ],
        )
        .await;
    }
    assert!(
        s.jobs(&hosts[2]).await.is_empty(),
        "nothing to roll back where nothing installed"
    );
    s.rollout_until("openssl", |b| b["status"] == "rolled_back")
        .await;

    let (status, review) = s.get("/api/v1/rollouts/openssl/review").await;
    assert_eq!(status, StatusCode::OK, "{review}");
    assert_eq!(review["targets"], 4);
    assert_eq!(review["rolled_back"], 2);
    assert_eq!(review["failed"], 2);
    assert!(review["seconds_to_50_percent"].is_i64(), "{review}");
    // Every step is kept, and the decisions are in the audit log.
    let (_, events) = s.get("/api/v1/rollouts/openssl/events").await;
    assert_eq!(events.as_array().unwrap().len(), 4 + 3 + 3 + 2 + 2 + 6);
    let (_, audit) = s.get("/api/v1/audit?subject=rollouts/openssl").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for wanted in [
        "create-rollout",
        "start-ring",
        "halt",
        "rollback-rollout",
        "rollback-finished",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} missing from {actions:?}"
        );
    }

    // Redeployed later as a new generation: the rolled-back and the failed
    // hosts start again, with the same frozen version.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/openssl/redeploy",
            Some(json!({"reason": "fixed the dpkg lock on web-3 and web-4"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running");
    assert_eq!(body["generation"], 3);
    let body = s
        .rollout_until("openssl", |b| {
            b["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["progress"] == "assigned")
        })
        .await;
    assert_eq!(body["halt"], Value::Null, "{body}");
    for h in &hosts {
        let jobs = s.jobs(h).await;
        assert_eq!(jobs.len(), 1, "{}", h.host_id);
        assert_eq!(jobs[0].kind, protocol::job::JobKind::Install);
        assert_eq!(jobs[0].generation, 3);
        assert_eq!(jobs[0].packages[0].version, "3.0.17-1~deb12u2");
    }
}

/// A webhook receiver on a free port: every JSON body posted to it.
struct WebhookSink {
    url: String,
    got: Arc<std::sync::Mutex<Vec<Value>>>,
}

impl WebhookSink {
    async fn start() -> WebhookSink {
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push(v);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        WebhookSink { url, got }
    }

    /// Waits for a body whose event is `event`.
    async fn wait_for(&self, event: &str) -> Value {
        for _ in 0..100 {
            let found = self
                .got
                .lock()
                .unwrap()
                .iter()
                .find(|v| v["event"] == event)
                .cloned();
            if let Some(v) = found {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no webhook for {event}: {:?}", self.got.lock().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_halts_a_rollout_and_its_undelivered_jobs_are_withdrawn() {
    let s = spawn(Config::default()).await;
    let host = s.enrolled("solo").await;
    let inv = host_offering("solo", s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
    s.put_inventory(&host.credential, &inv).await;
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(
                json!({"name": "r1", "reason": "monthly", "packages": ["libssl3"],
                        "rings": [{"name": "all", "size": "rest", "manual_approval": true}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["rings"][0]["reason"],
        "waiting: a person must approve its start"
    );
    assert!(s.jobs(&host).await.is_empty());
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/r1/approve",
            Some(json!({"ring": "all"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rings"][0]["state"], "running");
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/r1/halt",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a halt needs a reason: {body}"
    );
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/r1/halt",
            Some(json!({"reason": "freeze"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "halted");
    assert_eq!(
        body["hosts"][0]["action"],
        "not started: the rollout is halted"
    );
    assert!(
        s.jobs(&host).await.is_empty(),
        "the undelivered job was withdrawn"
    );
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/r1/resume",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jobs = s.jobs(&host).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].generation, 3,
        "halt and resume each made a generation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_no_host_fetched_waits_for_it_then_expires_with_its_rollout() {
    let s = spawn(Config::default()).await;
    let here = s.enrolled("here").await;
    let away = s.enrolled("away").await;
    for (host, name) in [(&here, "here"), (&away, "away")] {
        let inv = host_offering(name, s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
        s.put_inventory(&host.credential, &inv).await;
    }
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(
                json!({"name": "r1", "reason": "monthly", "packages": ["libssl3"],
                        "expires_days": 2,
                        "rings": [{"name": "all", "size": "rest"}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let line = |b: &Value, name: &str| -> String {
        b["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["hostname"] == name)
            .map(|h| h["action"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let handed = line(&body, "away");
    assert!(
        handed.starts_with("job handed out at ") && handed.ends_with("not yet fetched by the host"),
        "{handed}"
    );
    // A day later, with "away" not seen since: its line says the job waits
    // for that host, not that the host is installing.
    s.advance(25 * 3600);
    let jobs = s.jobs(&here).await;
    assert_eq!(jobs.len(), 1);
    assert!(s
        .steps(&here, &jobs[0].id, &[("received", None)])
        .await
        .is_success());
    let (_, body) = s.get("/api/v1/rollouts/r1").await;
    assert!(
        line(&body, "away").contains("waiting for the host: offline since"),
        "{body}"
    );
    assert!(
        line(&body, "here").starts_with("in progress since"),
        "{body}"
    );
    assert_eq!(body["status"], "running");
    // Past the rollout's expiry no host is handed the job any more (its
    // agent would refuse it), "here" reports its install done, and "away"
    // still has not come back. Its job is taken back, its line says the
    // rollout expired, and the rollout is complete instead of waiting for
    // ever.
    s.advance(24 * 3600);
    assert!(
        s.jobs(&away).await.is_empty(),
        "an expired job is not handed out"
    );
    let status = s
        .steps(
            &here,
            &jobs[0].id,
            &[
                ("installed", Some(("3.0.15-1~deb12u1", "3.0.16-1~deb12u1"))),
                ("succeeded", None),
            ],
        )
        .await;
    assert!(status.is_success());
    let body = s.rollout_until("r1", |b| b["status"] == "complete").await;
    assert_eq!(line(&body, "away"), "not started: the rollout expired");
    assert_eq!(line(&body, "here"), "succeeded");
    let (_, lines) = s.get("/api/v1/rollouts/r1").await;
    let away_line = lines["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hostname"] == "away")
        .unwrap()
        .clone();
    assert_eq!(away_line["progress"], "not_started", "{away_line}");
    let (_, audit) = s.get("/api/v1/audit?limit=10000").await;
    assert!(
        audit
            .to_string()
            .contains("1 jobs no host fetched are withdrawn"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_over_a_mixed_fleet_gives_each_host_a_job_for_its_own_package_manager() {
    let s = spawn(Config::default()).await;
    let deb = s.enrolled("deb-1").await;
    let mut inv = host_offering("deb-1", s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
    inv.packages.push(package("zstd", "1.5.4-2"));
    s.put_inventory(&deb.credential, &inv).await;
    let rocky = s.enrolled("rocky-1").await;
    let rpm = |name: &str, version: &str| Package {
        manager: Manager::Rpm,
        arch: "x86_64".into(),
        ..package(name, version)
    };
    let mut inv = inventory(
        "rocky-1",
        s.now(),
        vec![
            rpm("openssl-libs", "1:3.0.7-25.el9_3"),
            rpm("zstd", "1.5.4-2"),
        ],
    );
    inv.os.id = "rocky".into();
    inv.os.version_id = Some("9.3".into());
    inv.os.codename = None;
    s.put_inventory(&rocky.credential, &inv).await;
    // A host whose job is zstd alone: its manager is its own, not whichever
    // of the two frozen zstd entries comes first.
    let small = s.enrolled("rocky-2").await;
    let mut inv = inventory("rocky-2", s.now(), vec![rpm("zstd", "1.5.4-2")]);
    inv.os.id = "rocky".into();
    inv.os.version_id = Some("9.3".into());
    inv.os.codename = None;
    s.put_inventory(&small.credential, &inv).await;
    // Each named version is frozen for the managers that have that package:
    // zstd 1.5.5-1 for both.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(json!({"name": "mixed", "reason": "openssl everywhere",
                        "packages": ["libssl3=3.0.16-1~deb12u1", "openssl-libs=1:3.0.7-27.el9",
                                     "zstd=1.5.5-1"],
                        "rings": [{"name": "all", "size": "rest"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let managers: Vec<(String, String)> = body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["manager"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut managers = managers;
    managers.sort();
    assert_eq!(
        managers,
        [
            ("libssl3".into(), "dpkg".into()),
            ("openssl-libs".into(), "rpm".into()),
            ("zstd".into(), "dpkg".into()),
            ("zstd".into(), "rpm".into()),
        ]
    );
    let names = |job: &protocol::job::Job| -> Vec<String> {
        job.packages.iter().map(|p| p.name.clone()).collect()
    };
    let jobs = s.jobs(&deb).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].manager, Manager::Dpkg);
    assert_eq!(names(&jobs[0]), ["libssl3", "zstd"]);
    let jobs = s.jobs(&rocky).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].manager, Manager::Rpm, "{:?}", jobs[0]);
    assert_eq!(names(&jobs[0]), ["openssl-libs", "zstd"]);
    assert_eq!(jobs[0].packages[0].version, "1:3.0.7-27.el9");
    let jobs = s.jobs(&small).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].manager, Manager::Rpm, "{:?}", jobs[0]);
    assert_eq!(names(&jobs[0]), ["zstd"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_under_a_scheduled_policy_starts_at_the_policy_s_next_time() {
    let s = spawn(Config::default()).await;
    let host = s.enrolled("office-1").await;
    let inv = host_offering("office-1", s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
    s.put_inventory(&host.credential, &inv).await;
    // Patch Tuesday evening. T0 is Thursday 28 May 2026, 20:26 UTC: the
    // next second Tuesday is 9 June.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/policies/patch-tuesday",
            Some(json!({"hosts": "os = debian",
                        "schedule": "second tuesday of every month at 22:00"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let create = |name: &str, start: Option<&str>| {
        let mut body = json!({"name": name, "reason": "June updates", "packages": ["libssl3"],
                              "policy": "patch-tuesday", "deadline_days": 14,
                              "rings": [{"name": "all", "size": "rest"}]});
        if let Some(start) = start {
            body["start"] = json!(start);
        }
        body
    };
    for (start, error) in [
        (
            "whenever",
            "start \"whenever\": use now, scheduled or a time",
        ),
        ("2026-05-01T00:00:00Z", "has passed; use now"),
    ] {
        let (status, body) = s
            .admin(
                reqwest::Method::POST,
                "/api/v1/rollouts",
                Some(create("bad", Some(start))),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().contains(error), "{body}");
    }
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(create("june", None)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["starts_at"], "2026-06-09T22:00:00Z");
    assert_eq!(
        body["rings"][0]["reason"],
        "waiting: the rollout is scheduled to start at 2026-06-09 22:00 UTC"
    );
    assert!(s.jobs(&host).await.is_empty(), "nothing before its time");
    // At its time the executor starts the first ring by itself.
    s.advance(1_781_042_400 - s.now().as_second() + 1);
    let body = s
        .rollout_until("june", |b| b["hosts"][0]["progress"] == "assigned")
        .await;
    assert_eq!(body["rings"][0]["state"], "running", "{body}");
    let jobs = s.jobs(&host).await;
    assert_eq!(jobs.len(), 1);
    // Installed an hour after the start: the review's clocks run from the
    // first ring's start, and the deadline (14 days from creation) is met.
    s.advance(3600);
    s.steps(
        &host,
        &jobs[0].id,
        &[
            ("received", None),
            ("installed", Some(("3.0.15-1~deb12u1", "3.0.16-1~deb12u1"))),
            ("succeeded", None),
        ],
    )
    .await;
    s.rollout_until("june", |b| b["status"] == "complete").await;
    let (_, review) = s.get("/api/v1/rollouts/june/review").await;
    assert_eq!(review["succeeded"], 1, "{review}");
    assert_eq!(review["seconds_to_50_percent"], 3600, "{review}");
    assert_eq!(review["seconds_to_95_percent"], 3600, "{review}");
    assert_eq!(review["deadline_met"], true, "{review}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_approved_for_the_pilot_only_holds_the_next_ring_until_approved_for_it() {
    let s = spawn(Config::default()).await;
    let mut hosts = Vec::new();
    for name in ["pilot-1", "web-2"] {
        let host = s.enrolled(name).await;
        let inv = host_offering(name, s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
        s.put_inventory(&host.credential, &inv).await;
        hosts.push(host);
    }
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/hosts/{}/attributes", hosts[0].host_id),
            Some(json!({"tags": ["pilot"]})),
        )
        .await;
    assert!(status.is_success());
    let title = "libssl3=3.0.16-1~deb12u1";
    let approve =
        |rings: Value| json!({"verdict": "approve", "rings": rings, "comment": "tried in the lab"});
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/approvals/{title}"),
            Some(approve(json!(["pilot"]))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(
                json!({"name": "r1", "reason": "monthly", "updates": "approved",
                        "rings": [{"name": "pilot", "size": "1"},
                                  {"name": "broad", "size": "rest", "wait_business_days": 0}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let jobs = s.jobs(&hosts[0]).await;
    assert_eq!(jobs.len(), 1, "the pilot may have it");
    s.steps(
        &hosts[0],
        &jobs[0].id,
        &[
            ("received", None),
            ("installed", Some(("3.0.15-1~deb12u1", "3.0.16-1~deb12u1"))),
            ("succeeded", None),
        ],
    )
    .await;
    // The pilot passed; the broad ring waits for the approval to reach it.
    let body = s
        .rollout_until("r1", |b| b["rings"][0]["state"] == "passed")
        .await;
    assert_eq!(
        body["rings"][1]["reason"],
        format!("waiting: {title} is approved for ring pilot only"),
        "{body}"
    );
    assert!(s.jobs(&hosts[1]).await.is_empty());
    // Approved for every ring: the broad ring starts within a second.
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/approvals/{title}"),
            Some(approve(json!([]))),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.rollout_until("r1", |b| {
        b["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["progress"] != "not_started")
    })
    .await;
    assert_eq!(s.jobs(&hosts[1]).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_deploys_by_itself_starts_a_rollout_of_the_approved_updates_at_its_time() {
    let s = spawn(Config::default()).await;
    let host = s.enrolled("night-1").await;
    let inv = host_offering("night-1", s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
    s.put_inventory(&host.credential, &inv).await;
    // auto_deploy without a schedule is refused.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/policies/nightly",
            Some(json!({"hosts": "os = debian", "auto_deploy": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("give a schedule"),
        "{body}"
    );
    // Every evening at 21:00; T0 is 20:26 UTC.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/policies/nightly",
            Some(
                json!({"hosts": "os = debian", "schedule": "every day at 21:00",
                        "auto_deploy": true}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        server::deployments::deploy_due(&s.state).await.is_empty(),
        "not due yet"
    );
    // Due, with nothing approved: said, audited, no rollout.
    s.advance(35 * 60);
    let done = server::deployments::deploy_due(&s.state).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["started"], false);
    assert!(
        done[0]["why"]
            .as_str()
            .unwrap()
            .contains("offer no approved update"),
        "{done:?}"
    );
    assert!(
        server::deployments::deploy_due(&s.state).await.is_empty(),
        "once per time"
    );
    // Approved during the day: the next evening's run starts a rollout of
    // it under the policy, at once, and hands out the job.
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/approvals/libssl3=3.0.16-1~deb12u1",
            Some(json!({"verdict": "approve", "comment": "tested"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.advance(24 * 3600);
    let done = server::deployments::deploy_due(&s.state).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["started"], true, "{done:?}");
    assert_eq!(done[0]["rollout"], "nightly-20260529-2100");
    let (status, body) = s.get("/api/v1/rollouts/nightly-20260529-2100").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["created_by"], "scheduler");
    assert_eq!(
        body["reason"],
        "Scheduled by policy nightly (every day at 21:00)"
    );
    assert_eq!(body["starts_at"], Value::Null, "started at its time");
    assert_eq!(s.jobs(&host).await.len(), 1);
    let (_, audit) = s.get("/api/v1/audit?subject=policies/nightly").await;
    let runs = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "scheduled-rollout")
        .count();
    assert_eq!(runs, 2, "{audit}");
}

/// Python's standard SMTP server (`smtpd`, Python 3.11) on a free port,
/// printing every mail it receives to a file.
struct MailRelay {
    port: u16,
    out: std::path::PathBuf,
    child: std::process::Child,
}

impl MailRelay {
    fn start(dir: &std::path::Path) -> MailRelay {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = dir.join("relay.out");
        let child = std::process::Command::new("/usr/bin/python3")
            .args([
                "-W",
                "ignore",
                "-u",
                "-m",
                "smtpd",
                "-n",
                "-c",
                "DebuggingServer",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(std::fs::File::create(&out).unwrap())
            .spawn()
            .expect("/usr/bin/python3 runs (cargo xtask setup installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        MailRelay { port, out, child }
    }

    /// Every mail so far, as text: the relay prints each line as a Python
    /// bytes literal; quoted-printable soft line breaks are joined and its
    /// escaped `=` read back (a part with a line over 76 characters, such
    /// as the CSV's definitions, is sent quoted-printable).
    fn text(&self) -> String {
        self.raw().replace("=\n", "").replace("=3D", "=")
    }

    /// Every mail so far, each line as sent (quoted-printable soft breaks
    /// kept): base64 parts read right from it.
    fn raw(&self) -> String {
        let raw = std::fs::read_to_string(&self.out).unwrap_or_default();
        let lines: Vec<&str> = raw
            .lines()
            .map(|l| {
                l.strip_prefix("b'")
                    .or_else(|| l.strip_prefix("b\""))
                    .and_then(|l| l.strip_suffix('\'').or_else(|| l.strip_suffix('"')))
                    .unwrap_or(l)
            })
            .collect();
        lines.join("\n")
    }

    /// Waits for a mail whose text contains `needle`; returns all mail so far.
    async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..100 {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "no mail with {needle:?}; the relay has: {}",
            std::fs::read_to_string(&self.out).unwrap_or_default()
        );
    }
}

impl Drop for MailRelay {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_asks_to_defer_an_approver_decides_and_the_chain_of_communication_is_mailed() {
    let dir = scratch("mail");
    let relay = MailRelay::start(&dir.0);
    let s = spawn(Config {
        smtp: Some(server::notify::Smtp {
            url: format!("smtp://127.0.0.1:{}", relay.port),
            from: "patchwell@example.org".into(),
        }),
        ..Config::default()
    })
    .await;
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/contacts/desk",
            Some(json!({"audience": "patch-team", "email": "patch-team@example.org"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let host = s.enrolled("finance-7").await;
    let inv = host_offering("finance-7", s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
    s.put_inventory(&host.credential, &inv).await;

    // A group budget that is not a budget is refused before anything is stored.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(json!({"name": "r0", "reason": "monthly", "group_budgets": {"finance": "lots"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("group_budgets finance"),
        "{body}"
    );

    // The rollout's creation is mailed with its reason and schedule.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(json!({"name": "r1", "reason": "December security updates",
                        "packages": ["libssl3"],
                        "rings": [{"name": "all", "size": "rest", "manual_approval": true}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mail = relay
        .wait_for("Subject: Rollout r1: December security updates")
        .await;
    assert!(mail.contains("To: patch-team@example.org"), "{mail}");
    assert!(mail.contains("libssl3 3.0.16-1~deb12u1"), "{mail}");
    assert!(
        mail.contains("- ring all (1 hosts, then a wait of 0 business days): waiting: a person must approve its start"),
        "{mail}"
    );

    // The user asks through the agent; a request without a justification
    // or with a date in the past is refused and says why.
    let ask = |until: Timestamp, justification: &str| json!({"until": until, "justification": justification, "user": "tom"});
    let until = s.now() + jiff::SignedDuration::from_hours(72);
    let (status, body) = s
        .agent(
            reqwest::Method::POST,
            "/api/v1/agent/deferrals",
            &host.credential,
            ask(until, "no"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("business justification"),
        "{body}"
    );
    let past = s.now() - jiff::SignedDuration::from_hours(1);
    let (status, body) = s
        .agent(
            reqwest::Method::POST,
            "/api/v1/agent/deferrals",
            &host.credential,
            ask(past, "quarter-end close runs on this laptop"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not in the future"),
        "{body}"
    );
    let (status, request) = s
        .agent(
            reqwest::Method::POST,
            "/api/v1/agent/deferrals",
            &host.credential,
            ask(until, "quarter-end close runs on this laptop"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    assert_eq!(request["state"], "pending");
    let id = request["id"].as_str().unwrap().to_owned();
    let mail = relay
        .wait_for("Subject: Deferral requested for finance-7")
        .await;
    assert!(
        mail.contains("quarter-end close runs on this laptop"),
        "{mail}"
    );

    // A pending request holds nothing back: the approved ring hands the
    // job out.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/r1/approve",
            Some(json!({"ring": "all"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hosts"][0]["progress"], "assigned");

    // Only an approver decides; a viewer may not.
    let viewer = s.user("vic", "operator").await;
    let (status, _) = s
        .call(
            Some(&viewer),
            reqwest::Method::POST,
            &format!("/api/v1/deferrals/{id}/grant"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, granted) = s
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/deferrals/{id}/grant"),
            Some(json!({"reason": "close is business critical"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["state"], "granted");
    assert_eq!(granted["withdrawn_from"], json!(["r1"]));
    assert!(
        s.jobs(&host).await.is_empty(),
        "the undelivered job was taken back"
    );
    let shown = s
        .rollout_until("r1", |r| {
            r["hosts"][0]["action"]
                .as_str()
                .unwrap()
                .starts_with("deferred")
        })
        .await;
    let action = shown["hosts"][0]["action"].as_str().unwrap();
    assert!(
        action.contains("quarter-end close runs on this laptop (asked by tom on host"),
        "{action}"
    );
    assert!(action.ends_with("granted by admin)"), "{action}");
    relay.wait_for("Subject: Deferral").await;
    relay.wait_for("granted the deferral of host").await;

    // Decided once: a second decision is a conflict; refusing needs a reason.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/deferrals/{id}/refuse"),
            Some(json!({"reason": "too late"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, second) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/deferrals",
            Some(json!({"host": host.host_id, "until": until, "user": "tom",
                        "justification": "the auditors are on site all week"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_id = second["id"].as_str().unwrap();
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/deferrals/{second_id}/refuse"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/deferrals/{second_id}/refuse"),
            Some(json!({"reason": "one deferral a quarter"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, mine) = s
        .agent(
            reqwest::Method::GET,
            "/api/v1/agent/deferrals",
            &host.credential,
            json!(null),
        )
        .await;
    let states: Vec<&str> = mine["deferrals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.len(), 2);
    assert!(
        states.contains(&"granted") && states.contains(&"refused"),
        "{mine}"
    );

    // When the deferral ends, the host gets its job at its next check-in.
    // (The executor looks at every running rollout each 30 s; a note makes
    // it look at this one now.)
    s.advance(73 * 3600);
    let (status, _) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/r1/notes",
            Some(json!({"note": "deferral over"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.rollout_until("r1", |r| r["hosts"][0]["progress"] == "assigned")
        .await;
    let jobs = s.jobs(&host).await;
    assert_eq!(jobs.len(), 1);

    // It succeeds; the review's action raises a baseline to the result.
    assert_eq!(
        s.steps(
            &host,
            &jobs[0].id,
            &[
                ("received", None),
                ("installed", Some(("3.0.15-1~deb12u1", "3.0.16-1~deb12u1"))),
                ("succeeded", None)
            ]
        )
        .await,
        StatusCode::NO_CONTENT
    );
    s.rollout_until("r1", |r| r["status"] == "complete").await;
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/baselines/finance",
            Some(json!({"group": "finance", "minimum": [{"package": "bash", "version": "5.2.15-2+b2"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, raised) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/r1/raise-baseline",
            Some(json!({"baseline": "finance"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{raised}");
    assert_eq!(
        raised["changes"],
        json!(["libssl3: none -> 3.0.16-1~deb12u1"])
    );
    let (_, baseline) = s.get("/api/v1/baselines/finance").await;
    let minimum = &baseline["minimum"];
    assert!(
        minimum
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["package"] == "libssl3" && m["version"] == "3.0.16-1~deb12u1"),
        "{baseline}"
    );
    // Raising again changes nothing.
    let (_, again) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts/r1/raise-baseline",
            Some(json!({"baseline": "finance"})),
        )
        .await;
    assert_eq!(again["changes"], json!([]));
    let (_, log) = s.get("/api/v1/audit?limit=100").await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "request-deferral",
        "grant-deferral",
        "refuse-deferral",
        "raise-baseline",
    ] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_carry_their_policys_window_openings_and_reboot_terms() {
    let s = spawn(Config::default()).await;
    let host = s.enrolled("night-1").await;
    let inv = host_offering("night-1", s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
    s.put_inventory(&host.credential, &inv).await;
    // T0 is Thursday 28 May 2026, 20:26 UTC: inside tonight's window.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/policies/nightly",
            Some(json!({"hosts": "os = debian",
                        "windows": [{"opens": "every day at 20:00", "hours": 2}],
                        "reboot_max_deferral_hours": 8})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(
                json!({"name": "r1", "reason": "nightly", "packages": ["libssl3"],
                        "policy": "nightly", "reboot": "if_required",
                        "rings": [{"name": "all", "size": "rest"}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let jobs = s.jobs(&host).await;
    assert_eq!(jobs.len(), 1);
    let windows = &jobs[0].windows;
    assert_eq!(
        (windows[0].start, windows[0].end),
        (
            "2026-05-28T20:00:00Z".parse().unwrap(),
            "2026-05-28T22:00:00Z".parse().unwrap()
        )
    );
    // Every night for the next 60 days, tonight's included.
    assert_eq!(windows.len(), 61);
    assert_eq!(
        windows[1].start,
        "2026-05-29T20:00:00Z".parse::<Timestamp>().unwrap()
    );
    let terms = jobs[0].reboot_deferral.expect("a reboot may be put off");
    assert_eq!((terms.max_deferrals, terms.defer_minutes), (3, 60));
    assert_eq!(
        terms.deadline,
        s.now() + jiff::SignedDuration::from_hours(8),
        "the policy's maximum deferral"
    );
}

/// The console through a browser's eyes: forms posted with the session
/// cookie, redirects not followed.
struct Browser {
    http: reqwest::Client,
    url: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(s: &TestServer) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            url: s.url.clone(),
            cookie: None,
        }
    }

    /// Signs in through the form; the session cookie is kept.
    async fn sign_in(&mut self, user: &str, password: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}/console/login", self.url))
            .header("origin", &self.url)
            .form(&[
                ("username", user),
                ("password", password),
                ("next", "/console/hosts"),
            ])
            .send()
            .await
            .unwrap();
        if let Some(c) = resp.headers().get("set-cookie") {
            let c = c.to_str().unwrap();
            self.cookie = Some(c.split(';').next().unwrap().to_owned());
        }
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (resp.status(), location)
    }

    fn with_cookie(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .with_cookie(self.http.get(format!("{}{path}", self.url)))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let location = resp.headers().get("location").cloned();
        let text = resp.text().await.unwrap();
        match location {
            Some(l) if status.is_redirection() => (status, l.to_str().unwrap().to_owned()),
            _ => (status, text),
        }
    }

    /// Posts a form from the console's own origin (or `origin`).
    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> (StatusCode, String) {
        let resp = self
            .with_cookie(self.http.post(format!("{}{path}", self.url)))
            .header("origin", origin.unwrap_or(&self.url))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let location = resp.headers().get("location").cloned();
        let text = resp.text().await.unwrap();
        match location {
            Some(l) => (status, l.to_str().unwrap().to_owned()),
            None => (status, text),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_shows_the_fleet_and_acts_through_its_forms() {
    let s = spawn(Config::default()).await;
    for name in ["web1", "web2"] {
        let host = s.enrolled(name).await;
        let inv = host_offering(name, s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
        assert!(s.put_inventory(&host.credential, &inv).await.0.is_success());
    }
    let mut b = Browser::new(&s);

    // Anyone not signed in is sent to the form, and comes back after it.
    let (status, to) = b.get("/console/hosts?q=tag").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, "/console/login?next=/console/hosts%3Fq%3Dtag");
    let (status, to) = b.sign_in("admin", "not the password").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        to.contains("error=wrong%20user%20name%20or%20password"),
        "{to}"
    );
    assert!(b.cookie.is_none());
    let (status, to) = b.sign_in("admin", &s.admin_password).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/hosts")
    );

    // The dashboard: both hosts compliant (no catalog), one update waiting.
    let (status, page) = b.get("/console").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("2 of 2 hosts compliant")
            && page.contains("compliant: no open security finding past its deadline")
            && page.contains("2 of 2 hosts fully patched"),
        "{page}"
    );
    assert!(page.contains(r#"<div class="figure">1</div><div class="label"><a href="/console/updates?only=pending">updates waiting for approval"#), "{page}");

    // Hosts: a query filters, a bad one says why, sorting is on the server.
    let (_, page) = b.get("/console/hosts?q=hostname%20%3D%20web2").await;
    assert!(
        page.contains(">web2</a>") && !page.contains(">web1</a>"),
        "{page}"
    );
    let (status, page) = b.get("/console/hosts?q=hostname%20%3D").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"class="error" role="alert""#), "{page}");
    let (_, page) = b.get("/console/hosts?sort=hostname&dir=desc").await;
    assert!(page.find(">web2</a>").unwrap() < page.find(">web1</a>").unwrap());
    assert!(page.contains(r#"aria-sort="descending""#));

    // An update approved by title through the form; a post from another
    // origin is refused and decides nothing.
    let title = "libssl3=3.0.16-1~deb12u1";
    let (status, _) = b
        .post(
            "/console/approvals",
            &[("title", title), ("verdict", "decline")],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, to) = b
        .post(
            "/console/approvals",
            &[
                ("title", title),
                ("verdict", "approve"),
                ("back", "/console/updates"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    assert!(to.starts_with("/console/updates?done="), "{to}");
    let (_, updates) = s.get("/api/v1/updates").await;
    assert_eq!(updates[0]["title"], title);
    assert_eq!(updates[0]["decision"], "approved");
    assert_eq!(updates[0]["hosts"], 2);

    // A rollout of approved updates, started from the form; then halted.
    let (status, to) = b
        .post(
            "/console/rollouts",
            &[
                ("name", "c1"),
                ("reason", "monthly patching"),
                ("updates", "approved"),
                ("pilot", "1"),
                ("wait", "0"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (status, page) = b.get("/console/rollouts/c1").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("libssl3 3.0.16-1~deb12u1"), "{page}");
    assert!(
        page.contains(r#"<strong data-test="status">running</strong>"#),
        "{page}"
    );
    let (status, to) = b
        .post(
            "/console/rollouts/c1/act",
            &[("action", "halt"), ("reason", "change freeze")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (_, body) = s.get("/api/v1/rollouts/c1").await;
    assert_eq!(body["status"], "halted");
    // The live progress says so too, as a server-sent event.
    let mut live = b
        .with_cookie(b.http.get(format!("{}/console/rollouts/c1/live", s.url)))
        .send()
        .await
        .unwrap();
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let first = String::from_utf8(live.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(
        first.starts_with("data: ") && first.contains(">halted</strong>"),
        "{first}"
    );
    drop(live);

    // Every decision is in the audit log the console shows.
    let (_, page) = b.get("/console/audit").await;
    for action in [
        "halt-rollout",
        "create-rollout",
        "approvals/libssl3=3.0.16-1~deb12u1",
    ] {
        assert!(
            page.contains(action),
            "{action} missing from the audit page"
        );
    }
    assert!(page.contains("The chain is intact"));

    // The monthly report, as a page and as CSV.
    let (status, page) = b.get("/console/reports/monthly").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(r#"data-test="report-compliance">100.0%"#),
        "{page}"
    );
    assert!(page.contains("<svg class=\"chart\""), "{page}");
    let (status, csv) = b.get("/console/reports/monthly.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.starts_with("section,item,value,detail\n"), "{csv}");
    assert!(csv.contains("\nsummary,hosts,2,\n"), "{csv}");
    assert!(csv.contains("\nrollouts,c1,0,targets 2; failed 0"), "{csv}");
    let (status, page) = b.get("/console/reports/monthly?month=2026-13").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("write it as YYYY-MM"), "{page}");

    // An auditor reads, and a decision from them is refused with the reason.
    s.user("audrey", "auditor").await;
    let mut auditor = Browser::new(&s);
    auditor.sign_in("audrey", "correct horse battery").await;
    let (_, page) = auditor.get("/console/updates").await;
    assert!(
        !page.contains(">Approve</button>"),
        "no decision controls for an auditor"
    );
    let (status, page) = auditor
        .post(
            "/console/approvals",
            &[("title", title), ("verdict", "decline")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("user audrey has role auditor, which may not"),
        "{page}"
    );
    let (_, updates) = s.get("/api/v1/updates").await;
    assert_eq!(updates[0]["decision"], "approved", "nothing changed");

    // Signing out ends the session.
    let (status, _) = b.post("/console/logout", &[], None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, to) = b.get("/console").await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/login?next=/console")
    );
}

/// The text a PDF reader finds in `pdf` (poppler's `pdftotext`, which
/// `cargo xtask setup` installs).
fn pdf_text(pdf: &[u8]) -> String {
    let dir = scratch("pdf");
    let file = dir.0.join("report.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext runs (cargo xtask setup installs poppler-utils)");
    assert!(
        out.status.success(),
        "pdftotext could not read the report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_is_a_pdf_a_reader_opens_and_is_mailed_on_its_schedule() {
    let dir = scratch("report-mail");
    let relay = MailRelay::start(&dir.0);
    let s = spawn(Config {
        smtp: Some(server::notify::Smtp {
            url: format!("smtp://127.0.0.1:{}", relay.port),
            from: "patchwell@example.org".into(),
        }),
        ..Config::default()
    })
    .await;
    for (name, audience, email) in [
        ("board", "management", "board@example.org"),
        ("desk", "patch-team", "desk@example.org"),
    ] {
        let (status, body) = s
            .admin(
                reqwest::Method::PUT,
                &format!("/api/v1/contacts/{name}"),
                Some(json!({"audience": audience, "email": email})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for name in ["web1", "web2"] {
        let host = s.enrolled(name).await;
        let inv = host_offering(name, s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
        assert!(s.put_inventory(&host.credential, &inv).await.0.is_success());
    }

    // The report as a PDF that a reader opens, saying what the HTML says.
    let month = s.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let resp = s.report(month, "pdf").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert_eq!(
        resp.headers()["content-disposition"],
        format!(
            "attachment; filename=\"patchwell-compliance-{}.pdf\"",
            month.strftime("%Y-%m")
        )
        .as_str()
    );
    let text = pdf_text(&resp.bytes().await.unwrap());
    assert!(
        text.contains(&format!("Compliance report: {}", month.strftime("%B %Y"))),
        "{text}"
    );
    assert!(
        text.contains("100.0%") && text.contains("compliant (2 of 2 hosts)"),
        "{text}"
    );
    assert!(
        text.contains("Deadlines per class at the month's end"),
        "{text}"
    );
    assert!(
        text.contains(
            "Pending at the month's end: 1 updates offered to the fleet waited for a decision"
        ),
        "{text}"
    );
    assert!(text.contains("libssl3=3.0.16-1~deb12u1"), "{text}");
    // A past month in which no posture was kept has no end figures: it
    // says so, rather than show today's as that month's.
    let before = month.first_of_month().yesterday().unwrap();
    let resp = s.report(before, "pdf").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = pdf_text(&resp.bytes().await.unwrap());
    assert!(
        text.contains("No posture was kept in this month, so there are no figures for its end"),
        "{text}"
    );
    assert!(!text.contains("100.0%"), "today's figures shown: {text}");
    assert!(
        text.contains("Pending: Not kept for this month's end"),
        "{text}"
    );
    assert!(
        !text.contains("libssl3=3.0.16-1~deb12u1"),
        "today's pending update shown as that month's: {text}"
    );
    let (status, body) = s
        .admin(
            reqwest::Method::GET,
            "/api/v1/reports/monthly?format=docx",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("format \"docx\": use pdf or csv"),
        "{body}"
    );

    // A schedule that cannot be read is refused and says why.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/report-schedules/monthly",
            Some(json!({"when": "at the start of the month"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("report schedule monthly"),
        "{body}"
    );

    // Mailed on the first Monday of each month, reporting the month before.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/report-schedules/monthly",
            Some(json!({"when": "first monday of every month at 08:00"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, listed) = s.get("/api/v1/report-schedules").await;
    let next: Timestamp = listed[0]["now"]["next_mailing"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next > s.now());
    let reported = next
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_month()
        .yesterday()
        .unwrap();
    assert_eq!(
        listed[0]["now"]["reports_month"],
        reported.strftime("%Y-%m").to_string()
    );
    assert!(
        server::report_mail::mail_due(&s.state).await.is_empty(),
        "not due yet"
    );
    // The posture kept today is the reported month's last.
    server::posture::keep_today(&s.state).await.unwrap();
    s.advance(next.as_second() - s.now().as_second() + 60);
    // Declined since: the update is no longer pending today, but it was at
    // the reported month's end, which is what the report tells.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/approvals/libssl3=3.0.16-1~deb12u1",
            Some(json!({"verdict": "decline", "comment": "replaced by the next point release"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let done = server::report_mail::mail_due(&s.state).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["mailed"], json!(["board@example.org"]));
    assert_eq!(done[0]["month"], reported.strftime("%Y-%m").to_string());
    let subject = format!(
        "Subject: Patchwell compliance report: {}",
        reported.strftime("%B %Y")
    );
    let mail = relay.wait_for(&subject).await;
    assert!(mail.contains("To: board@example.org"), "{mail}");
    assert!(
        !mail.contains("To: desk@example.org"),
        "the patch team is not this schedule's audience: {mail}"
    );
    let file = format!("patchwell-compliance-{}", reported.strftime("%Y-%m"));
    assert!(mail.contains(&format!("\"{file}.csv\"")), "{mail}");
    assert!(
        mail.contains("pending,libssl3=3.0.16-1~deb12u1,2,security"),
        "{mail}"
    );
    // The PDF attached is one a reader opens.
    let raw = relay.raw();
    let at = raw
        .find(&format!("\"{file}.pdf\""))
        .expect("the PDF is attached");
    let start = at + raw[at..].find("\n\n").unwrap() + 2;
    let encoded: String = raw[start..]
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("--"))
        .collect();
    use base64::Engine as _;
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(&encoded)
        .expect("base64");
    let text = pdf_text(&pdf);
    assert!(
        text.contains(&format!(
            "Compliance report: {}",
            reported.strftime("%B %Y")
        )),
        "{text}"
    );
    assert!(
        mail.contains("Compliance: 100.0% (2 of 2 hosts have no open finding)"),
        "{mail}"
    );
    assert!(
        mail.contains("Updates waiting for a decision at the month's end: 1"),
        "{mail}"
    );
    assert!(
        server::report_mail::mail_due(&s.state).await.is_empty(),
        "mailed once per time, not once per tick"
    );
    let (_, audit) = s
        .get("/api/v1/audit?subject=report-schedules/monthly")
        .await;
    let entries = audit.as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "mail-report" && e["actor"] == "scheduler"),
        "{audit}"
    );

    // Mailed now by hand; a schedule whose audience has no address says so.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/report-schedules/monthly/send",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mailed"], json!(["board@example.org"]));
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/report-schedules/users",
            Some(json!({"when": "every monday at 09:00", "audiences": ["end-users"], "formats": ["csv"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/report-schedules/users/send",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no contact of the audiences end-users has an email address"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_defines_changes_and_deletes_planning_objects_through_its_forms() {
    let s = spawn(Config::default()).await;
    let host = s.enrolled("web1").await;
    let mut b = Browser::new(&s);
    b.sign_in("admin", &s.admin_password).await;

    // The form starts from an example; a document that is not JSON, or
    // that the server refuses, comes back with why and as it was typed.
    let (status, page) = b.get("/console/plans/exemptions").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(r#"<textarea id="document" name="document""#),
        "{page}"
    );
    assert!(page.contains("vendor application certified"), "{page}");
    let (status, page) = b
        .post(
            "/console/plans/exemptions",
            &[("name", "legacy-app"), ("document", "{\"reason\": ")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains(r#"class="error" role="alert""#) && page.contains("not JSON"),
        "{page}"
    );
    let typed = json!({"host": host.host_id, "advisory": "DSA-5000-1", "reason": "x",
                       "expires": "2020-01-01T00:00:00Z"})
    .to_string();
    let (status, page) = b
        .post(
            "/console/plans/exemptions",
            &[("name", "legacy-app"), ("document", &typed)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("exemption legacy-app"), "{page}");
    assert!(
        page.contains("2020-01-01T00:00:00Z"),
        "the document typed is kept: {page}"
    );

    // A good one is stored, audited, listed, and can be edited and deleted.
    let expires = (s.now() + jiff::SignedDuration::from_hours(24 * 90)).to_string();
    let good = json!({"host": host.host_id, "advisory": "DSA-5000-1",
                      "reason": "vendor application certified on this version only",
                      "control": "host isolated in VLAN 40", "expires": expires})
    .to_string();
    let (status, _) = b
        .post(
            "/console/plans/exemptions",
            &[("name", "legacy-app"), ("document", &good)],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a post from another origin decides nothing"
    );
    let (status, to) = b
        .post(
            "/console/plans/exemptions",
            &[("name", "legacy-app"), ("document", &good)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    assert!(
        to.starts_with("/console/plans/exemptions?done=legacy-app%20saved"),
        "{to}"
    );
    let (_, stored) = s.get("/api/v1/exemptions/legacy-app").await;
    assert_eq!(stored["control"], "host isolated in VLAN 40");
    assert_eq!(
        stored["approver"], "admin",
        "the approver is whoever saved it"
    );
    let (_, page) = b.get("/console/plans/exemptions?edit=legacy-app").await;
    assert!(page.contains("Change legacy-app"), "{page}");
    assert!(page.contains("host isolated in VLAN 40"), "{page}");
    assert!(
        !page.contains("updated_by"),
        "only the document is edited: {page}"
    );
    let (status, to) = b
        .post("/console/plans/exemptions/legacy-app/delete", &[], None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (status, _) = s.get("/api/v1/exemptions/legacy-app").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, audit) = s.get("/api/v1/audit?subject=exemptions/legacy-app").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["exempt", "delete-exemption"], "{audit}");

    // A baseline defined by form, and its compliance page: the host's
    // libssl3 is below it.
    let inv = host_offering("web1", s.now(), "3.0.15-1~deb12u1", "3.0.16-1~deb12u1");
    assert!(s.put_inventory(&host.credential, &inv).await.0.is_success());
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/hosts/{}/attributes", host.host_id),
            Some(json!({"group": "servers"})),
        )
        .await;
    assert!(status.is_success());
    let (status, to) = b
        .post(
            "/console/plans/baselines",
            &[
                ("name", "servers-min"),
                (
                    "document",
                    r#"{"group": "servers", "minimum": [{"package": "libssl3", "version": "3.0.16-1~deb12u1"}]}"#,
                ),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (_, page) = b.get("/console/plans/baselines").await;
    assert!(
        page.contains(r#"href="/console/baselines/servers-min">Compliance</a>"#),
        "{page}"
    );
    let (status, page) = b.get("/console/baselines/servers-min").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(">web1</a>"), "{page}");
    assert!(
        page.contains("libssl3 &gt;= 3.0.16-1~deb12u1 (has 3.0.15-1~deb12u1)"),
        "{page}"
    );
    let (_, page) = b.get("/console/baselines/servers-min?only=at").await;
    assert!(
        !page.contains(">web1</a>"),
        "web1 is not at the baseline: {page}"
    );

    // Report schedules too; mailing one without a relay says why.
    let (status, to) = b
        .post(
            "/console/plans/report-schedules",
            &[
                ("name", "monthly"),
                (
                    "document",
                    r#"{"when": "first monday of every month at 08:00"}"#,
                ),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (_, page) = b.get("/console/reports").await;
    assert!(
        page.contains("first monday of every month at 08:00"),
        "{page}"
    );
    let (status, page) = b
        .post("/console/reports/schedules/monthly/send", &[], None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("the server has no --smtp-url"), "{page}");

    // An auditor reads the forms' pages but is offered no form.
    s.user("audrey", "auditor").await;
    let mut auditor = Browser::new(&s);
    auditor.sign_in("audrey", "correct horse battery").await;
    let (status, page) = auditor.get("/console/plans/report-schedules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Your role may read these but not change them"),
        "{page}"
    );
    assert!(!page.contains("<textarea"), "{page}");
    let (status, page) = auditor
        .post(
            "/console/plans/report-schedules",
            &[
                ("name", "weekly"),
                ("document", r#"{"when": "every monday at 08:00"}"#),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_adds_users_changes_their_roles_and_decides_deferrals() {
    let s = spawn(Config::default()).await;
    let host = s.enrolled("laptop-7").await;
    let mut b = Browser::new(&s);
    b.sign_in("admin", &s.admin_password).await;

    // A user added by form gets a password shown once, and can sign in.
    let (status, page) = b
        .post(
            "/console/users",
            &[("username", "paula"), ("role", "operator"), ("email", "")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let marker = r#"<code data-test="new-password">"#;
    let at = page.find(marker).expect("the new password is shown") + marker.len();
    let password = &page[at..at + page[at..].find('<').unwrap()];
    assert!(password.len() >= 12, "{password}");
    let mut paula = Browser::new(&s);
    let (status, _) = paula.sign_in("paula", password).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        paula.cookie.is_some(),
        "paula signs in with the password shown"
    );
    let (_, users) = s.get("/api/v1/users").await;
    let paula_row = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "paula")
        .cloned()
        .unwrap();
    assert_eq!(paula_row["role"], "operator");

    // A name taken already is refused with why, the form kept.
    let (status, page) = b
        .post(
            "/console/users",
            &[
                ("username", "paula"),
                ("role", "auditor"),
                ("email", "p@example.org"),
            ],
            None,
        )
        .await;
    assert!(status.is_client_error(), "{status}: {page}");
    assert!(
        page.contains(r#"role="alert""#) && page.contains("p@example.org"),
        "{page}"
    );

    // Role changed, then disabled with a reason: her session ends.
    let (status, to) = b
        .post("/console/users/paula", &[("role", "approver")], None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (_, users) = s.get("/api/v1/users").await;
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == "paula" && u["role"] == "approver"));
    let (status, to) = b
        .post(
            "/console/users/paula",
            &[("disabled", "true"), ("reason", "left the company")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (status, to) = paula.get("/console").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a disabled user is signed out: {to}"
    );
    let (status, to) = paula
        .post("/console/users/admin", &[("role", "auditor")], None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        to.starts_with("/console/login"),
        "signed out, sent to sign in: {to}"
    );
    let (_, users) = s.get("/api/v1/users").await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "admin" && u["role"] == "admin"),
        "a disabled user changes nothing: {users}"
    );

    // Deferrals: two requests; one granted shorter, one refused with why.
    let mut ids = Vec::new();
    for days in [3, 5] {
        let (status, body) = s
            .admin(
                reqwest::Method::POST,
                "/api/v1/deferrals",
                Some(json!({"host": host.host_id, "until": s.now() + jiff::SignedDuration::from_hours(24 * days),
                            "justification": "quarter-end close runs on this laptop"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, page) = b.get("/console/deferrals").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page.matches(">pending</span>").count(), 2, "{page}");
    assert!(
        page.contains("quarter-end close runs on this laptop"),
        "{page}"
    );
    let shorter =
        (s.now() + jiff::SignedDuration::from_hours(24)).to_zoned(jiff::tz::TimeZone::UTC);
    let local = shorter.strftime("%Y-%m-%dT%H:%M").to_string();
    let (status, to) = b
        .post(
            &format!("/console/deferrals/{}/decide", ids[0]),
            // Typed in Tokyo (UTC+9): the offset says so.
            &[
                ("verdict", "grant"),
                ("until", &local),
                ("offset_minutes", "-540"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (status, page) = b
        .post(
            &format!("/console/deferrals/{}/decide", ids[1]),
            &[("verdict", "refuse"), ("reason", "")],
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a refusal needs a reason: {page}"
    );
    assert!(page.contains("refusing needs a reason"), "{page}");
    let (status, to) = b
        .post(
            &format!("/console/deferrals/{}/decide", ids[1]),
            &[
                ("verdict", "refuse"),
                ("reason", "the fix closes a known-exploited hole"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (_, listed) = s.get("/api/v1/deferrals").await;
    let by_id = |id: &str| {
        listed["deferrals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
            .unwrap()
    };
    let granted = by_id(&ids[0]);
    assert_eq!(granted["state"], "granted");
    assert_eq!(granted["decided_by"], "admin");
    let until: Timestamp = granted["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        until.as_second(),
        shorter.timestamp().as_second() / 60 * 60 - 9 * 3600,
        "the time typed is read in the viewer's zone"
    );
    let refused = by_id(&ids[1]);
    assert_eq!(refused["state"], "refused");
    assert_eq!(refused["decision"], "the fix closes a known-exploited hole");
    let (_, page) = b.get("/console/deferrals").await;
    assert!(!page.contains(">pending</span>"), "{page}");
}

/// Two advisories for Debian 12, by source package: openssl's (with a CVE
/// alias) and dpkg's.
const APPROVAL_ADVISORIES: &str = r#"[
  {"id": "DSA-9001-1", "aliases": ["CVE-2026-0001"], "summary": "openssl - security update",
   "published": "2026-05-01T00:00:00Z",
   "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.16-1~deb12u1"}]}]}]},
  {"id": "DSA-9002-1", "aliases": ["CVE-2026-0002"], "summary": "dpkg - security update",
   "published": "2026-05-02T00:00:00Z",
   "affected": [{"package": {"ecosystem": "Debian:12", "name": "dpkg"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.21.23"}]}]}]}
]"#;

/// A Debian 12 host with openssl's and dpkg's binaries (each named with
/// its source), offered the versions that fix both advisories, and tzdata
/// from the stable updates.
fn host_of_two_sources(hostname: &str, at: Timestamp) -> Inventory {
    let from = |name: &str, version: &str, source: &str| {
        let mut p = package(name, version);
        p.source = Some(source.into());
        p
    };
    let mut inv = inventory(
        hostname,
        at,
        vec![
            from("libssl3", "3.0.15-1~deb12u1", "openssl"),
            from("openssl", "3.0.15-1~deb12u1", "openssl"),
            package("dpkg", "1.21.22"),
            from("dpkg-dev", "1.21.22", "dpkg"),
            from("libdpkg-perl", "1.21.22", "dpkg"),
            package("tzdata", "2024a-0+deb12u1"),
        ],
    );
    let offer =
        |name: &str, installed: &str, candidate: &str, suite: &str| protocol::AvailableUpdate {
            manager: Manager::Dpkg,
            name: name.into(),
            arch: "amd64".into(),
            installed: installed.into(),
            candidate: candidate.into(),
            suite: Some(suite.into()),
            codename: None,
            origin: Some("Debian".into()),
            security: suite.ends_with("-security"),
        };
    inv.updates = vec![
        offer(
            "libssl3",
            "3.0.15-1~deb12u1",
            "3.0.16-1~deb12u1",
            "stable-security",
        ),
        offer(
            "openssl",
            "3.0.15-1~deb12u1",
            "3.0.16-1~deb12u1",
            "stable-security",
        ),
        offer("dpkg", "1.21.22", "1.21.23", "stable"),
        offer("dpkg-dev", "1.21.22", "1.21.23", "stable"),
        offer("libdpkg-perl", "1.21.22", "1.21.23", "stable"),
        offer(
            "tzdata",
            "2024a-0+deb12u1",
            "2025b-0+deb12u1",
            "stable-updates",
        ),
    ];
    inv
}

/// Each offered update by title.
async fn updates_by_title(s: &TestServer) -> std::collections::HashMap<String, Value> {
    let (status, updates) = s.get("/api/v1/updates").await;
    assert_eq!(status, StatusCode::OK, "{updates}");
    updates
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["title"].as_str().unwrap().to_owned(), u.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_an_advisory_or_a_source_decides_every_binary_update_it_reaches() {
    let s = spawn(Config::default()).await;
    let dir = scratch("approvals");
    let path = dir.0.join("advisories.json");
    std::fs::write(&path, APPROVAL_ADVISORIES).unwrap();
    let pin = format!("sha256:{}", sha256_hex(APPROVAL_ADVISORIES.as_bytes()));
    let (status, body) = s
        .put_feed("debian", "osv", &path.display().to_string(), &pin)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for name in ["web1", "web2"] {
        let host = s.enrolled(name).await;
        let inv = host_of_two_sources(name, s.now());
        assert!(s.put_inventory(&host.credential, &inv).await.0.is_success());
    }

    // Each binary under its source, with the advisories it fixes; dpkg's
    // updates are security updates because they fix one, though no
    // security suite offers them.
    let u = updates_by_title(&s).await;
    assert_eq!(u.len(), 6, "{u:?}");
    let libssl = &u["libssl3=3.0.16-1~deb12u1"];
    assert_eq!(libssl["source"], "openssl");
    assert_eq!(libssl["advisories"], json!(["DSA-9001-1"]));
    assert_eq!(libssl["hosts"], 2);
    let dev = &u["dpkg-dev=1.21.23"];
    assert_eq!(
        (&dev["source"], &dev["security"], &dev["advisories"]),
        (&json!("dpkg"), &json!(true), &json!(["DSA-9002-1"]))
    );
    let tz = &u["tzdata=2025b-0+deb12u1"];
    assert_eq!(
        (&tz["security"], &tz["advisories"]),
        (&json!(false), &json!([]))
    );
    assert!(u.values().all(|x| x["decision"].is_null()), "{u:?}");

    // A bulk decision with bad titles is refused whole, each one named.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/approvals/bulk",
            Some(
                json!({"titles": ["DSA-9001-1", "DSA-404-1", "source:", "tzdata=2025b-0+deb12u1"],
                        "verdict": "approve", "comment": "lab"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("\"DSA-404-1\": no advisory in the catalog")
            && error.contains("\"source:\"")
            && error.contains("nothing was decided"),
        "{error}"
    );
    let (_, stored) = s.get("/api/v1/approvals").await;
    assert_eq!(stored, json!([]), "nothing stored");
    for (body, says) in [
        (
            json!({"titles": [], "verdict": "approve"}),
            "name at least one",
        ),
        (
            json!({"titles": ["DSA-9001-1"], "verdict": "maybe"}),
            "use approve or decline",
        ),
        (
            json!({"titles": vec!["x=1"; 501], "verdict": "approve"}),
            "at most 500",
        ),
    ] {
        let (status, answer) = s
            .admin(reqwest::Method::POST, "/api/v1/approvals/bulk", Some(body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }

    // By an advisory's alias and by a source package, in one decision.
    let approver = s.user("alice", "approver").await;
    let (status, body) = s
        .call(
            Some(&approver),
            reqwest::Method::POST,
            "/api/v1/approvals/bulk",
            Some(
                json!({"titles": ["CVE-2026-0001", "source:dpkg", "CVE-2026-0001"],
                        "verdict": "approved", "comment": "tested in the lab"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["titles"], json!(["CVE-2026-0001", "source:dpkg"]));
    assert_eq!(body["verdict"], "approved");
    let u = updates_by_title(&s).await;
    for title in ["libssl3=3.0.16-1~deb12u1", "openssl=3.0.16-1~deb12u1"] {
        assert_eq!(u[title]["decision"], "approved", "{title}");
        let by = &u[title]["decided_by"];
        assert_eq!(
            (&by["title"], &by["rank"], &by["by"], &by["comment"]),
            (
                &json!("CVE-2026-0001"),
                &json!("advisory"),
                &json!("alice"),
                &json!("tested in the lab")
            )
        );
    }
    for title in ["dpkg=1.21.23", "dpkg-dev=1.21.23", "libdpkg-perl=1.21.23"] {
        assert_eq!(u[title]["decision"], "approved", "{title}");
        assert_eq!(u[title]["decided_by"]["title"], "source:dpkg");
    }
    assert!(u["tzdata=2025b-0+deb12u1"]["decision"].is_null());
    // Eligibility decides an update's title the same way.
    let (status, e) = s
        .get("/api/v1/approvals/libdpkg-perl=1.21.23/eligibility?ring=broad&class=high")
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["decision"]["state"], "approved", "{e}");
    assert_eq!(e["decided_by"]["title"], "source:dpkg", "{e}");
    // One audit entry per title, each with the comment.
    let (_, log) = s.get("/api/v1/audit?subject=approvals/").await;
    let subjects: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["approvals/CVE-2026-0001", "approvals/source:dpkg"]
    );
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["reason"] == "tested in the lab" && e["action"] == "approve"));

    // An update's own decision wins over its source's.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/approvals/dpkg-dev=1.21.23",
            Some(json!({"verdict": "decline", "comment": "breaks our packaging jobs"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Among advisories, a decline wins over an approval.
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/approvals/DSA-9001-1",
            Some(json!({"verdict": "decline", "comment": "wait for the point release"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let u = updates_by_title(&s).await;
    assert_eq!(u["dpkg-dev=1.21.23"]["decision"], "declined");
    assert_eq!(u["dpkg-dev=1.21.23"]["decided_by"]["rank"], "package");
    assert_eq!(u["libdpkg-perl=1.21.23"]["decision"], "approved");
    assert_eq!(u["libssl3=3.0.16-1~deb12u1"]["decision"], "declined");
    assert_eq!(
        u["libssl3=3.0.16-1~deb12u1"]["decided_by"]["title"],
        "DSA-9001-1"
    );
    let (status, _) = s
        .admin(
            reqwest::Method::DELETE,
            "/api/v1/approvals/DSA-9001-1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A malformed title is refused by the single decision too.
    let (status, body) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/approvals/source:",
            Some(json!({"verdict": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // A rollout of approved updates takes what the advisory and the source
    // approved, not the declined binary nor the undecided one.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(
                json!({"name": "r1", "reason": "monthly", "updates": "approved",
                        "rings": [{"name": "all", "size": "rest"}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut frozen: Vec<String> = body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}={}", text(&p["name"]), text(&p["version"])))
        .collect();
    frozen.sort();
    assert_eq!(
        frozen,
        [
            "dpkg=1.21.23",
            "libdpkg-perl=1.21.23",
            "libssl3=3.0.16-1~deb12u1",
            "openssl=3.0.16-1~deb12u1"
        ]
    );
    assert_eq!(body["status"], "running", "{body}");
    assert!(body["release"].is_null(), "every version approved: {body}");
    // Declining the source after a rollout was made holds what has not
    // started (here a ring waiting for a person to approve its start).
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/rollouts",
            Some(
                json!({"name": "r2", "reason": "monthly", "updates": "approved",
                        "packages": ["libssl3"],
                        "rings": [{"name": "all", "size": "rest", "manual_approval": true}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["packages"][0]["source"], "openssl", "{body}");
    assert_eq!(body["packages"][0]["advisories"], json!(["DSA-9001-1"]));
    let (status, _) = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/approvals/source:openssl",
            Some(json!({"verdict": "decline", "comment": "regression upstream"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let body = s
        .rollout_until("r2", |b| {
            b["rings"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("declined"))
        })
        .await;
    assert_eq!(
        body["rings"][0]["reason"],
        "waiting: libssl3=3.0.16-1~deb12u1 was declined by admin (through source:openssl)",
        "{body}"
    );
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_updates_page_groups_binaries_by_source_and_decides_several_with_one_comment() {
    let s = spawn(Config::default()).await;
    let host = s.enrolled("web1").await;
    let inv = host_of_two_sources("web1", s.now());
    assert!(s.put_inventory(&host.credential, &inv).await.0.is_success());
    let mut b = Browser::new(&s);
    b.sign_in("admin", &s.admin_password).await;

    // dpkg's three binaries under their source, each with a checkbox, and
    // one for the source package itself.
    let (status, page) = b.get("/console/updates").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let dpkg = page
        .find(r#"<tbody data-source="dpkg">"#)
        .expect("dpkg's group");
    let group = &page[dpkg..dpkg + page[dpkg..].find("</tbody>").unwrap()];
    for title in [
        "source:dpkg",
        "dpkg=1.21.23",
        "dpkg-dev=1.21.23",
        "libdpkg-perl=1.21.23",
    ] {
        assert!(
            group.contains(&format!(r#"name="title" value="{title}""#)),
            "{title} in {group}"
        );
    }
    assert!(group.contains("(3 binaries)"), "{group}");

    // Nothing selected: the form says so, with the comment kept.
    let (status, page) = b
        .post(
            "/console/approvals/bulk",
            &[
                ("comment", "tried on the lab machines"),
                ("verdict", "approve"),
                ("back", "/console/updates?only=pending"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains(r#"role="alert""#) && page.contains("name at least one"),
        "{page}"
    );
    assert!(
        page.contains(r#"value="tried on the lab machines""#)
            && page.contains(r#"<option value="pending" selected>"#),
        "the form as it was, on the page it was on: {page}"
    );
    let (_, stored) = s.get("/api/v1/approvals").await;
    assert_eq!(stored, json!([]));

    // A source and one more update, with one comment.
    let (status, to) = b
        .post(
            "/console/approvals/bulk",
            &[
                ("title", "source:dpkg"),
                ("title", "tzdata=2025b-0+deb12u1"),
                ("comment", "tried on the lab machines"),
                ("verdict", "approve"),
                ("back", "/console/updates"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    assert!(to.contains("done=2%20titles%20approved."), "{to}");
    let u = updates_by_title(&s).await;
    for title in [
        "dpkg=1.21.23",
        "dpkg-dev=1.21.23",
        "libdpkg-perl=1.21.23",
        "tzdata=2025b-0+deb12u1",
    ] {
        assert_eq!(u[title]["decision"], "approved", "{title}");
        assert_eq!(
            u[title]["decided_by"]["comment"],
            "tried on the lab machines"
        );
    }
    assert!(u["libssl3=3.0.16-1~deb12u1"]["decision"].is_null());
    let (_, page) = b.get("/console/updates?only=approved&q=dpkg-dev").await;
    assert!(
        page.contains(r#"data-test="decision">approved</strong>"#)
            && page.contains("source:dpkg")
            && page.contains("tried on the lab machines"),
        "{page}"
    );
    // An auditor sees no checkboxes and may not decide.
    s.user("audrey", "auditor").await;
    let mut auditor = Browser::new(&s);
    auditor.sign_in("audrey", "correct horse battery").await;
    let (_, page) = auditor.get("/console/updates").await;
    assert!(!page.contains(r#"type="checkbox""#), "{page}");
    let (status, _) = auditor
        .post(
            "/console/approvals/bulk",
            &[
                ("title", "libssl3=3.0.16-1~deb12u1"),
                ("verdict", "decline"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
