//! Load on a real `patchwell server` with the embedded SQLite, from this
//! separate process, over loopback. Prints requests a second and latency
//! percentiles for full inventories (1,000 packages each), heartbeats and
//! inventory deltas, then the agent's memory while it waits between
//! check-ins. Run with `cargo xtask bench` (or `cargo bench -p patchwell`).
//!
//! The package list is this machine's real dpkg database, topped up to 1,000
//! packages; every host starts from the same image, as a cloned fleet does.
//! Request bodies are made before each phase is timed, as a fleet of agents
//! makes its own: the load has one core, and making them is not the server's
//! work.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

mod support;

use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::{Inventory, Manager, Package, PackageState};
use serde_json::{json, Value};
use tokio::sync::Mutex;

const HOSTS: usize = 300;
const PACKAGES: usize = 1000;

struct Stats {
    label: &'static str,
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
    }

    fn print(&self) {
        println!(
            "{:<34} {:>7} {:>10.0}/s   p50 {:>6.1} ms   p99 {:>6.1} ms",
            self.label,
            self.count,
            self.count as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50).as_secs_f64() * 1000.0,
            self.percentile(0.99).as_secs_f64() * 1000.0,
        );
    }
}

/// Runs `make(i)` for i in 0..total, `concurrency` at a time, timing each.
async fn drive<F, Fut>(label: &'static str, total: usize, concurrency: usize, make: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (make, next) = (make.clone(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return latencies;
                }
                let t = Instant::now();
                make(i).await;
                latencies.push(t.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.expect("a load task panicked"));
    }
    Stats {
        label,
        count: total,
        elapsed: start.elapsed(),
        latencies,
    }
}

fn image() -> Vec<Package> {
    let status = std::fs::read("/var/lib/dpkg/status").unwrap_or_default();
    let mut packages = Vec::new();
    let mut fields: (Option<String>, Option<String>, Option<String>) = (None, None, None);
    for line in status
        .lines()
        .map(Result::unwrap_or_default)
        .chain(std::iter::once(String::new()))
    {
        if line.is_empty() {
            if let (Some(name), Some(version), Some(arch)) = fields.clone() {
                packages.push(Package {
                    manager: Manager::Dpkg,
                    name,
                    version,
                    arch,
                    source: None,
                    source_version: None,
                    state: PackageState::Installed,
                    held: false,
                });
            }
            fields = (None, None, None);
        } else if let Some(v) = line.strip_prefix("Package: ") {
            fields.0 = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("Version: ") {
            fields.1 = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("Architecture: ") {
            fields.2 = Some(v.to_owned());
        }
    }
    packages.truncate(PACKAGES);
    let mut n = 0;
    while packages.len() < PACKAGES {
        n += 1;
        packages.push(Package {
            manager: Manager::Dpkg,
            name: format!("libbench{n}"),
            version: format!("1.{n}-1"),
            arch: "amd64".into(),
            source: None,
            source_version: None,
            state: PackageState::Installed,
            held: false,
        });
    }
    packages
}

fn inventory(host: usize, packages: Vec<Package>) -> Inventory {
    let mut inv: Inventory = serde_json::from_value(json!({
        "schema": protocol::INVENTORY_SCHEMA,
        "collected_at": jiff::Timestamp::now(),
        "host": {"hostname": format!("bench-{host:04}"), "machine_id": null, "kernel": "6.1.0-18-amd64", "arch": "amd64",
                 "cpu": {"model": "bench", "count": 2}, "memory_bytes": 8_589_934_592u64, "disks": [],
                 "interfaces": [{"name": "eth0", "mac": format!("02:00:00:00:{:02x}:{:02x}", host / 256, host % 256), "addresses": []}],
                 "uptime_seconds": 1, "boot_time": "2026-01-01T00:00:00Z"},
        "os": {"id": "debian", "version_id": "12", "codename": "bookworm", "pretty_name": null, "id_like": []},
        "reboot": {"required": false, "packages": []},
        "packages": [], "updates": [], "neighbours": [], "warnings": []
    }))
    .expect("a valid inventory");
    inv.packages = packages;
    inv
}

fn gzip(value: &impl serde::Serialize) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(value).expect("json"))
        .expect("gzip");
    gz.finish().expect("gzip")
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: &str,
    body: Vec<u8>,
    gz: bool,
) -> Value {
    let mut req = http
        .request(method, url)
        .bearer_auth(auth)
        .header("content-type", "application/json");
    if gz {
        req = req.header("content-encoding", "gzip");
    }
    let resp = req.body(body).send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Sends body `i` as host `i % HOSTS`'s inventory (PUT) or delta (PATCH),
/// `concurrency` at a time, each host's in order.
#[allow(clippy::too_many_arguments)]
async fn send_all(
    label: &'static str,
    http: &reqwest::Client,
    url: &str,
    credentials: &Arc<Vec<String>>,
    order: &Arc<Vec<Mutex<()>>>,
    method: reqwest::Method,
    bodies: Vec<Vec<u8>>,
    concurrency: usize,
) -> Stats {
    let total = bodies.len();
    let bodies: Arc<Vec<std::sync::Mutex<Option<Vec<u8>>>>> = Arc::new(
        bodies
            .into_iter()
            .map(|b| std::sync::Mutex::new(Some(b)))
            .collect(),
    );
    let (u, c, o, http) = (
        format!("{url}/api/v1/agent/inventory"),
        credentials.clone(),
        order.clone(),
        http.clone(),
    );
    drive(label, total, concurrency, move |i| {
        let (u, c, o, b, m, http) = (
            u.clone(),
            c.clone(),
            o.clone(),
            bodies.clone(),
            method.clone(),
            http.clone(),
        );
        async move {
            let host = i % HOSTS;
            let _in_order = o[host].lock().await;
            let body = b[i]
                .lock()
                .ok()
                .and_then(|mut b| b.take())
                .expect("each body is sent once");
            send(&http, m, &u, &c[host], body, true).await;
        }
    })
    .await
}

fn agent_rss(url: &str, admin: &str, data: &Path) {
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_patchwell")).with_file_name("patchwell-agent");
    if !agent.exists() {
        println!("agent idle memory: skipped, build it first (cargo build --release -p agent)");
        return;
    }
    let token_out = Command::new(env!("CARGO_BIN_EXE_patchwell"))
        .args([
            "tokens", "create", "--server", url, "--token", admin, "--json",
        ])
        .output()
        .expect("create a token");
    let token: Value = serde_json::from_slice(&token_out.stdout).expect("token json");
    let state = data.join("agent-state");
    let enrolled = Command::new(&agent)
        .args([
            "enroll",
            "--server",
            url,
            "--token",
            token["token"].as_str().unwrap_or_default(),
        ])
        .arg("--state-dir")
        .arg(&state)
        .status()
        .expect("enroll");
    assert!(enrolled.success());
    let mut child = Command::new(&agent)
        .arg("run")
        .arg("--state-dir")
        .arg(&state)
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent");
    // Wait for the first check-in to finish; then it sleeps until the next.
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    std::thread::sleep(Duration::from_secs(1));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
    };
    println!(
        "agent idle memory (after {first:?}): RSS {}, peak {}",
        field("VmRSS:").unwrap_or_default(),
        field("VmHWM:").unwrap_or_default()
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let server = support::Server::start("load");
    let (url, admin, data) = (
        server.url.clone(),
        server.admin.clone(),
        server.data.clone(),
    );

    // One worker thread: the server has the other core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .build()
            .expect("client");
        let created = send(
            &http,
            reqwest::Method::POST,
            &format!("{url}/api/v1/tokens"),
            &admin,
            serde_json::to_vec(&json!({"max_uses": HOSTS})).expect("json"),
            false,
        )
        .await;
        let token = created["token"].as_str().expect("token").to_owned();
        let mut credentials = Vec::new();
        for i in 0..HOSTS {
            let resp = http
                .post(format!("{url}/api/v1/agent/enroll"))
                .json(&json!({"token": token, "hostname": format!("bench-{i:04}")}))
                .send()
                .await
                .expect("enroll");
            let body: Value = resp.json().await.expect("enroll json");
            credentials.push(body["credential"].as_str().expect("credential").to_owned());
        }
        let credentials = Arc::new(credentials);
        let image = image();
        println!(
            "{HOSTS} hosts, {} packages each, SQLite, server and load on 2 cores over loopback\n",
            image.len()
        );

        // Every request body is made before its phase is timed: the load
        // runs on one core, and making a body (serialising, gzip, the
        // agent's digest of 1,000 packages) costs about as much as the
        // server takes to store it; a real fleet makes its own.
        // Hosts' requests go in order: each host's lock is held while its
        // request is in flight.
        let order: Arc<Vec<Mutex<()>>> = Arc::new((0..HOSTS).map(|_| Mutex::new(())).collect());
        let mut current: Vec<Inventory> = (0..HOSTS).map(|h| inventory(h, image.clone())).collect();

        // Full inventories: each host's first (every row new for that host),
        // then each host resending its whole inventory twice (a resync),
        // then each sending its whole inventory with five packages changed,
        // as after the server asked for a resync.
        for (label, total, changes) in [
            ("first inventories (1,000 packages)", HOSTS, 0),
            ("full inventories resent (1,000)", 2 * HOSTS, 0),
            ("full inventories, 5 changed (1,000)", 2 * HOSTS, 5),
        ] {
            let mut bodies = Vec::with_capacity(total);
            for i in 0..total {
                let inv = &mut current[i % HOSTS];
                for k in 0..changes {
                    let p = &mut inv.packages[(i * changes + k) % PACKAGES];
                    p.version = format!(
                        "{}+full{i}",
                        p.version.split("+full").next().unwrap_or_default()
                    );
                }
                inv.collected_at = jiff::Timestamp::now();
                bodies.push(gzip(&*inv));
            }
            let stats = send_all(
                label,
                &http,
                &url,
                &credentials,
                &order,
                reqwest::Method::PUT,
                bodies,
                8,
            )
            .await;
            stats.print();
        }

        let (u, c) = (url.clone(), credentials.clone());
        let http2 = http.clone();
        let digests: Arc<Vec<String>> = Arc::new(current.iter().map(Inventory::digest).collect());
        let beats = drive("heartbeats", 30_000, 64, move |i| {
            let (u, c, d, http) = (u.clone(), c.clone(), digests.clone(), http2.clone());
            async move {
                let host = i % HOSTS;
                let body = serde_json::to_vec(
                    &json!({"inventory_digest": d[host], "acknowledged_digest": d[host]}),
                )
                .expect("json");
                let answer = send(
                    &http,
                    reqwest::Method::POST,
                    &format!("{u}/api/v1/agent/heartbeat"),
                    &c[host],
                    body,
                    false,
                )
                .await;
                assert_eq!(answer["inventory"], "none");
            }
        })
        .await;
        beats.print();

        // Deltas: each changes five packages of a host against its stored
        // inventory; 3,000 with 8 in flight, then 3,000 with 32.
        for (label, concurrency) in [
            ("inventory deltas (5), 8 in flight", 8),
            ("inventory deltas (5), 32 in flight", 32),
        ] {
            let total = 10 * HOSTS;
            let mut bodies = Vec::with_capacity(total);
            for i in 0..total {
                let inv = &mut current[i % HOSTS];
                let base = inv.clone();
                for k in 0..5 {
                    let p = &mut inv.packages[(i * 5 + k) % PACKAGES];
                    p.version = format!(
                        "{}+bench{concurrency}.{i}",
                        p.version.split("+bench").next().unwrap_or_default()
                    );
                }
                inv.collected_at = jiff::Timestamp::now();
                bodies.push(gzip(&inv.delta_from(&base)));
            }
            let deltas = send_all(
                label,
                &http,
                &url,
                &credentials,
                &order,
                reqwest::Method::PATCH,
                bodies,
                concurrency,
            )
            .await;
            deltas.print();
        }
    });

    agent_rss(&url, &admin, &data);
    drop(server);
}
