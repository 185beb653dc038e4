//! `patchwell feeds` and `patchwell advisories`: the advisory catalog from
//! the command line. `feeds digest`, `feeds keygen` and `feeds sign` work
//! alone, without a server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};
use server::api::{FeedView, ImportReport};

use crate::admin::{api_path, encode, table, Client, Connection};

#[derive(Debug, Subcommand)]
pub(crate) enum FeedsCommand {
    /// List feeds and how their last import went.
    List,
    /// Define a feed and import it at once.
    Add {
        /// Its name.
        name: String,
        /// osv, debian-tracker, debian-tracker-json, alpine-secdb, kev, epss, endoflife, vendor or apt.
        #[arg(long)]
        kind: String,
        /// A file or directory on the server, or an http(s) URL.
        #[arg(long)]
        location: String,
        /// Pin the digest (`patchwell feeds digest PATH` prints it).
        #[arg(long, value_name = "HEX", conflicts_with_all = ["ed25519_key", "keyring"])]
        sha256: Option<String>,
        /// A vendor feed's ed25519 public key (`ed25519:...`); the signature
        /// is read from LOCATION.sig.
        #[arg(long, value_name = "KEY", conflicts_with = "keyring")]
        ed25519_key: Option<String>,
        /// For apt: the OpenPGP keyring on the server that must have signed
        /// the InRelease.
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
    },
    /// Fetch, verify and import a feed again.
    Import {
        /// Its name.
        name: String,
    },
    /// Remove a feed and its advisories.
    Remove {
        /// Its name.
        name: String,
    },
    /// Print the digest to pin for a file or directory (works offline).
    Digest {
        /// The file or directory, as the server will read it.
        path: PathBuf,
        /// The feed kind (it decides which files of a directory count).
        #[arg(long, default_value = "osv")]
        kind: String,
    },
    /// Make an ed25519 key pair for signing a vendor feed (works offline).
    Keygen,
    /// Sign a vendor feed file: writes FILE.sig (works offline).
    Sign {
        /// The feed file.
        file: PathBuf,
        /// The file holding the secret key from `keygen`.
        #[arg(long, value_name = "FILE")]
        secret_key_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdvisoriesCommand {
    /// Search the catalog.
    List {
        /// Words the id, an alias, the title or a package must contain.
        #[arg(long)]
        search: Option<String>,
        /// Only this ecosystem (`Debian:12`).
        #[arg(long)]
        ecosystem: Option<String>,
        /// Only known exploited vulnerabilities.
        #[arg(long)]
        kev: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One advisory and the hosts it applies to, with reasons.
    Show {
        /// Its id (`DSA-5380-1`).
        id: String,
    },
}

fn report_text(r: &ImportReport) -> String {
    let mut text = format!(
        "feed {}: {} records imported, {} skipped (sha256 {}); catalog holds {} advisories\n",
        r.feed, r.records, r.rejected_count, r.sha256, r.catalog_advisories
    );
    for x in &r.rejected {
        text += &format!("  skipped {}: record {}: {}\n", x.file, x.record, x.reason);
    }
    text
}

pub(crate) async fn feeds(
    connection: Connection,
    command: FeedsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        FeedsCommand::Digest { path, kind } => {
            let kind = server::feeds::FeedKind::parse(&kind).map_err(anyhow::Error::msg)?;
            let location = path.display().to_string();
            let documents = server::feeds::fetch(kind, &location).await?;
            println!("sha256:{}", server::feeds::digest(&documents));
            Ok(ExitCode::SUCCESS)
        }
        FeedsCommand::Keygen => {
            let (secret, public) = feeds::vendor::generate_key()?;
            println!("secret: {secret}\npublic: {public}");
            eprintln!("Keep the secret key with the publisher; give the public key to `feeds add --ed25519-key`.");
            Ok(ExitCode::SUCCESS)
        }
        FeedsCommand::Sign {
            file,
            secret_key_file,
        } => {
            let secret = std::fs::read_to_string(&secret_key_file)
                .with_context(|| format!("{}", secret_key_file.display()))?;
            let secret = secret
                .lines()
                .map(|l| l.trim().trim_start_matches("secret:").trim())
                .find(|l| !l.is_empty())
                .unwrap_or("");
            let bytes = std::fs::read(&file).with_context(|| format!("{}", file.display()))?;
            let signature = feeds::vendor::sign(&bytes, secret)?;
            let sig_path = PathBuf::from(format!("{}.sig", file.display()));
            std::fs::write(&sig_path, format!("{signature}\n"))
                .with_context(|| format!("{}", sig_path.display()))?;
            println!("{}", sig_path.display());
            Ok(ExitCode::SUCCESS)
        }
        FeedsCommand::List => {
            let client = Client::new(connection)?;
            let list = client.call(Method::GET, "/api/v1/feeds", None).await?;
            client.print(list, |feeds: Vec<FeedView>| {
                let rows = feeds
                    .into_iter()
                    .map(|f| {
                        let status = match (&f.last_error, f.imported_at) {
                            (Some(e), _) => format!("FAILED: {e}"),
                            (None, Some(at)) => format!("ok {at}"),
                            (None, None) => "never imported".into(),
                        };
                        vec![
                            f.name,
                            f.kind,
                            f.records.to_string(),
                            f.rejected.to_string(),
                            status,
                            f.location,
                        ]
                    })
                    .collect();
                table(
                    &["FEED", "KIND", "RECORDS", "SKIPPED", "STATUS", "LOCATION"],
                    rows,
                )
            })
        }
        FeedsCommand::Add {
            name,
            kind,
            location,
            sha256,
            ed25519_key,
            keyring,
        } => {
            let client = Client::new(connection)?;
            let verification = match (sha256, ed25519_key, keyring) {
                (Some(hex), _, _) => format!("sha256:{}", hex.trim_start_matches("sha256:")),
                (_, Some(key), _) => key,
                (_, _, Some(path)) => format!("openpgp:{}", path.display()),
                _ => anyhow::bail!(
                    "feed {name}: say how to verify it: --sha256 HEX, --ed25519-key KEY or --keyring FILE"
                ),
            };
            let report = client
                .call(
                    Method::PUT,
                    &api_path(&["feeds", &name]),
                    Some(json!({"kind": kind, "location": location, "verification": verification})),
                )
                .await?;
            client.print(report, |r: ImportReport| report_text(&r))
        }
        FeedsCommand::Import { name } => {
            let client = Client::new(connection)?;
            let report = client
                .call(Method::POST, &api_path(&["feeds", &name, "import"]), None)
                .await?;
            client.print(report, |r: ImportReport| report_text(&r))
        }
        FeedsCommand::Remove { name } => {
            let client = Client::new(connection)?;
            client
                .call(Method::DELETE, &api_path(&["feeds", &name]), None)
                .await?;
            client.print(json!({"removed": name}), |_: Value| {
                format!("feed {name} removed\n")
            })
        }
    }
}

pub(crate) async fn advisories(
    connection: Connection,
    command: AdvisoriesCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        AdvisoriesCommand::List {
            search,
            ecosystem,
            kev,
            limit,
        } => {
            let mut path = format!("/api/v1/advisories?limit={limit}&kev={kev}");
            if let Some(s) = search {
                path += &format!("&search={}", encode(&s));
            }
            if let Some(e) = ecosystem {
                path += &format!("&ecosystem={}", encode(&e));
            }
            let found = client.call(Method::GET, &path, None).await?;
            client.print(found, |found: Value| {
                let rows = found["advisories"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        vec![
                            text(&a["id"]),
                            kind_of(a).into(),
                            text(&a["hosts"]),
                            text(&a["severity"]),
                            if a["kev"].as_bool() == Some(true) {
                                "KEV".into()
                            } else {
                                String::new()
                            },
                            text(&a["published"]).chars().take(10).collect(),
                            text(&a["title"]),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ADVISORY",
                        "KIND",
                        "HOSTS",
                        "SEVERITY",
                        "KEV",
                        "PUBLISHED",
                        "TITLE",
                    ],
                    rows,
                ) + &format!("{} matching\n", found["total"])
            })
        }
        AdvisoriesCommand::Show { id } => {
            let found = client
                .call(Method::GET, &api_path(&["advisories", &id]), None)
                .await?;
            client.print(found, |found: Value| {
                let s = &found["summary"];
                let mut out = format!(
                    "{}: {}\n{}; severity {}, {}, published {}, from feed {}\n",
                    text(&s["id"]),
                    text(&s["title"]),
                    kind_of(s),
                    text(&s["severity"]),
                    if s["kev"].as_bool() == Some(true) {
                        format!("known exploited since {}", text(&s["kev_date_added"]))
                    } else {
                        "not known exploited".into()
                    },
                    text(&s["published"]),
                    text(&s["feed"]),
                );
                if let Some(by) = found["superseded_by"].as_array().filter(|a| !a.is_empty()) {
                    let ids: Vec<String> = by.iter().map(text).collect();
                    out += &format!("superseded by {}\n", ids.join(", "));
                }
                let hosts = found["hosts"].as_array().cloned().unwrap_or_default();
                out += &format!(
                    "applies to {} hosts{}\n",
                    hosts.len(),
                    if s["security"] == false {
                        " (as an available update)"
                    } else {
                        ""
                    }
                );
                for h in &hosts {
                    for f in h["findings"].as_array().into_iter().flatten() {
                        out += &format!(
                            "  {} ({}): {}\n",
                            text(&h["hostname"]),
                            text(&h["host"]),
                            text(&f["reason"])
                        );
                    }
                }
                out
            })
        }
    }
}

/// Whether an advisory gives findings or available updates.
fn kind_of(a: &Value) -> &'static str {
    if a["security"] == false {
        "update (not a finding)"
    } else {
        "security"
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Findings as a table, one a line.
pub(crate) fn findings_table(findings: &[Value]) -> String {
    // Classes are the server's (scan has none): shown when given, with
    // the steps that decided them.
    let classes = findings.iter().any(|f| f["class"].is_string());
    let rows = findings
        .iter()
        .map(|f| {
            let mut row = vec![
                text(&f["package"]),
                text(&f["installed"]),
                text(&f["fixed"]),
                text(&f["advisory"]),
                text(&f["severity"]),
                if f["kev"].as_bool() == Some(true) {
                    "KEV".into()
                } else {
                    String::new()
                },
            ];
            if classes {
                row.push(text(&f["class_rule"]));
            }
            row
        })
        .collect();
    let mut header = vec![
        "PACKAGE",
        "INSTALLED",
        "FIXED",
        "ADVISORY",
        "SEVERITY",
        "KEV",
    ];
    if classes {
        header.push("CLASS (HOW DECIDED)");
    }
    table(&header, rows)
}

/// A host's available updates (not findings), for people.
pub(crate) fn available_table(updates: &[Value]) -> String {
    let rows = updates
        .iter()
        .map(|u| {
            vec![
                text(&u["package"]),
                text(&u["installed"]),
                text(&u["candidate"]),
                text(&u["suite"]),
            ]
        })
        .collect();
    table(&["PACKAGE", "INSTALLED", "AVAILABLE", "SUITE"], rows)
}

/// A host's findings, for people: its security findings, then apart its
/// available updates, which are not findings.
pub(crate) fn findings_text(found: &Value) -> String {
    let findings = found["findings"].as_array().cloned().unwrap_or_default();
    let updates = found["available_updates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out = format!(
        "Security findings on {} ({}): {}\n",
        text(&found["hostname"]),
        text(&found["ecosystem"]),
        findings.len()
    );
    if !findings.is_empty() {
        out += &findings_table(&findings);
    }
    out += &format!(
        "Available updates, not findings (ordinary suites; not counted against compliance): {}\n",
        updates.len()
    );
    if !updates.is_empty() {
        out += &available_table(&updates);
    }
    out
}
