//! Patchwell's developer tasks, run with `cargo xtask <task>`.
//!
//! A key design decision made here is that the full check (`cargo xtask ci`)
//! does its own set-up on a fresh Debian machine with Rust: it installs the
//! Debian packages the tests compare against (dpkg, rpm, libdpkg, librpm) and
//! fetches the apt lists whose real versions the differential tests read. Then
//! it runs the tests with `CI=true`, so a missing prerequisite fails the run
//! instead of skipping a test in silence.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use xtask::{apt_sources, as_root, run};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  setup               install the Debian packages and apt lists the tests need
  ci                  setup, then fmt, clippy and every test, as CI runs them
  e2e                 build the binaries, then the end-to-end rollout on a fresh Debian root (needs root and the mirror)
  bench               setup, then every benchmark: versions vs libdpkg/librpm, agent collection, server load, fleet applicability, scan
  fuzz <target> [s]   run a cargo-fuzz target (deb, rpm, apk) for s seconds (default 60)
";

/// Debian packages the tests and benchmarks need beyond a Rust toolchain.
const APT_PACKAGES: &[&str] = &[
    // `dpkg --compare-versions` and `--validate-version`, the deb reference.
    "dpkg",
    // `rpm --eval` with rpm's Lua `rpm.vercmp`, the rpm reference.
    "rpm",
    // libdpkg and librpm for the in-process reference and the benchmark.
    "libdpkg-dev",
    "librpm-dev",
    "pkg-config",
    "gcc",
    "libc6-dev",
    // apt-helper, which reads the compressed apt lists.
    "apt",
    // The time zone database, for schedules in a time zone.
    "tzdata",
    "ca-certificates",
    // The sqlite3 shell, with which a test alters the audit log behind the
    // server's back.
    "sqlite3",
    // Python's standard SMTP server (smtpd, Python 3.11), the mail relay
    // the notification tests send through.
    "python3",
    // A virtual environment for schemathesis, which fuzzes the API.
    "python3-venv",
    // curl, whose HTTP/2 client reports a stream the server resets while
    // it still sends: a test holds the server's answers to a body too
    // large to it.
    "curl",
    // Real Debian roots for the agent's tests.
    "mmdebstrap",
    "iproute2",
    // PostgreSQL for the store's conformance suite (a no-op where it runs
    // already), and pg_isready to find out whether it is up.
    "postgresql",
    "postgresql-client",
    // The browser tests: Debian's chromium, driven by playwright-core
    // (from npm, see `browser/package.json`) on Node.js.
    "chromium",
    "nodejs",
    // pdftotext, with which the report tests read the PDF report as a
    // reader would.
    "poppler-utils",
];

/// The Debian release the test root is built from.
const TEST_RELEASE: &str = "bookworm";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("ci") => {
            setup()?;
            ci(&root)
        }
        Some("bench") => {
            setup()?;
            run(cargo(&root).args(["bench", "-p", "vercmp-reference"]))?;
            run(cargo(&root).args(["bench", "-p", "agent"]))?;
            // The load benchmark measures the agent's memory too: build it.
            run(cargo(&root).args(["build", "--release", "-p", "agent"]))?;
            run(cargo(&root).args(["bench", "-p", "patchwell", "--bench", "load"]))?;
            run(cargo(&root).args(["bench", "-p", "feeds", "--bench", "applicability"]))?;
            run(cargo(&root).args(["bench", "-p", "patchwell", "--bench", "scan"]))
        }
        Some("e2e") => {
            run(cargo(&root).args(["build", "-p", "patchwell", "-p", "agent"]))?;
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| root.join("target"), PathBuf::from);
            let bins = xtask::e2e::Bins {
                patchwell: target.join("debug/patchwell"),
                agent: target.join("debug/patchwell-agent"),
            };
            let summary = xtask::e2e::run(&bins, &target.join("e2e"))?;
            println!("{summary}");
            Ok(())
        }
        Some("fuzz") => {
            let target = args
                .get(1)
                .context("fuzz needs a target: deb, rpm or apk")?;
            let seconds = args.get(2).map_or("60", String::as_str);
            fuzz(&root, target, seconds)
        }
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}\n\n{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root);
    command
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Whether apt has package lists, the source of the real versions the
/// differential tests read.
fn have_apt_lists() -> bool {
    std::fs::read_dir("/var/lib/apt/lists").is_ok_and(|dir| {
        dir.flatten()
            .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
    })
}

fn setup() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if !missing.is_empty() || !have_apt_lists() {
        // The lists come from the mirrors in the machine's own apt
        // configuration; nothing here names a mirror.
        run(&mut as_root(&["apt-get", "update", "-q"]))?;
    }
    if !missing.is_empty() {
        let mut args = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
        args.extend(&missing);
        run(&mut as_root(&args))?;
    }
    if !have_apt_lists() {
        bail!("apt-get update left no package lists in /var/lib/apt/lists");
    }
    ensure_browser_packages(&workspace_root())?;
    ensure_schemathesis(&workspace_root())?;
    ensure_test_root(&workspace_root())?;
    eprintln!("xtask: set-up complete");
    Ok(())
}

/// npm (where Node.js came without it) and the browser tests' npm
/// packages, exactly as `browser/package-lock.json` pins them.
fn ensure_browser_packages(workspace: &Path) -> Result<()> {
    let has_npm = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_npm {
        run(&mut as_root(&[
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "npm",
        ]))?;
    }
    let dir = workspace.join("browser");
    if !dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir))?;
    }
    Ok(())
}

/// The target directory, where set-up keeps what the tests find.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Where the agent's tests find a real Debian root (the tests look here too).
fn test_root(root: &Path) -> PathBuf {
    target_dir(root).join("test-roots").join(TEST_RELEASE)
}

/// Schemathesis, for the API's fuzzing test, in a virtual environment in
/// the target directory (`pyenv/`), at the versions
/// `xtask/schemathesis-requirements.txt` pins. Installed again only when
/// those pins change.
fn ensure_schemathesis(root: &Path) -> Result<()> {
    let requirements = root.join("xtask/schemathesis-requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let venv = target_dir(root).join("pyenv");
    let stamp = venv.join("patchwell-requirements.txt");
    if venv.join("bin/st").exists()
        && std::fs::read_to_string(&stamp).is_ok_and(|had| had == wanted)
    {
        return Ok(());
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .with_context(|| format!("removing the outdated {}", venv.display()))?;
    }
    let venv_arg = venv.to_string_lossy().into_owned();
    run(Command::new("python3").args(["-m", "venv", &venv_arg]))?;
    let installed = run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--requirement",
        &requirements.to_string_lossy(),
    ]));
    if let Err(e) = installed {
        // A half-made environment would pass for a whole one next time.
        let _ = std::fs::remove_dir_all(&venv);
        return Err(e);
    }
    std::fs::write(&stamp, wanted)?;
    eprintln!("xtask: schemathesis ready in {}", venv.display());
    Ok(())
}

/// Builds, once, a real Debian root that is out of date the way a real host
/// is: installed from the release, with the security suite in its apt lists,
/// one package removed but still configured, and a reboot requested.
fn ensure_test_root(workspace: &Path) -> Result<()> {
    let dir = test_root(workspace);
    let ready = dir.join(".patchwell-ready");
    if ready.exists() {
        return Ok(());
    }
    let sources = apt_sources()?;
    let mirror_for = |suite: &str| {
        sources
            .iter()
            .find(|(types, _, suites)| {
                types.split_whitespace().any(|t| t == "deb") && suites.iter().any(|s| s == suite)
            })
            .map(|(_, uri, _)| uri.clone())
    };
    let main = mirror_for(TEST_RELEASE).with_context(|| {
        format!("no apt source for {TEST_RELEASE} in /etc/apt: cannot build the test root")
    })?;
    let security = mirror_for(&format!("{TEST_RELEASE}-security"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the half-built {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.parent().unwrap_or(&dir))?;
    let dir_arg = dir.to_string_lossy().into_owned();
    run(&mut as_root(&[
        "mmdebstrap",
        "--quiet",
        "--variant=apt",
        "--include=cron",
        TEST_RELEASE,
        &dir_arg,
        &format!("deb {main} {TEST_RELEASE} main"),
    ]))?;
    if let Some(security) = security {
        std::fs::write(
            dir.join("etc/apt/sources.list.d/security.list"),
            format!("deb {security} {TEST_RELEASE}-security main\n"),
        )?;
    }
    // mmdebstrap leaves no lists behind; fetch them as the host itself would.
    run(&mut as_root(&[
        "chroot", &dir_arg, "apt-get", "update", "-q",
    ]))?;
    // A package removed but configured: dpkg keeps it as `config-files`.
    run(&mut as_root(&[
        "chroot", &dir_arg, "dpkg", "--remove", "cron",
    ]))?;
    // What Debian's packages write when an update needs a reboot.
    std::fs::write(
        dir.join("run/reboot-required"),
        "*** System restart required ***\n",
    )?;
    std::fs::write(dir.join("run/reboot-required.pkgs"), "libc6\nlibssl3\n")?;
    std::fs::write(&ready, "")?;
    eprintln!("xtask: test root ready at {}", dir.display());
    Ok(())
}

fn have_nextest(root: &Path) -> bool {
    cargo(root)
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The PostgreSQL the conformance suite uses: the caller's
/// `PATCHWELL_TEST_DATABASE_URL`, or this machine's own on 127.0.0.1:5432.
const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Starts the machine's PostgreSQL cluster if it is not answering.
fn ensure_postgres() -> Result<()> {
    let ready = || {
        Command::new("pg_isready")
            .args(["-q", "-h", "127.0.0.1", "-p", "5432"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if std::env::var_os("PATCHWELL_TEST_DATABASE_URL").is_some() || ready() {
        return Ok(());
    }
    for entry in std::fs::read_dir("/etc/postgresql")
        .context("PostgreSQL is not installed")?
        .flatten()
    {
        let version = entry.file_name().to_string_lossy().into_owned();
        run(&mut as_root(&[
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            &version,
            "main",
            "start",
        ]))?;
    }
    for _ in 0..30 {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    bail!("PostgreSQL did not start on 127.0.0.1:5432")
}

fn ci(root: &Path) -> Result<()> {
    ensure_postgres()?;
    let database_url = std::env::var("PATCHWELL_TEST_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    run(cargo(root).args(["fmt", "--all", "--", "--check"]))?;
    run(cargo(root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    if have_nextest(root) {
        // nextest does not run doc tests; run them first so that nextest's
        // summary of the whole suite is the last thing printed.
        run(cargo(root)
            .args(["test", "--workspace", "--doc"])
            .env("CI", "true"))?;
        run(cargo(root)
            .args(["nextest", "run", "--workspace", "--profile", "ci"])
            .env("CI", "true")
            .env("PATCHWELL_TEST_DATABASE_URL", &database_url))?;
    } else {
        run(cargo(root)
            .args(["test", "--workspace"])
            .env("CI", "true")
            .env("PATCHWELL_TEST_DATABASE_URL", &database_url))?;
    }
    Ok(())
}

fn fuzz(root: &Path, target: &str, seconds: &str) -> Result<()> {
    if !cargo(root)
        .args(["fuzz", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        bail!("cargo-fuzz is not installed: cargo install cargo-fuzz");
    }
    // cargo-fuzz needs nightly flags; the stable toolchain accepts them when
    // told it is bootstrapping, which is acceptable for a by-hand fuzz run.
    run(cargo(root).env("RUSTC_BOOTSTRAP", "1").args([
        "fuzz",
        "run",
        target,
        "--",
        &format!("-max_total_time={seconds}"),
    ]))
}
