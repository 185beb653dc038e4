//! A whole check-in that carries a job, against a stand-in server on
//! loopback: the heartbeat hands over a signed job, the agent reports its
//! steps to `/api/v1/agent/jobs/{id}/steps` with its credential, and sends
//! its inventory again in the same check-in, with the new versions.
//!
//! apt is a test double (no package is installed on this machine); it
//! moves versions in a temporary root's dpkg database as apt would.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::sync::{Arc, Mutex};

use agent::client::Client;
use agent::{checkin, state, CommandRunner, Root};
use ed25519_dalek::SigningKey;
use protocol::job::{
    key_text, ConffilePolicy, Job, JobKind, JobPackage, RebootPolicy, Step, StepsRequest,
    JOB_SCHEMA,
};
use protocol::{HeartbeatResponse, InventoryWanted, Manager};
use sha2::Digest as _;

/// A request as the stand-in server got it, its body un-gzipped.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
    /// Whether it came gzip-encoded, and its size on the wire.
    gzip: bool,
    wire: usize,
    body: Vec<u8>,
}

/// Answers each request with the status and body `answer` gives, one
/// connection at a time, keeping what it was sent.
fn serve(
    answer: impl Fn(&Request) -> (u16, String) + Send + 'static,
) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut words = line.split_whitespace();
                let method = words.next().unwrap_or_default().to_owned();
                let path = words.next().unwrap_or_default().to_owned();
                let (mut length, mut gzip, mut authorization) = (0, false, None);
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap();
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap(),
                        "content-encoding" => gzip = value.trim() == "gzip",
                        "authorization" => authorization = Some(value.trim().to_owned()),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let wire = body.len();
                if gzip {
                    let mut plain = Vec::new();
                    flate2::read::GzDecoder::new(&body[..])
                        .read_to_end(&mut plain)
                        .unwrap();
                    body = plain;
                }
                let request = Request {
                    method,
                    path,
                    authorization,
                    gzip,
                    wire,
                    body,
                };
                let (status, text) = answer(&request);
                keep.lock().unwrap().push(request);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\r\n",
                    text.len()
                );
                let stream = reader.get_mut();
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(text.as_bytes()).unwrap();
                stream.flush().unwrap();
            }
        }
    });
    (url, seen)
}

fn deb(name: &str, version: &str) -> Vec<u8> {
    format!("!<arch>\n{name} {version}\n").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_status(root: &Path, libssl: &str) {
    let text = format!(
        "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\n\
         Version: 12.4+deb12u8\n\n\
         Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n\
         Multi-Arch: same\nSource: openssl\nVersion: {libssl}\n\n"
    );
    std::fs::write(root.join("var/lib/dpkg/status"), text).unwrap();
}

/// apt, as far as this test needs it: downloads write the package file
/// the lists describe, an install moves libssl3 to the version asked for.
#[derive(Debug)]
struct FakeApt {
    root: PathBuf,
    commands: RefCell<Vec<String>>,
}

impl CommandRunner for FakeApt {
    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<Output> {
        self.run_with_env(program, args, &[])
    }

    fn run_with_env(
        &self,
        program: &str,
        args: &[&str],
        _env: &[(&str, &str)],
    ) -> std::io::Result<Output> {
        let ok = |code: i32| Output {
            status: ExitStatus::from_raw(code << 8),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        if program != "chroot" {
            // The inventory's own tools (`ip`): not here.
            return Ok(ok(127));
        }
        self.commands.borrow_mut().push(args[1..].join(" "));
        let version = args
            .iter()
            .find_map(|a| a.strip_prefix("libssl3:amd64="))
            .unwrap();
        if args.contains(&"--download-only") {
            std::fs::write(
                self.root.join(format!(
                    "var/cache/apt/archives/libssl3_{version}_amd64.deb"
                )),
                deb("libssl3", version),
            )
            .unwrap();
        } else {
            write_status(&self.root, version);
        }
        Ok(ok(0))
    }
}

#[test]
fn a_check_in_runs_its_job_reports_the_steps_and_sends_the_new_versions() {
    let dir = std::env::temp_dir().join(format!("patchwell-checkin-jobs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root_dir = dir.join("root");
    let state_dir = dir.join("state");
    for d in [
        "etc",
        "var/lib/dpkg",
        "var/lib/apt/lists",
        "var/cache/apt/archives",
    ] {
        std::fs::create_dir_all(root_dir.join(d)).unwrap();
    }
    std::fs::write(
        root_dir.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    write_status(&root_dir, "3.0.11-1~deb12u2");
    std::fs::write(
        root_dir.join(
            "var/lib/apt/lists/mirror.example_debian_dists_bookworm_main_binary-amd64_Packages",
        ),
        format!(
            "Package: libssl3\nSource: openssl\nVersion: 3.0.15-1~deb12u1\nArchitecture: amd64\n\
             SHA256: {}\n\n",
            hex(&deb("libssl3", "3.0.15-1~deb12u1"))
        ),
    )
    .unwrap();

    let key = SigningKey::from_bytes(&[7; 32]);
    let job = Job {
        schema: JOB_SCHEMA,
        id: "job-1".into(),
        host_id: "h1".into(),
        rollout: "r".into(),
        generation: 1,
        kind: JobKind::Install,
        manager: Manager::Dpkg,
        packages: vec![JobPackage {
            name: "libssl3".into(),
            arch: "amd64".into(),
            version: "3.0.15-1~deb12u1".into(),
        }],
        conffiles: ConffilePolicy::KeepOld,
        reboot: RebootPolicy::Never,
        reboot_deferral: None,
        windows: Vec::new(),
        pre_hook: None,
        post_hook: None,
        health_check: None,
        issued_at: "2026-11-02T00:00:00Z".parse().unwrap(),
        not_after: "2026-11-09T00:00:00Z".parse().unwrap(),
    };
    let signed = job.sign(&key);
    let (url, seen) = serve(move |request| match request.path.as_str() {
        "/api/v1/agent/heartbeat" => {
            let answer = HeartbeatResponse {
                inventory: InventoryWanted::Full,
                next_checkin_seconds: 900,
                jobs: vec![signed.clone()],
            };
            (200, serde_json::to_string(&answer).unwrap())
        }
        _ => (204, String::new()),
    });
    let enrollment = state::Enrollment {
        server: url.clone(),
        host_id: "h1".into(),
        credential: "h1.secret".into(),
        ca_cert: None,
        job_key: Some(key_text(&key.verifying_key())),
    };
    let client = Client::new(&url, None, Some(enrollment.credential.clone())).unwrap();
    let apt = FakeApt {
        root: root_dir.clone(),
        commands: RefCell::new(Vec::new()),
    };
    let now = || "2026-11-03T00:00:00Z".parse().unwrap();

    let done = checkin::check_in(
        &client,
        &state_dir,
        &Root::new(&root_dir),
        &apt,
        &enrollment,
        &now,
    )
    .unwrap();

    assert_eq!(done.jobs.len(), 1);
    assert_eq!(done.jobs[0].to_string(), "job job-1: succeeded (1 package)");
    assert_eq!(
        apt.commands.borrow().len(),
        2,
        "{:?}",
        apt.commands.borrow()
    );
    let requests = seen.lock().unwrap().clone();
    let shape: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .filter(|(_, p)| !p.contains("/jobs/"))
        .collect();
    assert_eq!(
        shape,
        [
            ("POST", "/api/v1/agent/heartbeat"),
            ("PUT", "/api/v1/agent/inventory"),
            ("PATCH", "/api/v1/agent/inventory"),
        ]
    );
    // Inventories and deltas travel compressed.
    for r in requests
        .iter()
        .filter(|r| r.path == "/api/v1/agent/inventory")
    {
        assert!(r.gzip, "{} {} was sent uncompressed", r.method, r.path);
        assert!(
            r.wire < r.body.len(),
            "{} {}: {} bytes on the wire for {} of JSON",
            r.method,
            r.path,
            r.wire,
            r.body.len()
        );
    }
    let steps: Vec<Step> = requests
        .iter()
        .filter(|r| r.path == "/api/v1/agent/jobs/job-1/steps")
        .inspect(|r| {
            assert_eq!(r.method, "POST");
            assert_eq!(r.authorization.as_deref(), Some("Bearer h1.secret"));
        })
        .flat_map(|r| {
            serde_json::from_slice::<StepsRequest>(&r.body)
                .unwrap()
                .steps
                .into_iter()
                .map(|s| s.step)
        })
        .collect();
    assert_eq!(
        steps,
        [
            Step::Received,
            Step::Downloading,
            Step::Downloaded,
            Step::Installing,
            Step::Installed,
            Step::Verifying,
            Step::Succeeded,
        ]
    );
    // The delta sent after the job carries the new version.
    let delta: protocol::InventoryDelta =
        serde_json::from_slice(&requests.last().unwrap().body).unwrap();
    let changed: Vec<(&str, &str)> = delta
        .packages_changed
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(changed, [("libssl3", "3.0.15-1~deb12u1")]);
    assert_eq!(done.sent, checkin::Sent::Full);

    // Read-only, a job handed out runs nothing and is reported refused,
    // with why.
    let before = seen.lock().unwrap().len();
    let quiet = FakeApt {
        root: root_dir.clone(),
        commands: RefCell::new(Vec::new()),
    };
    let watched =
        checkin::check_in_read_only(&client, &state_dir, &Root::new(&root_dir), &quiet, &now)
            .unwrap();
    assert!(watched.jobs.is_empty());
    assert!(
        quiet.commands.borrow().is_empty(),
        "{:?}",
        quiet.commands.borrow()
    );
    let after: Vec<(String, Vec<u8>)> = seen.lock().unwrap()[before..]
        .iter()
        .map(|r| (r.path.clone(), r.body.clone()))
        .collect();
    assert_eq!(after[0].0, "/api/v1/agent/heartbeat");
    let reported: Vec<protocol::job::StepReport> = after
        .iter()
        .filter(|(path, _)| path.contains("/jobs/"))
        .flat_map(|(path, body)| {
            assert_eq!(path, "/api/v1/agent/jobs/job-1/steps");
            serde_json::from_slice::<StepsRequest>(body).unwrap().steps
        })
        .collect();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].step, Step::Refused);
    assert!(
        reported[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("read-only")),
        "{reported:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
