//! The console in a real browser: `patchwell demo` on a loopback port,
//! then a script of `browser/` (playwright-core driving Debian's chromium,
//! headless): `console.test.mjs` through sign-in, the dashboard, an
//! approval, a rollout watched to the end, a halt and the monthly report;
//! `rollout.test.mjs` through a rollout halted, resumed, rolled back and
//! one held at its gate; `planning.test.mjs` through the forms of
//! exemptions, baselines and policies; `approvals.test.mjs` through
//! approval by advisory and bulk approval with a comment, then a rollout
//! of what was approved. Each runs against a demo of its own, one demo at
//! a time. Screenshots of every page are kept in
//! `target/browser-artifacts/NAME` (`console`, `rollout`, `planning`,
//! `approvals`).
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
    run_in_chromium("console.test.mjs");
}

#[test]
fn the_rollout_page_in_chromium_after_halt_resume_rollback_and_a_held_gate() {
    run_in_chromium("rollout.test.mjs");
}

#[test]
fn planning_objects_in_chromium_through_their_forms() {
    run_in_chromium("planning.test.mjs");
}

#[test]
fn approving_by_advisory_and_in_bulk_in_chromium() {
    run_in_chromium("approvals.test.mjs");
}

/// Runs `browser/SCRIPT` against a demo of its own, started here and
/// stopped when it ends; one demo at a time.
fn run_in_chromium(script: &str) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let root = workspace();
    let name = script.trim_end_matches(".test.mjs");
    let script = root.join("browser").join(script);
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
    let artifacts = root.join("target/browser-artifacts").join(name);
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
        "the browser test {name} failed; screenshots are in {}",
        artifacts.display()
    );
}
