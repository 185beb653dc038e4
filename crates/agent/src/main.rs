//! The `patchwell-agent` command line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use agent::{inventory, Root, SystemRunner};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "patchwell-agent",
    version,
    about = "Patchwell's agent: inventory of this host"
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
