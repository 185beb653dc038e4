//! `patchwell`: one binary for the server and the admin command line.
//!
//! `patchwell server` runs the server; the other commands are clients of its
//! API (`--server`, `--token`), except `patchwell version`, which works alone.
//! Output is for people by default and JSON with `--json`, for scripts.

mod admin;
mod catalog_cli;
mod demo;
mod plan_cli;
mod rollout_cli;
mod scan;
mod schedule;
mod version;

use std::net::SocketAddr;
use std::path::PathBuf;
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
    /// Run the server.
    Server(ServerArgs),
    /// Show the whole cycle on this machine: a server on a fresh database,
    /// this machine's advisory data, the machine itself (read-only), a
    /// simulated fleet and a pilot rollout; prints where the console is.
    Demo(demo::DemoArgs),
    /// Enrollment tokens for new hosts.
    Tokens {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: admin::TokensCommand,
    },
    /// Enrolled hosts.
    Hosts {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: admin::HostsCommand,
    },
    /// Which hosts have a package, and in which versions.
    Packages {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: admin::PackagesCommand,
    },
    /// Dynamic groups: hosts chosen by a query.
    Groups {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: admin::GroupsCommand,
    },
    /// Rollouts: rings, jobs, halts, rollbacks and reviews.
    Rollouts {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: Box<rollout_cli::RolloutsCommand>,
    },
    /// Deferral requests: users ask to put a host's updates off, approvers
    /// grant or refuse.
    Deferrals {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: rollout_cli::DeferralsCommand,
    },
    /// Devices that hosts see on their networks but that are not enrolled.
    Devices {
        #[command(flatten)]
        connection: admin::Connection,
    },
    /// Advisory feeds: where advisories come from and how they are verified.
    Feeds {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: catalog_cli::FeedsCommand,
    },
    /// The advisory catalog and which hosts each advisory applies to.
    Advisories {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: catalog_cli::AdvisoriesCommand,
    },
    /// Users and their roles (admin, approver, operator, auditor).
    Users {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::UsersCommand,
    },
    /// API tokens for scripts, each limited to scopes.
    ApiTokens {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::ApiTokensCommand,
    },
    /// The organisation's patch procedure and who acknowledged it.
    Procedure {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::ProcedureCommand,
    },
    /// Exemptions: hosts or groups excused from an advisory or package, until they lapse.
    Exemptions {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::ExemptionsCommand,
    },
    /// Approve or decline updates by title, record go/no-go, check eligibility.
    Approvals {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::ApprovalsCommand,
    },
    /// Baselines per group, and each host's compliance.
    Baselines {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::BaselinesCommand,
    },
    /// Policies: which hosts, which updates, approval, schedule, windows, reboot (JSON).
    Policies {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::DocCommand,
    },
    /// Automatic approval rules (JSON).
    ApprovalRules {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::DocCommand,
    },
    /// Contacts for the chain of communication (JSON).
    Contacts {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::DocCommand,
    },
    /// Host owners and their risk (JSON).
    Owners {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::DocCommand,
    },
    /// Report schedules: the monthly report mailed to the chain of
    /// communication (JSON), and mailing one now.
    ReportSchedules {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::ReportSchedulesCommand,
    },
    /// Reports as files: the monthly executive compliance report.
    Reports {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::ReportsCommand,
    },
    /// Classification rules, SLA deadlines and the business-day calendar.
    Settings {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::SettingsCommand,
    },
    /// Hosts by risk, highest first, with the reasons.
    Risk {
        #[command(flatten)]
        connection: admin::Connection,
        /// How many hosts.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The audit log, and verification of its hash chain.
    Audit {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: plan_cli::AuditCommand,
    },
    /// Scan one machine (or a copied dpkg database) against advisory files,
    /// with no server: for foreign computers, air-gapped hosts and audits.
    /// Exit 0, or 1 when --fail-on is met, or 2 on bad input.
    Scan(scan::ScanArgs),
    /// Try schedule rules and business-day waits (no server needed).
    Schedule {
        #[command(subcommand)]
        command: schedule::ScheduleCommand,
    },
    /// Compare and check package versions as dpkg, rpm and apk do.
    Version {
        #[command(subcommand)]
        command: VersionCommand,
    },
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Where the server keeps its SQLite database and its first API token.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/patchwell")]
    data_dir: PathBuf,
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Use PostgreSQL at this URL instead of the embedded SQLite.
    #[arg(long, value_name = "URL", env = "PATCHWELL_DATABASE_URL")]
    database_url: Option<String>,
    /// The server's certificate (PEM, chain first); without it the server
    /// makes one at first start from its own CA, in DATA_DIR/tls.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "plain_http"
    )]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Another name for the generated certificate; repeat for several.
    #[arg(long = "tls-name", value_name = "NAME")]
    tls_names: Vec<String>,
    /// Serve plain HTTP instead of HTTPS: on a loopback address only.
    #[arg(long)]
    plain_http: bool,
    /// With --plain-http, allow an address that is not loopback.
    #[arg(long, requires = "plain_http")]
    insecure_http: bool,
    /// Days without contact after which a host is stale.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    stale_after_days: u32,
    /// Minutes between agent check-ins.
    #[arg(long, value_name = "MINUTES", default_value_t = 15)]
    checkin_minutes: u32,
    /// Requests a minute one host may make.
    #[arg(long, value_name = "N", default_value_t = 60)]
    host_requests_per_minute: u32,
    /// Fetch and import every advisory feed again this often, in hours
    /// (0: only when asked, with `patchwell feeds import`).
    #[arg(long, value_name = "HOURS", default_value_t = 6)]
    feed_refresh_hours: u64,
    /// The mail relay contacts with an email address are told through:
    /// `smtp://host:25`, `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://user:password@host:465`.
    #[arg(long, value_name = "URL", env = "PATCHWELL_SMTP_URL")]
    smtp_url: Option<String>,
    /// The sender of those mails.
    #[arg(long, value_name = "ADDRESS", default_value = "patchwell@localhost")]
    smtp_from: String,
    /// The append-only file the audit log's signed checkpoints are written
    /// to (default DATA_DIR/audit-checkpoints.jsonl). Put it where whoever
    /// owns the database cannot rewrite it: another volume or host, or a
    /// file made append-only (`chattr +a`).
    #[arg(long, value_name = "FILE")]
    audit_checkpoints: Option<PathBuf>,
    /// Send each checkpoint to syslog too, through this socket (facility
    /// auth, tag patchwell-audit).
    #[arg(long, value_name = "SOCKET", num_args = 0..=1, default_missing_value = "/dev/log")]
    audit_syslog: Option<PathBuf>,
    /// POST each checkpoint to this URL too, as JSON.
    #[arg(long, value_name = "URL")]
    audit_webhook: Option<String>,
    /// Write a checkpoint at least this often while the log grows, in
    /// minutes.
    #[arg(long, value_name = "MINUTES", default_value_t = 5)]
    audit_checkpoint_minutes: u64,
    /// And at least after this many new entries.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    audit_checkpoint_entries: u64,
    /// The largest request body accepted as sent, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    max_wire_mib: usize,
    /// The largest request body accepted once gzip is undone, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    max_body_mib: usize,
    /// What request bodies may hold in memory at once, across all
    /// requests, in MiB; a body that finds it spent waits a few seconds,
    /// then is answered 503.
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    body_budget_mib: usize,
    /// Seconds a request's whole body may take to arrive.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    body_timeout_secs: u64,
    /// Seconds a new connection may take (TLS handshake included) to send
    /// a whole request head.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    header_timeout_secs: u64,
    /// Seconds a connection may stay open after an answer without sending
    /// the next request's whole head.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Connections open at once, in all; more are closed as they come.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    max_connections: usize,
    /// Connections open at once from one source address (an IPv6 /64).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    max_connections_per_source: usize,
    /// The most packages one host may have.
    #[arg(long, value_name = "N", default_value_t = store::DEFAULT_MAX_PACKAGES)]
    max_packages: usize,
    /// Sign-in attempts a minute from one source address (successes do
    /// not count).
    #[arg(long, value_name = "N", default_value_t = 10)]
    sign_in_per_minute: u32,
    /// Sign-in attempts a minute for the whole server.
    #[arg(long, value_name = "N", default_value_t = 300)]
    sign_in_global_per_minute: u32,
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Server(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .init();
            let smtp = args.smtp_url.map(|url| server::notify::Smtp {
                url,
                from: args.smtp_from,
            });
            if let Some(smtp) = &smtp {
                if let Err(e) = smtp.check() {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
            // Every field is set from the command line today; the default
            // stands for any added later.
            #[allow(clippy::needless_update)]
            let options = server::ServeOptions {
                data_dir: args.data_dir,
                listen: args.listen,
                database_url: args.database_url,
                transport: match (args.plain_http, args.tls_cert, args.tls_key) {
                    (true, _, _) => server::Transport::PlainHttp {
                        insecure: args.insecure_http,
                    },
                    (false, Some(cert), Some(key)) => server::Transport::Tls { cert, key },
                    _ => server::Transport::GeneratedTls {
                        names: args.tls_names,
                    },
                },
                config: server::Config {
                    stale_after: jiff::SignedDuration::from_hours(
                        24 * i64::from(args.stale_after_days),
                    ),
                    checkin_interval: std::time::Duration::from_secs(
                        60 * u64::from(args.checkin_minutes),
                    ),
                    host_requests_per_minute: args.host_requests_per_minute,
                    feed_refresh: (args.feed_refresh_hours > 0)
                        .then(|| std::time::Duration::from_secs(3600 * args.feed_refresh_hours)),
                    smtp,
                    max_wire_bytes: args.max_wire_mib << 20,
                    max_body_bytes: args.max_body_mib << 20,
                    body_budget_bytes: args.body_budget_mib << 20,
                    body_timeout: std::time::Duration::from_secs(args.body_timeout_secs),
                    header_timeout: std::time::Duration::from_secs(args.header_timeout_secs),
                    idle_timeout: std::time::Duration::from_secs(args.idle_timeout_secs),
                    max_connections: args.max_connections,
                    max_connections_per_source: args.max_connections_per_source,
                    max_packages: args.max_packages,
                    sign_in_per_minute: args.sign_in_per_minute,
                    sign_in_global_per_minute: args.sign_in_global_per_minute,
                    ..server::Config::default()
                },
                audit_anchor: server::audit_anchor::AnchorOptions {
                    file: args.audit_checkpoints,
                    syslog: args.audit_syslog,
                    webhook: args.audit_webhook,
                    every: std::time::Duration::from_secs(
                        60 * args.audit_checkpoint_minutes.max(1),
                    ),
                    every_entries: args.audit_checkpoint_entries.max(1),
                },
            };
            runtime()?.block_on(server::serve(options))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .with_writer(std::io::stderr)
                .init();
            runtime()?.block_on(demo::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tokens {
            connection,
            command,
        } => runtime()?.block_on(admin::tokens(connection, command)),
        Command::Hosts {
            connection,
            command,
        } => runtime()?.block_on(admin::hosts(connection, command)),
        Command::Packages {
            connection,
            command,
        } => runtime()?.block_on(admin::packages(connection, command)),
        Command::Groups {
            connection,
            command,
        } => runtime()?.block_on(admin::groups(connection, command)),
        Command::Rollouts {
            connection,
            command,
        } => runtime()?.block_on(rollout_cli::rollouts(connection, *command)),
        Command::Deferrals {
            connection,
            command,
        } => runtime()?.block_on(rollout_cli::deferrals(connection, command)),
        Command::Devices { connection } => runtime()?.block_on(admin::devices(connection)),
        Command::Users {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::users(connection, command)),
        Command::ApiTokens {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::api_tokens(connection, command)),
        Command::Procedure {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::procedure(connection, command)),
        Command::Exemptions {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::exemptions(connection, command)),
        Command::Approvals {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::approvals(connection, command)),
        Command::Baselines {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::baselines(connection, command)),
        Command::Policies {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::documents(connection, "policies", command)),
        Command::ApprovalRules {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::documents(connection, "approval-rules", command)),
        Command::Contacts {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::documents(connection, "contacts", command)),
        Command::Owners {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::documents(connection, "owners", command)),
        Command::ReportSchedules {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::report_schedules(connection, command)),
        Command::Reports {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::reports(connection, command)),
        Command::Settings {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::settings(connection, command)),
        Command::Risk { connection, limit } => {
            runtime()?.block_on(plan_cli::risk(connection, limit))
        }
        Command::Audit {
            connection,
            command,
        } => runtime()?.block_on(plan_cli::audit(connection, command)),
        Command::Scan(args) => Ok(scan::run(args)),
        Command::Schedule { command } => Ok(schedule::run(command)),
        Command::Feeds {
            connection,
            command,
        } => runtime()?.block_on(catalog_cli::feeds(connection, command)),
        Command::Advisories {
            connection,
            command,
        } => runtime()?.block_on(catalog_cli::advisories(connection, command)),
        Command::Version {
            command: VersionCommand::Compare(args),
        } => {
            let ecosystem = args.ecosystem.into();
            match (args.batch, args.a, args.b) {
                (true, _, _) => version::compare_batch(
                    ecosystem,
                    std::io::stdin().lock(),
                    std::io::stdout().lock(),
                ),
                (false, Some(a), Some(b)) => version::compare_one(ecosystem, &a, &b),
                _ => anyhow::bail!("compare needs two versions, or --batch"),
            }
        }
        Command::Version {
            command: VersionCommand::Check { ecosystem, version },
        } => version::check(ecosystem.into(), &version),
    }
}
