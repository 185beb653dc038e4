//! `patchwell rollouts`: create, release or refuse, watch, halt, resume,
//! lower a gate, roll back, redeploy and review rollouts over the API.

use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::{api_path, table, Client, Connection};

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum RolloutsCommand {
    /// Create a rollout; the versions it installs are frozen now.
    Create {
        /// Its name.
        name: String,
        /// Why (the chain of communication is told).
        #[arg(long)]
        reason: String,
        /// Which hosts, as a host query (default: every host).
        #[arg(long)]
        hosts: Option<String>,
        /// `security` (default), `all` or `approved` (only updates approved by
        /// title `name=version`): what the hosts' package managers offer.
        #[arg(long, default_value = "security")]
        updates: String,
        /// Only these packages (`name` or `name=version`); repeatable.
        #[arg(long = "package")]
        packages: Vec<String>,
        /// Rings as JSON (default: a 5% pilot, then the rest after two
        /// business days), e.g. `[{"name":"all","size":"rest"}]`.
        #[arg(long)]
        rings: Option<String>,
        /// Hosts in progress at once: `unlimited`, a number or a percentage.
        #[arg(long)]
        budget: Option<String>,
        /// never, if_required or always.
        #[arg(long, default_value = "never")]
        reboot: String,
        /// keep_old or take_new.
        #[arg(long, default_value = "keep_old")]
        conffiles: String,
        /// A script the agent runs before installing.
        #[arg(long)]
        pre_hook: Option<String>,
        /// A script the agent runs after installing.
        #[arg(long)]
        post_hook: Option<String>,
        /// A script that says whether the host is healthy afterwards.
        #[arg(long)]
        health_check: Option<String>,
        /// The policy whose maintenance windows and schedule apply.
        #[arg(long)]
        policy: Option<String>,
        /// When the first ring starts: `now`, `scheduled` (the policy's
        /// next scheduled time, the default under a policy with a schedule)
        /// or a time such as `2026-12-08T22:00:00Z`.
        #[arg(long)]
        start: Option<String>,
        /// Jobs not handed out within this many days are not.
        #[arg(long, default_value_t = 14)]
        expires_days: i64,
        /// The deadline the review measures, in days.
        #[arg(long)]
        deadline_days: Option<i64>,
        /// A group's own budget, `GROUP=BUDGET` (a number or a percentage
        /// of the group's hosts); repeatable.
        #[arg(long = "group-budget", value_name = "GROUP=BUDGET")]
        group_budgets: Vec<String>,
        /// How many times a logged-in user may put the reboot off.
        #[arg(long, default_value_t = 3)]
        reboot_deferrals: u32,
        /// Minutes each deferral puts the reboot off.
        #[arg(long, default_value_t = 60)]
        reboot_defer_minutes: u32,
        /// Hours after which no deferral reaches (default: the policy's
        /// maximum deferral, else 24).
        #[arg(long)]
        reboot_deadline_hours: Option<u32>,
    },
    /// Raise a baseline to the rollout's result (the review's action).
    RaiseBaseline {
        /// The rollout.
        name: String,
        /// The baseline.
        #[arg(long)]
        baseline: String,
    },
    /// Every rollout.
    List,
    /// One rollout: rings, and each host's progress and reason.
    Show {
        /// The rollout.
        name: String,
    },
    /// Halt: no new host starts.
    Halt {
        /// The rollout.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Resume a rollout a person halted.
    Resume {
        /// The rollout.
        name: String,
    },
    /// Halt and put back the versions the hosts had.
    Rollback {
        /// The rollout.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Lower a started ring's success gate, so the next ring may start
    /// with fewer of its hosts succeeded (0: whatever its result).
    Gate {
        /// The rollout.
        name: String,
        /// The ring whose gate to lower.
        #[arg(long)]
        ring: String,
        /// The share of its hosts that must succeed now, 0 to 100.
        #[arg(long)]
        percent: u32,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// A new generation: failed and rolled-back hosts start again.
    Redeploy {
        /// The rollout.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Release a rollout that awaits release: its scripts run as root and
    /// its versions install (approvers and administrators).
    Release {
        /// The rollout.
        name: String,
        /// Why it may run.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Refuse a rollout that awaits release: nothing of it ever runs
    /// (approvers and administrators).
    Refuse {
        /// The rollout.
        name: String,
        /// Why not.
        #[arg(long)]
        reason: String,
    },
    /// Approve a ring's start.
    Approve {
        /// The rollout.
        name: String,
        /// The ring.
        #[arg(long)]
        ring: String,
    },
    /// The post-implementation review.
    Review {
        /// The rollout.
        name: String,
        /// Add this note first.
        #[arg(long)]
        note: Option<String>,
    },
}

fn show(v: Value) -> String {
    let mut out = format!(
        "rollout {} ({}), generation {}: {}\n",
        v["name"].as_str().unwrap_or("?"),
        v["status"].as_str().unwrap_or("?"),
        v["generation"],
        v["reason"].as_str().unwrap_or("")
    );
    if let Some(halt) = v["halt"].as_str() {
        out.push_str(&format!("halted: {halt}\n"));
    }
    out.push_str(&release(&v["release"]));
    for p in v["packages"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  installs {} {}\n",
            p["name"].as_str().unwrap_or("?"),
            p["version"].as_str().unwrap_or("?")
        ));
    }
    let rings = v["rings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                r["name"].as_str().unwrap_or("?").to_owned(),
                r["hosts"].to_string(),
                r["succeeded"].to_string(),
                r["failed"].to_string(),
                r["in_progress"].to_string(),
                r["reason"].as_str().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "RING",
            "HOSTS",
            "SUCCEEDED",
            "FAILED",
            "IN PROGRESS",
            "STATE",
        ],
        rings,
    ));
    let hosts = v["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            vec![
                h["hostname"].as_str().unwrap_or("?").to_owned(),
                h["ring"].as_str().unwrap_or("?").to_owned(),
                h["step"].as_str().unwrap_or("-").to_owned(),
                h["action"].as_str().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    out.push_str(&table(&["HOST", "RING", "STEP", "WHAT AND WHY"], hosts));
    out
}

/// What of a rollout needs (or needed) an approver's release: the decision,
/// the full text of each script and the versions no approval covers.
fn release(r: &Value) -> String {
    let text = |k: &str| r[k].as_str().unwrap_or("?").to_owned();
    let mut out = match r["state"].as_str() {
        None => return String::new(),
        Some("awaiting_release") => format!(
            "awaits release by an approver or administrator: {}\n",
            text("why")
        ),
        Some(state) => format!(
            "{state} by {} at {}{}\n",
            text("by"),
            text("at"),
            r["reason"]
                .as_str()
                .map(|why| format!(": {why}"))
                .unwrap_or_default()
        ),
    };
    for s in r["scripts"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  script {} (runs as root, sha256 {}):\n",
            s["hook"].as_str().unwrap_or("?"),
            s["sha256"].as_str().unwrap_or("?")
        ));
        for line in s["text"].as_str().unwrap_or_default().lines() {
            out.push_str(&format!("    | {line}\n"));
        }
    }
    for v in r["uncovered"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  no approval covers {}\n",
            v.as_str().unwrap_or("?")
        ));
    }
    out
}

pub(crate) async fn rollouts(
    connection: Connection,
    command: RolloutsCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    let action = |name: &str, what: &str| api_path(&["rollouts", name, what]);
    let value = match command {
        RolloutsCommand::Create {
            name,
            reason,
            hosts,
            updates,
            packages,
            rings,
            budget,
            reboot,
            conffiles,
            pre_hook,
            post_hook,
            health_check,
            policy,
            start,
            expires_days,
            deadline_days,
            group_budgets,
            reboot_deferrals,
            reboot_defer_minutes,
            reboot_deadline_hours,
        } => {
            let mut budgets = serde_json::Map::new();
            for g in &group_budgets {
                let (group, budget) = g.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("--group-budget {g:?}: write GROUP=BUDGET (finance=2, lab=10%)")
                })?;
                budgets.insert(group.trim().to_owned(), Value::from(budget.trim()));
            }
            let rings: Option<Value> = rings
                .map(|r| serde_json::from_str(&r))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--rings is not JSON: {e}"))?;
            let mut body = json!({
                "name": name, "reason": reason, "updates": updates, "packages": packages,
                "reboot": reboot, "conffiles": conffiles, "expires_days": expires_days,
                "group_budgets": budgets,
                "reboot_deferral": {
                    "times": reboot_deferrals,
                    "minutes": reboot_defer_minutes,
                    "deadline_hours": reboot_deadline_hours,
                },
            });
            for (key, value) in [
                ("hosts", hosts.map(Value::from)),
                ("rings", rings),
                ("budget", budget.map(Value::from)),
                ("pre_hook", pre_hook.map(Value::from)),
                ("post_hook", post_hook.map(Value::from)),
                ("health_check", health_check.map(Value::from)),
                ("policy", policy.map(Value::from)),
                ("start", start.map(Value::from)),
                ("deadline_days", deadline_days.map(Value::from)),
            ] {
                if let Some(v) = value {
                    body[key] = v;
                }
            }
            client
                .call(Method::POST, "/api/v1/rollouts", Some(body))
                .await?
        }
        RolloutsCommand::List => {
            let list = client.call(Method::GET, "/api/v1/rollouts", None).await?;
            return client.print(list, |rows: Vec<Value>| {
                let rows = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r["name"].as_str().unwrap_or("?").to_owned(),
                            r["status"].as_str().unwrap_or("?").to_owned(),
                            r["generation"].to_string(),
                            r["created_by"].as_str().unwrap_or("?").to_owned(),
                            r["reason"].as_str().unwrap_or("").to_owned(),
                        ]
                    })
                    .collect();
                table(&["ROLLOUT", "STATUS", "GENERATION", "BY", "REASON"], rows)
            });
        }
        RolloutsCommand::Show { name } => {
            client
                .call(Method::GET, &api_path(&["rollouts", &name]), None)
                .await?
        }
        RolloutsCommand::Halt { name, reason } => {
            client
                .call(
                    Method::POST,
                    &action(&name, "halt"),
                    Some(json!({"reason": reason})),
                )
                .await?
        }
        RolloutsCommand::Resume { name } => {
            client
                .call(Method::POST, &action(&name, "resume"), Some(json!({})))
                .await?
        }
        RolloutsCommand::Rollback { name, reason } => {
            client
                .call(
                    Method::POST,
                    &action(&name, "rollback"),
                    Some(json!({"reason": reason})),
                )
                .await?
        }
        RolloutsCommand::Gate {
            name,
            ring,
            percent,
            reason,
        } => {
            client
                .call(
                    Method::POST,
                    &action(&name, "gate"),
                    Some(json!({"ring": ring, "gate_success_percent": percent, "reason": reason})),
                )
                .await?
        }
        RolloutsCommand::Redeploy { name, reason } => {
            client
                .call(
                    Method::POST,
                    &action(&name, "redeploy"),
                    Some(json!({"reason": reason})),
                )
                .await?
        }
        RolloutsCommand::RaiseBaseline { name, baseline } => {
            let raised = client
                .call(
                    Method::POST,
                    &action(&name, "raise-baseline"),
                    Some(json!({"baseline": baseline})),
                )
                .await?;
            return client.print(raised, |r: Value| {
                let changes: Vec<&str> = r["changes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if changes.is_empty() {
                    format!("baseline {baseline} already at the rollout's result\n")
                } else {
                    format!("baseline {baseline} raised: {}\n", changes.join(", "))
                }
            });
        }
        RolloutsCommand::Release { name, reason } => {
            client
                .call(
                    Method::POST,
                    &action(&name, "release"),
                    Some(json!({"reason": reason})),
                )
                .await?
        }
        RolloutsCommand::Refuse { name, reason } => {
            client
                .call(
                    Method::POST,
                    &action(&name, "refuse"),
                    Some(json!({"reason": reason})),
                )
                .await?
        }
        RolloutsCommand::Approve { name, ring } => {
            client
                .call(
                    Method::POST,
                    &action(&name, "approve"),
                    Some(json!({"ring": ring})),
                )
                .await?
        }
        RolloutsCommand::Review { name, note } => {
            let review = match note {
                Some(note) => {
                    client
                        .call(
                            Method::POST,
                            &action(&name, "notes"),
                            Some(json!({"note": note})),
                        )
                        .await?
                }
                None => {
                    client
                        .call(Method::GET, &action(&name, "review"), None)
                        .await?
                }
            };
            return client.print(review, |r: Value| {
                let secs = |v: &Value| v.as_i64().map_or("-".to_owned(), |s| format!("{s} s"));
                format!(
                    "rollout {}: {} targets, {} succeeded, {} failed, {} rolled back, {} in progress\n\
                     time to 50%: {}, to 95%: {}, deadline met: {}\n",
                    r["rollout"].as_str().unwrap_or("?"),
                    r["targets"],
                    r["succeeded"],
                    r["failed"],
                    r["rolled_back"],
                    r["in_progress"],
                    secs(&r["seconds_to_50_percent"]),
                    secs(&r["seconds_to_95_percent"]),
                    r["deadline_met"],
                )
            });
        }
    };
    client.print(value, show)
}

/// `patchwell deferrals`
#[derive(Debug, Subcommand)]
pub(crate) enum DeferralsCommand {
    /// Deferral requests.
    List {
        /// pending, granted or refused.
        #[arg(long)]
        state: Option<String>,
    },
    /// Ask, for a user, to defer one host's updates.
    Request {
        /// The host's id.
        host: String,
        /// Until when (RFC 3339: 2026-12-20T18:00:00Z).
        #[arg(long)]
        until: String,
        /// Why updating now would hurt the business.
        #[arg(long)]
        justification: String,
        /// The user asked for.
        #[arg(long)]
        user: Option<String>,
        /// Only this rollout (default: every rollout).
        #[arg(long)]
        rollout: Option<String>,
    },
    /// Grant a pending request.
    Grant {
        /// The request's id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        /// A shorter deferral than asked (RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
    /// Refuse a pending request.
    Refuse {
        /// The request's id.
        id: String,
        /// Why (the user is told).
        #[arg(long)]
        reason: String,
    },
}

fn deferral_rows(v: &Value) -> Vec<Vec<String>> {
    let text = |d: &Value, k: &str| d[k].as_str().unwrap_or("-").to_owned();
    let one = |d: &Value| {
        vec![
            text(d, "id"),
            text(d, "host"),
            text(d, "state"),
            text(d, "until"),
            text(d, "asked_by"),
            text(d, "justification"),
        ]
    };
    match v["deferrals"].as_array() {
        Some(list) => list.iter().map(one).collect(),
        None => vec![one(v)],
    }
}

pub(crate) async fn deferrals(
    connection: Connection,
    command: DeferralsCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    let value = match command {
        DeferralsCommand::List { state } => {
            let path = match state {
                Some(s) => format!("/api/v1/deferrals?state={s}"),
                None => "/api/v1/deferrals".to_owned(),
            };
            client.call(Method::GET, &path, None).await?
        }
        DeferralsCommand::Request {
            host,
            until,
            justification,
            user,
            rollout,
        } => {
            let body = json!({
                "host": host, "until": until, "justification": justification,
                "user": user, "rollout": rollout,
            });
            client
                .call(Method::POST, "/api/v1/deferrals", Some(body))
                .await?
        }
        DeferralsCommand::Grant { id, reason, until } => {
            client
                .call(
                    Method::POST,
                    &api_path(&["deferrals", &id, "grant"]),
                    Some(json!({"reason": reason, "until": until})),
                )
                .await?
        }
        DeferralsCommand::Refuse { id, reason } => {
            client
                .call(
                    Method::POST,
                    &api_path(&["deferrals", &id, "refuse"]),
                    Some(json!({"reason": reason})),
                )
                .await?
        }
    };
    client.print(value, |v: Value| {
        table(
            &["ID", "HOST", "STATE", "UNTIL", "ASKED BY", "JUSTIFICATION"],
            deferral_rows(&v),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_says_a_rollout_awaits_release_with_its_scripts_and_versions() {
        let v = json!({
            "name": "r1", "status": "awaiting_release", "generation": 1, "reason": "monthly",
            "release": {
                "state": "awaiting_release",
                "why": "it runs scripts as root (pre_hook)",
                "scripts": [{"hook": "pre_hook", "text": "systemctl stop app\nrm -rf /var/cache/app", "sha256": "ab12"}],
                "uncovered": ["libssl3=3.0.16-1~deb12u1"],
                "by": null, "at": null, "reason": null,
            },
        });
        let shown = show(v);
        assert!(
            shown.contains(
                "awaits release by an approver or administrator: it runs scripts as root (pre_hook)\n"
            ),
            "{shown}"
        );
        assert!(
            shown.contains(
                "  script pre_hook (runs as root, sha256 ab12):\n    | systemctl stop app\n    | rm -rf /var/cache/app\n"
            ),
            "{shown}"
        );
        assert!(
            shown.contains("  no approval covers libssl3=3.0.16-1~deb12u1\n"),
            "{shown}"
        );
        let released = show(json!({
            "name": "r1", "status": "running", "generation": 1, "reason": "monthly",
            "release": {"state": "released", "by": "alice", "at": "2026-12-01T10:00:00Z",
                        "reason": "read it", "scripts": [], "uncovered": []},
        }));
        assert!(
            released.contains("released by alice at 2026-12-01T10:00:00Z: read it\n"),
            "{released}"
        );
        assert!(!show(json!({"name": "r2", "release": null})).contains("release"));
    }
}
