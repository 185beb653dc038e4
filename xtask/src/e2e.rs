//! The end-to-end rollout: a real out-of-date Debian root, the real server
//! and the real agent, a rollout that installs the root's pending security
//! updates with apt, a rollback that puts the old versions back, and a
//! second scenario where one host's installs fail and the rollout halts at
//! its threshold. Everything is checked in the root's dpkg database.
//!
//! Needs root (mmdebstrap, chroot) and the Debian mirror of the machine's
//! own apt configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{apt_sources, as_root, run as run_command};

const RELEASE: &str = "bookworm";

/// The binaries under test.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `patchwell`.
    pub patchwell: PathBuf,
    /// `patchwell-agent`.
    pub agent: PathBuf,
}

/// What the end-to-end run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Packages the rollout upgraded on the host, checked with dpkg.
    pub installed: usize,
    /// Packages the rollback put back, checked with dpkg.
    pub rolled_back: usize,
    /// Hosts whose job failed in the first scenario.
    pub failed: usize,
    /// Why the second scenario's rollout halted.
    pub halt: String,
    /// The packages, with the versions before and after.
    pub packages: Vec<(String, String, String)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, before, after) in &self.packages {
            writeln!(f, "  {name}: {before} -> {after} -> {before}")?;
        }
        writeln!(f, "e2e: the failing host halted its rollout: {}", self.halt)?;
        write!(
            f,
            "e2e: {} updates installed, {} rolled back, {} failed",
            self.installed, self.rolled_back, self.failed
        )
    }
}

struct Server {
    child: Child,
    url: String,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mirror(suite: &str) -> Result<String> {
    apt_sources()?
        .into_iter()
        .find(|(types, _, suites)| {
            types.split_whitespace().any(|t| t == "deb") && suites.iter().any(|s| s == suite)
        })
        .map(|(_, uri, _)| uri)
        .with_context(|| format!("no apt source for {suite} in /etc/apt: the e2e needs one"))
}

/// The installed versions of a root's packages, from its dpkg database.
pub fn installed_versions(root: &Path) -> Result<BTreeMap<String, String>> {
    // dpkg's own answer, from the root's database.
    let admindir = root.join("var/lib/dpkg");
    let out = std::process::Command::new("dpkg-query")
        .arg(format!("--admindir={}", admindir.display()))
        .args([
            "-W",
            "-f=${Package}\t${Architecture}\t${Version}\t${db:Status-Status}\n",
        ])
        .output()
        .context("running dpkg-query")?;
    if !out.status.success() {
        bail!(
            "dpkg-query --admindir={} failed: {}",
            admindir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut versions = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let [name, arch, version, "installed"] = fields[..] {
            let key = if arch == "all" {
                name.to_owned()
            } else {
                format!("{name}:{arch}")
            };
            versions.insert(key, version.to_owned());
        }
    }
    Ok(versions)
}

fn build_root(dir: &Path) -> Result<()> {
    if dir.exists() {
        run_command(&mut as_root(&["rm", "-rf", &dir.to_string_lossy()]))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let main = mirror(RELEASE)?;
    run_command(&mut as_root(&[
        "mmdebstrap",
        "--quiet",
        "--variant=apt",
        RELEASE,
        &dir.to_string_lossy(),
        &format!("deb {main} {RELEASE} main"),
    ]))?;
    // As in a container: maintainer scripts do not start services.
    let policy = dir.join("usr/sbin/policy-rc.d");
    std::fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
    run_command(&mut as_root(&["chmod", "755", &policy.to_string_lossy()]))?;
    Ok(())
}

fn enable_security(root: &Path) -> Result<()> {
    let security = mirror(&format!("{RELEASE}-security"))?;
    std::fs::write(
        root.join("etc/apt/sources.list.d/security.list"),
        format!("deb {security} {RELEASE}-security main\n"),
    )?;
    run_command(&mut as_root(&[
        "chroot",
        &root.to_string_lossy(),
        "apt-get",
        "update",
        "-q",
    ]))
}

fn start_server(bins: &Bins, data: &Path) -> Result<Server> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::create(data.with_extension("log"))?;
    let child = Command::new(&bins.patchwell)
        .args(["server", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--plain-http"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bins.patchwell.display()))?;
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        data: data.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || !data.join("admin-token").exists()
    {
        if Instant::now() > deadline {
            bail!(
                "the server did not start; see {}",
                data.with_extension("log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(server)
}

fn admin(bins: &Bins, server: &Server, args: &[&str]) -> Result<Value> {
    let out = Command::new(&bins.patchwell)
        .args(args)
        .args(["--server", &server.url, "--token-file"])
        .arg(server.data.join("admin-token"))
        .arg("--json")
        .output()?;
    if !out.status.success() {
        bail!(
            "patchwell {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("patchwell {}", args.join(" ")))
}

fn agent(bins: &Bins, args: &[&str]) -> Result<String> {
    let out = Command::new(&bins.agent).args(args).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("patchwell-agent {}: {}", args.join(" "), text.trim());
    }
    Ok(text)
}

fn enroll(bins: &Bins, server: &Server, state: &Path, root: &Path) -> Result<String> {
    let token = admin(bins, server, &["tokens", "create"])?;
    let token = token["token"].as_str().context("no token")?.to_owned();
    agent(
        bins,
        &[
            "enroll",
            "--server",
            &server.url,
            "--token",
            &token,
            "--state-dir",
            &state.to_string_lossy(),
            "--root",
            &root.to_string_lossy(),
        ],
    )?;
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(state.join("agent.json"))?)?;
    Ok(saved["host_id"].as_str().context("no host id")?.to_owned())
}

fn check_in(bins: &Bins, state: &Path, root: &Path) -> Result<String> {
    let out = agent(
        bins,
        &[
            "run",
            "--once",
            "--state-dir",
            &state.to_string_lossy(),
            "--root",
            &root.to_string_lossy(),
        ],
    )?;
    eprint!("{out}");
    Ok(out)
}

fn rollout_until(
    bins: &Bins,
    server: &Server,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = admin(bins, server, &["rollouts", "show", name])?;
        if done(&shown) {
            return Ok(shown);
        }
        if Instant::now() > deadline {
            bail!("rollout {name} never became {what}: {shown:#}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs both scenarios in `work` (made afresh).
pub fn run(bins: &Bins, work: &Path) -> Result<Summary> {
    if work.exists() {
        run_command(&mut as_root(&["rm", "-rf", &work.to_string_lossy()]))?;
    }
    std::fs::create_dir_all(work)?;
    let root = work.join("root-a");
    eprintln!("e2e: building an out-of-date {RELEASE} root (the release only)");
    build_root(&root)?;
    let server = start_server(bins, &work.join("server"))?;
    let state_a = work.join("agent-a");
    let host_a = enroll(bins, &server, &state_a, &root)?;

    eprintln!("e2e: enabling {RELEASE}-security on the root");
    enable_security(&root)?;
    check_in(bins, &state_a, &root)?;
    let before = installed_versions(&root)?;

    let rings = r#"[{"name":"all","size":"rest","gate_success_percent":100}]"#;
    let created = admin(
        bins,
        &server,
        &[
            "rollouts",
            "create",
            "security",
            "--reason",
            "e2e: the root's pending security updates",
            "--rings",
            rings,
        ],
    )?;
    let frozen: Vec<(String, String)> = created["packages"]
        .as_array()
        .context("no packages frozen")?
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["version"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    if frozen.is_empty() {
        bail!("the rollout froze no package: the root has no pending security update");
    }
    eprintln!(
        "e2e: rollout froze {} packages; the agent checks in",
        frozen.len()
    );
    check_in(bins, &state_a, &root)?;
    let done = rollout_until(bins, &server, "security", "complete", |v| {
        v["status"] == "complete" || v["hosts"][0]["progress"] == "failed"
    })?;
    let failed = usize::from(done["hosts"][0]["progress"] == "failed");
    if failed > 0 {
        bail!("the install failed on the root: {:#}", done["hosts"][0]);
    }
    let after = installed_versions(&root)?;
    let mut packages = Vec::new();
    for (name, version) in &frozen {
        let keys: Vec<&String> = before
            .keys()
            .filter(|k| k.split(':').next() == Some(name.as_str()))
            .collect();
        for key in keys {
            let now = after.get(key).cloned().unwrap_or_default();
            if &now != version {
                bail!("dpkg says {key} is at {now:?}, not the frozen {version}");
            }
            packages.push((key.clone(), before[key].clone(), now));
        }
    }
    let installed = packages.len();

    eprintln!("e2e: rolling back");
    admin(
        bins,
        &server,
        &[
            "rollouts",
            "rollback",
            "security",
            "--reason",
            "e2e: rollback",
        ],
    )?;
    check_in(bins, &state_a, &root)?;
    rollout_until(bins, &server, "security", "rolled back", |v| {
        v["status"] == "rolled_back"
    })?;
    let back = installed_versions(&root)?;
    let mut rolled_back = 0;
    for (key, old, _) in &packages {
        let now = back.get(key).cloned().unwrap_or_default();
        if &now != old {
            bail!("after the rollback dpkg says {key} is at {now:?}, not {old}");
        }
        rolled_back += 1;
    }

    // Scenario 2: a copy of the root whose dpkg runs fail, pinned as the
    // pilot; the healthy root is the second host.
    eprintln!("e2e: a host whose installs fail, pinned as the pilot");
    let root_b = work.join("root-b");
    run_command(&mut as_root(&[
        "cp",
        "-a",
        &root.to_string_lossy(),
        &root_b.to_string_lossy(),
    ]))?;
    std::fs::write(
        root_b.join("etc/apt/apt.conf.d/99patchwell-e2e-broken"),
        "DPkg::Pre-Invoke { \"echo 'e2e: this host refuses to install' >&2; false\"; };\n",
    )?;
    let state_b = work.join("agent-b");
    let host_b = enroll(bins, &server, &state_b, &root_b)?;
    check_in(bins, &state_b, &root_b)?;
    check_in(bins, &state_a, &root)?;
    admin(bins, &server, &["hosts", "set", &host_b, "--tag", "pilot"])?;
    let rings =
        r#"[{"name":"pilot","size":"1","halt_failure_percent":10},{"name":"broad","size":"rest"}]"#;
    admin(
        bins,
        &server,
        &[
            "rollouts",
            "create",
            "security-again",
            "--reason",
            "e2e: the same updates, a failing pilot",
            "--rings",
            rings,
        ],
    )?;
    check_in(bins, &state_b, &root_b)?;
    let halted = rollout_until(bins, &server, "security-again", "halted", |v| {
        v["status"] == "halted"
    })?;
    // The healthy host got nothing: the broad ring never started.
    let out = check_in(bins, &state_a, &root)?;
    if out.contains("job ") {
        bail!("the healthy host ran a job of a halted rollout: {out}");
    }
    let host_a_line = halted["hosts"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["host"] == host_a.as_str()))
        .context("host a is not in the second rollout")?;
    if host_a_line["action"] != "not started: the rollout is halted" {
        bail!("host a should wait for nothing: {host_a_line:#}");
    }
    let unchanged = installed_versions(&root_b)?;
    for (key, old, _) in &packages {
        if unchanged.get(key) != Some(old) {
            bail!("the failing host's {key} changed");
        }
    }
    Ok(Summary {
        installed,
        rolled_back,
        failed,
        halt: halted["halt"].as_str().unwrap_or_default().to_owned(),
        packages,
    })
}
