//! `patchwell scan`: one machine against advisory files, with no server. For
//! foreign computers before they join the network, air-gapped hosts, audits.
//!
//! Only the advisories that name the host's release are parsed, and they
//! load on one thread while the host's databases are read on another (the
//! README has the figures).

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent::{dpkg, os_release, Root};
use clap::{Args, ValueEnum};
use patchwell_core::advisory::Severity;
use patchwell_core::applicability::{HostView, Index};
use protocol::{AvailableUpdate, OsRelease, Package};
use serde_json::Value;

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Scan the system whose root is DIR (default: this machine, `/`): its
    /// dpkg database, os-release and apt lists.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["dpkg_status", "os_release"])]
    root: Option<PathBuf>,
    /// Scan a copied dpkg status file instead of a system (needs --os-release).
    #[arg(long, value_name = "FILE", requires = "os_release")]
    dpkg_status: Option<PathBuf>,
    /// The os-release file that goes with --dpkg-status.
    #[arg(long, value_name = "FILE", requires = "dpkg_status")]
    os_release: Option<PathBuf>,
    /// OSV advisories: a file, a directory of files, or a zip. Repeatable.
    #[arg(long, value_name = "PATH", required = true, num_args = 1..)]
    osv: Vec<PathBuf>,
    /// CISA's Known Exploited Vulnerabilities catalog (JSON).
    #[arg(long, value_name = "FILE")]
    kev: Option<PathBuf>,
    /// endoflife.date product files (a file or a directory), to report an
    /// OS release past full support.
    #[arg(long, value_name = "PATH")]
    endoflife: Option<PathBuf>,
    /// Output for people (a table and a summary line) or for programs.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Exit 1 when a finding is at least this severe. A known exploited
    /// vulnerability counts as critical; `any` counts every finding.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_threshold)]
    fail_on: Option<Threshold>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Threshold {
    Any,
    At(Severity),
}

fn parse_threshold(text: &str) -> Result<Threshold, String> {
    if text.eq_ignore_ascii_case("any") {
        return Ok(Threshold::Any);
    }
    Severity::parse(text).map(Threshold::At).ok_or_else(|| {
        format!(
            "{text:?} is not a severity: expected any, negligible, low, medium, high or critical"
        )
    })
}

/// The host to scan.
struct Host {
    os: OsRelease,
    kernel: String,
    packages: Vec<Package>,
    updates: Vec<AvailableUpdate>,
    warnings: Vec<String>,
}

/// The scanned system's root, when it is one (not copied files).
fn root_of(args: &ScanArgs) -> Option<PathBuf> {
    match args.dpkg_status {
        Some(_) => None,
        None => Some(args.root.clone().unwrap_or_else(|| PathBuf::from("/"))),
    }
}

/// The scanned system's os-release, read once.
fn read_os(args: &ScanArgs) -> Result<OsRelease, String> {
    if let Some(os_file) = &args.os_release {
        let os_text = std::fs::read_to_string(os_file)
            .map_err(|e| format!("--os-release {}: {e}", os_file.display()))?;
        return os_release::parse(&os_text).ok_or_else(|| {
            format!(
                "--os-release {}: no ID= line; not an os-release file",
                os_file.display()
            )
        });
    }
    let dir = root_of(args).unwrap_or_else(|| PathBuf::from("/"));
    if !dir.is_dir() {
        return Err(format!("--root {}: not a directory", dir.display()));
    }
    let root = Root::new(&dir);
    let os_text = os_release::FILES
        .iter()
        .find_map(|f| root.read_optional(f).ok().flatten())
        .ok_or_else(|| {
            format!(
                "--root {}: no etc/os-release or usr/lib/os-release",
                dir.display()
            )
        })?;
    os_release::parse(&os_text)
        .ok_or_else(|| format!("--root {}: os-release has no ID= line", dir.display()))
}

fn read_host(args: &ScanArgs, os: OsRelease) -> Result<Host, String> {
    let mut warnings = Vec::new();
    let Some(dir) = root_of(args) else {
        let status = args
            .dpkg_status
            .as_deref()
            .unwrap_or(Path::new(dpkg::STATUS_FILE));
        let packages = read_status(status, &mut warnings)?;
        return Ok(Host {
            os,
            // Which kernel runs on the machine the file came from is unknown.
            kernel: String::new(),
            packages,
            updates: Vec::new(),
            warnings,
        });
    };
    let root = Root::new(&dir);
    let packages = read_status(&root.path(dpkg::STATUS_FILE), &mut warnings)?;
    let updates = agent::apt::available_updates(&root, &packages, &mut warnings);
    // A chroot runs the machine's kernel: only `/` has a kernel of its own.
    let kernel = if root.is_host() {
        rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned()
    } else {
        String::new()
    };
    Ok(Host {
        os,
        kernel,
        packages,
        updates,
        warnings,
    })
}

fn read_status(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<Package>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut packages, problems) =
        dpkg::parse_status(BufReader::new(file), &path.display().to_string())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    if packages.is_empty() && !problems.is_empty() {
        return Err(format!(
            "{}: not a dpkg status file ({})",
            path.display(),
            problems.first().map_or("", String::as_str)
        ));
    }
    warnings.extend(problems);
    packages.iter_mut().for_each(Package::fill_source);
    Ok(packages)
}

/// The ecosystem names an OSV record must mention to matter to the host:
/// its release's (`Debian:12`) and the vendor feeds'. Records of other
/// releases are skipped unparsed.
fn wanted_ecosystems(os: &OsRelease) -> Vec<String> {
    let mut names = vec![format!("\"{}", patchwell_core::advisory::VENDOR_PREFIX)];
    if let Some(eco) =
        patchwell_core::advisory::Ecosystem::of_host(&os.id, os.version_id.as_deref())
    {
        names.push(format!("\"{}\"", eco.name()));
    }
    names
}

fn load_index(args: &ScanArgs, names: &[String]) -> Result<(Index, Vec<String>), String> {
    let mut index = Index::new();
    let mut warnings = Vec::new();
    let wanted = |bytes: &[u8]| {
        names
            .iter()
            .any(|n| memchr::memmem::find(bytes, n.as_bytes()).is_some())
    };
    for path in &args.osv {
        let parsed =
            feeds::osv::read_path_where(path, &wanted).map_err(|e| format!("--osv {e}"))?;
        warnings.extend(parsed.rejected.iter().map(|r| format!("skipped {r}")));
        for advisory in parsed.items {
            index.insert(advisory);
        }
    }
    if let Some(path) = &args.kev {
        let bytes = std::fs::read(path).map_err(|e| format!("--kev {}: {e}", path.display()))?;
        let kev = feeds::kev::parse(&path.display().to_string(), &bytes)
            .map_err(|e| format!("--kev {e}"))?;
        warnings.extend(kev.entries.rejected.iter().map(|r| format!("skipped {r}")));
        index.set_kev(kev.entries.items);
    }
    if let Some(path) = &args.endoflife {
        let files: Vec<PathBuf> = if path.is_dir() {
            std::fs::read_dir(path)
                .map_err(|e| format!("--endoflife {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        } else {
            vec![path.clone()]
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("--endoflife {}: {e}", file.display()))?;
            match feeds::endoflife::parse(&file.display().to_string(), &text) {
                Ok(lifecycle) => index.add_lifecycle(lifecycle),
                Err(e) => warnings.push(format!("skipped {e}")),
            }
        }
    }
    warnings.extend(index.problems().iter().map(|r| format!("ignored {r}")));
    Ok((index, warnings))
}

pub(crate) fn run(args: ScanArgs) -> ExitCode {
    let os = match read_os(&args) {
        Ok(os) => os,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let names = wanted_ecosystems(&os);
    // The advisories and the host are read at the same time.
    let (index, host) = std::thread::scope(|s| {
        let index = s.spawn(|| load_index(&args, &names));
        let host = read_host(&args, os);
        (
            index
                .join()
                .unwrap_or_else(|_| Err("loading the advisories failed".into())),
            host,
        )
    });
    let ((index, mut warnings), host) = match (index, host) {
        (Ok(index), Ok(host)) => (index, host),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    warnings.extend(host.warnings.iter().cloned());
    let view: HostView =
        server::catalog::host_view(&host.os, &host.kernel, &host.packages, &host.updates);
    let today = jiff::Zoned::now().date();
    let report = index.evaluate(&view, today);
    let findings = server::catalog::report_json(&index, &report);
    let available = server::catalog::available_updates_json(&report, &view).len();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    // Buffered: stdout alone would write every line separately.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = match args.format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &findings)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
        Format::Table => write_table(&mut out, &view, &findings, available),
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: writing the report: {e}");
            return ExitCode::from(2);
        }
    }
    let failed = args
        .fail_on
        .is_some_and(|threshold| findings.iter().any(|f| meets(f, threshold)));
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The severity a finding counts as: a known exploited one is critical.
fn effective_severity(finding: &Value) -> Option<Severity> {
    if finding["kev"].as_bool() == Some(true) {
        return Some(Severity::Critical);
    }
    finding["severity"].as_str().and_then(Severity::parse)
}

fn meets(finding: &Value, threshold: Threshold) -> bool {
    match threshold {
        Threshold::Any => true,
        Threshold::At(level) => effective_severity(finding).is_some_and(|s| s >= level),
    }
}

fn write_table(
    out: &mut impl Write,
    view: &HostView,
    findings: &[Value],
    available: usize,
) -> std::io::Result<()> {
    if !findings.is_empty() {
        out.write_all(crate::catalog_cli::findings_table(findings).as_bytes())?;
    }
    let mut counts = [0usize; 5];
    let mut unrated = 0;
    for f in findings {
        match f["severity"].as_str().and_then(Severity::parse) {
            Some(s) => counts[s as usize] += 1,
            None => unrated += 1,
        }
    }
    let kev = findings
        .iter()
        .filter(|f| f["kev"].as_bool() == Some(true))
        .count();
    let offered = findings.iter().filter(|f| f["offered"].is_string()).count();
    let ecosystem = view
        .ecosystem()
        .map_or_else(|| "no OSV ecosystem".to_owned(), |e| e.to_string());
    writeln!(
        out,
        "{} findings on {} {} ({ecosystem}, {} packages): {} critical, {} high, {} medium, {} low, {} negligible, {unrated} unrated; {kev} known exploited; {offered} fixable now from the package manager; {available} available updates from ordinary suites, not findings",
        findings.len(),
        view.os_id,
        view.os_version.as_deref().unwrap_or("?"),
        view.packages.iter().filter(|p| p.installed).count(),
        counts[Severity::Critical as usize],
        counts[Severity::High as usize],
        counts[Severity::Medium as usize],
        counts[Severity::Low as usize],
        counts[Severity::Negligible as usize],
    )
}
