//! The OpenAPI document at `/api/openapi.json`, written by hand from the
//! route table below. A test requests every route it lists from the real
//! router, so the document cannot name a route the server does not have.

use axum::Json;
use patchwell_core::people::Access;
use serde_json::{json, Value};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    None,
    /// A signed-in user (session or API token) whose role, and token
    /// scopes, allow this access.
    User(Access),
    /// An enrolled host's credential.
    Host,
}

/// Every route: method, path, who may call it, and what it does.
pub const ROUTES: &[(&str, &str, Auth, &str)] = &[
    ("get", "/api/openapi.json", Auth::None, "This document."),
    ("post", "/api/v1/agent/enroll", Auth::None, "Enroll a host with an enrollment token; returns its identity and credential."),
    ("post", "/api/v1/agent/heartbeat", Auth::Host, "Check in; the answer says whether to send the inventory."),
    ("put", "/api/v1/agent/inventory", Auth::Host, "Replace the host's inventory (JSON, optionally gzip-encoded)."),
    ("patch", "/api/v1/agent/inventory", Auth::Host, "Change the host's inventory by a delta against the stored one (409: send it whole)."),
    ("post", "/api/v1/agent/jobs/{id}/steps", Auth::Host, "Report steps of one of the host's jobs (received ... succeeded or failed, with exit code, output tail and what changed)."),
    ("get", "/api/v1/agent/deferrals", Auth::Host, "The deferral requests of this host, with their decisions."),
    ("post", "/api/v1/agent/deferrals", Auth::Host, "A user of this host asks to defer its updates until a date, with a business justification ({\"until\", \"justification\", \"user\", \"rollout\"})."),
    ("get", "/api/v1/deferrals", Auth::User(Access::Read), "Deferral requests (?state=pending|granted|refused, ?host=)."),
    ("post", "/api/v1/deferrals", Auth::User(Access::Operate), "Ask, for a user, to defer one host's updates ({\"host\", \"until\", \"justification\", \"user\", \"rollout\"})."),
    ("post", "/api/v1/deferrals/{id}/grant", Auth::User(Access::Approve), "Grant a pending deferral (optionally shorter: {\"until\"}); the host's undelivered jobs are taken back until it ends; audited, contacts told."),
    ("post", "/api/v1/deferrals/{id}/refuse", Auth::User(Access::Approve), "Refuse a pending deferral ({\"reason\"}, required); audited, contacts told."),
    ("post", "/api/v1/rollouts/{name}/raise-baseline", Auth::User(Access::Approve), "Raise a baseline to the rollout's result: each frozen version that succeeded becomes the minimum ({\"baseline\"})."),
    ("get", "/api/v1/updates", Auth::User(Access::Read), "Every update the fleet's package managers offer (name, candidate version, source package, security, suite, the advisories it fixes, hosts), with the decision in force (approved or declined) and decided_by: the title that decided it (its own name=version, its source package's, or an advisory's; the most specific wins, among equals a decline)."),
    ("get", "/api/v1/rollouts", Auth::User(Access::Read), "List rollouts with their status and generation."),
    ("post", "/api/v1/rollouts", Auth::User(Access::Operate), "Create a rollout: hosts (a query), security, all or approved updates (approved by title name=version) or named packages, declined ones never; versions frozen now; rings, budget, reboot, conffiles, hooks, health check, policy (windows), expiry; audited, contacts notified. With scripts, or versions no approval covers, it awaits release by an approver or administrator (status awaiting_release) unless its creator may approve."),
    ("get", "/api/v1/rollouts/{name}", Auth::User(Access::Read), "A rollout: each ring's state and reason, each host's progress, step and action with its reason."),
    ("get", "/api/v1/rollouts/{name}/events", Auth::User(Access::Read), "Every step every host reported, in order, with the agent's time and the server's."),
    ("get", "/api/v1/rollouts/{name}/review", Auth::User(Access::Read), "The post-implementation review: targets, succeeded, failed, rolled back, time to 50% and 95%, deadline met, failures, notes."),
    ("post", "/api/v1/rollouts/{name}/notes", Auth::User(Access::Operate), "Add a note to the review ({\"note\": ...})."),
    ("post", "/api/v1/rollouts/{name}/halt", Auth::User(Access::Operate), "Halt: no new host starts, undelivered jobs are withdrawn ({\"reason\": ...}); a new generation."),
    ("post", "/api/v1/rollouts/{name}/resume", Auth::User(Access::Operate), "Resume a rollout a person halted; a new generation."),
    ("post", "/api/v1/rollouts/{name}/rollback", Auth::User(Access::Operate), "Halt and roll back: hosts that installed get the versions their agents recorded before ({\"reason\": ...})."),
    ("post", "/api/v1/rollouts/{name}/redeploy", Auth::User(Access::Operate), "A new generation: failed and rolled-back hosts start again ({\"reason\": ...})."),
    ("post", "/api/v1/rollouts/{name}/approve", Auth::User(Access::Approve), "Approve a ring's start ({\"ring\": ...})."),
    ("post", "/api/v1/rollouts/{name}/release", Auth::User(Access::Approve), "Release a rollout that awaits release (an operator's rollout with scripts, or with versions no approval covers): it starts as planned; audited with each script's SHA-256 and the versions ({\"reason\"}, optional)."),
    ("post", "/api/v1/rollouts/{name}/refuse", Auth::User(Access::Approve), "Refuse a rollout that awaits release: it never runs; audited ({\"reason\"}, required)."),
    ("post", "/api/v1/rollouts/{name}/gate", Auth::User(Access::Operate), "Lower a started ring's success gate ({\"ring\", \"gate_success_percent\", \"reason\"}, all required); 0% lets the next ring start whatever its result; audited."),
    ("get", "/api/v1/tokens", Auth::User(Access::Read), "List enrollment tokens."),
    ("post", "/api/v1/tokens", Auth::User(Access::Operate), "Create an enrollment token (expiry, number of uses, target group)."),
    ("delete", "/api/v1/tokens/{id}", Auth::User(Access::Operate), "Revoke an enrollment token."),
    ("get", "/api/v1/hosts", Auth::User(Access::Read), "List hosts; filter by os, os_version, group, tag, stale, reboot_required, include_revoked, or a query."),
    ("get", "/api/v1/hosts/{id}", Auth::User(Access::Read), "One host with its facts, packages and neighbours."),
    ("post", "/api/v1/hosts/{id}/revoke", Auth::User(Access::Operate), "Revoke a host's enrollment; its credential stops working."),
    ("put", "/api/v1/hosts/{id}/attributes", Auth::User(Access::Operate), "Set a host's group, criticality, owner, department and tags."),
    ("get", "/api/v1/packages/{manager}/{name}/hosts", Auth::User(Access::Read), "Hosts with the package installed below ?below=VERSION, by the package manager's order."),
    ("get", "/api/v1/summary/os-releases", Auth::User(Access::Read), "Hosts per OS release."),
    ("get", "/api/v1/summary/packages/{manager}/{name}", Auth::User(Access::Read), "Hosts per installed version of a package."),
    ("get", "/api/v1/devices/unmanaged", Auth::User(Access::Read), "Devices in hosts' neighbour tables that are not enrolled."),
    ("get", "/api/v1/groups", Auth::User(Access::Read), "List dynamic groups with their member counts."),
    ("put", "/api/v1/groups/{name}", Auth::User(Access::Operate), "Define or replace a dynamic group by a host query, such as `os = debian and os_version >= 12 and tag = laptop`."),
    ("delete", "/api/v1/groups/{name}", Auth::User(Access::Operate), "Delete a dynamic group."),
    ("get", "/api/v1/groups/{name}/hosts", Auth::User(Access::Read), "The hosts a dynamic group's query selects now."),
    ("get", "/api/v1/feeds", Auth::User(Access::Read), "List advisory feeds with the outcome of their last import."),
    ("put", "/api/v1/feeds/{name}", Auth::User(Access::Administer), "Define a feed (kind, location, verification: sha256:HEX, ed25519:KEY or openpgp:KEYRING) and import it; 422 when it fails verification or parsing, with the catalog in force unchanged."),
    ("delete", "/api/v1/feeds/{name}", Auth::User(Access::Administer), "Remove a feed and take its advisories out of the catalog."),
    ("post", "/api/v1/feeds/{name}/import", Auth::User(Access::Operate), "Fetch, verify and import a feed again."),
    ("get", "/api/v1/advisories", Auth::User(Access::Read), "Search the catalog: ?search=words&ecosystem=Debian:12&kev=true&limit=&offset=."),
    ("get", "/api/v1/advisories/{id}", Auth::User(Access::Read), "One advisory (as OSV), its KEV status, the advisories that supersede it, and the hosts it applies to with the reason for each, by host name (host_count in all; ?offset=&limit= for a window)."),
    ("get", "/api/v1/summary/exposure", Auth::User(Access::Read), "The advisories that reach hosts now, known exploited first, then by severity and hosts reached (?limit=), from the fleet's applicability in memory."),
    ("get", "/api/v1/hosts/{id}/findings", Auth::User(Access::Read), "The security findings of a host (security advisories, pending security updates, its OS lifecycle), each with the reason and its class with the steps that decided it; and apart, its available updates from ordinary suites, which are not findings."),
    ("get", "/api/v1/summary/posture", Auth::User(Access::Read), "The fleet's posture now: compliant hosts and fully patched hosts, each with its definition, findings per class by deadline, known-exploited exposure; security findings only, never available updates."),
    ("get", "/api/v1/summary/risk", Auth::User(Access::Read), "Hosts by risk, highest first (?limit=): open findings by class, known exploited, criticality, internet exposure and owner risk, each factor named."),
    ("post", "/api/v1/session", Auth::None, "Sign in with user name and password; returns a session token (also set as an HTTP-only cookie), valid 12 hours."),
    ("delete", "/api/v1/session", Auth::User(Access::Member), "Sign out: ends the session."),
    ("get", "/api/v1/me", Auth::User(Access::Member), "Who is calling: user, role, scopes, and whether they acknowledged the current procedure."),
    ("put", "/api/v1/me/password", Auth::User(Access::Member), "Change one's own password (current and new); every session ends."),
    ("get", "/api/v1/users", Auth::User(Access::Read), "List users with their roles."),
    ("post", "/api/v1/users", Auth::User(Access::Administer), "Create a user (role admin, approver, operator or auditor); without a password one is made and shown once."),
    ("patch", "/api/v1/users/{name}", Auth::User(Access::Administer), "Change a user's role, email, password, or disable them; the last administrator stays."),
    ("get", "/api/v1/api-tokens", Auth::User(Access::Member), "List API tokens: an administrator's all, anyone else's own."),
    ("post", "/api/v1/api-tokens", Auth::User(Access::Member), "Create an API token with scopes (read, operate, approve, administer), never more than the user's role or the caller's own token."),
    ("delete", "/api/v1/api-tokens/{id}", Auth::User(Access::Member), "Revoke an API token: one's own, or any for an administrator."),
    ("get", "/api/v1/procedure", Auth::User(Access::Read), "The current patch procedure, who acknowledged it and who has not."),
    ("put", "/api/v1/procedure", Auth::User(Access::Administer), "Publish a new version of the patch procedure."),
    ("post", "/api/v1/procedure/acknowledge", Auth::User(Access::Member), "Acknowledge the current version of the procedure."),
    ("get", "/api/v1/audit", Auth::User(Access::Read), "The audit log, oldest first: ?subject=prefix&after=seq&limit=."),
    ("get", "/api/v1/audit/verify", Auth::User(Access::Read), "Check the audit log's hash chain and hold it against the server's signed checkpoints of its head; names the first entry altered or missing, a log cut back or rewritten since a checkpoint, or a checkpoint whose signature does not verify."),
    ("get", "/api/v1/settings/{name}", Auth::User(Access::Read), "A setting (classification, sla, calendar), as stored and in effect."),
    ("put", "/api/v1/settings/{name}", Auth::User(Access::Administer), "Set the classification rules, the SLA deadlines and start, or the business-day calendar."),
    ("get", "/api/v1/baselines/{name}/compliance", Auth::User(Access::Read), "Each host of the baseline's group: below (what is missing), above (unapproved versions), exempt, or at."),
    ("post", "/api/v1/baselines/{name}/raise", Auth::User(Access::Approve), "Raise a baseline's minimums and ceilings to what a reference host has (a pilot host after a rollout)."),
    ("post", "/api/v1/approvals/bulk", Auth::User(Access::Approve), "One decision on many titles ({titles, verdict: approve or decline, comment, rings, groups}): each title an update (name=version), a source package (source:name, source:name=version) or an advisory (id, alias, or a security suite's update id); each stored and audited as its own, all in one transaction; at most 500; a bad title refuses them all, named."),
    ("get", "/api/v1/approvals/{title}/eligibility", Auth::User(Access::Read), "Whether an update may go to a ring now (?ring=&group=&policy=): approved by whom, waiting until when, declined, or not approved."),
    ("get", "/api/v1/policies", Auth::User(Access::Read), "List every policy."),
    ("get", "/api/v1/policies/{name}", Auth::User(Access::Read), "One policy."),
    ("put", "/api/v1/policies/{name}", Auth::User(Access::Administer), "Define or replace a policy: hosts (a query), classes, packages, security_only, approval_rules, schedule, auto_deploy (a rollout of the approved updates at each scheduled time), windows, timezone, reboot; audited."),
    ("delete", "/api/v1/policies/{name}", Auth::User(Access::Administer), "Delete a policy; audited."),
    ("get", "/api/v1/baselines", Auth::User(Access::Read), "List every baseline."),
    ("get", "/api/v1/baselines/{name}", Auth::User(Access::Read), "One baseline."),
    ("put", "/api/v1/baselines/{name}", Auth::User(Access::Approve), "Define or replace a baseline: group, minimum versions, advisories fixed, highest approved versions; audited."),
    ("delete", "/api/v1/baselines/{name}", Auth::User(Access::Approve), "Delete a baseline; audited."),
    ("get", "/api/v1/exemptions", Auth::User(Access::Read), "List every exemption."),
    ("get", "/api/v1/exemptions/{name}", Auth::User(Access::Read), "One exemption."),
    ("put", "/api/v1/exemptions/{name}", Auth::User(Access::Approve), "Define or replace an exemption: host or group, advisory or package, reason, compensating control, expiry; the caller is its approver; audited."),
    ("delete", "/api/v1/exemptions/{name}", Auth::User(Access::Approve), "Delete a exemption; audited."),
    ("get", "/api/v1/approvals", Auth::User(Access::Read), "List every approval."),
    ("get", "/api/v1/approvals/{name}", Auth::User(Access::Read), "One approval."),
    ("put", "/api/v1/approvals/{name}", Auth::User(Access::Approve), "Define or replace the decision on an update by title: approve (for rings, groups) or decline, with a comment; audited."),
    ("delete", "/api/v1/approvals/{name}", Auth::User(Access::Approve), "Delete a approval; audited."),
    ("get", "/api/v1/go-no-go", Auth::User(Access::Read), "List every go/no-go decision."),
    ("get", "/api/v1/go-no-go/{name}", Auth::User(Access::Read), "One go/no-go decision."),
    ("put", "/api/v1/go-no-go/{name}", Auth::User(Access::Approve), "Define or replace a go / no-go decision with its comment; audited."),
    ("delete", "/api/v1/go-no-go/{name}", Auth::User(Access::Approve), "Delete a go/no-go decision; audited."),
    ("get", "/api/v1/approval-rules", Auth::User(Access::Read), "List every approval rule."),
    ("get", "/api/v1/approval-rules/{name}", Auth::User(Access::Read), "One approval rule."),
    ("put", "/api/v1/approval-rules/{name}", Auth::User(Access::Administer), "Define or replace an automatic approval rule: classes, security_only, ring, and days after release or business days after another ring; audited."),
    ("delete", "/api/v1/approval-rules/{name}", Auth::User(Access::Administer), "Delete a approval rule; audited."),
    ("get", "/api/v1/contacts", Auth::User(Access::Read), "List every contact."),
    ("get", "/api/v1/contacts/{name}", Auth::User(Access::Read), "One contact."),
    ("put", "/api/v1/contacts/{name}", Auth::User(Access::Administer), "Define or replace a contact in the chain of communication: audience (patch-team, management, end-users), email, webhook; audited."),
    ("delete", "/api/v1/contacts/{name}", Auth::User(Access::Administer), "Delete a contact; audited."),
    ("get", "/api/v1/owners", Auth::User(Access::Read), "List every owner."),
    ("get", "/api/v1/owners/{name}", Auth::User(Access::Read), "One owner."),
    ("put", "/api/v1/owners/{name}", Auth::User(Access::Administer), "Define or replace a host owner's risk (normal or high); audited."),
    ("delete", "/api/v1/owners/{name}", Auth::User(Access::Administer), "Delete a owner; audited."),
    ("get", "/api/v1/report-schedules", Auth::User(Access::Read), "List every report schedule, each with its next mailing and the month it will report."),
    ("get", "/api/v1/report-schedules/{name}", Auth::User(Access::Read), "One report schedule."),
    ("put", "/api/v1/report-schedules/{name}", Auth::User(Access::Administer), "Define or replace a report schedule: when (a schedule rule), timezone, month (previous or current), formats (pdf, csv), audiences mailed; audited."),
    ("delete", "/api/v1/report-schedules/{name}", Auth::User(Access::Administer), "Delete a report schedule; audited."),
    ("post", "/api/v1/report-schedules/{name}/send", Auth::User(Access::Administer), "Mail the schedule's report now to its audiences' contacts; audited; 409 when nobody could be mailed, with why."),
    ("get", "/api/v1/reports/monthly", Auth::User(Access::Read), "The monthly executive compliance report as a file: ?month=YYYY-MM (default this month), ?format=pdf (default) or csv."),
];

fn operation(path: &str, auth: Auth, summary: &str) -> Value {
    let parameters: Vec<Value> = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let mut op = json!({
        "summary": summary,
        "parameters": parameters,
        "responses": {
            "default": {
                "description": "On error, a JSON object whose `error` says what is wrong.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            },
            "200": {"description": "Success.", "content": {"application/json": {}}}
        }
    });
    match auth {
        Auth::None => op["security"] = json!([]),
        Auth::User(access) => {
            op["security"] = json!([{"apiToken": []}, {"session": []}]);
            op["x-patchwell-access"] = json!(access.as_str());
        }
        Auth::Host => op["security"] = json!([{"hostCredential": []}]),
    }
    op
}

/// The document.
pub fn spec() -> Value {
    let mut paths = serde_json::Map::new();
    for &(method, path, auth, summary) in ROUTES {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = operation(path, auth, summary);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Patchwell",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted patch management: the API that agents, the command line and the console use."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer", "description": "A user's API token (pwa_...), limited to its scopes."},
                "session": {"type": "http", "scheme": "bearer", "description": "A session token from POST /api/v1/session (pws_...), or the patchwell_session cookie."},
                "hostCredential": {"type": "http", "scheme": "bearer", "description": "An enrolled host's credential (<host id>.<secret>)."}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
            }
        }
    })
}

/// `GET /api/openapi.json`
pub(crate) async fn document() -> Json<Value> {
    Json(spec())
}
