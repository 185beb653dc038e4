//! `patchwell approvals` against the real server: several titles are one
//! decision, refused whole when one title is bad (and the bad one named),
//! and listed afterwards one by one.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The server and its data directory, stopped and removed when dropped.
struct Server {
    child: Child,
    data: PathBuf,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.data).ok();
    }
}

fn start() -> Server {
    let data = std::env::temp_dir().join(format!("patchwell-approvals-cli-{}", std::process::id()));
    std::fs::remove_dir_all(&data).ok();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_patchwell"))
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
    let server = Server {
        child,
        data,
        url: format!("http://127.0.0.1:{port}"),
    };
    // Readiness, not timing: wait until it answers, for at most 30 seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || !server.data.join("admin-token").exists()
    {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

impl Server {
    fn approvals(&self, args: &[&str]) -> Output {
        let token = self.data.join("admin-token");
        Command::new(env!("CARGO_BIN_EXE_patchwell"))
            .arg("approvals")
            .args(args)
            .args([
                "--server",
                &self.url,
                "--token-file",
                token.to_str().unwrap(),
            ])
            .output()
            .expect("run patchwell approvals")
    }
}

#[test]
fn several_titles_are_one_decision_refused_whole_when_one_is_bad() {
    let s = start();
    let out = s.approvals(&[
        "approve",
        "source:dpkg",
        "DSA-404-1",
        "--comment",
        "tested in the lab",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"DSA-404-1\": no advisory in the catalog")
            && err.contains("nothing was decided"),
        "{err}"
    );
    let out = s.approvals(&["list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    let out = s.approvals(&[
        "approve",
        "source:dpkg",
        "tzdata 2025b-0+deb12u1",
        "--comment",
        "tested in the lab",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "source:dpkg, tzdata=2025b-0+deb12u1 approved by admin\n"
    );
    let out = s.approvals(&[
        "decline",
        "dpkg-dev=1.21.23",
        "--comment",
        "breaks our builds",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "dpkg-dev=1.21.23 declined by admin\n"
    );
    let out = s.approvals(&["list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    for line in [
        "source:dpkg",
        "tzdata=2025b-0+deb12u1",
        "dpkg-dev=1.21.23",
        "tested in the lab",
        "breaks our builds",
    ] {
        assert!(listed.contains(line), "{line} in {listed}");
    }
    // No host yet: nothing is offered, and the table says so by its header.
    let out = s.approvals(&["updates", "--pending"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("SOURCE"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
