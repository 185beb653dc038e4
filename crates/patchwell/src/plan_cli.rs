//! Evaluate and plan from the command line: users and API tokens, the
//! procedure, exemptions, approvals, baselines, policies and the other
//! planning documents, settings, risk, and the audit log.
//! `patchwell audit verify --data-dir DIR` (or `--database-url`) checks the
//! chain in the database itself, without trusting a running server, against
//! the signed checkpoints of its head (`--checkpoints FILE`, by default the
//! data directory's).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::{api_path, table, Client, Connection};

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads a JSON document from a file, or from standard input for `-`.
fn read_json(file: &PathBuf) -> anyhow::Result<Value> {
    let raw = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    serde_json::from_str(&raw).with_context(|| format!("{} is not JSON", file.display()))
}

fn print_value(
    client: &Client,
    value: Value,
    render: impl FnOnce(&Value) -> String,
) -> anyhow::Result<ExitCode> {
    client.print(value, |v: Value| render(&v))
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// List users and their roles.
    List,
    /// Create a user; without --password-file a password is made and printed once.
    Add {
        /// The sign-in name.
        name: String,
        /// admin, approver, operator or auditor (the default: it reads and
        /// changes nothing).
        #[arg(long, default_value = "auditor")]
        role: String,
        /// Their email address.
        #[arg(long)]
        email: Option<String>,
        /// A file holding the password (at least 12 characters).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Change a user's role or address, or disable or enable them.
    Set {
        /// The sign-in name.
        name: String,
        /// A new role.
        #[arg(long)]
        role: Option<String>,
        /// A new address.
        #[arg(long)]
        email: Option<String>,
        /// Disable: their sessions end and their tokens stop working.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable again.
        #[arg(long)]
        enable: bool,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApiTokensCommand {
    /// List API tokens (an administrator sees everyone's).
    List,
    /// Create an API token; its secret is printed once.
    Create {
        /// What it is for.
        name: String,
        /// Comma-separated: read, operate, approve, administer (default: all
        /// the user's role allows).
        #[arg(long)]
        scopes: Option<String>,
        /// For another user (administrators only).
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an API token.
    Revoke {
        /// Its id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProcedureCommand {
    /// The current procedure, who acknowledged it and who has not.
    Show,
    /// Publish a new version from a text file (`-` for standard input).
    Publish {
        /// The file.
        file: PathBuf,
    },
    /// Acknowledge the current version.
    Acknowledge,
}

/// What a document command acts on.
#[derive(Debug, Subcommand)]
pub(crate) enum DocCommand {
    /// List them.
    List,
    /// One, as JSON.
    Show {
        /// Its name.
        name: String,
    },
    /// Define or replace one from a JSON file (`-` for standard input).
    Put {
        /// Its name.
        name: String,
        /// The JSON document.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete one.
    Remove {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportSchedulesCommand {
    #[command(flatten)]
    Doc(DocCommand),
    /// Mail the schedule's report now to its audiences' contacts.
    Send {
        /// The schedule.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportsCommand {
    /// Write the monthly executive compliance report to a file.
    Monthly {
        /// The month, `YYYY-MM` (default: this month).
        #[arg(long)]
        month: Option<String>,
        /// `pdf` or `csv`.
        #[arg(long, default_value = "pdf")]
        format: String,
        /// The file to write (`-` for standard output).
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BaselinesCommand {
    #[command(flatten)]
    Doc(DocCommand),
    /// Each host of the baseline's group: below, above, exempt or at.
    Compliance {
        /// The baseline.
        name: String,
    },
    /// Raise the baseline to what a reference host has (a pilot host after
    /// a rollout).
    Raise {
        /// The baseline.
        name: String,
        /// The reference host's id.
        #[arg(long)]
        host: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExemptionsCommand {
    /// List exemptions and whether each is in force.
    List,
    /// Grant an exemption; you are recorded as its approver.
    Add {
        /// Its name.
        name: String,
        /// Hosts, by name or id (repeatable)...
        #[arg(
            long,
            conflicts_with = "group",
            required_unless_present_any = ["group", "query"]
        )]
        host: Vec<String>,
        /// ...and those a host query selects now (resolved once, when it is
        /// stored)...
        #[arg(long, conflicts_with = "group")]
        query: Option<String>,
        /// ...or a group (its members as they change).
        #[arg(long)]
        group: Option<String>,
        /// One advisory...
        #[arg(long, conflicts_with = "package", required_unless_present = "package")]
        advisory: Option<String>,
        /// ...or every update of a package.
        #[arg(long)]
        package: Option<String>,
        /// Why.
        #[arg(long)]
        reason: String,
        /// The compensating control, such as "isolated VLAN".
        #[arg(long)]
        control: Option<String>,
        /// Days until it lapses.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Withdraw an exemption.
    Remove {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// List decisions.
    List,
    /// The updates the fleet is offered, grouped by source package, with
    /// the advisories each fixes and the decision in force.
    Updates {
        /// Only those waiting for a decision.
        #[arg(long)]
        pending: bool,
    },
    /// Approve by title: an advisory id or alias (every update that fixes
    /// it), source:NAME or source:NAME=VERSION (every binary built from
    /// it), or NAME=VERSION (one update). Several titles are one decision,
    /// stored all or none.
    Approve {
        /// The titles.
        #[arg(required = true)]
        titles: Vec<String>,
        /// Rings it is approved for (repeat; none: all).
        #[arg(long = "ring")]
        rings: Vec<String>,
        /// Groups it is approved for (repeat; none: all).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// A comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Decline by title (as approve reads them); several titles are one
    /// decision, stored all or none.
    Decline {
        /// The titles.
        #[arg(required = true)]
        titles: Vec<String>,
        /// Why.
        #[arg(long)]
        comment: String,
    },
    /// Record a go or no-go decision on a change, with its comment.
    Decide {
        /// The change (a title or a rollout).
        name: String,
        /// go or no-go.
        #[arg(value_parser = ["go", "no-go"])]
        decision: String,
        /// Why.
        #[arg(long)]
        comment: String,
    },
    /// Whether an update may go to a ring now, and why (not).
    Check {
        /// The title.
        title: String,
        /// The ring.
        #[arg(long, default_value = "pilot")]
        ring: String,
        /// A host group.
        #[arg(long)]
        group: Option<String>,
        /// Only this policy's approval rules.
        #[arg(long)]
        policy: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SettingsCommand {
    /// A setting as stored and in effect: classification, sla or calendar.
    Show {
        /// Its name.
        name: String,
    },
    /// Set it from a JSON file (`-` for standard input).
    Set {
        /// Its name.
        name: String,
        /// The JSON document.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Entries, oldest first.
    List {
        /// Only subjects starting so (`exemptions/`, `users/alice`).
        #[arg(long)]
        subject: Option<String>,
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Check the hash chain and the signed checkpoints of its head; exit 1
    /// and say what is wrong (the first entry altered or missing, a log
    /// shorter or other than a checkpoint says, a checkpoint whose
    /// signature does not verify). With --data-dir or --database-url it
    /// reads the database directly rather than asking the server.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The server's data directory (its SQLite database).
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL URL.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The checkpoints to hold the log against (with --data-dir or
    /// --database-url): the server's checkpoint file, or lines collected
    /// from syslog or a webhook. Default: DATA_DIR/audit-checkpoints.jsonl.
    #[arg(long, value_name = "FILE")]
    checkpoints: Option<PathBuf>,
    /// The public key the checkpoints must be signed with (`ed25519:...`,
    /// as `patchwell audit verify` shows it). Default: the key in
    /// --data-dir.
    #[arg(long, value_name = "KEY")]
    checkpoint_key: Option<String>,
}

pub(crate) async fn users(
    connection: Connection,
    command: UsersCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        UsersCommand::List => {
            let users = client.call(Method::GET, "/api/v1/users", None).await?;
            print_value(&client, users, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|u| {
                        let state = if u["disabled_at"].is_null() {
                            "enabled"
                        } else {
                            "disabled"
                        };
                        vec![
                            text(&u["username"]),
                            text(&u["role"]),
                            text(&u["email"]),
                            state.into(),
                        ]
                    })
                    .collect();
                table(&["USER", "ROLE", "EMAIL", "STATE"], rows)
            })
        }
        UsersCommand::Add {
            name,
            role,
            email,
            password_file,
        } => {
            let password = match password_file {
                Some(f) => Some(
                    std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?
                        .trim_end_matches(['\r', '\n'])
                        .to_owned(),
                ),
                None => None,
            };
            let body =
                json!({"username": name, "role": role, "email": email, "password": password});
            let created = client
                .call(Method::POST, "/api/v1/users", Some(body))
                .await?;
            print_value(&client, created, |u| match u["password"].as_str() {
                Some(p) => format!(
                    "user {} ({}) created; password (shown once): {p}\n",
                    text(&u["username"]),
                    text(&u["role"])
                ),
                None => format!(
                    "user {} ({}) created\n",
                    text(&u["username"]),
                    text(&u["role"])
                ),
            })
        }
        UsersCommand::Set {
            name,
            role,
            email,
            disable,
            enable,
            reason,
        } => {
            let disabled = if disable {
                Some(true)
            } else if enable {
                Some(false)
            } else {
                None
            };
            let body =
                json!({"role": role, "email": email, "disabled": disabled, "reason": reason});
            let user = client
                .call(Method::PATCH, &api_path(&["users", &name]), Some(body))
                .await?;
            print_value(&client, user, |u| {
                format!(
                    "user {}: role {}, {}\n",
                    text(&u["username"]),
                    text(&u["role"]),
                    if u["disabled_at"].is_null() {
                        "enabled"
                    } else {
                        "disabled"
                    }
                )
            })
        }
    }
}

pub(crate) async fn api_tokens(
    connection: Connection,
    command: ApiTokensCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        ApiTokensCommand::List => {
            let tokens = client.call(Method::GET, "/api/v1/api-tokens", None).await?;
            print_value(&client, tokens, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        let state = if t["revoked_at"].is_null() {
                            "active"
                        } else {
                            "revoked"
                        };
                        vec![
                            text(&t["id"]),
                            text(&t["name"]),
                            text(&t["user"]),
                            text(&t["scopes"]),
                            state.into(),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "USER", "SCOPES", "STATE"], rows)
            })
        }
        ApiTokensCommand::Create { name, scopes, user } => {
            let body = json!({"name": name, "scopes": scopes, "user": user});
            let created = client
                .call(Method::POST, "/api/v1/api-tokens", Some(body))
                .await?;
            print_value(&client, created, |t| {
                format!(
                    "token:  {}\nid:     {}\nuser:   {}\nscopes: {}\n",
                    text(&t["token"]),
                    text(&t["id"]),
                    text(&t["user"]),
                    text(&t["scopes"])
                )
            })
        }
        ApiTokensCommand::Revoke { id } => {
            client
                .call(Method::DELETE, &api_path(&["api-tokens", &id]), None)
                .await?;
            print_value(&client, json!({"revoked": id}), |_| {
                format!("API token {id} revoked\n")
            })
        }
    }
}

pub(crate) async fn procedure(
    connection: Connection,
    command: ProcedureCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        ProcedureCommand::Show => {
            let p = client.call(Method::GET, "/api/v1/procedure", None).await?;
            print_value(&client, p, |p| {
                let acked: Vec<String> = p["acknowledged"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| text(&a["user"]))
                    .collect();
                let pending: Vec<String> = p["not_acknowledged"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                format!(
                    "version {} published {} by {}\n\n{}\n\nacknowledged: {}\nnot yet:      {}\n",
                    text(&p["version"]),
                    text(&p["published_at"]),
                    text(&p["published_by"]),
                    text(&p["text"]).trim_end(),
                    if acked.is_empty() {
                        "-".into()
                    } else {
                        acked.join(", ")
                    },
                    if pending.is_empty() {
                        "-".into()
                    } else {
                        pending.join(", ")
                    },
                )
            })
        }
        ProcedureCommand::Publish { file } => {
            let body = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let p = client
                .call(
                    Method::PUT,
                    "/api/v1/procedure",
                    Some(json!({"text": body})),
                )
                .await?;
            print_value(&client, p, |p| {
                format!("procedure version {} published\n", text(&p["version"]))
            })
        }
        ProcedureCommand::Acknowledge => {
            let p = client.call(Method::GET, "/api/v1/procedure", None).await?;
            let version = p["version"]
                .as_u64()
                .context("the server sent no version")?;
            client
                .call(
                    Method::POST,
                    "/api/v1/procedure/acknowledge",
                    Some(json!({"version": version})),
                )
                .await?;
            print_value(&client, json!({"acknowledged": version}), |_| {
                format!("procedure version {version} acknowledged\n")
            })
        }
    }
}

/// `patchwell policies|approval-rules|contacts|owners ...`: documents of
/// one kind.
pub(crate) async fn documents(
    connection: Connection,
    kind: &str,
    command: DocCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    doc_command(&client, kind, command).await
}

async fn doc_command(client: &Client, kind: &str, command: DocCommand) -> anyhow::Result<ExitCode> {
    match command {
        DocCommand::List => {
            let docs = client.call(Method::GET, &api_path(&[kind]), None).await?;
            print_value(client, docs, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        vec![
                            text(&d["name"]),
                            text(&d["updated_at"]),
                            text(&d["updated_by"]),
                        ]
                    })
                    .collect();
                table(&["NAME", "UPDATED", "BY"], rows)
            })
        }
        DocCommand::Show { name } => {
            let doc = client
                .call(Method::GET, &api_path(&[kind, &name]), None)
                .await?;
            print_value(client, doc, |d| {
                serde_json::to_string_pretty(d).unwrap_or_default() + "\n"
            })
        }
        DocCommand::Put { name, file } => {
            let body = read_json(&file)?;
            let doc = client
                .call(Method::PUT, &api_path(&[kind, &name]), Some(body))
                .await?;
            print_value(client, doc, |d| {
                let verb = if d["replaced"] == true {
                    "replaced"
                } else {
                    "defined"
                };
                format!("{kind}/{name} {verb}\n")
            })
        }
        DocCommand::Remove { name } => {
            client
                .call(Method::DELETE, &api_path(&[kind, &name]), None)
                .await?;
            print_value(client, json!({"removed": name}), |_| {
                format!("{kind}/{name} removed\n")
            })
        }
    }
}

/// `patchwell report-schedules ...`
pub(crate) async fn report_schedules(
    connection: Connection,
    command: ReportSchedulesCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        ReportSchedulesCommand::Doc(doc) => doc_command(&client, "report-schedules", doc).await,
        ReportSchedulesCommand::Send { name } => {
            let done = client
                .call(
                    Method::POST,
                    &api_path(&["report-schedules", &name, "send"]),
                    None,
                )
                .await?;
            print_value(&client, done, |d| {
                let mut out = format!(
                    "{}: the report for {} mailed to {}\n",
                    text(&d["schedule"]),
                    text(&d["month"]),
                    d["mailed"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(text)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                for f in d["failed"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "not mailed to {}: {}\n",
                        text(&f["to"]),
                        text(&f["error"])
                    ));
                }
                out
            })
        }
    }
}

/// `patchwell reports monthly ...`
pub(crate) async fn reports(
    connection: Connection,
    command: ReportsCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        ReportsCommand::Monthly {
            month,
            format,
            output,
        } => {
            let mut path = format!(
                "/api/v1/reports/monthly?format={}",
                crate::admin::encode(&format)
            );
            if let Some(m) = &month {
                path.push_str(&format!("&month={}", crate::admin::encode(m)));
            }
            let bytes = client.fetch(&path).await?;
            if output.as_os_str() == "-" {
                use std::io::Write as _;
                std::io::stdout().write_all(&bytes)?;
            } else {
                std::fs::write(&output, &bytes)
                    .with_context(|| format!("writing the report to {}", output.display()))?;
                eprintln!("{} written ({} bytes)", output.display(), bytes.len());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) async fn baselines(
    connection: Connection,
    command: BaselinesCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        BaselinesCommand::Doc(doc) => doc_command(&client, "baselines", doc).await,
        BaselinesCommand::Compliance { name } => {
            let c = client
                .call(
                    Method::GET,
                    &api_path(&["baselines", &name, "compliance"]),
                    None,
                )
                .await?;
            print_value(&client, c, |c| {
                let rows = c["compliance"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| {
                        let missing: Vec<String> = h["missing"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|m| {
                                let exempt = m["exempt_by"]
                                    .as_str()
                                    .map(|e| format!(" (exempt: {e})"))
                                    .unwrap_or_default();
                                format!(
                                    "{} has {}{exempt}",
                                    text(&m["requirement"]),
                                    text(&m["has"])
                                )
                            })
                            .collect();
                        let above: Vec<String> = h["unapproved"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|u| {
                                format!(
                                    "{} {} > approved {}",
                                    text(&u["package"]),
                                    text(&u["installed"]),
                                    text(&u["highest_approved"])
                                )
                            })
                            .collect();
                        let detail = missing
                            .into_iter()
                            .chain(above)
                            .collect::<Vec<_>>()
                            .join("; ");
                        vec![
                            text(&h["hostname"]),
                            text(&h["status"]),
                            if detail.is_empty() {
                                "-".into()
                            } else {
                                detail
                            },
                        ]
                    })
                    .collect();
                format!(
                    "{}\n{} hosts: {} below, {} above, {} exempt, {} at\n",
                    table(&["HOST", "STATUS", "WHY"], rows).trim_end(),
                    text(&c["hosts"]),
                    text(&c["below"]),
                    text(&c["above"]),
                    text(&c["exempt"]),
                    text(&c["at"])
                )
            })
        }
        BaselinesCommand::Raise { name, host } => {
            let r = client
                .call(
                    Method::POST,
                    &api_path(&["baselines", &name, "raise"]),
                    Some(json!({"host": host})),
                )
                .await?;
            print_value(&client, r, |r| {
                let changes: Vec<String> = r["changes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                if changes.is_empty() {
                    format!("baseline {name}: nothing to raise\n")
                } else {
                    format!("baseline {name} raised: {}\n", changes.join(", "))
                }
            })
        }
    }
}

pub(crate) async fn exemptions(
    connection: Connection,
    command: ExemptionsCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        ExemptionsCommand::List => {
            let list = client.call(Method::GET, "/api/v1/exemptions", None).await?;
            print_value(&client, list, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        // Hosts by name (ids of those stored before names were kept).
                        let named = ["host_names", "hosts"]
                            .iter()
                            .map(|k| &e[*k])
                            .find(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                            .and_then(Value::as_array)
                            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "));
                        let hosts = match (named, e["host"].as_str()) {
                            (Some(n), _) => format!("hosts {n}"),
                            (None, Some(h)) => format!("host {h}"),
                            (None, None) => format!("group {}", text(&e["group"])),
                        };
                        let target = e["advisory"]
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| format!("package {}", text(&e["package"])));
                        vec![
                            text(&e["name"]),
                            hosts,
                            target,
                            text(&e["expires"]),
                            text(&e["now"]["standing"]),
                            text(&e["approver"]),
                            text(&e["reason"]),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "NAME", "HOSTS", "FOR", "EXPIRES", "STANDING", "APPROVER", "REASON",
                    ],
                    rows,
                )
            })
        }
        ExemptionsCommand::Add {
            name,
            host,
            query,
            group,
            advisory,
            package,
            reason,
            control,
            days,
        } => {
            let expires = Timestamp::now()
                .checked_add(SignedDuration::from_hours(24 * i64::from(days)))
                .context("--days is too far away")?;
            let mut body = json!({
                "group": group, "advisory": advisory, "package": package,
                "reason": reason, "control": control, "expires": expires,
            });
            if !host.is_empty() {
                body["hosts"] = json!(host);
            }
            if let Some(q) = query {
                body["query"] = json!(q);
            }
            let e = client
                .call(Method::PUT, &api_path(&["exemptions", &name]), Some(body))
                .await?;
            print_value(&client, e, |e| {
                format!(
                    "exemption {name} granted by {} until {}\n",
                    text(&e["approver"]),
                    text(&e["expires"])
                )
            })
        }
        ExemptionsCommand::Remove { name } => {
            client
                .call(Method::DELETE, &api_path(&["exemptions", &name]), None)
                .await?;
            print_value(&client, json!({"removed": name}), |_| {
                format!("exemption {name} withdrawn\n")
            })
        }
    }
}

/// One decision on one title (`PUT`) or on several (`POST .../bulk`, all
/// or none).
async fn decide(
    client: &Client,
    titles: Vec<String>,
    verdict: &str,
    rings: Vec<String>,
    groups: Vec<String>,
    comment: Option<String>,
) -> anyhow::Result<ExitCode> {
    let done = if verdict == "approve" {
        "approved"
    } else {
        "declined"
    };
    if let [title] = titles.as_slice() {
        let body =
            json!({"verdict": verdict, "rings": rings, "groups": groups, "comment": comment});
        let a = client
            .call(Method::PUT, &api_path(&["approvals", title]), Some(body))
            .await?;
        return print_value(client, a, |a| {
            format!("{title} {done} by {}\n", text(&a["by"]))
        });
    }
    let body = json!({"titles": titles, "verdict": verdict, "rings": rings, "groups": groups, "comment": comment});
    let a = client
        .call(Method::POST, "/api/v1/approvals/bulk", Some(body))
        .await?;
    print_value(client, a, |a| {
        let titles: Vec<String> = a["titles"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        format!("{} {done} by {}\n", titles.join(", "), text(&a["by"]))
    })
}

pub(crate) async fn approvals(
    connection: Connection,
    command: ApprovalsCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        ApprovalsCommand::List => {
            let list = client.call(Method::GET, "/api/v1/approvals", None).await?;
            print_value(&client, list, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        let list = |k: &str| {
                            let items: Vec<String> =
                                a[k].as_array().into_iter().flatten().map(text).collect();
                            if items.is_empty() {
                                "all".into()
                            } else {
                                items.join(",")
                            }
                        };
                        vec![
                            text(&a["name"]),
                            text(&a["verdict"]),
                            list("rings"),
                            list("groups"),
                            text(&a["by"]),
                            text(&a["comment"]),
                        ]
                    })
                    .collect();
                table(
                    &["TITLE", "VERDICT", "RINGS", "GROUPS", "BY", "COMMENT"],
                    rows,
                )
            })
        }
        ApprovalsCommand::Updates { pending } => {
            let list = client.call(Method::GET, "/api/v1/updates", None).await?;
            print_value(&client, list, |v| {
                let mut rows: Vec<&Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|u| !pending || u["decision"].is_null())
                    .collect();
                rows.sort_by_key(|u| (text(&u["source"]), text(&u["title"])));
                let rows = rows
                    .into_iter()
                    .map(|u| {
                        let advisories: Vec<String> = u["advisories"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .chain(Some(&u["update_id"]).filter(|id| id.is_string()))
                            .map(text)
                            .collect();
                        let d = &u["decided_by"];
                        let decision = match u["decision"].as_str() {
                            Some(verdict) if d["title"] == u["title"] => {
                                format!("{verdict} by {}", text(&d["by"]))
                            }
                            Some(verdict) => {
                                format!("{verdict} by {} ({})", text(&d["by"]), text(&d["title"]))
                            }
                            None => "waiting".into(),
                        };
                        vec![
                            text(&u["source"]),
                            text(&u["title"]),
                            if u["security"] == true { "yes" } else { "no" }.into(),
                            advisories.join(","),
                            text(&u["hosts"]),
                            decision,
                        ]
                    })
                    .collect();
                table(
                    &[
                        "SOURCE",
                        "UPDATE",
                        "SECURITY",
                        "ADVISORIES",
                        "HOSTS",
                        "DECISION",
                    ],
                    rows,
                )
            })
        }
        ApprovalsCommand::Approve {
            titles,
            rings,
            groups,
            comment,
        } => decide(&client, titles, "approve", rings, groups, comment).await,
        ApprovalsCommand::Decline { titles, comment } => {
            decide(&client, titles, "decline", vec![], vec![], Some(comment)).await
        }
        ApprovalsCommand::Decide {
            name,
            decision,
            comment,
        } => {
            let body = json!({"go": decision == "go", "comment": comment});
            let d = client
                .call(Method::PUT, &api_path(&["go-no-go", &name]), Some(body))
                .await?;
            print_value(&client, d, |d| {
                format!("{name}: {decision}, recorded for {}\n", text(&d["by"]))
            })
        }
        ApprovalsCommand::Check {
            title,
            ring,
            group,
            policy,
        } => {
            let mut query = format!("?ring={}", crate::admin::encode(&ring));
            if let Some(g) = group {
                query.push_str(&format!("&group={}", crate::admin::encode(&g)));
            }
            if let Some(p) = policy {
                query.push_str(&format!("&policy={}", crate::admin::encode(&p)));
            }
            let path = api_path(&["approvals", &title, "eligibility"]) + &query;
            let e = client.call(Method::GET, &path, None).await?;
            print_value(&client, e, |e| {
                let d = &e["decision"];
                let why = match d["state"].as_str() {
                    Some("approved") => format!("approved by {}", text(&d["by"])),
                    Some("waiting") => format!(
                        "waiting until {}: {}",
                        text(&d["until"]),
                        text(&d["reason"])
                    ),
                    Some("declined") => {
                        format!("declined by {}: {}", text(&d["by"]), text(&d["comment"]))
                    }
                    _ => text(&d["reason"]),
                };
                format!(
                    "{title} ({}, {}) for ring {ring}: {why}\n",
                    text(&e["class"]),
                    text(&e["class_rule"])
                )
            })
        }
    }
}

pub(crate) async fn settings(
    connection: Connection,
    command: SettingsCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    let (name, value) = match command {
        SettingsCommand::Show { name } => {
            let v = client
                .call(Method::GET, &api_path(&["settings", &name]), None)
                .await?;
            (name, v)
        }
        SettingsCommand::Set { name, file } => {
            let body = read_json(&file)?;
            let v = client
                .call(Method::PUT, &api_path(&["settings", &name]), Some(body))
                .await?;
            (name, v)
        }
    };
    print_value(&client, value, |v| {
        format!(
            "{name} in effect:\n{}\n",
            serde_json::to_string_pretty(&v["effective"]).unwrap_or_default()
        )
    })
}

pub(crate) async fn risk(connection: Connection, limit: usize) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    let r = client
        .call(
            Method::GET,
            &format!("/api/v1/summary/risk?limit={limit}"),
            None,
        )
        .await?;
    print_value(&client, r, |r| {
        let rows = r["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                let o = &h["open"];
                let because: Vec<String> = h["because"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                vec![
                    text(&h["hostname"]),
                    format!("{:.1}", h["score"].as_f64().unwrap_or(0.0)),
                    format!(
                        "{}/{}/{}/{}",
                        text(&o["critical"]),
                        text(&o["high"]),
                        text(&o["medium"]),
                        text(&o["low"])
                    ),
                    text(&o["known_exploited"]),
                    if because.is_empty() {
                        "-".into()
                    } else {
                        because.join(", ")
                    },
                ]
            })
            .collect();
        table(
            &["HOST", "SCORE", "CRIT/HIGH/MED/LOW", "KEV", "BECAUSE"],
            rows,
        )
    })
}

/// A verdict of `audit verify` for people: the verdict, then what the
/// checkpoints say.
fn audit_verdict_text(v: &Value) -> String {
    let mut out = if v["intact"] == true {
        format!(
            "audit log intact: {} entries, head {}\n",
            text(&v["entries"]),
            text(&v["head"])
        )
    } else if v["first_bad_entry"].is_null() {
        format!("audit log not verified: {}\n", text(&v["problem"]))
    } else {
        format!(
            "audit log broken at entry {}: {}\n",
            text(&v["first_bad_entry"]),
            text(&v["problem"])
        )
    };
    let c = &v["checkpoints"];
    if !c.is_object() {
        out.push_str(
            "no checkpoints checked: the chain alone does not show a log rewritten or cut \
             back by someone who can write the database\n",
        );
        return out;
    }
    match c["last"].as_object() {
        Some(last) => out.push_str(&format!(
            "{} checkpoints verified (key {}), the last at entry {} on {}\n",
            text(&c["verified"]),
            text(&c["key"]),
            text(&last["seq"]),
            text(&last["at"])
        )),
        None => out.push_str(&format!(
            "no checkpoint verified (key {}; {})\n",
            text(&c["key"]),
            c["source"].as_str().unwrap_or("no checkpoint file")
        )),
    }
    for p in c["problems"].as_array().into_iter().flatten() {
        out.push_str(&format!("problem: {}\n", text(p)));
    }
    out
}

pub(crate) async fn audit(
    connection: Connection,
    command: AuditCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::List {
            subject,
            after,
            limit,
        } => {
            let client = Client::new(connection)?;
            let mut path = format!("/api/v1/audit?after={after}&limit={limit}");
            if let Some(s) = subject {
                path.push_str(&format!("&subject={}", crate::admin::encode(&s)));
            }
            let log = client.call(Method::GET, &path, None).await?;
            print_value(&client, log, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        vec![
                            text(&e["seq"]),
                            text(&e["at"]),
                            text(&e["actor"]),
                            text(&e["action"]),
                            text(&e["subject"]),
                            text(&e["reason"]),
                        ]
                    })
                    .collect();
                table(&["SEQ", "AT", "ACTOR", "ACTION", "SUBJECT", "REASON"], rows)
            })
        }
        AuditCommand::Verify(args) => {
            let (verdict, json_out) = match (&args.data_dir, &args.database_url) {
                (None, None) => {
                    let json_out = connection.wants_json();
                    let client = Client::new(connection)?;
                    (
                        client
                            .call(Method::GET, "/api/v1/audit/verify", None)
                            .await?,
                        json_out,
                    )
                }
                (dir, url) => {
                    let now = Timestamp::now();
                    let key = match (&args.checkpoint_key, dir) {
                        (Some(text), _) => Some(
                            server::audit_anchor::parse_key(text).map_err(anyhow::Error::msg)?,
                        ),
                        (None, Some(dir)) => server::audit_anchor::CheckpointKey::public_in(dir)?,
                        (None, None) => None,
                    };
                    // With a key to check them by, the data directory's
                    // checkpoint file is expected: missing, it anchors
                    // nothing, and the verdict says so.
                    let file = args.checkpoints.clone().or_else(|| {
                        dir.as_ref()
                            .map(|d| d.join(server::audit_anchor::CHECKPOINT_FILE))
                            .filter(|f| f.exists() || key.is_some())
                    });
                    let source = match &file {
                        Some(f) if !f.exists() && args.checkpoints.is_none() => {
                            Some((f.display().to_string(), String::new()))
                        }
                        Some(f) => Some((
                            f.display().to_string(),
                            std::fs::read_to_string(f)
                                .with_context(|| format!("reading {}", f.display()))?,
                        )),
                        None => None,
                    };
                    let key = match (key, &source) {
                        (Some(key), _) => Some(key),
                        (None, Some((f, _))) => anyhow::bail!(
                            "{f} holds checkpoints, but no key to check them with: give \
                             --checkpoint-key (`patchwell audit verify` shows the server's)"
                        ),
                        (None, None) => None,
                    };
                    let store = match (dir, url) {
                        (Some(dir), _) => {
                            if !dir.join("patchwell.db").is_file() {
                                anyhow::bail!("{} holds no patchwell.db", dir.display());
                            }
                            store::Store::open_sqlite(dir, now).await
                        }
                        (None, Some(url)) => store::Store::open_postgres(url, now).await,
                        (None, None) => unreachable!("matched above"),
                    }
                    .context("opening the database")?;
                    let verdict = match key {
                        Some(key) => server::audit_anchor::verify(&store, source, &key, None).await,
                        None => store::AuditStore::verify_audit(&store)
                            .await
                            .map(|v| server::verdict_json(&v))
                            .map_err(anyhow::Error::from),
                    };
                    store.close().await;
                    (verdict?, connection.wants_json())
                }
            };
            if json_out {
                println!("{}", serde_json::to_string_pretty(&verdict)?);
            } else {
                print!("{}", audit_verdict_text(&verdict));
            }
            Ok(if verdict["intact"] == true {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
