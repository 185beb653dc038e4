//! A rollout to 10,000 simulated agents on a real `patchwell server` with
//! the embedded SQLite, over loopback, from this separate process. Every
//! agent checks in until it gets its job, verifies the job's signature and
//! reports each step (received ... succeeded) as its own request, as the
//! real agent does. Rings: a 5% pilot, then everyone else once the pilot
//! passed its gate (no business-day wait, so that the run measures the
//! server). Prints the time until every host is done and recorded, step
//! events a second, and the time to 50% and 95% of hosts.
//! Run with `cargo xtask bench` (or `cargo bench -p patchwell --bench rollout`).
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::job::{SignedJob, Step};
use serde_json::{json, Value};

const HOSTS: usize = 10_000;
const CONCURRENCY: usize = 48;
const FIXED: &str = "3.0.17-1~deb12u2";
const OLD: &str = "3.0.15-1~deb12u1";

/// An enrolled agent: host id, credential, the server's job key.
type Agent = (String, String, String);

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: &str,
    body: Value,
) -> Value {
    let resp = http
        .request(method, url)
        .bearer_auth(auth)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn inventory(host: usize) -> Value {
    let pkg = |name: &str, version: &str| {
        json!({"manager": "dpkg", "name": name, "version": version,
        "arch": "amd64", "source": null, "source_version": null, "state": "installed", "held": false})
    };
    json!({
        "schema": protocol::INVENTORY_SCHEMA,
        "collected_at": jiff::Timestamp::now(),
        "host": {"hostname": format!("fleet-{host:05}"), "machine_id": null, "kernel": "6.1.0-18-amd64", "arch": "amd64",
                 "cpu": {"model": if host.is_multiple_of(3) { "EPYC" } else { "Xeon" }, "count": 2}, "memory_bytes": 8_589_934_592u64, "disks": [],
                 "interfaces": [], "uptime_seconds": 1, "boot_time": "2026-01-01T00:00:00Z"},
        "os": {"id": "debian", "version_id": "12", "codename": "bookworm", "pretty_name": null, "id_like": []},
        "reboot": {"required": false, "packages": []},
        "packages": [pkg("libssl3", OLD), pkg("openssl", OLD), pkg("bash", "5.2.15-2+b2")],
        "updates": [], "neighbours": [], "warnings": []
    })
}

fn main() {
    let server = support::Server::start("rollout-bench");
    let (url, admin) = (server.url.clone(), server.admin.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .build()
            .expect("client");
        let created = send(&http, reqwest::Method::POST, &format!("{url}/api/v1/tokens"), &admin,
            json!({"max_uses": HOSTS})).await;
        let token = created["token"].as_str().expect("token").to_owned();
        // Enroll and send a first inventory, 48 hosts at a time.
        let setup = Instant::now();
        let hosts: Arc<Mutex<Vec<Option<Agent>>>> =
            Arc::new(Mutex::new(vec![None; HOSTS]));
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let (http, url, token, hosts, next) =
                (http.clone(), url.clone(), token.clone(), hosts.clone(), next.clone());
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= HOSTS {
                        return;
                    }
                    let resp: Value = http
                        .post(format!("{url}/api/v1/agent/enroll"))
                        .json(&json!({"token": token, "hostname": format!("fleet-{i:05}")}))
                        .send()
                        .await
                        .expect("enroll")
                        .json()
                        .await
                        .expect("enroll json");
                    let credential = resp["credential"].as_str().expect("credential").to_owned();
                    send(&http, reqwest::Method::PUT, &format!("{url}/api/v1/agent/inventory"),
                        &credential, inventory(i)).await;
                    hosts.lock().expect("hosts")[i] = Some((
                        resp["host_id"].as_str().expect("id").to_owned(),
                        credential,
                        resp["job_key"].as_str().expect("key").to_owned(),
                    ));
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let hosts: Arc<Vec<Agent>> = Arc::new(
            hosts.lock().expect("hosts").iter().map(|h| h.clone().expect("enrolled")).collect(),
        );
        println!(
            "{HOSTS} agents enrolled with a first inventory in {:.1} s; SQLite, server and agents on 2 cores over loopback\n",
            setup.elapsed().as_secs_f64()
        );

        let start = Instant::now();
        let created = send(&http, reqwest::Method::POST, &format!("{url}/api/v1/rollouts"), &admin,
            json!({"name": "bench", "reason": "benchmark", "packages": [format!("libssl3={FIXED}"), format!("openssl={FIXED}")],
                   "rings": [{"name": "pilot", "size": "5%"}, {"name": "broad", "size": "rest"}]})).await;
        let created_in = start.elapsed();
        let pilot = created["rings"][0]["hosts"].as_u64().unwrap_or(0);

        // Agents: check in round the fleet until each has its job; then
        // report every step, one request each.
        let done_at: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::with_capacity(HOSTS)));
        let finished = Arc::new(AtomicUsize::new(0));
        let events = Arc::new(AtomicUsize::new(0));
        let heartbeats = Arc::new(AtomicUsize::new(0));
        let cursor = Arc::new(AtomicUsize::new(0));
        let done_flags: Arc<Vec<std::sync::atomic::AtomicBool>> =
            Arc::new((0..HOSTS).map(|_| std::sync::atomic::AtomicBool::new(false)).collect());
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let (http, url, hosts, done_at, finished, events, heartbeats, cursor, flags) = (
                http.clone(), url.clone(), hosts.clone(), done_at.clone(), finished.clone(),
                events.clone(), heartbeats.clone(), cursor.clone(), done_flags.clone(),
            );
            tasks.spawn(async move {
                while finished.load(Ordering::Relaxed) < HOSTS {
                    let i = cursor.fetch_add(1, Ordering::Relaxed) % HOSTS;
                    if flags[i].load(Ordering::Relaxed) {
                        // One thread runs every agent: let the others on.
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let (id, credential, key) = &hosts[i];
                    let answer = send(&http, reqwest::Method::POST, &format!("{url}/api/v1/agent/heartbeat"),
                        credential, json!({"inventory_digest": "x"})).await;
                    heartbeats.fetch_add(1, Ordering::Relaxed);
                    let jobs: Vec<SignedJob> = serde_json::from_value(answer["jobs"].clone()).unwrap_or_default();
                    let Some(signed) = jobs.first() else {
                        // Nothing yet: a real agent would sleep; here the
                        // next host checks in.
                        continue;
                    };
                    if flags[i].swap(true, Ordering::Relaxed) {
                        continue;
                    }
                    let key = protocol::job::parse_key(key).expect("key");
                    let job = signed.open(&key, id, jiff::Timestamp::now()).expect("a valid job");
                    for step in [Step::Received, Step::Downloading, Step::Downloaded, Step::Installing,
                                 Step::Installed, Step::Verifying, Step::Succeeded] {
                        let mut report = json!({"step": step, "at": jiff::Timestamp::now()});
                        if step == Step::Installed {
                            report["changes"] = job.packages.iter().map(|p| json!({"name": p.name, "arch": p.arch, "from": OLD, "to": p.version})).collect();
                        }
                        send(&http, reqwest::Method::POST, &format!("{url}/api/v1/agent/jobs/{}/steps", job.id),
                            credential, json!({"steps": [report]})).await;
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                    done_at.lock().expect("done").push(start.elapsed());
                    finished.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let agents_done = start.elapsed();
        // Recorded: the server says the rollout is complete.
        let review = loop {
            let review = send(&http, reqwest::Method::GET, &format!("{url}/api/v1/rollouts/bench/review"), &admin, Value::Null).await;
            let status = send(&http, reqwest::Method::GET, &format!("{url}/api/v1/rollouts"), &admin, Value::Null).await;
            if status[0]["status"] == "complete" && review["succeeded"] == HOSTS {
                break review;
            }
            assert!(start.elapsed() < Duration::from_secs(600), "the rollout never completed: {review}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let recorded = start.elapsed();
        let mut done = done_at.lock().expect("done").clone();
        done.sort();
        let at = |share: usize| done[(HOSTS * share).div_ceil(100) - 1].as_secs_f64();
        let events = events.load(Ordering::Relaxed);
        println!("rollout created (versions frozen, rings assigned) in {:.2} s; pilot {pilot} hosts", created_in.as_secs_f64());
        println!("all {HOSTS} agents done in {:.1} s; rollout complete and recorded at {:.1} s (target: 30 s)",
            agents_done.as_secs_f64(), recorded.as_secs_f64());
        println!("step events: {events} in {:.1} s = {:.0}/s; heartbeats {} ({:.0}/s)",
            agents_done.as_secs_f64(), events as f64 / agents_done.as_secs_f64(),
            heartbeats.load(Ordering::Relaxed), heartbeats.load(Ordering::Relaxed) as f64 / agents_done.as_secs_f64());
        println!("time to 50%: {:.1} s, to 95%: {:.1} s (server's review: {} s and {} s, by the agents' clocks in whole seconds)",
            at(50), at(95), review["seconds_to_50_percent"], review["seconds_to_95_percent"]);
    });
    drop(server);
}
