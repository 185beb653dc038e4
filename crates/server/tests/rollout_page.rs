//! The rollout page tells one story, and planning objects are made for
//! people: through the real server on a loopback port (a fresh SQLite
//! database per test, a clock the test moves), its API and its console's
//! forms.
//!
//! A rolled-back rollout has no ring that reads as running; a rollout
//! resumed and halted again at once by its failures says why; a ring held
//! at its gate says what it lacks and what would move it, and lowering the
//! gate moves it; the review's figures are the progress's; a refused
//! console form comes back on its page, as typed, with the navigation; an
//! exemption names its hosts by name or by query; a new user gets the
//! least privilege.

use jiff::Timestamp;
use protocol::{EnrollResponse, HeartbeatResponse, Inventory, Manager};
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::api::CreatedToken;

mod support;

use support::{inventory, package};

/// The shared test server, with this file's requests on top.
struct TestServer(support::Server);

impl std::ops::Deref for TestServer {
    type Target = support::Server;
    fn deref(&self) -> &support::Server {
        &self.0
    }
}

async fn spawn() -> TestServer {
    TestServer(support::Server::spawn("rollout-page").await)
}

impl TestServer {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Some(&self.admin), reqwest::Method::POST, path, Some(body))
            .await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Some(&self.admin), reqwest::Method::PUT, path, Some(body))
            .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Some(&self.admin), reqwest::Method::GET, path, None)
            .await
    }

    /// A host enrolled, its inventory offering a newer libssl3.
    async fn host(&self, hostname: &str) -> EnrollResponse {
        let (status, body) = self.post("/api/v1/tokens", json!({"max_uses": 1})).await;
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
        let inv = offering(hostname, self.now());
        let (status, body) = self
            .agent(
                reqwest::Method::PUT,
                "/api/v1/agent/inventory",
                &host,
                serde_json::to_value(&inv).unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        host
    }

    async fn agent(
        &self,
        method: reqwest::Method,
        path: &str,
        host: &EnrollResponse,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(Some(&host.credential), method, path, Some(body))
            .await
    }

    /// The jobs a host's heartbeat hands it, opened with its job key.
    async fn jobs(&self, host: &EnrollResponse) -> Vec<protocol::job::Job> {
        let (status, body) = self
            .agent(
                reqwest::Method::POST,
                "/api/v1/agent/heartbeat",
                host,
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

    /// Reports a job's steps to their end: `succeeded` (with the change
    /// an install or a rollback made) or `failed`.
    async fn finish(&self, host: &EnrollResponse, job: &protocol::job::Job, ok: bool) {
        let change = match job.kind {
            protocol::job::JobKind::Install => ("3.0.15-1~deb12u1", "3.0.16-1~deb12u1"),
            _ => ("3.0.16-1~deb12u1", "3.0.15-1~deb12u1"),
        };
        let mut steps = vec![json!({"step": "received", "at": self.now()})];
        if ok {
            steps.push(json!({"step": "installed", "at": self.now(), "changes": [
                {"name": "libssl3", "arch": "amd64", "from": change.0, "to": change.1}
            ]}));
            steps.push(json!({"step": "succeeded", "at": self.now()}));
        } else {
            steps.push(json!({"step": "failed", "at": self.now(),
                "message": "apt-get install failed", "exit_code": 100}));
        }
        let (status, body) = self
            .agent(
                reqwest::Method::POST,
                &format!("/api/v1/agent/jobs/{}/steps", job.id),
                host,
                json!({"steps": steps}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    /// Reports that a host received its job.
    async fn received(&self, host: &EnrollResponse, job: &protocol::job::Job) {
        let (status, body) = self
            .agent(
                reqwest::Method::POST,
                &format!("/api/v1/agent/jobs/{}/steps", job.id),
                host,
                json!({"steps": [{"step": "received", "at": self.now()}]}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    /// Polls a rollout until `done` says so (the executor runs each second).
    async fn rollout_until(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..150 {
            let (status, body) = self.get(&format!("/api/v1/rollouts/{name}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if done(&body) {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (_, body) = self.get(&format!("/api/v1/rollouts/{name}")).await;
        panic!("rollout {name} never got there: {body:#}");
    }

    async fn console(&self) -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http
            .post(format!("{}/console/login", self.url))
            .header("origin", &self.url)
            .form(&[("username", "admin"), ("password", &self.admin_password)])
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
            url: self.url.clone(),
            cookie,
        }
    }
}

/// A Debian 12 host with libssl3 3.0.15 installed and 3.0.16 offered.
fn offering(hostname: &str, at: Timestamp) -> Inventory {
    let mut inv = inventory(hostname, at, vec![package("libssl3", "3.0.15-1~deb12u1")]);
    inv.updates = vec![protocol::AvailableUpdate {
        manager: Manager::Dpkg,
        name: "libssl3".into(),
        arch: "amd64".into(),
        installed: "3.0.15-1~deb12u1".into(),
        candidate: "3.0.16-1~deb12u1".into(),
        suite: Some("stable-security".into()),
        codename: Some("bookworm-security".into()),
        origin: Some("Debian".into()),
        security: true,
    }];
    inv
}

/// The console as a browser with a session sees it (redirects not followed).
struct Browser {
    http: reqwest::Client,
    url: String,
    cookie: String,
}

impl Browser {
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

    /// Posts a form from the console's own origin, as from `from` (the
    /// page the form is on); a redirect answers with where it goes.
    async fn post(&self, path: &str, from: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .header("origin", &self.url)
            .header("referer", format!("{}{from}", self.url))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        match resp.headers().get("location") {
            Some(l) => (status, l.to_str().unwrap().to_owned()),
            None => (status, resp.text().await.unwrap()),
        }
    }
}

fn ring<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["rings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no ring {name} in {r:#}"))
}

/// The number a review figure's `<dd>` holds on the page.
fn figure(page: &str, label: &str) -> String {
    let dt = format!("<dt>{label}</dt><dd>");
    let at = page
        .find(&dt)
        .unwrap_or_else(|| panic!("no {label} on the page: {page}"))
        + dt.len();
    page[at..][..page[at..].find("</dd>").unwrap()].to_owned()
}

fn rings_total(r: &Value, key: &str) -> u64 {
    r["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g[key].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rollback_no_ring_reads_running_and_the_review_is_the_progress() {
    let s = spawn().await;
    let pilot = s.host("pilot-1").await;
    let broad = s.host("broad-1").await;
    let (status, body) = s
        .post(
            "/api/v1/rollouts",
            json!({"name": "r", "reason": "DSA-5999-1", "packages": ["libssl3"],
                   "hosts": "hostname = pilot-1 or hostname = broad-1",
                   "rings": [{"name": "pilot", "size": "1", "gate_success_percent": 100},
                             {"name": "broad", "size": "rest"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let in_pilot = |h: &EnrollResponse, r: &Value| {
        r["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["host"] == h.host_id.as_str() && x["ring"] == "pilot")
    };
    let (first, second) = if in_pilot(&pilot, &body) {
        (&pilot, &broad)
    } else {
        (&broad, &pilot)
    };
    let job = s.jobs(first).await.remove(0);
    s.finish(first, &job, true).await;
    let r = s
        .rollout_until("r", |r| {
            ring(r, "broad")["reason"]
                .as_str()
                .is_some_and(|t| t.starts_with("running since"))
        })
        .await;
    // A time a ring's reason names reads to the minute.
    let reason = ring(&r, "broad")["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.starts_with("running since ")
            && reason.ends_with(" UTC")
            && reason.len() == "running since 2026-12-07 14:03 UTC".len(),
        "{reason}"
    );
    let job = s.jobs(second).await.remove(0);
    s.finish(second, &job, true).await;
    let r = s.rollout_until("r", |r| r["status"] == "complete").await;

    // The review's figures and the progress's agree, on the API and on
    // the page, at every moment: both come from one plan.
    let (_, review) = s.get("/api/v1/rollouts/r/review").await;
    assert_eq!(review["succeeded"], 2);
    assert_eq!(rings_total(&r, "succeeded"), 2);
    let b = s.console().await;
    let (status, page) = b.get("/console/rollouts/r").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(figure(&page, "Succeeded"), "2", "{page}");
    assert!(page.contains("2 succeeded, 0 failed"), "{page}");

    // Roll back through the console: the rings say they are rolling back,
    // then rolled back; none reads as running.
    let (status, to) = b
        .post(
            "/console/rollouts/r/act",
            "/console/rollouts/r",
            &[("action", "rollback"), ("reason", "the app broke")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let r = s
        .rollout_until("r", |r| r["status"] == "rolling_back")
        .await;
    for g in r["rings"].as_array().unwrap() {
        assert_eq!(g["state"], "rolling_back", "{g}");
        assert!(
            g["reason"].as_str().unwrap().contains("the app broke"),
            "{g}"
        );
    }
    for h in [first, second] {
        let job = s.jobs(h).await.remove(0);
        assert_eq!(job.kind, protocol::job::JobKind::Rollback);
        s.finish(h, &job, true).await;
    }
    let r = s.rollout_until("r", |r| r["status"] == "rolled_back").await;
    for g in r["rings"].as_array().unwrap() {
        assert_eq!(g["state"], "rolled_back", "{g}");
        let reason = g["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("rolled back (started ") && reason.ends_with(" UTC): the app broke"),
            "{g}"
        );
    }
    let (_, page) = b.get("/console/rollouts/r").await;
    assert!(!page.contains("running since"), "{page}");
    assert!(page.contains("rolled back (started "), "{page}");
    assert_eq!(figure(&page, "Rolled back"), "2", "{page}");
    assert_eq!(figure(&page, "Succeeded"), "0", "{page}");
    assert!(
        page.contains("0 succeeded, 0 failed, 0 in progress, 2 rolled back"),
        "{page}"
    );
    assert!(
        !page.contains(r#"value="rollback""#),
        "nothing is left to roll back: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_rollout_halted_again_by_its_failures_says_why() {
    let s = spawn().await;
    let hosts = [s.host("web-1").await, s.host("web-2").await];
    let (status, body) = s
        .post(
            "/api/v1/rollouts",
            json!({"name": "r", "reason": "monthly", "packages": ["libssl3"],
                   "rings": [{"name": "all", "size": "rest", "halt_failure_percent": 10}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let jobs = [
        s.jobs(&hosts[0]).await.remove(0),
        s.jobs(&hosts[1]).await.remove(0),
    ];
    // Both hosts received their jobs before the halt: a halt withdraws
    // only what no host has begun.
    for (h, job) in hosts.iter().zip(&jobs) {
        s.received(h, job).await;
    }
    let b = s.console().await;
    let (status, _) = b
        .post(
            "/console/rollouts/r/act",
            "/console/rollouts/r",
            &[("action", "halt"), ("reason", "change freeze")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The hosts had their jobs already: one fails while it is halted.
    s.finish(&hosts[0], &jobs[0], false).await;
    s.finish(&hosts[1], &jobs[1], true).await;
    let r = s
        .rollout_until("r", |r| {
            rings_total(r, "failed") == 1 && rings_total(r, "succeeded") == 1
        })
        .await;
    assert_eq!(r["status"], "halted");
    assert_eq!(r["halted_by"], "person");
    assert_eq!(ring(&r, "all")["state"], "halted");
    assert!(
        ring(&r, "all")["reason"]
            .as_str()
            .unwrap()
            .contains("change freeze"),
        "{r:#}"
    );

    // Resumed, it halts again at once: the notice says so, and why.
    let (status, to) = b
        .post(
            "/console/rollouts/r/act",
            "/console/rollouts/r",
            &[("action", "resume")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let notice = percent_decoded(&to);
    assert!(
        notice.contains("Resumed, but it halted again at once by itself: 1 of 2 hosts failed in ring all, over its 10% threshold"),
        "{notice}"
    );
    let (_, r) = s.get("/api/v1/rollouts/r").await;
    assert_eq!(r["status"], "halted");
    assert_eq!(r["halted_by"], "failures");
    let (_, page) = b.get("/console/rollouts/r").await;
    assert!(
        page.contains("halted by itself: 1 of 2 hosts failed"),
        "{page}"
    );
    assert!(
        !page.contains(r#"value="resume""#),
        "a halt by failures is not resumed, it is redeployed: {page}"
    );
    assert!(page.contains(r#"value="redeploy""#), "{page}");
}

fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_held_at_its_gate_says_what_it_lacks_and_lowering_the_gate_moves_it() {
    let s = spawn().await;
    let hosts = [
        s.host("pilot-a").await,
        s.host("pilot-b").await,
        s.host("rest-1").await,
    ];
    // Two pilot hosts: one fails (under a halt at 100%, it does not halt
    // the rollout), one never fetches its job and goes offline.
    let (status, body) = s
        .post(
            "/api/v1/rollouts",
            json!({"name": "g", "reason": "monthly", "packages": ["libssl3"],
                   "hosts": "hostname = pilot-a or hostname = pilot-b or hostname = rest-1",
                   "rings": [{"name": "pilot", "size": "2", "halt_failure_percent": 100},
                             {"name": "broad", "size": "rest"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let pilots: Vec<&EnrollResponse> = hosts
        .iter()
        .filter(|h| {
            body["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["host"] == h.host_id.as_str() && x["ring"] == "pilot")
        })
        .collect();
    assert_eq!(pilots.len(), 2, "{body:#}");
    let job = s.jobs(pilots[0]).await.remove(0);
    s.finish(pilots[0], &job, false).await;
    s.rollout_until("g", |r| ring(r, "pilot")["failed"] == 1)
        .await;
    // An hour on, the other pilot host has not checked in: it is offline.
    s.advance(3600);
    let r = s
        .rollout_until("g", |r| ring(r, "broad")["gate"]["offline"] == 1)
        .await;
    let gate = &ring(&r, "broad")["gate"];
    assert_eq!(
        (
            gate["needed"].as_u64(),
            gate["succeeded"].as_u64(),
            gate["lacking"].as_u64()
        ),
        (Some(2), Some(0), Some(2)),
        "{gate}"
    );
    assert_eq!(gate["failed"], 1, "{gate}");
    assert_eq!(gate["stuck"], true, "{gate}");
    let actions: Vec<&str> = gate["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for wanted in [
        "wait for the 1 offline hosts",
        "redeploy",
        "lower the gate",
        "add hosts",
    ] {
        assert!(
            actions.iter().any(|a| a.starts_with(wanted)),
            "{wanted}: {actions:?}"
        );
    }
    let b = s.console().await;
    let (_, page) = b.get("/console/rollouts/g").await;
    assert!(
        page.contains("it lacks 2 of the 2 successes it needs (0 so far)"),
        "{page}"
    );
    assert!(page.contains("It cannot pass by itself."), "{page}");
    assert!(page.contains("1 offline"), "{page}");
    assert!(page.contains("Lower the gate"), "{page}");

    // A gate that cannot be lowered is refused on the form, as typed.
    let (status, page) = b
        .post(
            "/console/rollouts/g/act",
            "/console/rollouts/g",
            &[
                ("action", "gate"),
                ("ring", "pilot"),
                ("gate_success_percent", "99"),
                ("reason", "fewer hosts today"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("ring pilot's gate is 95% already"), "{page}");
    assert!(
        page.contains(r#"name="gate_success_percent" type="number""#),
        "{page}"
    );
    assert!(
        page.contains(r#"value="99""#),
        "the value typed is kept: {page}"
    );
    assert!(page.contains(r#"nav aria-label="Main""#), "{page}");

    // Lowered to nothing, the next ring starts.
    let (status, to) = b
        .post(
            "/console/rollouts/g/act",
            "/console/rollouts/g",
            &[
                ("action", "gate"),
                ("ring", "pilot"),
                ("gate_success_percent", "0"),
                ("reason", "the pilot host is known broken"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let r = s
        .rollout_until("g", |r| ring(r, "broad")["state"] == "running")
        .await;
    assert!(ring(&r, "broad")["gate"].is_null(), "{r:#}");
    let (_, audit) = s.get("/api/v1/audit?subject=rollouts/g").await;
    assert!(audit.to_string().contains("lower-gate"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_form_comes_back_on_its_page_as_typed_with_a_short_message() {
    let s = spawn().await;
    s.host("web-1").await;
    let b = s.console().await;
    let long = "x".repeat(500);
    let (status, page) = b
        .post(
            "/console/rollouts",
            "/console/rollouts",
            &[
                ("name", "monthly"),
                ("reason", "the monthly patch"),
                ("updates", "security"),
                ("pilot", "5%"),
                ("wait", &long),
                ("policy", ""),
                ("hosts", "tag = web"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    // The normal layout, the navigation, the message on the form.
    assert!(page.contains(r#"nav aria-label="Main""#), "{page}");
    assert!(page.contains("<h1>Rollouts</h1>"), "{page}");
    let alert_at = page.find(r#"data-test="form-error""#).expect("the message");
    let form_at = page.find(r#"action="/console/rollouts""#).unwrap();
    assert!(alert_at > form_at, "the message is on the form: {page}");
    let alert = &page[alert_at..][..page[alert_at..].find("</p>").unwrap()];
    assert!(alert.contains("business days"), "{alert}");
    assert!(alert.contains(&format!("{}…", "x".repeat(80))), "{alert}");
    assert!(
        !alert.contains(&"x".repeat(81)),
        "the long value is cut: {alert}"
    );
    // The fields as typed.
    assert!(page.contains(r#"value="monthly""#), "{page}");
    assert!(page.contains(r#"value="tag = web""#), "{page}");
    assert!(page.contains("the monthly patch</textarea>"), "{page}");
    assert!(
        page.contains(r#"<option value="security" selected>"#),
        "{page}"
    );

    // A form the extractor refuses (a field missing) is answered the same
    // way, not with a bare status.
    let (status, page) = b
        .post(
            "/console/rollouts/nothing/act",
            "/console/rollouts",
            &[("reason", "no action")],
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    assert!(page.contains(r#"nav aria-label="Main""#), "{page}");
    assert!(page.contains(r#"role="alert""#), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exemption_names_its_hosts_by_name_or_query_through_its_form() {
    let s = spawn().await;
    let web = s.host("web-1").await;
    let db = s.host("db-1").await;
    let expires = (s.now() + jiff::SignedDuration::from_hours(24 * 30)).to_string();

    // By name through the API: stored as the host's id, its name beside.
    let (status, body) = s
        .put(
            "/api/v1/exemptions/legacy",
            json!({"hosts": ["web-1"], "package": "libssl3", "reason": "certified",
                   "expires": expires}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hosts"], json!([web.host_id]));
    assert_eq!(body["host_names"], json!(["web-1"]));
    // An unknown name is refused, named.
    let (status, body) = s
        .put(
            "/api/v1/exemptions/nobody",
            json!({"host": "mail-9", "package": "libssl3", "reason": "r", "expires": expires}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no host \"mail-9\""),
        "{body}"
    );
    // A query is resolved once, and kept as the record of how.
    let (status, body) = s
        .put(
            "/api/v1/exemptions/everyone",
            json!({"query": "hostname = db-1 or hostname = web-1", "package": "libssl3",
                   "reason": "r", "expires": expires}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ids: Vec<String> = serde_json::from_value(body["hosts"].clone()).unwrap();
    ids.sort();
    let mut want = vec![web.host_id.clone(), db.host_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    let (status, body) = s
        .put(
            "/api/v1/exemptions/none",
            json!({"query": "hostname = mail-9", "package": "libssl3", "reason": "r",
                   "expires": expires}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("selects no host"),
        "{body}"
    );

    // Through the console's form with fields: by host name, a day.
    let b = s.console().await;
    let (status, page) = b.get("/console/plans/exemptions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"id="f-hosts""#), "{page}");
    assert!(page.contains("Advanced: the document as JSON"), "{page}");
    assert!(page.contains("data-confirm=\"Delete legacy?"), "{page}");
    let form = [
        ("form", "fields"),
        ("name", "kiosk"),
        ("hosts", "db-1"),
        ("query", ""),
        ("group", ""),
        ("advisory", ""),
        ("package", "libssl3"),
        ("reason", "kiosk image frozen"),
        ("control", "isolated VLAN"),
        ("expires", "2026-12-31"),
    ];
    let (status, to) = b
        .post(
            "/console/plans/exemptions",
            "/console/plans/exemptions",
            &form,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (_, stored) = s.get("/api/v1/exemptions/kiosk").await;
    assert_eq!(stored["hosts"], json!([db.host_id]), "{stored}");
    assert_eq!(stored["expires"], "2027-01-01T00:00:00Z", "{stored}");
    let (_, page) = b.get("/console/plans/exemptions?edit=kiosk").await;
    assert!(
        page.contains(r#"id="f-hosts" name="hosts" value="db-1""#),
        "the form shows the host by name: {page}"
    );
    // An unknown host on the form: refused on the form, as typed.
    let mut bad = form;
    bad[2] = ("hosts", "db-1 mail-9");
    let (status, page) = b
        .post(
            "/console/plans/exemptions",
            "/console/plans/exemptions",
            &bad,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("no host &quot;mail-9&quot;"), "{page}");
    assert!(page.contains(r#"value="db-1 mail-9""#), "{page}");
    assert!(page.contains("kiosk image frozen</textarea>"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_gets_the_least_privilege_and_timestamps_read_to_the_minute() {
    let s = spawn().await;
    let (status, body) = s.post("/api/v1/users", json!({"username": "carol"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["role"], "auditor");
    let b = s.console().await;
    let (_, page) = b.get("/console/users").await;
    let add = &page[page
        .find(r#"<select id="role" name="role">"#)
        .expect("the add form")..];
    let add = &add[..add.find("</select>").unwrap()];
    assert!(
        add.contains(r#"<option value="auditor" selected>"#)
            && add.matches(" selected").count() == 1,
        "the form starts at the least privilege: {add}"
    );
    assert!(page.contains("data-confirm=\"Disable carol?"), "{page}");
    // Every time on the page reads to the minute, the exact one beside.
    for shown in page.split("<time ").skip(1) {
        let text = &shown[shown.find('>').unwrap() + 1..shown.find("</time>").unwrap()];
        assert!(
            text.ends_with(" UTC") && text.len() == "2026-12-07 14:03 UTC".len(),
            "{text}"
        );
    }
    // Mail now, with no relay, says so before anyone clicks.
    let (status, body) = s
        .put(
            "/api/v1/contacts/boss",
            json!({"audience": "management", "email": "boss@example.org"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .put(
            "/api/v1/report-schedules/monthly",
            json!({"when": "first monday of every month at 08:00", "audiences": ["management"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = b.get("/console/reports").await;
    assert!(page.contains(r#"data-test="no-relay""#), "{page}");
    assert!(
        !page.contains("/console/reports/schedules/monthly/send"),
        "no form that cannot mail: {page}"
    );
}
