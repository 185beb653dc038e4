//! What the audit log records and what anchors it: enrollment tokens,
//! sign-ins that succeed and fail, actions of hosts recorded as the host's,
//! and the signed checkpoints of the log's head that show a log cut back or
//! rewritten behind the server's back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::api::CreatedToken;
use server::audit_anchor::{AnchorOptions, CheckpointKey, CHECKPOINT_FILE};
use server::{app, AppState, Config};
use store::{AuditStore, AuditVerdict};

mod support;

use support::{TempDir, T0};

/// A server on the router, with a clock the test moves, that knows each
/// request's source address as `serve` does.
struct TestServer {
    url: String,
    admin: String,
    admin_password: String,
    clock: Arc<AtomicI64>,
    http: reqwest::Client,
    _dir: TempDir,
}

async fn spawn() -> TestServer {
    let dir = TempDir::new("audit-api");
    let clock = Arc::new(AtomicI64::new(T0));
    let now = Timestamp::from_second(T0).unwrap();
    let store = store::Store::open_sqlite(&dir.0, now).await.unwrap();
    let first = server::ensure_first_admin(&store, &dir.0, now)
        .await
        .unwrap();
    let read = |p: Option<PathBuf>| {
        std::fs::read_to_string(p.unwrap())
            .unwrap()
            .trim()
            .to_owned()
    };
    let admin = read(first.token_file);
    let admin_password = read(first.password_file);
    let c = clock.clone();
    let state = AppState::with_clock(
        store,
        Config::default(),
        Arc::new(move || Timestamp::from_second(c.load(Ordering::SeqCst)).unwrap()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    TestServer {
        url,
        admin,
        admin_password,
        clock,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl TestServer {
    fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_second(self.clock.load(Ordering::SeqCst)).unwrap()
    }

    async fn call(
        &self,
        secret: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.http, &self.url, secret, method, path, body).await
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(Some(&self.admin), method, path, body).await
    }

    async fn sign_in(&self, username: &str, password: &str) -> StatusCode {
        let (status, _) = self
            .call(
                None,
                reqwest::Method::POST,
                "/api/v1/session",
                Some(json!({"username": username, "password": password})),
            )
            .await;
        status
    }

    /// The audit entries of `action`, oldest first.
    async fn entries(&self, action: &str) -> Vec<Value> {
        let (status, log) = self
            .admin(reqwest::Method::GET, "/api/v1/audit?limit=10000", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{log}");
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    }
}

async fn call(
    http: &reqwest::Client,
    url: &str,
    secret: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http.request(method, format!("{url}{path}"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_and_revoking_enrollment_tokens_is_audited_without_the_secret() {
    let s = spawn().await;
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"max_uses": 3, "group": "laptops", "expires_in_hours": 48})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token: CreatedToken = serde_json::from_value(body).unwrap();
    let (status, _) = s
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{}", token.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Revoking again changes nothing and records nothing.
    let (status, _) = s
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{}", token.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let created = s.entries("create-token").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["actor"], "admin");
    assert_eq!(
        created[0]["subject"],
        format!("enrollment-tokens/{}", token.id)
    );
    assert_eq!(created[0]["after"]["max_uses"], 3);
    assert_eq!(created[0]["after"]["group"], "laptops");
    assert_eq!(
        created[0]["after"]["expires_at"],
        json!(token.expires_at),
        "{created:?}"
    );
    let revoked = s.entries("revoke-token").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["actor"], "admin");
    assert_eq!(revoked[0]["after"]["revoked"], true);
    // The secret is nowhere in the log.
    let (_, log) = s
        .admin(reqwest::Method::GET, "/api/v1/audit?limit=10000", None)
        .await;
    let secret_part = token.token.trim_start_matches("pwe_");
    assert!(!log.to_string().contains(secret_part), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_are_audited_and_a_burst_of_failures_is_one_entry_a_minute() {
    let s = spawn().await;
    // Five wrong passwords for admin and a long unknown name from one
    // address: the first failure is recorded at once, the rest counted.
    for _ in 0..5 {
        assert_eq!(
            s.sign_in("admin", "wrong password!").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // A name longer than any user's is refused before it is counted or
    // kept anywhere; the longest a user may have is recorded whole.
    assert_eq!(
        s.sign_in(&"x".repeat(300), "whatever").await,
        StatusCode::BAD_REQUEST
    );
    let long = "x".repeat(64);
    assert_eq!(s.sign_in(&long, "whatever").await, StatusCode::UNAUTHORIZED);
    let failed = s.entries("sign-in-failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let first = &failed[0];
    assert_eq!(first["actor"], "(anonymous)", "never the name presented");
    assert_eq!(first["subject"], "sign-in/127.0.0.1");
    assert_eq!(first["after"]["presented_username"], "admin");
    assert_eq!(first["after"]["failure"], "wrong password");
    assert_eq!(first["after"]["source"], "127.0.0.1");
    let reason = first["reason"].as_str().unwrap();
    assert!(
        reason.contains("as \"admin\" (the name presented, not a verified user)"),
        "{reason}"
    );
    assert!(s.entries("sign-in-failures").await.is_empty(), "not yet");

    // A minute later, the next attempt writes the count first.
    s.advance(61);
    assert_eq!(
        s.sign_in("nobody", "whatever").await,
        StatusCode::UNAUTHORIZED
    );
    let counted = s.entries("sign-in-failures").await;
    assert_eq!(counted.len(), 1, "{counted:?}");
    let c = &counted[0];
    assert_eq!(c["actor"], "(anonymous)");
    assert_eq!(c["after"]["failures"], 5);
    let names = c["after"]["presented_usernames"].as_array().unwrap();
    assert_eq!(names[0]["presented_username"], "admin");
    assert_eq!(names[0]["count"], 4);
    assert_eq!(names[0]["failure"], "wrong password");
    assert_eq!(names[1]["presented_username"], "x".repeat(64));
    assert_eq!(names[1]["failure"], "unknown user");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("5 more failed sign-ins from 127.0.0.1 in the minute from"),
        "{reason}"
    );
    let failed = s.entries("sign-in-failed").await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[1]["after"]["presented_username"], "nobody");
    assert_eq!(failed[1]["after"]["failure"], "unknown user");

    // A disabled user with the right password fails as disabled; a sign-in
    // that succeeds writes its address's count, then itself.
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(
                json!({"username": "bob", "role": "operator", "password": "correct horse battery"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = s
        .admin(
            reqwest::Method::PATCH,
            "/api/v1/users/bob",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        s.sign_in("bob", "correct horse battery").await,
        StatusCode::UNAUTHORIZED
    );
    let password = s.admin_password.clone();
    assert_eq!(s.sign_in("admin", &password).await, StatusCode::CREATED);
    let (_, log) = s
        .admin(reqwest::Method::GET, "/api/v1/audit?limit=10000", None)
        .await;
    let log = log.as_array().unwrap();
    let n = log.len();
    assert_eq!(log[n - 2]["action"], "sign-in-failures", "{log:?}");
    let names = log[n - 2]["after"]["presented_usernames"]
        .as_array()
        .unwrap();
    assert_eq!(names[0]["presented_username"], "bob");
    assert_eq!(names[0]["failure"], "user disabled");
    let signed_in = &log[n - 1];
    assert_eq!(signed_in["action"], "sign-in");
    assert_eq!(signed_in["actor"], "admin");
    assert_eq!(signed_in["subject"], "users/admin");
    assert_eq!(signed_in["after"]["source"], "127.0.0.1");
    assert_eq!(signed_in["at"], json!(s.now()));

    let (_, verdict) = s
        .admin(reqwest::Method::GET, "/api/v1/audit/verify", None)
        .await;
    assert_eq!(verdict["intact"], true, "{verdict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_agent_says_of_a_user_is_never_an_actor() {
    let s = spawn().await;
    let (status, body) = s
        .admin(reqwest::Method::POST, "/api/v1/tokens", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token: CreatedToken = serde_json::from_value(body).unwrap();
    let (status, enrolled) = s
        .call(
            None,
            reqwest::Method::POST,
            "/api/v1/agent/enroll",
            Some(json!({"token": token.token, "hostname": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    let host = enrolled["host_id"].as_str().unwrap().to_owned();
    let credential = enrolled["credential"].as_str().unwrap().to_owned();

    // Enrolling is the host's own act; the name it gives is its word.
    let enroll = s.entries("enroll").await;
    assert_eq!(enroll[0]["actor"], format!("host:{host}"));
    assert_eq!(enroll[0]["after"]["hostname_reported_by_host"], "admin");
    assert_eq!(enroll[0]["after"]["token"], token.id);

    // The agent asks for a deferral in the name of "admin".
    let until = s.now() + jiff::SignedDuration::from_hours(48);
    let (status, request) = s
        .call(
            Some(&credential),
            reqwest::Method::POST,
            "/api/v1/agent/deferrals",
            Some(
                json!({"until": until, "justification": "quarter-end close runs here",
                        "user": "admin"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    assert_eq!(request["requested_by"], format!("host:{host}"));
    assert_eq!(request["user_reported_by_host"], "admin");
    assert_eq!(
        request["asked_by"],
        format!("admin on host {host} according to the host")
    );
    let requested = s.entries("request-deferral").await;
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(requested[0]["actor"], format!("host:{host}"));
    assert_eq!(requested[0]["after"]["user_reported_by_host"], "admin");

    // The help desk asks for a user: the caller is the actor.
    let (status, request) = s
        .admin(
            reqwest::Method::POST,
            "/api/v1/deferrals",
            Some(json!({"host": host, "until": until, "user": "tom",
                        "justification": "the auditors are on site all week"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let requested = s.entries("request-deferral").await;
    assert_eq!(requested[1]["actor"], "admin");
    assert_eq!(requested[1]["after"]["on_behalf_of"], "tom");
    assert_eq!(request["asked_by"], "admin for tom");

    // No entry names an actor other than the callers and the host.
    let (_, log) = s
        .admin(reqwest::Method::GET, "/api/v1/audit?limit=10000", None)
        .await;
    for e in log.as_array().unwrap() {
        let actor = e["actor"].as_str().unwrap();
        assert!(
            ["system", "admin"].contains(&actor) || actor == format!("host:{host}"),
            "{e}"
        );
    }
    // And the agent cannot put a control character in what it reports.
    let (status, body) = s
        .call(
            Some(&credential),
            reqwest::Method::POST,
            "/api/v1/agent/deferrals",
            Some(
                json!({"until": until, "justification": "quarter-end close runs here",
                        "user": "admin\nroot"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("user: at most 64 printable"),
        "{body}"
    );
}

/// A real server (`serve_until`) on a data directory, stopped by dropping
/// or calling `stop`.
struct Running {
    url: String,
    admin: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(data_dir: &Path, anchor: AnchorOptions) -> Running {
    let options = server::ServeOptions {
        data_dir: data_dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: None,
        transport: server::Transport::PlainHttp { insecure: false },
        config: Config {
            feed_refresh: None,
            ..Config::default()
        },
        audit_anchor: anchor,
    };
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(server::serve_until(
        options,
        move |address| {
            let _ = bound_tx.send(address);
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let address = bound_rx.await.expect("the server listens");
    let admin = std::fs::read_to_string(data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    Running {
        url: format!("http://{address}"),
        admin,
        stop: Some(stop_tx),
        done,
    }
}

impl Running {
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(
            &reqwest::Client::new(),
            &self.url,
            Some(&self.admin),
            method,
            path,
            body,
        )
        .await
    }

    /// Makes `n` audit entries (dynamic groups defined).
    async fn changes(&self, n: usize, tag: &str) {
        for i in 0..n {
            let (status, body) = self
                .admin(
                    reqwest::Method::PUT,
                    &format!("/api/v1/groups/{tag}-{i}"),
                    Some(json!({"query": "os = debian"})),
                )
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        }
    }

    async fn verdict(&self) -> Value {
        let (status, v) = self
            .admin(reqwest::Method::GET, "/api/v1/audit/verify", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// Stops the server; its last checkpoint is written as it stops.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.done).await.unwrap().unwrap();
    }
}

fn checkpoint_lines(data_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(data_dir.join(CHECKPOINT_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn open(data_dir: &Path) -> store::Store {
    store::Store::open_sqlite(data_dir, Timestamp::now())
        .await
        .unwrap()
}

/// Runs a server, makes entries, and stops it: the log and its
/// checkpoints as a normal day leaves them. Gives the number of entries.
async fn a_normal_day(data_dir: &Path) -> u64 {
    let s = start(data_dir, AnchorOptions::default()).await;
    s.changes(6, "day").await;
    let v = s.verdict().await;
    assert_eq!(v["intact"], true, "{v}");
    s.stop().await;
    let entries = checkpoint_lines(data_dir).last().unwrap()["seq"]
        .as_u64()
        .unwrap();
    assert!(
        entries >= 8,
        "the first administrator, its token, six groups"
    );
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_log_verifies_against_its_checkpoints() {
    let dir = TempDir::new("audit-normal");
    let entries = a_normal_day(&dir.0).await;
    // Checkpoints were written at start and as it stopped, to a file only
    // the server's user reads, and each verifies with the data
    // directory's key.
    let lines = checkpoint_lines(&dir.0);
    assert!(lines.len() >= 2, "{lines:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.0.join(CHECKPOINT_FILE))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let s = start(&dir.0, AnchorOptions::default()).await;
    s.changes(2, "next").await;
    let v = s.verdict().await;
    assert_eq!(v["intact"], true, "{v}");
    let c = &v["checkpoints"];
    // Every checkpoint written verifies (the restart may have written one
    // more, when a task of the stopped server recorded an entry late).
    assert!(c["verified"].as_u64().unwrap() >= lines.len() as u64, "{v}");
    assert!(c["last"]["seq"].as_u64().unwrap() >= entries, "{v}");
    assert_eq!(c["problems"], json!([]));
    let key = CheckpointKey::public_in(&dir.0).unwrap().unwrap();
    assert_eq!(c["key"], server::audit_anchor::key_text(&key));
    s.stop().await;

    // Offline, as `patchwell audit verify --data-dir` does.
    let store = open(&dir.0).await;
    let text = std::fs::read_to_string(dir.0.join(CHECKPOINT_FILE)).unwrap();
    let v = server::audit_anchor::verify(&store, Some(("file".into(), text)), &key, None)
        .await
        .unwrap();
    assert_eq!(v["intact"], true, "{v}");
    assert!(
        v["checkpoints"]["last"]["seq"].as_u64().unwrap() >= entries + 2,
        "{v}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_back_behind_the_servers_back_fails_against_its_checkpoints() {
    let dir = TempDir::new("audit-cut");
    let entries = a_normal_day(&dir.0).await;
    let lines_before = checkpoint_lines(&dir.0).len();

    // Whoever owns the database drops the last three entries and moves the
    // head back: the chain alone still verifies.
    let store = open(&dir.0).await;
    let kept = entries - 3;
    let hash = store.audit_entries(None, kept - 1, 1).await.unwrap()[0]
        .hash
        .clone();
    sqlx::query("DELETE FROM audit_log WHERE seq > $1")
        .bind(kept as i64)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(kept as i64)
        .bind(&hash)
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { .. }
    ));
    store.close().await;

    let s = start(&dir.0, AnchorOptions::default()).await;
    let v = s.verdict().await;
    assert_eq!(v["intact"], false, "{v}");
    let problem = v["problem"].as_str().unwrap();
    assert!(
        problem.starts_with(&format!(
            "the log ends at entry {kept}, but the checkpoint of "
        )),
        "{problem}"
    );
    assert!(
        problem.contains(&format!("says {entries} entries existed")),
        "{problem}"
    );
    assert_eq!(v["first_bad_entry"].as_u64(), Some(kept + 1));
    // New entries do not get a checkpoint that would bless the cut log.
    s.changes(5, "after").await;
    s.stop().await;
    assert_eq!(checkpoint_lines(&dir.0).len(), lines_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_rewritten_with_every_hash_recomputed_fails_against_its_checkpoints() {
    let dir = TempDir::new("audit-rewrite");
    a_normal_day(&dir.0).await;

    // Entry 3's actor changed, and every hash after it worked out again.
    let store = open(&dir.0).await;
    let mut log = store.audit_entries(None, 0, 10_000).await.unwrap();
    log[2].event.actor = "mallory".into();
    let mut prev = log[1].hash.clone();
    for e in &mut log[2..] {
        e.prev_hash = prev;
        e.hash = e.computed_hash();
        prev = e.hash.clone();
        sqlx::query("UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&e.event.actor)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .bind(e.seq as i64)
            .execute(store.pool())
            .await
            .unwrap();
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { .. }
    ));
    // Offline verification finds it too.
    let key = CheckpointKey::public_in(&dir.0).unwrap().unwrap();
    let text = std::fs::read_to_string(dir.0.join(CHECKPOINT_FILE)).unwrap();
    let offline = server::audit_anchor::verify(&store, Some(("f".into(), text)), &key, None)
        .await
        .unwrap();
    assert_eq!(offline["intact"], false, "{offline}");
    store.close().await;

    let s = start(&dir.0, AnchorOptions::default()).await;
    let v = s.verdict().await;
    assert_eq!(v["intact"], false, "{v}");
    let problem = v["problem"].as_str().unwrap();
    let seq = v["first_bad_entry"].as_u64().unwrap();
    assert!(seq >= 3, "{v}");
    assert!(
        problem.starts_with(&format!(
            "entry {seq}'s hash differs from the checkpoint of "
        )),
        "{problem}"
    );
    assert_eq!(offline["problem"], v["problem"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_checkpoint_line_is_reported() {
    let dir = TempDir::new("audit-forged");
    a_normal_day(&dir.0).await;
    let file = dir.0.join(CHECKPOINT_FILE);
    let lines = checkpoint_lines(&dir.0);
    // A line claiming more entries under a copied signature, and one signed
    // by a key that is not the server's.
    let mut forged = lines.last().unwrap().clone();
    forged["seq"] = json!(forged["seq"].as_u64().unwrap() + 100);
    let other = CheckpointKey::ephemeral()
        .unwrap()
        .sign(1, &"0".repeat(64), Timestamp::now());
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&format!(
        "{forged}\n{}\n",
        serde_json::to_string(&other).unwrap()
    ));
    std::fs::write(&file, text).unwrap();

    let s = start(&dir.0, AnchorOptions::default()).await;
    let v = s.verdict().await;
    assert_eq!(v["intact"], false, "{v}");
    let n = lines.len();
    let problems = v["checkpoints"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{v}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains(&format!("line {} (entry {}", n + 1, forged["seq"])),
        "{v}"
    );
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .ends_with("its signature does not verify: the line was altered or forged"),
        "{v}"
    );
    assert!(
        problems[1]
            .as_str()
            .unwrap()
            .contains(&format!("line {} names another key", n + 2)),
        "{v}"
    );
    assert_eq!(v["problem"], problems[0]);
    // The genuine checkpoints still hold.
    assert_eq!(v["checkpoints"]["verified"].as_u64(), Some(n as u64));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_go_to_syslog_and_a_webhook_too() {
    let dir = TempDir::new("audit-sinks");
    std::fs::create_dir_all(&dir.0).unwrap();
    let socket = dir.0.join("log.sock");
    let syslog = tokio::net::UnixDatagram::bind(&socket).unwrap();
    // A webhook that keeps what it is sent.
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let hook = axum::Router::new().route(
        "/checkpoints",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sent = sent_tx.clone();
            async move {
                let _ = sent.send(v);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/checkpoints", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });

    let checkpoints = dir.0.join("elsewhere").join("anchor.jsonl");
    std::fs::create_dir_all(checkpoints.parent().unwrap()).unwrap();
    let options = AnchorOptions {
        file: Some(checkpoints.clone()),
        syslog: Some(socket),
        webhook: Some(hook_url),
        ..AnchorOptions::default()
    };
    let s = start(&dir.0, options).await;
    s.changes(1, "g").await;
    s.stop().await;

    let key = CheckpointKey::public_in(&dir.0).unwrap().unwrap();
    let written = std::fs::read_to_string(&checkpoints).unwrap();
    assert!(
        !dir.0.join(CHECKPOINT_FILE).exists(),
        "the file given is used"
    );
    let last = written.lines().last().unwrap().to_owned();

    let mut buf = vec![0u8; 4096];
    let mut said = Vec::new();
    while let Ok(n) = syslog.try_recv(&mut buf) {
        said.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let line = said.last().expect("sent to syslog");
    assert!(line.starts_with("<37>patchwell-audit["), "{line}");
    assert!(line.ends_with(&last), "{line} / {last}");
    // What syslog keeps verifies as it is, prefix and all.
    let read = server::audit_anchor::read_checkpoints("syslog", &said.join("\n"), &key);
    assert_eq!(read.good.len(), said.len(), "{:?}", read.problems);

    let mut posted = Vec::new();
    while let Ok(v) = sent_rx.try_recv() {
        posted.push(v);
    }
    assert_eq!(
        posted.last().map(Value::to_string),
        Some(serde_json::from_str::<Value>(&last).unwrap().to_string())
    );
}

#[tokio::test]
async fn a_webhook_that_is_no_http_url_is_refused_at_start() {
    let dir = TempDir::new("audit-hook");
    std::fs::create_dir_all(&dir.0).unwrap();
    let options = AnchorOptions {
        webhook: Some("ftp://example.org/checkpoints".into()),
        ..AnchorOptions::default()
    };
    let err = server::audit_anchor::Anchor::open(&dir.0, &options)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "the audit checkpoint webhook \"ftp://example.org/checkpoints\": not an http or https URL"
    );
    // A checkpoint file that cannot be written is refused too, naming it.
    let options = AnchorOptions {
        file: Some(dir.0.join("missing-dir").join("c.jsonl")),
        ..AnchorOptions::default()
    };
    let err = format!(
        "{:#}",
        server::audit_anchor::Anchor::open(&dir.0, &options).unwrap_err()
    );
    assert!(
        err.starts_with("the audit checkpoint file ")
            && err.contains("missing-dir/c.jsonl cannot be written"),
        "{err}"
    );
}

/// A checkpoint file removed while the server runs does not pass for an
/// anchored log: the server remembers the last checkpoint it wrote. (Offline,
/// the same removal is said to leave the log unanchored: audit_cli.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_whose_checkpoint_file_was_removed_is_not_taken_for_whole() {
    let dir = TempDir::new("audit-unanchored");
    a_normal_day(&dir.0).await;
    let s = start(&dir.0, AnchorOptions::default()).await;
    std::fs::remove_file(dir.0.join(CHECKPOINT_FILE)).unwrap();
    let v = s.verdict().await;
    assert_eq!(v["intact"], false, "{v}");
    let problem = v["problem"].as_str().unwrap();
    assert!(
        problem.contains("the checkpoints were cut or replaced"),
        "{problem}"
    );
    s.stop().await;
}
