//! `patchwell demo` run as a user runs it: what it refuses, and the fleet
//! it shows.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// An earlier run's data directory is refused before anything starts, and
/// the message says what to do instead; the data in it is left alone.
#[test]
fn the_demo_refuses_a_data_directory_that_is_not_empty() {
    let dir = std::env::temp_dir().join(format!("patchwell-demo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("patchwell.db"), b"an earlier demo").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_patchwell"))
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run patchwell demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--data-dir {}: the directory is not empty",
            dir.display()
        )) && stderr.contains("patchwell server --data-dir"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(dir.join("patchwell.db")).unwrap(),
        b"an earlier demo"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Stops the demo when the test ends, however it ends, and removes its
/// data directory.
struct Demo(Child, PathBuf);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// With the real DSA list and KEV catalog, the demo's findings differ in
/// class by advisory: on its Debian 11 servers of medium criticality some
/// findings are raised by KEV (and say so in their rule) and others of the
/// same hosts keep the default class, on other advisories.
#[test]
fn the_demo_classes_differ_by_advisory() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let needed = [
        data.join("debian-security-tracker/DSA.list"),
        data.join("kev/known_exploited_vulnerabilities.json"),
    ];
    if let Some(missing) = needed.iter().find(|p| !p.is_file()) {
        let message = format!(
            "missing {}: see ../shared/data/README.md",
            missing.display()
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("skipped: {message}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("patchwell-demo-classes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchwell"))
        .args(["demo", "--listen", "127.0.0.1:0", "--hosts", "10", "--data"])
        .arg(&data)
        .arg("--data-dir")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start patchwell demo");
    let stdout = child.stdout.take().expect("stdout");
    let _demo = Demo(child, dir.clone());
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the demo's console line");
    let url = line
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.strip_suffix("/console"))
        .unwrap_or_else(|| panic!("the demo printed {line:?}"))
        .to_owned();
    let token = std::fs::read_to_string(dir.join("admin-token")).unwrap();
    let ca = std::fs::read(dir.join("tls/ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let get = |path: String| {
        let request = http.get(format!("{url}{path}")).bearer_auth(token.trim());
        async move {
            request
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .expect("the demo's API answers")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let hosts = get("/api/v1/hosts".into()).await;
        let legacy: Vec<&Value> = hosts
            .as_array()
            .expect("a list of hosts")
            .iter()
            .filter(|h| h["os_codename"] == "bullseye")
            .collect();
        assert!(legacy.len() >= 6, "Debian 11 servers: {}", legacy.len());
        let plain: Vec<&&Value> = legacy
            .iter()
            .filter(|h| {
                h["criticality"] == "medium"
                    && !h["tags"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|t| t == "internet-facing"))
            })
            .collect();
        assert!(
            !plain.is_empty(),
            "a Debian 11 server of medium criticality"
        );
        for host in plain {
            let findings = get(format!(
                "/api/v1/hosts/{}/findings",
                host["id"].as_str().unwrap()
            ))
            .await;
            let findings = findings["findings"].as_array().expect("findings");
            let raised: Vec<&Value> = findings
                .iter()
                .filter(|f| {
                    f["kev"] == true
                        && (f["class"] == "high" || f["class"] == "critical")
                        && f["class_rule"]
                            .as_str()
                            .is_some_and(|r| r.contains("known exploited (CISA KEV)"))
                })
                .collect();
            let default: Vec<&Value> = findings
                .iter()
                .filter(|f| {
                    f["kind"] == "advisory"
                        && f["kev"] == false
                        && f["class"] == "medium"
                        && f["class_default"] == true
                })
                .collect();
            let name = &host["hostname"];
            assert!(!raised.is_empty(), "{name}: no KEV-raised finding");
            assert!(
                !default.is_empty(),
                "{name}: no finding of the default class"
            );
            // Later DSAs of one package: some known exploited, some not.
            assert!(
                raised.iter().any(|r| default
                    .iter()
                    .any(|d| d["package"] == r["package"] && d["advisory"] != r["advisory"])),
                "{name}: no package with both a KEV-raised and a default finding"
            );
        }
        let risk = get("/api/v1/summary/risk".into()).await;
        let top = &risk["hosts"][0];
        assert!(
            top["open"]["known_exploited"].as_u64().unwrap_or(0) > 0,
            "the riskiest host has known-exploited findings: {top}"
        );
    });
}
