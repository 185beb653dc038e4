//! The `patchwell-agent` command line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use agent::client::Client;
use agent::{checkin, inventory, reboot, state, Root, SystemRunner};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "patchwell-agent",
    version,
    about = "Patchwell's agent: inventory of this host, and the jobs its server signs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print this host's inventory, without a server.
    Inventory {
        /// Inventory the system rooted at DIR (a chroot) instead of this one.
        /// Hardware and kernel facts are always the running machine's.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Enroll this host with a server, using an enrollment token.
    Enroll {
        /// The server's URL.
        #[arg(long)]
        server: String,
        /// The enrollment token an administrator created.
        #[arg(long)]
        token: String,
        /// A CA certificate (PEM) to trust for the server.
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// Where the agent keeps its identity.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/patchwell-agent")]
        state_dir: PathBuf,
        /// Inventory the system rooted at DIR (for its host name).
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
    },
    /// Check in with the server: now, then on the interval it asks for.
    Run {
        /// Check in once and exit; the status says whether it worked.
        #[arg(long)]
        once: bool,
        /// Where the agent keeps its identity.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/patchwell-agent")]
        state_dir: PathBuf,
        /// Inventory the system rooted at DIR instead of this one.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// Report the inventory only: never run a job or reboot (a job handed
        /// out is reported refused, with why, so its rollout does not wait).
        #[arg(long)]
        read_only: bool,
    },
    /// Put off the restart the agent announced (any logged-in user may;
    /// the job sets how often and until when).
    DeferReboot {
        /// The agent's state directory.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/patchwell-agent")]
        state_dir: PathBuf,
    },
    /// Ask the server to put this computer's updates off until a date, with
    /// a business justification; an approver grants or refuses.
    Defer {
        /// Until when (RFC 3339, 2026-12-20T18:00:00Z).
        #[arg(long)]
        until: String,
        /// Why updating now would hurt the business.
        #[arg(long)]
        justification: String,
        /// Only this rollout (default: every rollout).
        #[arg(long)]
        rollout: Option<String>,
        /// The agent's state directory.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/patchwell-agent")]
        state_dir: PathBuf,
    },
    /// This computer's deferral requests and their decisions.
    Deferrals {
        /// The agent's state directory.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/patchwell-agent")]
        state_dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// A summary for people.
    Text,
    /// The full inventory, as the agent sends it to the server.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Enroll {
            server,
            token,
            ca_cert,
            state_dir,
            root,
        } => match enroll(&server, &token, ca_cert, &state_dir, root) {
            Ok(host) => {
                eprintln!(
                    "enrolled as host {host}; identity saved in {}",
                    state_dir.join(state::STATE_FILE).display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            once,
            state_dir,
            root,
            read_only,
        } => match run(once, &state_dir, Root::new(root), read_only) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::DeferReboot { state_dir } => {
            match reboot::request_deferral(&state_dir, &local_user()) {
                Ok(_) => {
                    eprintln!(
                        "asked; the agent answers on every terminal within a minute \
                         (a deferral, or why not)"
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "error: cannot ask the agent at {}: {e}",
                        state_dir.join(reboot::REQUESTS_DIR).display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Command::Defer {
            until,
            justification,
            rollout,
            state_dir,
        } => {
            let body = serde_json::json!({
                "until": until, "justification": justification,
                "rollout": rollout, "user": local_user(),
            });
            match client_for(&state_dir).and_then(|c| Ok(c.request_deferral(&body)?)) {
                Ok(d) => {
                    println!(
                        "deferral {} asked until {}: {}; an approver decides \
                         (patchwell-agent deferrals shows it)",
                        d["id"].as_str().unwrap_or("?"),
                        d["until"].as_str().unwrap_or("?"),
                        d["state"].as_str().unwrap_or("?")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Deferrals { state_dir } => {
            match client_for(&state_dir).and_then(|c| Ok(c.deferrals()?)) {
                Ok(list) => {
                    for d in list["deferrals"].as_array().into_iter().flatten() {
                        let text = |k: &str| d[k].as_str().unwrap_or("-").to_owned();
                        println!(
                            "{} until {}: {}{} ({})",
                            text("id"),
                            text("until"),
                            text("state"),
                            d["decision"]
                                .as_str()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default(),
                            text("justification")
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Inventory { root, format } => {
            let now = jiff::Timestamp::now();
            match inventory::collect(&Root::new(root), &SystemRunner, now) {
                Ok(inv) => {
                    let text = match format {
                        Format::Json => match serde_json::to_string_pretty(&inv) {
                            Ok(json) => json + "\n",
                            Err(e) => {
                                eprintln!("error: could not write the inventory as JSON: {e}");
                                return ExitCode::FAILURE;
                            }
                        },
                        Format::Text => summary(&inv),
                    };
                    // A reader that stops early (`| head`) is not an error.
                    match std::io::stdout().lock().write_all(text.as_bytes()) {
                        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                            eprintln!("error: writing the inventory: {e}");
                            ExitCode::FAILURE
                        }
                        _ => ExitCode::SUCCESS,
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn enroll(
    server: &str,
    token: &str,
    ca_cert: Option<PathBuf>,
    state_dir: &std::path::Path,
    root: PathBuf,
) -> anyhow::Result<String> {
    use anyhow::Context;
    state::ensure_not_enrolled(state_dir)?;
    let ca_pem = ca_cert
        .map(|file| {
            std::fs::read_to_string(&file)
                .with_context(|| format!("reading the CA certificate {}", file.display()))
        })
        .transpose()?;
    let inventory = inventory::collect(&Root::new(root), &SystemRunner, jiff::Timestamp::now())?;
    let client = Client::new(server, ca_pem.as_deref(), None)?;
    let enrolled = client.enroll(token, &inventory.host.hostname)?;
    let record = state::Enrollment {
        server: server.to_owned(),
        host_id: enrolled.host_id.clone(),
        credential: enrolled.credential,
        ca_cert: ca_pem,
        job_key: Some(enrolled.job_key),
    };
    state::save(state_dir, &record)?;
    Ok(enrolled.host_id)
}

/// The user who runs the command (the one behind `sudo`, if any).
fn local_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default()
}

/// A client with the enrollment's identity.
fn client_for(state_dir: &std::path::Path) -> anyhow::Result<Client> {
    let enrollment = state::load(state_dir)?;
    Ok(Client::new(
        &enrollment.server,
        enrollment.ca_cert.as_deref(),
        Some(enrollment.credential.clone()),
    )?)
}

/// Checks in now and then on the server's interval. A server that cannot be
/// reached is tried again sooner (from one minute, doubling up to the
/// interval), because laptops come and go; a server that refuses this host
/// (revoked, unknown) ends the agent.
fn run(once: bool, state_dir: &std::path::Path, root: Root, read_only: bool) -> anyhow::Result<()> {
    let enrollment = state::load(state_dir)?;
    let client = Client::new(
        &enrollment.server,
        enrollment.ca_cert.as_deref(),
        Some(enrollment.credential.clone()),
    )?;
    if root.is_host() && !read_only {
        if let Err(e) = reboot::prepare(state_dir) {
            eprintln!("warning: users cannot put reboots off: {e}");
        }
    }
    let mut retry = std::time::Duration::from_secs(60);
    loop {
        let checked = if read_only {
            checkin::check_in_read_only(
                &client,
                state_dir,
                &root,
                &SystemRunner,
                &jiff::Timestamp::now,
            )
        } else {
            checkin::check_in(
                &client,
                state_dir,
                &root,
                &SystemRunner,
                &enrollment,
                &jiff::Timestamp::now,
            )
        };
        let wait = match checked {
            Ok(done) => {
                eprintln!(
                    "checked in{}",
                    match done.sent {
                        checkin::Sent::Nothing => "",
                        checkin::Sent::Delta => "; inventory changes sent",
                        checkin::Sent::Full => "; inventory sent",
                    }
                );
                for job in &done.jobs {
                    eprintln!("{job}");
                }
                retry = std::time::Duration::from_secs(60);
                done.next
            }
            Err(checkin::CheckInError::Server(e)) if e.is_fatal() => return Err(e.into()),
            Err(e) if once => return Err(e.into()),
            Err(e) => {
                eprintln!(
                    "warning: check-in failed, trying again in {}s: {e}",
                    retry.as_secs()
                );
                let wait = retry;
                retry = (retry * 2).min(std::time::Duration::from_secs(3600));
                wait
            }
        };
        if once {
            return Ok(());
        }
        // While a reboot is owed, look at it each minute: users' deferral
        // requests are answered and the reboot made on time.
        let until = std::time::Instant::now() + checkin::jitter(wait);
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            if reboot::load(state_dir).is_none() {
                std::thread::sleep(left);
                break;
            }
            std::thread::sleep(left.min(std::time::Duration::from_secs(60)));
            if let Err(e) = reboot::tick(state_dir, &SystemRunner, &client, jiff::Timestamp::now())
            {
                eprintln!("warning: the pending reboot: {e}");
            }
        }
    }
}

fn summary(inv: &protocol::Inventory) -> String {
    let os = inv
        .os
        .pretty_name
        .clone()
        .unwrap_or_else(|| inv.os.id.clone());
    let installed = inv
        .packages
        .iter()
        .filter(|p| p.state.is_installed())
        .count();
    let security = inv.updates.iter().filter(|u| u.security).count();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "host:     {} ({})", inv.host.hostname, inv.host.arch);
    let _ = writeln!(out, "os:       {os}");
    let _ = writeln!(out, "kernel:   {}", inv.host.kernel);
    let _ = writeln!(
        out,
        "packages: {installed} installed, {} with configuration only",
        inv.packages.len() - installed
    );
    let _ = writeln!(
        out,
        "updates:  {} available, {security} from security suites",
        inv.updates.len()
    );
    for u in &inv.updates {
        let suite = u.codename.as_deref().or(u.suite.as_deref()).unwrap_or("?");
        let _ = writeln!(
            out,
            "          {} {} -> {} ({suite})",
            u.name, u.installed, u.candidate
        );
    }
    let reboot = if inv.reboot.required {
        "required"
    } else {
        "not required"
    };
    let _ = writeln!(out, "reboot:   {reboot}");
    for w in &inv.warnings {
        let _ = writeln!(out, "warning:  {w}");
    }
    out
}
