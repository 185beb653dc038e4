//! The planning objects' JSON documents: what the API reads, checks and
//! stores, and their conversion into `patchwell-core`'s types. Each kind is
//! one [`Doc`]: the generic handlers in `plan_api` store, list and delete
//! any of them, each change audited.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use patchwell_core::approval::{self, Delay, Verdict};
use patchwell_core::baseline::{Baseline, Requirement};
use patchwell_core::classify::{self, Class};
use patchwell_core::exemption::{Exemption, Scope, Target};
use patchwell_core::policy::{ApprovalMode, Policy, Reboot, Selection, Window};
use patchwell_core::query::Query;
use patchwell_core::schedule::Rule;
use patchwell_core::sla;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One kind of planning object.
pub(crate) trait Doc: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The store's kind and the URL segment (`policies`).
    const KIND: &'static str;
    /// One of them, in messages (`policy`).
    const WHAT: &'static str;
    /// Checks the document and completes what the server fills in (who
    /// approved, when); `caller` is the user storing it.
    fn check(&mut self, name: &str, caller: &str, now: Timestamp) -> Result<(), String>;
    /// The reason recorded in the audit log.
    fn reason(&self) -> Option<String> {
        None
    }
    /// The audit log's action.
    fn action(&self) -> String {
        format!("put-{}", Self::slug())
    }
    /// [`Doc::WHAT`] as one word for audit actions (`go-no-go-decision`).
    fn slug() -> String {
        Self::WHAT.replace([' ', '/'], "-")
    }
    /// A host the document names, which must exist.
    fn host(&self) -> Option<&str> {
        None
    }
    /// The hosts the document names (by id or host name) and the host
    /// query it selects more with, which the server resolves into hosts
    /// before checking it (`None`: it names no hosts this way).
    fn hosts_to_resolve(&self) -> Option<(Vec<String>, Option<String>)> {
        None
    }
    /// The hosts resolved from [`Doc::hosts_to_resolve`]: id and host name.
    fn set_resolved_hosts(&mut self, _hosts: Vec<(String, String)>) {}
    /// Facts derived at `now` to show beside the stored document.
    fn derived(&self, _now: Timestamp) -> Value {
        Value::Null
    }
}

fn class_list(names: &[String]) -> Result<Vec<Class>, String> {
    names
        .iter()
        .map(|n| {
            Class::parse(n).ok_or_else(|| format!("class {n:?}: use critical, high, medium or low"))
        })
        .collect()
}

fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|e| format!("time zone {name:?}: {e}"))
}

// ---------------------------------------------------------------- policies

/// A maintenance window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowDoc {
    /// When it opens, as a schedule rule (`every sat at 01:00`).
    pub(crate) opens: String,
    /// How many hours it stays open.
    pub(crate) hours: u32,
}

/// `PUT /api/v1/policies/{name}`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyDoc {
    /// The hosts: a host query (`tag = server and os = debian`).
    pub(crate) hosts: String,
    /// Classes deployed (empty: all).
    #[serde(default)]
    pub(crate) classes: Vec<String>,
    /// Packages deployed (empty: all).
    #[serde(default)]
    pub(crate) packages: Vec<String>,
    /// Security updates only.
    #[serde(default)]
    pub(crate) security_only: bool,
    /// `manual`, or the names of automatic approval rules.
    #[serde(default)]
    pub(crate) approval_rules: Vec<String>,
    /// When deployments start (`second tuesday of every month at 22:00`).
    #[serde(default)]
    pub(crate) schedule: Option<String>,
    /// Whether the server starts a rollout of the approved updates for the
    /// policy's hosts at each scheduled time (`deployments.rs`).
    #[serde(default)]
    pub(crate) auto_deploy: bool,
    /// Maintenance windows (none: any time).
    #[serde(default)]
    pub(crate) windows: Vec<WindowDoc>,
    /// The time zone of the schedule and windows (default UTC).
    #[serde(default = "utc")]
    pub(crate) timezone: String,
    /// `never`, `if-required` (default) or `always`.
    #[serde(default = "if_required")]
    pub(crate) reboot: String,
    /// How long a user may defer a reboot, in hours (default 24).
    #[serde(default = "day")]
    pub(crate) reboot_max_deferral_hours: u32,
}

fn utc() -> String {
    "UTC".into()
}

fn if_required() -> String {
    "if-required".into()
}

fn day() -> u32 {
    24
}

impl PolicyDoc {
    /// The policy, parsed.
    pub(crate) fn to_policy(&self, name: &str) -> Result<Policy, String> {
        let hosts = Query::parse(&self.hosts).map_err(|e| e.to_string())?;
        let schedule = match &self.schedule {
            Some(text) => Some((text.clone(), Rule::parse(text).map_err(|e| e.to_string())?)),
            None => None,
        };
        let windows = self
            .windows
            .iter()
            .map(|w| {
                if w.hours == 0 || w.hours > 24 * 7 {
                    return Err(format!(
                        "window {:?}: hours must be 1 to 168, not {}",
                        w.opens, w.hours
                    ));
                }
                Ok(Window {
                    opens: Rule::parse(&w.opens).map_err(|e| e.to_string())?,
                    length: SignedDuration::from_hours(i64::from(w.hours)),
                })
            })
            .collect::<Result<_, _>>()?;
        let reboot = match self.reboot.as_str() {
            "never" => Reboot::Never,
            "always" => Reboot::Always,
            "if-required" => Reboot::IfRequired {
                max_deferral: SignedDuration::from_hours(i64::from(self.reboot_max_deferral_hours)),
            },
            other => {
                return Err(format!(
                    "reboot {other:?}: use never, if-required or always"
                ))
            }
        };
        Ok(Policy {
            name: name.to_owned(),
            hosts_text: self.hosts.clone(),
            hosts,
            updates: Selection {
                classes: class_list(&self.classes)?,
                packages: self.packages.clone(),
                security_only: self.security_only,
            },
            approval: if self.approval_rules.is_empty() {
                ApprovalMode::Manual
            } else {
                ApprovalMode::Rules(self.approval_rules.clone())
            },
            schedule,
            windows,
            tz: time_zone(&self.timezone)?,
            reboot,
        })
    }
}

impl Doc for PolicyDoc {
    const KIND: &'static str = "policies";
    const WHAT: &'static str = "policy";

    fn check(&mut self, name: &str, _caller: &str, _now: Timestamp) -> Result<(), String> {
        if self.auto_deploy && self.schedule.is_none() {
            return Err(format!(
                "policy {name}: auto_deploy starts a rollout at each scheduled time: give a schedule"
            ));
        }
        self.to_policy(name).map(|_| ())
    }

    fn derived(&self, now: Timestamp) -> Value {
        let Ok(policy) = self.to_policy("") else {
            return Value::Null;
        };
        let window = match policy.window_at(now) {
            patchwell_core::policy::WindowState::Open { until } => {
                serde_json::json!({"open": true, "until": until})
            }
            patchwell_core::policy::WindowState::Closed { opens } => {
                serde_json::json!({"open": false, "opens": opens})
            }
        };
        serde_json::json!({"next_run": policy.next_run(now), "window": window})
    }
}

// --------------------------------------------------------------- baselines

/// A package and version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackageVersion {
    /// Binary package name.
    pub(crate) package: String,
    /// Version.
    pub(crate) version: String,
}

/// `PUT /api/v1/baselines/{name}`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BaselineDoc {
    /// The group its hosts are in (static group or dynamic group).
    pub(crate) group: String,
    /// How versions compare: `deb` (default), `rpm` or `apk`.
    #[serde(default = "deb")]
    pub(crate) versions: String,
    /// Minimum versions.
    #[serde(default)]
    pub(crate) minimum: Vec<PackageVersion>,
    /// Advisories that must be fixed.
    #[serde(default)]
    pub(crate) fixed: Vec<String>,
    /// The highest approved versions.
    #[serde(default)]
    pub(crate) highest_approved: Vec<PackageVersion>,
}

fn deb() -> String {
    "deb".into()
}

impl BaselineDoc {
    /// How versions compare.
    pub(crate) fn scheme(&self) -> Result<versions::Ecosystem, String> {
        match self.versions.as_str() {
            "deb" | "dpkg" => Ok(versions::Ecosystem::Deb),
            "rpm" => Ok(versions::Ecosystem::Rpm),
            "apk" => Ok(versions::Ecosystem::Apk),
            other => Err(format!("versions {other:?}: use deb, rpm or apk")),
        }
    }

    /// The baseline, parsed.
    pub(crate) fn to_baseline(&self, name: &str) -> Baseline {
        Baseline {
            name: name.to_owned(),
            group: self.group.clone(),
            requirements: self
                .minimum
                .iter()
                .map(|m| Requirement::AtLeast {
                    package: m.package.clone(),
                    version: m.version.clone(),
                })
                .chain(self.fixed.iter().map(|a| Requirement::Fixed {
                    advisory: a.clone(),
                }))
                .collect(),
            ceilings: self
                .highest_approved
                .iter()
                .map(|c| (c.package.clone(), c.version.clone()))
                .collect(),
        }
    }

    /// The document of a (raised) baseline.
    pub(crate) fn with_versions_of(&self, b: &Baseline) -> BaselineDoc {
        let mut doc = self.clone();
        doc.minimum = b
            .requirements
            .iter()
            .filter_map(|r| match r {
                Requirement::AtLeast { package, version } => Some(PackageVersion {
                    package: package.clone(),
                    version: version.clone(),
                }),
                Requirement::Fixed { .. } => None,
            })
            .collect();
        doc.highest_approved = b
            .ceilings
            .iter()
            .map(|(package, version)| PackageVersion {
                package: package.clone(),
                version: version.clone(),
            })
            .collect();
        doc
    }
}

impl Doc for BaselineDoc {
    const KIND: &'static str = "baselines";
    const WHAT: &'static str = "baseline";

    fn check(&mut self, name: &str, _caller: &str, _now: Timestamp) -> Result<(), String> {
        if self.group.trim().is_empty() {
            return Err(format!("baseline {name}: a group is required"));
        }
        self.to_baseline(name).check(self.scheme()?)
    }
}

// -------------------------------------------------------------- exemptions

/// `PUT /api/v1/exemptions/{name}`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExemptionDoc {
    /// One host, by id or host name...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    /// ...or several, by id or host name, and those `query` selects. The
    /// server resolves them once, when the exemption is stored, and keeps
    /// the ids here: an exemption excuses the hosts its approver saw, and a
    /// host that matches the query later is not excused by it (a group is
    /// what follows its members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) hosts: Vec<String>,
    /// The host query the hosts were chosen with, kept as a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
    /// The hosts' names when it was stored (set by the server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) host_names: Vec<String>,
    /// ...or a group.
    #[serde(default)]
    pub(crate) group: Option<String>,
    /// One advisory...
    #[serde(default)]
    pub(crate) advisory: Option<String>,
    /// ...or every update of a package.
    #[serde(default)]
    pub(crate) package: Option<String>,
    /// Why.
    pub(crate) reason: String,
    /// The compensating control (an isolated VLAN).
    #[serde(default)]
    pub(crate) control: Option<String>,
    /// From when (default: now).
    #[serde(default)]
    pub(crate) from: Option<Timestamp>,
    /// When it lapses (required).
    pub(crate) expires: Timestamp,
    /// Who approved it: the user who stores it (set by the server).
    #[serde(default)]
    pub(crate) approver: Option<String>,
}

impl ExemptionDoc {
    /// The exemption, parsed.
    pub(crate) fn to_exemption(&self, name: &str) -> Result<Exemption, String> {
        let mut ids: Vec<String> = self.host.iter().chain(&self.hosts).cloned().collect();
        ids.dedup();
        let scope = match (ids.len(), &self.group) {
            (0, Some(g)) => Scope::Group(g.clone()),
            (1, None) => Scope::Host(ids.remove(0)),
            (n, None) if n > 1 => Scope::Hosts(ids),
            _ => {
                return Err(format!(
                    "exemption {name}: give hosts (by name or id, or a query) or a group, not both"
                ))
            }
        };
        let target = match (&self.advisory, &self.package) {
            (Some(a), None) => Target::Advisory(a.clone()),
            (None, Some(p)) => Target::Package(p.clone()),
            _ => {
                return Err(format!(
                    "exemption {name}: give an advisory or a package, not both"
                ))
            }
        };
        let e = Exemption {
            name: name.to_owned(),
            scope,
            target,
            reason: self.reason.clone(),
            control: self.control.clone(),
            approver: self.approver.clone().unwrap_or_default(),
            from: self.from.unwrap_or(Timestamp::MIN),
            expires: self.expires,
        };
        e.check()?;
        Ok(e)
    }
}

impl Doc for ExemptionDoc {
    const KIND: &'static str = "exemptions";
    const WHAT: &'static str = "exemption";

    fn check(&mut self, name: &str, caller: &str, now: Timestamp) -> Result<(), String> {
        self.approver = Some(caller.to_owned());
        self.from.get_or_insert(now);
        if self.expires <= now {
            return Err(format!(
                "exemption {name}: it expires at {}, which has passed",
                self.expires
            ));
        }
        self.to_exemption(name).map(|_| ())
    }

    fn reason(&self) -> Option<String> {
        Some(match &self.control {
            Some(c) => format!("{} (compensating control: {c})", self.reason),
            None => self.reason.clone(),
        })
    }

    fn action(&self) -> String {
        "exempt".into()
    }

    fn hosts_to_resolve(&self) -> Option<(Vec<String>, Option<String>)> {
        let named: Vec<String> = self.host.iter().chain(&self.hosts).cloned().collect();
        let query = self
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        (!named.is_empty() || query.is_some()).then_some((named, query))
    }

    fn set_resolved_hosts(&mut self, hosts: Vec<(String, String)>) {
        self.host = None;
        self.query = self
            .query
            .take()
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        (self.hosts, self.host_names) = hosts.into_iter().unzip();
    }

    fn derived(&self, now: Timestamp) -> Value {
        match self.to_exemption("") {
            Ok(e) => serde_json::json!({"standing": e.standing(now).as_str()}),
            Err(_) => Value::Null,
        }
    }
}

// --------------------------------------------------------------- approvals

/// `PUT /api/v1/approvals/{title}`: a decision on updates, by title: one
/// update (`package=version`), a source package's (`source:name`,
/// `source:name=version`), or every update that fixes an advisory (its id
/// or alias). `crate::approvals` says which decision reaches an update.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalDoc {
    /// `approve` or `decline` (`approved`, `declined` are read too).
    pub(crate) verdict: String,
    /// The rings it is approved for (empty: all).
    #[serde(default)]
    pub(crate) rings: Vec<String>,
    /// The groups it is approved for (empty: all).
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// The comment.
    #[serde(default)]
    pub(crate) comment: Option<String>,
    /// Who decided (set by the server).
    #[serde(default)]
    pub(crate) by: Option<String>,
    /// When (set by the server).
    #[serde(default)]
    pub(crate) at: Option<Timestamp>,
}

impl ApprovalDoc {
    /// The approval, parsed.
    pub(crate) fn to_approval(&self, title: &str) -> Result<approval::Approval, String> {
        let verdict = match crate::approvals::stored_verdict(&self.verdict).unwrap_or("") {
            "approve" => Verdict::Approve {
                rings: self.rings.clone(),
                groups: self.groups.clone(),
            },
            "decline" if self.rings.is_empty() && self.groups.is_empty() => Verdict::Decline,
            "decline" => {
                return Err(format!(
                    "{title}: a decline applies everywhere: give no rings or groups"
                ))
            }
            _ => {
                return Err(format!(
                    "verdict {:?}: use approve or decline",
                    self.verdict
                ))
            }
        };
        Ok(approval::Approval {
            title: title.to_owned(),
            verdict,
            by: self.by.clone().unwrap_or_default(),
            comment: self.comment.clone(),
        })
    }
}

impl Doc for ApprovalDoc {
    const KIND: &'static str = "approvals";
    const WHAT: &'static str = "approval";

    fn check(&mut self, name: &str, caller: &str, now: Timestamp) -> Result<(), String> {
        let title = approval::Title::parse(name)?;
        if title.canonical() != name {
            return Err(format!(
                "title {name:?}: write it as {:?}",
                title.canonical()
            ));
        }
        self.by = Some(caller.to_owned());
        self.at = Some(now);
        self.to_approval(name)?;
        if let Some(v) = crate::approvals::stored_verdict(&self.verdict) {
            self.verdict = v.to_owned();
        }
        Ok(())
    }

    fn reason(&self) -> Option<String> {
        self.comment.clone()
    }

    fn action(&self) -> String {
        self.verdict.clone()
    }
}

/// `PUT /api/v1/go-no-go/{name}`: the go / no-go decision on a change (a
/// title or a rollout), with the comment that justifies it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GoNoGoDoc {
    /// Go (true) or no-go (false).
    pub(crate) go: bool,
    /// Why.
    pub(crate) comment: String,
    /// Who decided (set by the server).
    #[serde(default)]
    pub(crate) by: Option<String>,
    /// When (set by the server).
    #[serde(default)]
    pub(crate) at: Option<Timestamp>,
}

impl Doc for GoNoGoDoc {
    const KIND: &'static str = "go-no-go";
    const WHAT: &'static str = "go/no-go decision";

    fn check(&mut self, name: &str, caller: &str, now: Timestamp) -> Result<(), String> {
        if self.comment.trim().is_empty() {
            return Err(format!("{name}: a go/no-go decision needs a comment"));
        }
        self.by = Some(caller.to_owned());
        self.at = Some(now);
        Ok(())
    }

    fn reason(&self) -> Option<String> {
        Some(self.comment.clone())
    }

    fn action(&self) -> String {
        if self.go { "go" } else { "no-go" }.into()
    }
}

/// `PUT /api/v1/approval-rules/{name}`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalRuleDoc {
    /// Classes it approves (empty: all).
    #[serde(default)]
    pub(crate) classes: Vec<String>,
    /// Security updates only.
    #[serde(default)]
    pub(crate) security_only: bool,
    /// The ring it approves for (none: every ring).
    #[serde(default)]
    pub(crate) ring: Option<String>,
    /// Days after release.
    #[serde(default)]
    pub(crate) days_after_release: Option<u32>,
    /// Or: after this ring started deploying...
    #[serde(default)]
    pub(crate) after_ring: Option<String>,
    /// ...and this many business days.
    #[serde(default)]
    pub(crate) business_days: Option<u32>,
}

impl ApprovalRuleDoc {
    /// The rule, parsed.
    pub(crate) fn to_rule(&self, name: &str) -> Result<approval::Rule, String> {
        let delay = match (&self.after_ring, self.days_after_release) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "approval rule {name}: give days_after_release or after_ring, not both"
                ))
            }
            (Some(ring), None) => Delay::AfterRing {
                ring: ring.clone(),
                business_days: i64::from(self.business_days.unwrap_or(0)),
            },
            (None, Some(days)) => {
                Delay::AfterRelease(SignedDuration::from_hours(24 * i64::from(days)))
            }
            (None, None) if self.business_days.is_some() => {
                return Err(format!(
                    "approval rule {name}: business_days counts from after_ring, which is missing"
                ))
            }
            (None, None) => Delay::Immediately,
        };
        Ok(approval::Rule {
            name: name.to_owned(),
            classes: class_list(&self.classes)?,
            security_only: self.security_only,
            ring: self.ring.clone(),
            delay,
        })
    }
}

impl Doc for ApprovalRuleDoc {
    const KIND: &'static str = "approval-rules";
    const WHAT: &'static str = "approval rule";

    fn check(&mut self, name: &str, _caller: &str, _now: Timestamp) -> Result<(), String> {
        self.to_rule(name).map(|_| ())
    }
}

// ---------------------------------------------------- contacts and owners

/// `PUT /api/v1/contacts/{name}`: someone in the chain of communication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactDoc {
    /// `patch-team`, `management` or `end-users`.
    pub(crate) audience: String,
    /// Email address.
    #[serde(default)]
    pub(crate) email: Option<String>,
    /// Webhook URL.
    #[serde(default)]
    pub(crate) webhook: Option<String>,
}

impl Doc for ContactDoc {
    const KIND: &'static str = "contacts";
    const WHAT: &'static str = "contact";

    fn check(&mut self, name: &str, _caller: &str, _now: Timestamp) -> Result<(), String> {
        if !crate::notify::AUDIENCES.contains(&self.audience.as_str()) {
            return Err(format!(
                "contact {name}: audience {:?}: use patch-team, management or end-users",
                self.audience
            ));
        }
        if self.email.is_none() && self.webhook.is_none() {
            return Err(format!("contact {name}: give an email or a webhook"));
        }
        if let Some(email) = &self.email {
            let fine = email
                .split_once('@')
                .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'))
                && !email.contains(char::is_whitespace);
            if !fine {
                return Err(format!("contact {name}: {email:?} is not an email address"));
            }
        }
        if let Some(hook) = &self.webhook {
            let url = reqwest::Url::parse(hook)
                .map_err(|e| format!("contact {name}: webhook {hook:?}: {e}"))?;
            if !["https", "http"].contains(&url.scheme()) {
                return Err(format!(
                    "contact {name}: webhook {hook:?} must be http or https"
                ));
            }
        }
        Ok(())
    }
}

/// `PUT /api/v1/owners/{name}`: a person who owns hosts, and their risk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OwnerDoc {
    /// `normal` or `high` (executives; people who download and share a lot).
    pub(crate) risk: String,
    /// Why.
    #[serde(default)]
    pub(crate) note: Option<String>,
}

impl Doc for OwnerDoc {
    const KIND: &'static str = "owners";
    const WHAT: &'static str = "owner";

    fn check(&mut self, name: &str, _caller: &str, _now: Timestamp) -> Result<(), String> {
        match self.risk.as_str() {
            "normal" | "high" => Ok(()),
            other => Err(format!("owner {name}: risk {other:?}: use normal or high")),
        }
    }

    fn reason(&self) -> Option<String> {
        self.note.clone()
    }
}

// ---------------------------------------------------------------- settings

/// `PUT /api/v1/settings/classification`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClassificationDoc {
    /// The default class of a security update with no severity or CVSS
    /// (default medium).
    #[serde(default)]
    pub(crate) unrated: Option<String>,
    /// The least class of a known exploited vulnerability (default high;
    /// `none` for no rule).
    #[serde(default)]
    pub(crate) kev_minimum: Option<String>,
    /// The least class of one used in ransomware (default critical).
    #[serde(default)]
    pub(crate) ransomware_minimum: Option<String>,
    /// EPSS at or above this raises one class (default 0.5).
    #[serde(default)]
    pub(crate) epss_raise_at: Option<f64>,
    /// A critical host raises one class (default true).
    #[serde(default)]
    pub(crate) raise_for_critical_hosts: Option<bool>,
    /// An internet-facing host raises one class (default true).
    #[serde(default)]
    pub(crate) raise_for_internet_facing: Option<bool>,
    /// A host whose owner is marked high risk raises one class (default
    /// true).
    #[serde(default)]
    pub(crate) raise_for_high_risk_owners: Option<bool>,
}

impl ClassificationDoc {
    /// The rules, defaults filled in.
    pub(crate) fn to_rules(&self) -> Result<classify::Rules, String> {
        let d = classify::Rules::default();
        let minimum = |v: &Option<String>, default: Option<Class>| match v.as_deref() {
            None => Ok(default),
            Some("none") => Ok(None),
            Some(n) => Class::parse(n)
                .map(Some)
                .ok_or_else(|| format!("class {n:?}: use critical, high, medium, low or none")),
        };
        if let Some(e) = self.epss_raise_at {
            if !(0.0..=1.0).contains(&e) {
                return Err(format!("epss_raise_at {e}: a probability from 0 to 1"));
            }
        }
        Ok(classify::Rules {
            unrated: minimum(&self.unrated, Some(d.unrated))?.unwrap_or(d.unrated),
            kev_minimum: minimum(&self.kev_minimum, d.kev_minimum)?,
            ransomware_minimum: minimum(&self.ransomware_minimum, d.ransomware_minimum)?,
            epss_raise_at: self.epss_raise_at.or(d.epss_raise_at),
            raise_for_critical_hosts: self
                .raise_for_critical_hosts
                .unwrap_or(d.raise_for_critical_hosts),
            raise_for_internet_facing: self
                .raise_for_internet_facing
                .unwrap_or(d.raise_for_internet_facing),
            raise_for_high_risk_owners: self
                .raise_for_high_risk_owners
                .unwrap_or(d.raise_for_high_risk_owners),
        })
    }
}

/// `PUT /api/v1/settings/sla`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct SlaDoc {
    /// Hours for Critical (default 24).
    #[serde(default)]
    pub(crate) critical_hours: Option<u32>,
    /// Days for High (default 7).
    #[serde(default)]
    pub(crate) high_days: Option<u32>,
    /// Days for Medium (default 30).
    #[serde(default)]
    pub(crate) medium_days: Option<u32>,
    /// Days for Low (default 90).
    #[serde(default)]
    pub(crate) low_days: Option<u32>,
    /// `first-detection` (default) or `publication`.
    #[serde(default)]
    pub(crate) start: Option<String>,
    /// "Due soon" under this share of the period left (default 25).
    #[serde(default)]
    pub(crate) due_soon_percent: Option<u8>,
}

impl SlaDoc {
    /// The SLA policy, defaults filled in.
    pub(crate) fn to_policy(&self) -> Result<sla::Policy, String> {
        let d = sla::Policy::default();
        let hours = |h: Option<u32>, i: usize, per: i64| match h {
            Some(0) => Err("a deadline of zero: give at least 1".to_owned()),
            Some(n) => Ok(SignedDuration::from_hours(i64::from(n) * per)),
            None => Ok(d.periods[i]),
        };
        let start = match self.start.as_deref() {
            None | Some("first-detection") => sla::Start::FirstDetection,
            Some("publication") => sla::Start::Publication,
            Some(other) => {
                return Err(format!(
                    "start {other:?}: use first-detection or publication"
                ))
            }
        };
        let due_soon_percent = self.due_soon_percent.unwrap_or(d.due_soon_percent);
        if due_soon_percent > 100 {
            return Err(format!("due_soon_percent {due_soon_percent}: at most 100"));
        }
        Ok(sla::Policy {
            periods: [
                hours(self.critical_hours, 0, 1)?,
                hours(self.high_days, 1, 24)?,
                hours(self.medium_days, 2, 24)?,
                hours(self.low_days, 3, 24)?,
            ],
            start,
            due_soon_percent,
        })
    }
}

/// `PUT /api/v1/settings/calendar`: business days for waits.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalendarDoc {
    /// The time zone days are counted in (default UTC).
    #[serde(default)]
    pub(crate) timezone: Option<String>,
    /// Holidays.
    #[serde(default)]
    pub(crate) holidays: Vec<Date>,
}

impl CalendarDoc {
    /// The calendar.
    pub(crate) fn to_calendar(&self) -> Result<approval::Calendar, String> {
        Ok(approval::Calendar {
            tz: time_zone(self.timezone.as_deref().unwrap_or("UTC"))?,
            holidays: self.holidays.iter().copied().collect(),
        })
    }
}

/// The settings' names and a check of each.
pub(crate) fn check_setting(name: &str, body: &Value) -> Result<Value, String> {
    fn canonical<T: Serialize + DeserializeOwned>(
        body: &Value,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<Value, String> {
        let doc: T = serde_json::from_value(body.clone()).map_err(|e| e.to_string())?;
        check(&doc)?;
        serde_json::to_value(&doc).map_err(|e| e.to_string())
    }
    match name {
        "classification" => canonical(body, |d: &ClassificationDoc| d.to_rules().map(|_| ())),
        "sla" => canonical(body, |d: &SlaDoc| d.to_policy().map(|_| ())),
        "calendar" => canonical(body, |d: &CalendarDoc| d.to_calendar().map(|_| ())),
        other => Err(format!(
            "setting {other:?}: use classification, sla or calendar"
        )),
    }
}

// ------------------------------------------------------- report schedules

/// `PUT /api/v1/report-schedules/{name}`: a report mailed on a schedule
/// to the chain of communication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportScheduleDoc {
    /// Which report: `monthly-compliance` (the default, and the only one).
    #[serde(default = "monthly_compliance")]
    pub(crate) report: String,
    /// When it is mailed, as a schedule rule
    /// (`first monday of every month at 08:00`).
    pub(crate) when: String,
    /// The rule's time zone (default UTC).
    #[serde(default)]
    pub(crate) timezone: Option<String>,
    /// The month reported: `previous` (the month before the mailing, the
    /// default) or `current` (the month so far).
    #[serde(default = "previous_month")]
    pub(crate) month: String,
    /// Files attached: `pdf`, `csv` (default both).
    #[serde(default = "both_formats")]
    pub(crate) formats: Vec<String>,
    /// The audiences whose contacts are mailed (default `management`).
    #[serde(default = "management")]
    pub(crate) audiences: Vec<String>,
}

fn monthly_compliance() -> String {
    "monthly-compliance".into()
}

fn previous_month() -> String {
    "previous".into()
}

fn both_formats() -> Vec<String> {
    vec!["pdf".into(), "csv".into()]
}

fn management() -> Vec<String> {
    vec!["management".into()]
}

impl ReportScheduleDoc {
    /// The rule and its time zone.
    pub(crate) fn rule(&self) -> Result<(Rule, TimeZone), String> {
        let rule = Rule::parse(&self.when).map_err(|e| e.to_string())?;
        let tz = time_zone(self.timezone.as_deref().unwrap_or("UTC"))?;
        Ok((rule, tz))
    }

    /// When it is next mailed after `after`.
    pub(crate) fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let (rule, tz) = self.rule().ok()?;
        rule.next_after(&after.to_zoned(tz.clone()), &tz)
            .map(|z| z.timestamp())
    }

    /// The first day of the month a mailing at `at` reports.
    pub(crate) fn month_reported(&self, at: Timestamp) -> Date {
        let tz = self.rule().map(|(_, tz)| tz).unwrap_or(TimeZone::UTC);
        let first = at.to_zoned(tz).date().first_of_month();
        if self.month == "current" {
            first
        } else {
            first.yesterday().map_or(first, |d| d.first_of_month())
        }
    }
}

impl Doc for ReportScheduleDoc {
    const KIND: &'static str = "report-schedules";
    const WHAT: &'static str = "report schedule";

    fn check(&mut self, name: &str, _caller: &str, _now: Timestamp) -> Result<(), String> {
        let what = format!("report schedule {name}");
        if self.report != "monthly-compliance" {
            return Err(format!(
                "{what}: report {:?}: the report there is is monthly-compliance",
                self.report
            ));
        }
        self.rule().map_err(|e| format!("{what}: {e}"))?;
        if !["previous", "current"].contains(&self.month.as_str()) {
            return Err(format!(
                "{what}: month {:?}: use previous or current",
                self.month
            ));
        }
        if self.formats.is_empty() {
            return Err(format!("{what}: formats: name at least one of pdf, csv"));
        }
        for f in &self.formats {
            if !["pdf", "csv"].contains(&f.as_str()) {
                return Err(format!("{what}: format {f:?}: use pdf or csv"));
            }
        }
        self.formats.sort();
        self.formats.dedup();
        if self.audiences.is_empty() {
            return Err(format!("{what}: audiences: name at least one"));
        }
        for a in &self.audiences {
            if !crate::notify::AUDIENCES.contains(&a.as_str()) {
                return Err(format!(
                    "{what}: audience {a:?}: use patch-team, management or end-users"
                ));
            }
        }
        Ok(())
    }

    fn derived(&self, now: Timestamp) -> Value {
        let next = self.next_after(now);
        serde_json::json!({
            "next_mailing": next,
            "reports_month": next.map(|n| self.month_reported(n).strftime("%Y-%m").to_string()),
        })
    }
}

#[cfg(test)]
mod report_schedule_tests {
    use super::*;

    fn doc(json: Value) -> Result<ReportScheduleDoc, String> {
        let mut d: ReportScheduleDoc = serde_json::from_value(json).map_err(|e| e.to_string())?;
        d.check("monthly", "admin", Timestamp::UNIX_EPOCH)?;
        Ok(d)
    }

    #[test]
    fn a_schedule_says_when_it_mails_which_month() {
        let d = doc(serde_json::json!({"when": "first monday of every month at 08:00", "timezone": "Europe/Berlin"})).unwrap();
        assert_eq!(d.formats, ["csv", "pdf"]);
        assert_eq!(d.audiences, ["management"]);
        let after: Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let next = d.next_after(after).unwrap();
        // Monday 7 December 2026, 08:00 in Berlin (UTC+1).
        assert_eq!(next.to_string(), "2026-12-07T07:00:00Z");
        assert_eq!(d.month_reported(next).to_string(), "2026-11-01");
        let current =
            doc(serde_json::json!({"when": "every friday at 17:00", "month": "current"})).unwrap();
        assert_eq!(current.month_reported(next).to_string(), "2026-12-01");
    }

    #[test]
    fn a_bad_schedule_says_what_is_wrong() {
        let e = doc(serde_json::json!({"when": "whenever"})).unwrap_err();
        assert!(
            e.contains("report schedule monthly") && e.contains("whenever"),
            "{e}"
        );
        let e = doc(serde_json::json!({"when": "every day at 08:00", "formats": ["docx"]}))
            .unwrap_err();
        assert!(e.contains("format \"docx\""), "{e}");
        let e = doc(serde_json::json!({"when": "every day at 08:00", "audiences": ["board"]}))
            .unwrap_err();
        assert!(e.contains("audience \"board\""), "{e}");
        let e =
            doc(serde_json::json!({"when": "every day at 08:00", "month": "next"})).unwrap_err();
        assert!(e.contains("month \"next\""), "{e}");
        let e =
            doc(serde_json::json!({"when": "every day at 08:00", "report": "weekly"})).unwrap_err();
        assert!(e.contains("monthly-compliance"), "{e}");
    }
}
