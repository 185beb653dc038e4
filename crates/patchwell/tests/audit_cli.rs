//! `patchwell audit verify` offline: the real server writes its checkpoints
//! as it stops, and the command line holds the database against them after
//! the log was cut back behind the server's back.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct DataDir(PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn patchwell(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patchwell"))
        .args(args)
        .output()
        .expect("run patchwell")
}

fn sqlite(db: &Path, sql: &str) {
    let out = Command::new("sqlite3")
        .args([db.to_str().unwrap(), sql])
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the server on `data`, creates three enrollment tokens through the
/// command line, and stops it as an operator would (SIGINT).
fn a_day_of_work(data: &Path) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchwell"))
        .args([
            "server",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--plain-http",
            "--feed-refresh-hours",
            "0",
        ])
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
    let url = format!("http://127.0.0.1:{port}");
    let token_file = data.join("admin-token");
    for _ in 0..3 {
        let out = patchwell(&[
            "tokens",
            "create",
            "--server",
            &url,
            "--token-file",
            token_file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "tokens create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "the server stopped cleanly: {status}");
}

#[test]
fn an_offline_verify_holds_the_database_against_the_checkpoints() {
    let data =
        DataDir(std::env::temp_dir().join(format!("patchwell-audit-cli-{}", std::process::id())));
    a_day_of_work(&data.0);
    let dir = data.0.to_str().unwrap();

    // The first administrator, its token, three enrollment tokens; the
    // last checkpoint, written as the server stopped, is at entry 5.
    let out = patchwell(&["audit", "verify", "--data-dir", dir]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let lines: Vec<&str> = said.lines().collect();
    assert!(
        lines[0].starts_with("audit log intact: 5 entries, head "),
        "{said}"
    );
    assert!(
        lines[1].contains("checkpoints verified (key ed25519:"),
        "{said}"
    );
    assert!(lines[1].contains("the last at entry 5 on "), "{said}");

    // Whoever owns the database drops the last two entries and moves the
    // head back.
    sqlite(
        &data.0.join("patchwell.db"),
        "DELETE FROM audit_log WHERE seq > 3; \
         UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3);",
    );
    let out = patchwell(&["audit", "verify", "--data-dir", dir]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.starts_with(
            "audit log broken at entry 4: the log ends at entry 3, but the checkpoint of "
        ),
        "{said}"
    );
    assert!(
        said.contains("says 5 entries existed: entries were removed"),
        "{said}"
    );

    // The same from a copy of the checkpoints kept elsewhere, with the key
    // written down: and JSON for scripts.
    let key = {
        let out = patchwell(&["audit", "verify", "--data-dir", dir, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["intact"], false, "{v}");
        v["checkpoints"]["key"].as_str().unwrap().to_owned()
    };
    let copy = data.0.join("copy.jsonl");
    std::fs::copy(data.0.join("audit-checkpoints.jsonl"), &copy).unwrap();
    std::fs::remove_file(data.0.join("audit-checkpoints.jsonl")).unwrap();
    // Without its checkpoint file the log is not taken for whole: it is
    // said to be anchored by nothing.
    let out = patchwell(&["audit", "verify", "--data-dir", dir]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("audit log not verified"), "{said}");
    assert!(said.contains("the log is not anchored"), "{said}");
    assert!(said.contains("no checkpoint verified"), "{said}");
    let out = patchwell(&[
        "audit",
        "verify",
        "--data-dir",
        dir,
        "--checkpoints",
        copy.to_str().unwrap(),
        "--checkpoint-key",
        &key,
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("says 5 entries existed"), "{said}");

    // Checkpoints without a key to check them with are refused, saying so.
    std::fs::remove_file(data.0.join("audit-checkpoint.key")).unwrap();
    let out = patchwell(&[
        "audit",
        "verify",
        "--data-dir",
        dir,
        "--checkpoints",
        copy.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("give --checkpoint-key"), "{err}");
}
