//! The console in a real browser: `patchwell demo` on a loopback port,
//! then a script in `browser/` (playwright-core driving Debian's chromium,
//! headless): `console.test.mjs` through sign-in, the dashboard, an
//! approval, a rollout watched to the end, a halt and the monthly report;
//! `approvals.test.mjs` through approval by advisory and bulk approval
//! with a comment, then a rollout of what was approved. Screenshots of
//! every page are kept in `target/browser-artifacts/SCRIPT`. One demo runs
//! at a time.
//!
//! Needs `cargo xtask setup` (chromium, node, and `npm ci` in `browser/`).
//! Outside CI a machine without them skips with a message; with
//! `CI=true` it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Stops the demo when the test ends, however it ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        // SIGINT, as Ctrl-C: the demo stops its server and removes its data.
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_console_in_chromium_through_the_whole_cycle() {
    run_against_the_demo("console.test.mjs");
}

#[test]
fn approving_by_advisory_and_in_bulk_in_chromium() {
    run_against_the_demo("approvals.test.mjs");
}

/// Runs `browser/SCRIPT` against a fresh demo, one demo at a time.
fn run_against_the_demo(script_name: &str) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let root = workspace();
    let script = root.join("browser").join(script_name);
    let missing: Vec<&str> = [
        ("/usr/bin/chromium", Path::new("/usr/bin/chromium").exists()),
        (
            "node",
            Command::new("node")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
        ),
        (
            "browser/node_modules/playwright-core",
            root.join("browser/node_modules/playwright-core").exists(),
        ),
    ]
    .into_iter()
    .filter(|(_, there)| !there)
    .map(|(what, _)| what)
    .collect();
    if !missing.is_empty() {
        let message = format!("missing {}: run `cargo xtask setup`", missing.join(", "));
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("skipped: {message}");
        return;
    }
    let data = root.join("../shared/data");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_patchwell"));
    demo.args(["demo", "--listen", "127.0.0.1:0", "--hosts", "60"]);
    if data.is_dir() {
        demo.arg("--data").arg(&data);
    }
    let mut child = demo
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start patchwell demo");
    let stdout = child.stdout.take().expect("stdout");
    let demo = Demo(child);
    // The one line the demo prints: `console: URL user: NAME password: PW`.
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the demo's console line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    let ["console:", url, "user:", user, "password:", password] = fields[..] else {
        panic!("the demo printed {line:?}, not `console: URL user: NAME password: PW`");
    };
    let artifacts = root
        .join("target/browser-artifacts")
        .join(script_name.trim_end_matches(".test.mjs"));
    let _ = std::fs::remove_dir_all(&artifacts);
    let status = Command::new("node")
        .arg(&script)
        .args([url, user, password])
        .arg(&artifacts)
        .current_dir(root.join("browser"))
        .status()
        .expect("run node");
    drop(demo);
    assert!(
        status.success(),
        "the browser test {script_name} failed; screenshots are in {}",
        artifacts.display()
    );
}
