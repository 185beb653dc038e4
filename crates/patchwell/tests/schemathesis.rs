//! The API fuzzed as an outsider would: `patchwell server` over HTTPS with
//! its own CA, on a loopback port with a fresh data directory and two hosts
//! enrolled, then schemathesis against `/api/openapi.json`: every route
//! with the first administrator's API token, and the agent's routes with a
//! host's credential. The run is bounded (a few examples per route, each
//! request at most ten seconds) and seeded, so CI sends the same requests
//! every time. No answer may be a server error, no route that asks for a
//! credential may answer without one, and a method a route does not have
//! is refused. Afterwards nothing may be half-stored: the server still
//! answers, the audit chain verifies, and SQLite finds its file intact.
//!
//! Needs `cargo xtask setup` (schemathesis in the target directory's
//! `pyenv/`, and the sqlite3 shell). Outside CI a machine without them
//! skips with a message; with `CI=true` it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use protocol::{
    Cpu, EnrollResponse, HostFacts, Interface, Inventory, Manager, OsRelease, Package,
    PackageState, RebootStatus,
};
use serde_json::{json, Value};

/// The seed every run uses, so that a failure found in CI is found again
/// on any machine.
const SEED: &str = "20261207";

/// Test cases per route and pass.
const EXAMPLES: &str = "30";

/// The target directory this test was built into: set-up keeps
/// schemathesis there.
fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_patchwell"));
    bin.parent()
        .and_then(Path::parent)
        .expect("the binary lies in <target>/<profile>/")
        .to_path_buf()
}

/// What the test needs that set-up installs, or why it cannot run.
fn prerequisites() -> Option<PathBuf> {
    let st = target_dir().join("pyenv/bin/st");
    let sqlite3 = Command::new("sqlite3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<String> = [
        (st.display().to_string(), st.exists()),
        ("sqlite3".to_owned(), sqlite3),
    ]
    .into_iter()
    .filter(|(_, there)| !there)
    .map(|(what, _)| what)
    .collect();
    if missing.is_empty() {
        return Some(st);
    }
    let message = format!("missing {}: run `cargo xtask setup`", missing.join(", "));
    assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{message}");
    eprintln!("skipped: {message}");
    None
}

/// The server, stopped (and its data removed) when the test ends, however
/// it ends.
struct Server {
    child: Option<Child>,
    url: String,
    data: PathBuf,
}

impl Server {
    fn start() -> Server {
        // A free port: bind, read it, release it for the server.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = std::env::temp_dir().join(format!(
            "patchwell-schemathesis-{}-{port}",
            std::process::id()
        ));
        let child = Command::new(env!("CARGO_BIN_EXE_patchwell"))
            .args(["server", "--data-dir"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--feed-refresh-hours", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start patchwell server");
        // Readiness, not timing: wait until it answers, for at most 30 seconds.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || !data.join("admin-token").exists()
        {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child: Some(child),
            url: format!("https://127.0.0.1:{port}"),
            data,
        }
    }

    fn ca(&self) -> PathBuf {
        self.data.join("tls/ca.pem")
    }

    fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Stops the server as Ctrl-C does, so that it closes its database.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server did not stop within 20 seconds of SIGINT");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::fs::remove_dir_all(&self.data).ok();
    }
}

fn inventory(hostname: &str, now: Timestamp) -> Inventory {
    let package = |name: &str, version: &str| Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source: None,
        source_version: None,
        state: PackageState::Installed,
        held: false,
    };
    Inventory {
        schema: protocol::INVENTORY_SCHEMA,
        collected_at: now,
        host: HostFacts {
            hostname: hostname.into(),
            machine_id: None,
            kernel: "6.1.0-18-amd64".into(),
            arch: "amd64".into(),
            cpu: Cpu {
                model: "EPYC".into(),
                count: 2,
            },
            model: None,
            memory_bytes: 1 << 30,
            disks: vec![],
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some(format!("02:00:00:00:00:{:02x}", hostname.len())),
                addresses: vec![],
            }],
            uptime_seconds: 60,
            boot_time: now,
        },
        os: OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            pretty_name: None,
            id_like: vec![],
        },
        reboot: RebootStatus {
            required: false,
            packages: vec![],
        },
        packages: vec![
            package("openssl", "3.0.11-1~deb12u1"),
            package("bash", "5.2.15-2+b2"),
            package("libc6", "2.36-9+deb12u3"),
        ],
        updates: vec![],
        neighbours: vec![],
        warnings: vec![],
    }
}

/// An HTTPS client that trusts the server's own CA. It keeps no idle
/// connection: the checks after the run come a minute after the set-up,
/// when the server has closed an idle connection (as it should), and a
/// pooled one could be reused in the moment it closes.
fn client(server: &Server) -> reqwest::Client {
    let ca = std::fs::read(server.ca()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Enrolls a host and stores its first inventory; returns its identity.
async fn enroll(server: &Server, http: &reqwest::Client, hostname: &str) -> EnrollResponse {
    let created: Value = http
        .post(format!("{}/api/v1/tokens", server.url))
        .bearer_auth(server.admin_token())
        .json(&json!({"max_uses": 1}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let enrolled: EnrollResponse = http
        .post(format!("{}/api/v1/agent/enroll", server.url))
        .json(&json!({"token": created["token"], "hostname": hostname}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored = http
        .put(format!("{}/api/v1/agent/inventory", server.url))
        .bearer_auth(&enrolled.credential)
        .json(&inventory(hostname, Timestamp::now()))
        .send()
        .await
        .unwrap();
    assert!(stored.status().is_success(), "{:?}", stored.text().await);
    enrolled
}

/// One bounded, seeded schemathesis run with `credential`, over the routes
/// `filter` selects; fails the test with schemathesis's whole report when
/// it finds anything.
fn schemathesis(st: &Path, server: &Server, credential: &str, filter: [&str; 2]) {
    let started = Instant::now();
    let output = Command::new(st)
        .arg("run")
        .arg(format!("{}/api/openapi.json", server.url))
        .arg("--tls-verify")
        .arg(server.ca())
        .args(["--header", &format!("Authorization: Bearer {credential}")])
        .args(filter)
        .args([
            "--checks",
            "not_a_server_error,ignored_auth,unsupported_method",
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
            "--no-color",
        ])
        // Nothing it writes lands in the source tree.
        .current_dir(&server.data)
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found failures ({}, {}):\n{report}",
        filter.join(" "),
        output.status
    );
    // Its count of test cases, such as "2788 generated, 2788 passed".
    let counted = report
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(" generated"))
        .unwrap_or("no count of test cases");
    eprintln!(
        "schemathesis {}: {counted} in {:.0?}",
        filter.join(" "),
        started.elapsed()
    );
}

#[test]
fn schemathesis_finds_no_server_error_and_nothing_is_half_stored() {
    let Some(st) = prerequisites() else {
        return;
    };
    let mut server = Server::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = client(&server);
    let hosts: Vec<EnrollResponse> = runtime.block_on(async {
        let mut hosts = Vec::new();
        for name in ["web-1", "db-1"] {
            hosts.push(enroll(&server, &http, name).await);
        }
        hosts
    });

    schemathesis(
        &st,
        &server,
        &server.admin_token(),
        ["--exclude-path-regex", "^/api/v1/agent/"],
    );
    schemathesis(
        &st,
        &server,
        &hosts[0].credential,
        ["--include-path-regex", "^/api/v1/agent/"],
    );

    // The server still answers, with both hosts whole, and the audit chain
    // of everything the run changed verifies.
    runtime.block_on(async {
        let admin = server.admin_token();
        for host in &hosts {
            let answer = http
                .get(format!("{}/api/v1/hosts/{}", server.url, host.host_id))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), reqwest::StatusCode::OK, "{}", host.host_id);
            let detail: server::api::HostDetail = answer.json().await.unwrap();
            assert_eq!(
                detail.packages.len(),
                3,
                "host {} keeps the packages it sent: {:?}",
                host.host_id,
                detail.packages
            );
        }
        let verdict: Value = http
            .get(format!("{}/api/v1/audit/verify", server.url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(verdict["intact"], true, "{verdict}");
    });

    // And the file it was all stored in is whole, once the server has
    // closed it.
    server.stop();
    let checked = Command::new("sqlite3")
        .arg(server.data.join("patchwell.db"))
        .arg("PRAGMA integrity_check; PRAGMA foreign_key_check;")
        .output()
        .expect("run sqlite3");
    assert!(checked.status.success(), "{checked:?}");
    assert_eq!(
        String::from_utf8_lossy(&checked.stdout).trim(),
        "ok",
        "SQLite's integrity and foreign key checks"
    );
}
