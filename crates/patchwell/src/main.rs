//! `patchwell`: one binary for the server and the admin command line.
//!
//! For now it carries the version tool, `patchwell version compare|check`,
//! which exposes the `versions` crate to scripts and to people checking what
//! Patchwell will decide about two versions. Its output is made for scripts:
//! one symbol a line, errors in the same positions as the input they concern.

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use versions::Ecosystem;

#[derive(Debug, Parser)]
#[command(name = "patchwell", version, about = "Self-hosted patch management")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare and check package versions as dpkg, rpm and apk do.
    Version {
        #[command(subcommand)]
        command: VersionCommand,
    },
}

#[derive(Debug, Subcommand)]
enum VersionCommand {
    /// Print `<`, `=` or `>` for A compared with B.
    ///
    /// With --batch, read lines `A<TAB>B` from standard input and print one
    /// result per line; a line whose versions are invalid prints
    /// `error: <why>` in its place, and the exit status is then 2.
    Compare(CompareArgs),
    /// Check that a version is valid; exit 2 with the broken rule if not.
    Check {
        #[arg(long, short, value_enum)]
        ecosystem: EcosystemArg,
        /// The version to check.
        #[arg(allow_hyphen_values = true)]
        version: String,
    },
}

#[derive(Debug, Args)]
struct CompareArgs {
    #[arg(long, short, value_enum)]
    ecosystem: EcosystemArg,
    /// Read `A<TAB>B` lines from standard input.
    #[arg(long, conflicts_with_all = ["a", "b"])]
    batch: bool,
    /// The first version.
    #[arg(required_unless_present = "batch", allow_hyphen_values = true)]
    a: Option<String>,
    /// The second version.
    #[arg(required_unless_present = "batch", allow_hyphen_values = true)]
    b: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EcosystemArg {
    /// Debian and Ubuntu: dpkg's rules.
    Deb,
    /// Red Hat, Fedora, SUSE: rpm's rules.
    Rpm,
    /// Alpine: apk-tools' rules.
    Apk,
}

impl From<EcosystemArg> for Ecosystem {
    fn from(arg: EcosystemArg) -> Self {
        match arg {
            EcosystemArg::Deb => Ecosystem::Deb,
            EcosystemArg::Rpm => Ecosystem::Rpm,
            EcosystemArg::Apk => Ecosystem::Apk,
        }
    }
}

/// Exit status for invalid versions, the same status clap uses for bad usage.
const INVALID: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Version {
            command: VersionCommand::Compare(args),
        } => {
            let ecosystem = args.ecosystem.into();
            match (args.batch, args.a, args.b) {
                (true, _, _) => compare_batch(ecosystem, io::stdin().lock(), io::stdout().lock()),
                (false, Some(a), Some(b)) => compare_one(ecosystem, &a, &b),
                _ => anyhow::bail!("compare needs two versions, or --batch"),
            }
        }
        Command::Version {
            command: VersionCommand::Check { ecosystem, version },
        } => match versions::validate(ecosystem.into(), &version) {
            Ok(()) => {
                println!("valid");
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("error: {error}");
                Ok(ExitCode::from(INVALID))
            }
        },
    }
}

fn symbol(order: std::cmp::Ordering) -> &'static str {
    match order {
        std::cmp::Ordering::Less => "<",
        std::cmp::Ordering::Equal => "=",
        std::cmp::Ordering::Greater => ">",
    }
}

/// Prints one line. A reader that has gone away (`| head`) is not an error.
fn say(line: &str) -> io::Result<()> {
    match writeln!(io::stdout().lock(), "{line}") {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn compare_one(ecosystem: Ecosystem, a: &str, b: &str) -> anyhow::Result<ExitCode> {
    match versions::compare(ecosystem, a, b) {
        Ok(order) => {
            say(symbol(order))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(INVALID))
        }
    }
}

/// Answers every line, in order, before reporting failure, so that one bad
/// pair in a large batch does not hide the answers for the rest.
fn compare_batch(
    ecosystem: Ecosystem,
    mut input: impl BufRead,
    output: impl Write,
) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::new(output);
    let mut failed = false;
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let result = match std::str::from_utf8(text) {
            Err(_) => Err(format!("line {number} is not valid UTF-8")),
            Ok(text) => match text.split_once('\t') {
                None => Err(format!("line {number} has no tab: expected A<TAB>B")),
                Some((a, b)) => versions::compare(ecosystem, a, b).map_err(|e| e.to_string()),
            },
        };
        match result {
            Ok(order) => writeln!(out, "{}", symbol(order)),
            Err(why) => {
                failed = true;
                writeln!(out, "error: {why}")
            }
        }
        .or_else(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(if failed {
        ExitCode::from(INVALID)
    } else {
        ExitCode::SUCCESS
    })
}
