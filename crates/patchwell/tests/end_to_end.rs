//! The whole assess cycle with the real binaries: `patchwell server` on a
//! loopback port with a fresh data directory, the admin command line, and
//! `patchwell-agent` enrolling and checking in with the real Debian root that
//! `cargo xtask setup` builds. (`patchwell-agent` is found beside `patchwell`
//! in the target directory; `cargo nextest run --workspace` builds both.)

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Server {
    child: Child,
    url: String,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.data).ok();
    }
}

fn bin(name: &str) -> PathBuf {
    let patchwell = PathBuf::from(env!("CARGO_BIN_EXE_patchwell"));
    let path = patchwell.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p agent`",
        path.display()
    );
    path
}

fn test_root() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let root = target.join("test-roots/bookworm");
    if root.join(".patchwell-ready").exists() {
        return Some(root);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "the test Debian root is missing and CI=true"
    );
    eprintln!("skipping: the test Debian root is missing (cargo xtask setup)");
    None
}

fn start_server(extra: &[&str], scheme: &str) -> Server {
    // A free port: bind, read it, release it for the server.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = std::env::temp_dir().join(format!("patchwell-e2e-{}-{port}", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_patchwell"))
        .args([
            "server",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start patchwell server");
    let url = format!("{scheme}://127.0.0.1:{port}");
    // Readiness, not timing: wait until it answers, for at most 30 seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || !data.join("admin-token").exists()
    {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, url, data }
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn admin(server: &Server, args: &[&str]) -> Value {
    let out = admin_output(server, args, true);
    assert!(
        out.status.success(),
        "patchwell {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs an admin command against `server`, trusting its CA when `trust` is set.
fn admin_output(server: &Server, args: &[&str], trust: bool) -> Output {
    let token_file = server.data.join("admin-token");
    let ca = server.data.join("tls/ca.pem");
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--server",
        &server.url,
        "--token-file",
        token_file.to_str().unwrap(),
        "--json",
    ]);
    if trust && server.url.starts_with("https") {
        all.extend(["--ca-cert", ca.to_str().unwrap()]);
    }
    run(Path::new(env!("CARGO_BIN_EXE_patchwell")), &all)
}

#[test]
fn a_host_enrolls_checks_in_is_found_and_can_be_revoked() {
    let Some(root) = test_root() else { return };
    let server = start_server(&["--plain-http"], "http");
    let agent = bin("patchwell-agent");
    let state = server.data.join("agent-state");
    let root_arg = root.to_str().unwrap();
    let state_arg = state.to_str().unwrap();

    let created = admin(
        &server,
        &["tokens", "create", "--max-uses", "2", "--group", "lab"],
    );
    let token = created["token"].as_str().unwrap().to_owned();

    let out = run(
        &agent,
        &[
            "enroll",
            "--server",
            &server.url,
            "--token",
            &token,
            "--state-dir",
            state_arg,
            "--root",
            root_arg,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(state.join("agent.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "the credential is readable by its owner only"
    );

    let out = run(
        &agent,
        &[
            "run",
            "--once",
            "--state-dir",
            state_arg,
            "--root",
            root_arg,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("inventory sent"));

    let hosts = admin(&server, &["hosts", "list"]);
    let hosts = hosts.as_array().unwrap();
    assert_eq!(hosts.len(), 1);
    let host = &hosts[0];
    assert_eq!(
        (host["os_id"].as_str(), host["os_version"].as_str()),
        (Some("debian"), Some("12"))
    );
    assert_eq!(host["group"], "lab");
    assert_eq!(host["reboot_required"], true);
    let id = host["id"].as_str().unwrap().to_owned();

    // The root's apt is older than the security suite's: found by version.
    let below = admin(&server, &["packages", "below", "apt", "--version", "2.6.2"]);
    assert_eq!(below.as_array().unwrap().len(), 1, "{below}");
    assert_eq!(below[0]["version"], "2.6.1");
    let detail = admin(&server, &["hosts", "show", &id]);
    let cron = detail["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cron")
        .unwrap();
    assert_eq!(cron["state"], "config-files");

    // Nothing changed: the next check-in sends no inventory.
    let out = run(
        &agent,
        &[
            "run",
            "--once",
            "--state-dir",
            state_arg,
            "--root",
            root_arg,
        ],
    );
    assert!(out.status.success());
    // Nothing changed: no inventory and no delta goes out.
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "checked in");

    // A dynamic group by query, from the command line.
    admin(
        &server,
        &[
            "groups",
            "set",
            "lab-bookworm",
            "os = debian and os_version >= 12 and group = lab",
        ],
    );
    let members = admin(&server, &["groups", "hosts", "lab-bookworm"]);
    assert_eq!(members.as_array().unwrap().len(), 1);
    let none = admin(&server, &["hosts", "list", "--query", "os_version > 12"]);
    assert!(none.as_array().unwrap().is_empty());

    // The list's filters, the fleet summaries and the unmanaged devices.
    let count = |args: &[&str]| {
        let mut all = vec!["hosts", "list"];
        all.extend(args);
        admin(&server, &all).as_array().unwrap().len()
    };
    assert_eq!(count(&["--os", "debian", "--os-version", "12"]), 1);
    assert_eq!(count(&["--os", "rocky"]), 0);
    assert_eq!(count(&["--group", "lab"]), 1);
    assert_eq!(count(&["--group", "servers"]), 0);
    assert_eq!(count(&["--reboot-required"]), 1);
    assert_eq!(count(&["--stale"]), 0);
    assert_eq!(count(&["--tag", "laptop"]), 0);
    let releases = admin(&server, &["hosts", "summary"]);
    assert_eq!(releases.as_array().unwrap().len(), 1, "{releases}");
    assert!(
        releases[0]["value"].as_str().unwrap().contains("debian"),
        "{releases}"
    );
    assert_eq!(releases[0]["hosts"], 1);
    let versions = admin(&server, &["packages", "versions", "apt"]);
    assert_eq!(
        versions,
        serde_json::json!([{"value": "2.6.1", "hosts": 1}])
    );
    assert!(admin(&server, &["devices"]).is_array());

    // A token revoked before use enrolls nobody.
    let spare = admin(&server, &["tokens", "create"]);
    admin(
        &server,
        &["tokens", "revoke", spare["id"].as_str().unwrap()],
    );
    let out = run(
        &agent,
        &[
            "enroll",
            "--server",
            &server.url,
            "--token",
            spare["token"].as_str().unwrap(),
            "--state-dir",
            server.data.join("spare-state").to_str().unwrap(),
            "--root",
            root_arg,
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Enrolling twice from one state directory is refused.
    let out = run(
        &agent,
        &[
            "enroll",
            "--server",
            &server.url,
            "--token",
            &token,
            "--state-dir",
            state_arg,
            "--root",
            root_arg,
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already enrolled"));

    // Revoked: the agent is refused and says so.
    admin(&server, &["hosts", "revoke", &id]);
    let out = run(
        &agent,
        &[
            "run",
            "--once",
            "--state-dir",
            state_arg,
            "--root",
            root_arg,
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A wrong token is refused with the reason.
    let other = server.data.join("other-state");
    let out = run(
        &agent,
        &[
            "enroll",
            "--server",
            &server.url,
            "--token",
            "pwe_wrong",
            "--state-dir",
            other.to_str().unwrap(),
            "--root",
            root_arg,
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown token"));
}

#[test]
fn https_with_the_servers_own_ca_for_agents_and_the_command_line() {
    let server = start_server(&[], "https");
    let ca = server.data.join("tls/ca.pem");
    for file in ["ca.pem", "server.pem", "server.key"] {
        let meta = std::fs::metadata(server.data.join("tls").join(file)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600,
            "{file}"
        );
    }
    assert!(
        !server.data.join("tls/ca.key").exists(),
        "the CA key is not kept"
    );

    // Not trusting the server's CA fails, and says why.
    let out = admin_output(&server, &["tokens", "list"], false);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = admin(&server, &["tokens", "create"]);
    let token = created["token"].as_str().unwrap();

    let agent = bin("patchwell-agent");
    let state = server.data.join("agent-state");
    let untrusting = run(
        &agent,
        &[
            "enroll",
            "--server",
            &server.url,
            "--token",
            token,
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert!(!untrusting.status.success());
    assert!(
        String::from_utf8_lossy(&untrusting.stderr)
            .to_lowercase()
            .contains("certificate"),
        "{}",
        String::from_utf8_lossy(&untrusting.stderr)
    );
    let out = run(
        &agent,
        &[
            "enroll",
            "--server",
            &server.url,
            "--token",
            token,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // This machine itself, over HTTPS.
    let out = run(
        &agent,
        &["run", "--once", "--state-dir", state.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts = admin(&server, &["hosts", "list"]);
    assert_eq!(hosts.as_array().unwrap().len(), 1);
    assert!(hosts[0]["os_id"].is_string());
}

#[test]
fn plain_http_is_refused_away_from_loopback() {
    let out = run(
        Path::new(env!("CARGO_BIN_EXE_patchwell")),
        &[
            "server",
            "--data-dir",
            "/nonexistent-unused",
            "--listen",
            "0.0.0.0:0",
            "--plain-http",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to serve plain HTTP"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn status_file(packages: &[(&str, &str)]) -> String {
    packages
        .iter()
        .map(|(name, version)| {
            format!("Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n")
        })
        .collect()
}

#[test]
fn changes_travel_as_deltas_between_the_real_binaries() {
    let server = start_server(&["--plain-http"], "http");
    let agent = bin("patchwell-agent");
    let root = server.data.join("small-root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    let status = root.join("var/lib/dpkg/status");
    std::fs::write(
        &status,
        status_file(&[
            ("openssl", "3.0.11-1"),
            ("bash", "5.2.15-2"),
            ("zsh", "5.9-4"),
        ]),
    )
    .unwrap();
    let state = server.data.join("small-state");
    let (root_arg, state_arg) = (root.to_str().unwrap(), state.to_str().unwrap());
    let token = admin(&server, &["tokens", "create"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = run(
        &agent,
        &[
            "enroll",
            "--server",
            &server.url,
            "--token",
            &token,
            "--state-dir",
            state_arg,
            "--root",
            root_arg,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let check_in = || {
        let out = run(
            &agent,
            &[
                "run",
                "--once",
                "--state-dir",
                state_arg,
                "--root",
                root_arg,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(check_in().contains("; inventory sent"));
    assert!(state.join("acknowledged-inventory.json").exists());

    // An upgrade, a removal and an installation: only they travel.
    std::fs::write(
        &status,
        status_file(&[
            ("openssl", "3.0.15-1"),
            ("bash", "5.2.15-2"),
            ("curl", "7.88.1-10"),
        ]),
    )
    .unwrap();
    assert!(check_in().contains("inventory changes sent"));
    assert_eq!(check_in().trim(), "checked in");

    let hosts = admin(&server, &["hosts", "list"]);
    let detail = admin(
        &server,
        &["hosts", "show", hosts[0]["id"].as_str().unwrap()],
    );
    let packages: Vec<(String, String)> = detail["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("bash", "5.2.15-2"),
        ("curl", "7.88.1-10"),
        ("openssl", "3.0.15-1"),
    ];
    assert_eq!(
        packages,
        expected.map(|(n, v)| (n.to_owned(), v.to_owned()))
    );

    // A lost acknowledged copy means a full upload, not an error.
    std::fs::remove_file(state.join("acknowledged-inventory.json")).unwrap();
    std::fs::write(&status, status_file(&[("openssl", "3.0.15-1")])).unwrap();
    assert!(check_in().contains("; inventory sent"));
}

#[test]
fn planning_decisions_from_the_command_line_are_audited_and_verified_offline() {
    let server = start_server(&["--plain-http"], "http");
    // The first start made the admin user; its password is in the data
    // directory, readable by its owner only.
    let password = server.data.join("admin-password");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&password).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let pw = server.data.join("alice-password");
    std::fs::write(&pw, "a long enough password\n").unwrap();
    let created = admin(
        &server,
        &[
            "users",
            "add",
            "alice",
            "--role",
            "approver",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert_eq!(created["role"], "approver");
    let token = admin(
        &server,
        &["api-tokens", "create", "alice's laptop", "--user", "alice"],
    );
    assert_eq!(token["scopes"], "read,approve");
    let alice_token = server.data.join("alice-token");
    std::fs::write(&alice_token, token["token"].as_str().unwrap()).unwrap();
    let as_alice = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--server",
            &server.url,
            "--token-file",
            alice_token.to_str().unwrap(),
        ]);
        run(Path::new(env!("CARGO_BIN_EXE_patchwell")), &all)
    };

    // Alice approves and exempts; she may not define a policy.
    let out = as_alice(&[
        "approvals",
        "approve",
        "DSA-5532-1",
        "--ring",
        "pilot",
        "--comment",
        "lab passed",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "DSA-5532-1 approved by alice\n"
    );
    let out = as_alice(&[
        "exemptions",
        "add",
        "legacy-openssl",
        "--group",
        "kiosks",
        "--package",
        "openssl",
        "--reason",
        "vendor certification pending",
        "--control",
        "isolated VLAN",
        "--days",
        "14",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy = server.data.join("policy.json");
    std::fs::write(&policy, r#"{"hosts": "tag = server", "schedule": "second tuesday of every month at 22:00", "timezone": "Europe/Berlin"}"#).unwrap();
    let out = as_alice(&[
        "policies",
        "put",
        "servers",
        "--file",
        policy.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("403 Forbidden: user alice has role approver, which may not administer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = admin(
        &server,
        &[
            "policies",
            "put",
            "servers",
            "--file",
            policy.to_str().unwrap(),
        ],
    );
    assert!(stored["now"]["next_run"].is_string(), "{stored}");

    // The audit log names who did what and why.
    let log = admin(&server, &["audit", "list", "--subject", "exemptions/"]);
    assert_eq!(log[0]["actor"], "alice");
    assert_eq!(
        log[0]["reason"],
        "vendor certification pending (compensating control: isolated VLAN)"
    );
    let verdict = admin(&server, &["audit", "verify"]);
    assert_eq!(verdict["intact"], true);
    let entries = verdict["entries"].as_u64().unwrap();
    assert!(
        entries >= 6,
        "users, tokens, approval, exemption, policy: {verdict}"
    );

    // Stop the server, alter an entry in the database, and verify offline.
    drop_server_keep_data(server, |data| {
        let db = data.join("patchwell.db");
        let out = run(
            Path::new("sqlite3"),
            &[
                db.to_str().unwrap(),
                "UPDATE audit_log SET reason = 'routine' WHERE action = 'exempt';",
            ],
        );
        assert!(
            out.status.success(),
            "sqlite3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(
            Path::new(env!("CARGO_BIN_EXE_patchwell")),
            &["audit", "verify", "--data-dir", data.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.starts_with("audit log broken at entry "), "{said}");
        assert!(
            said.contains("was altered: its contents do not match its hash"),
            "{said}"
        );
    });
}

/// Stops the server, runs `check` on its data directory, then removes it.
fn drop_server_keep_data(mut server: Server, check: impl FnOnce(&Path)) {
    let _ = server.child.kill();
    let _ = server.child.wait();
    check(&server.data);
}

/// The end-to-end rollout `cargo xtask e2e` runs: a fresh out-of-date
/// Debian root, its security updates installed by a rollout through the
/// real agent and apt, checked with dpkg, rolled back, and a failing pilot
/// that halts a second rollout.
#[test]
fn a_rollout_installs_security_updates_on_a_real_root_and_rolls_them_back() {
    let have_tools = Command::new("mmdebstrap").arg("--version").output().is_ok()
        && Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !have_tools {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "the end-to-end rollout needs root and mmdebstrap, and CI=true"
        );
        eprintln!("skipping: the end-to-end rollout needs root and mmdebstrap");
        return;
    }
    let bins = xtask::e2e::Bins {
        patchwell: PathBuf::from(env!("CARGO_BIN_EXE_patchwell")),
        agent: bin("patchwell-agent"),
    };
    let work = std::env::temp_dir().join(format!("patchwell-rollout-e2e-{}", std::process::id()));
    let summary = xtask::e2e::run(&bins, &work).unwrap_or_else(|e| panic!("{e:#}"));
    std::process::Command::new("rm")
        .arg("-rf")
        .arg(&work)
        .status()
        .ok();
    let text = summary.to_string();
    eprintln!("{text}");
    assert!(summary.installed > 0, "{text}");
    assert_eq!(summary.rolled_back, summary.installed, "{text}");
    assert_eq!(summary.failed, 0, "{text}");
    assert!(
        summary
            .halt
            .contains("1 of 1 hosts failed in ring pilot, over its 10% threshold"),
        "{text}"
    );
    assert_eq!(
        text.lines().last().unwrap(),
        format!(
            "e2e: {} updates installed, {} rolled back, 0 failed",
            summary.installed, summary.installed
        )
    );
}

/// The PostgreSQL server tests may create databases in: the URL of one of
/// its databases. Required when `CI=true`.
fn postgres_url() -> Option<String> {
    match std::env::var("PATCHWELL_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "PATCHWELL_TEST_DATABASE_URL is not set and CI=true"
            );
            eprintln!("skipping: set PATCHWELL_TEST_DATABASE_URL (cargo xtask ci sets it)");
            None
        }
    }
}

/// Runs one statement with `psql`, returning what it printed (unaligned).
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .expect("psql runs (cargo xtask setup installs PostgreSQL)");
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn given_a_database_url_the_server_keeps_the_fleet_in_postgresql() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let Some(root) = test_root() else { return };
    let name = format!("patchwell_e2e_{}", std::process::id());
    psql(
        &admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    psql(&admin_url, &format!("CREATE DATABASE {name}"));
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url.as_str(), None), |(b, q)| (b, Some(q)));
    let url = format!(
        "{}/{name}{}",
        &base[..base.rfind('/').unwrap()],
        query.map_or(String::new(), |q| format!("?{q}"))
    );
    {
        let server = start_server(&["--plain-http", "--database-url", &url], "http");
        let agent = bin("patchwell-agent");
        let state = server.data.join("agent-state");
        let token = admin(&server, &["tokens", "create"])["token"]
            .as_str()
            .unwrap()
            .to_owned();
        for args in [
            vec!["enroll", "--server", &server.url, "--token", &token],
            vec!["run", "--once"],
        ] {
            let mut all = args.clone();
            all.extend([
                "--state-dir",
                state.to_str().unwrap(),
                "--root",
                root.to_str().unwrap(),
            ]);
            let out = run(&agent, &all);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let hosts = admin(&server, &["hosts", "list"]);
        assert_eq!(hosts.as_array().unwrap().len(), 1, "{hosts}");
        // The SQLite file the embedded default would make is not there.
        assert!(!server.data.join("patchwell.db").exists());
    }
    // What the server stored is in PostgreSQL: the host, its packages and
    // the schema's version, as PostgreSQL itself answers.
    assert_eq!(
        psql(&url, "SELECT os_id || ' ' || os_version FROM hosts").trim(),
        "debian 12"
    );
    let packages: usize = psql(
        &url,
        "SELECT count(*) FROM package_set_rows r JOIN hosts h ON h.package_set = r.set_id",
    )
    .trim()
    .parse()
    .unwrap();
    let own: usize = psql(&url, "SELECT count(*) FROM host_packages WHERE present = 1")
        .trim()
        .parse()
        .unwrap();
    assert!(packages + own > 50, "{packages} set rows, {own} own rows");
    psql(
        &admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}
