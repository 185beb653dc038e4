//! Hosts in the console: the fleet as a table that filters by host query,
//! pages and sorts on the server; one host with its facts, the findings
//! that apply with their reasons, its packages and its history.

use axum::extract::{Path, Query, State};
use maud::html;
use serde_json::Value;
use store::RolloutStore;

use super::{body, encode, order, page, text, when, Listing, PageResult, Viewer};
use crate::api::HostsQuery;
use crate::{catalog_api, handlers, AppState};

pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    let query = l.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let hosts = handlers::list_hosts(
        State(state.clone()),
        viewer.reader(),
        Ok(Query(HostsQuery {
            query: query.map(str::to_owned),
            ..HostsQuery::default()
        })),
    )
    .await;
    let (mut hosts, problem) = match hosts {
        Ok(h) => (h.0, None),
        // A query that does not parse is shown beside the form, not as an
        // error page: the person is still typing it.
        Err(e) if e.status().is_client_error() => (Vec::new(), Some(e.message().to_owned())),
        Err(e) => return Err(e.into()),
    };
    let open = |id: &str| state.fleet.host_advisories(id).len();
    let desc = l.descending();
    match l.sort_or("hostname") {
        "os" => order(&mut hosts, desc, |h| {
            (h.os_id.clone(), h.os_version.clone(), h.hostname.clone())
        }),
        "group" => order(&mut hosts, desc, |h| (h.group.clone(), h.hostname.clone())),
        "criticality" => order(&mut hosts, desc, |h| {
            (rank(h.criticality.as_deref()), h.hostname.clone())
        }),
        "department" => order(&mut hosts, desc, |h| {
            (h.department.clone(), h.hostname.clone())
        }),
        "last_seen" => order(&mut hosts, desc, |h| h.last_seen),
        "open" => order(&mut hosts, desc, |h| (open(&h.id), h.hostname.clone())),
        _ => order(&mut hosts, desc, |h| h.hostname.clone()),
    }
    let base = "/console/hosts";
    let content = html! {
        h1 { "Hosts" }
        form class="filters" method="get" action=(base) role="search" {
            div {
                label for="q" { "Host query" }
                input id="q" name="q" size="60" value=(l.q.as_deref().unwrap_or_default())
                    placeholder="os = debian and os_version >= 12 and tag = laptop";
            }
            button type="submit" { "Filter" }
            a href=(base) { "Clear" }
        }
        @if let Some(p) = &problem {
            p class="error" role="alert" { (p) }
        }
        p class="muted" {
            "Fields: os, os_version, codename, kernel, arch, hostname, group, tag, criticality, owner, department, reboot_required, stale."
        }
        table {
            thead { tr {
                (l.header(base, "hostname", "Host", "hostname"))
                (l.header(base, "os", "OS", "hostname"))
                (l.header(base, "group", "Group", "hostname"))
                (l.header(base, "criticality", "Criticality", "hostname"))
                (l.header(base, "department", "Department", "hostname"))
                (l.header(base, "last_seen", "Last seen", "hostname"))
                (l.header(base, "open", "Open advisories", "hostname"))
                th scope="col" { "State" }
            } }
            tbody { @for h in l.window(&hosts) {
                tr {
                    td { a href=(format!("/console/hosts/{}", encode(&h.id))) { (h.hostname) } }
                    td { (h.os_id.as_deref().unwrap_or("?")) " " (h.os_version.as_deref().unwrap_or("")) }
                    td { (h.group.as_deref().unwrap_or("—")) }
                    td { (h.criticality.as_deref().unwrap_or("—")) }
                    td { (h.department.as_deref().unwrap_or("—")) }
                    td { (when(Some(&h.last_seen.to_string()))) }
                    td class="num" { (open(&h.id)) }
                    td {
                        @if h.stale { span class="warn" { "stale " } }
                        @if h.reboot_required { span class="warn" { "reboot required " } }
                        @for t in &h.tags { span class="tag" { (t) } }
                    }
                }
            } }
        }
        (l.pager(base, hosts.len()))
    };
    Ok(page(&viewer, "Hosts", l.done.as_deref(), content))
}

fn rank(c: Option<&str>) -> u8 {
    match c {
        Some("critical") => 4,
        Some("high") => 3,
        Some("medium") => 2,
        Some("low") => 1,
        _ => 0,
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(l): Query<Listing>,
) -> PageResult {
    let detail =
        body(handlers::show_host(State(state.clone()), viewer.reader(), Path(id.clone())).await)?;
    let findings = body(
        catalog_api::host_findings(State(state.clone()), viewer.reader(), Path(id.clone())).await,
    )?;
    let h = &detail.host;
    let facts = detail.facts.as_ref();
    let mut history = Vec::new();
    let mut rollouts = state.store.rollouts().await?;
    rollouts.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    for r in rollouts.iter().take(20) {
        for e in state.store.job_events(&r.name, Some(&id)).await? {
            history.push((e.at, r.name.clone(), e.step, e.detail));
        }
    }
    history.sort_by_key(|h| std::cmp::Reverse(h.0));
    // The store reads oldest first: the newest 200 are the last ones.
    let mut audit = crate::people_api::subject_entries(&state, &format!("hosts/{id}")).await?;
    audit.drain(..audit.len().saturating_sub(200));
    let list: Vec<Value> = findings["findings"].as_array().cloned().unwrap_or_default();
    let available: Vec<Value> = findings["available_updates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut packages = detail.packages.clone();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    let content = html! {
        h1 { "Host " (h.hostname) }
        dl class="facts" {
            dt { "Identity" } dd { code { (h.id) } }
            dt { "OS" } dd { (h.os_id.as_deref().unwrap_or("?")) " " (h.os_version.as_deref().unwrap_or("")) " " (h.os_codename.as_deref().unwrap_or("")) }
            dt { "Kernel" } dd { (h.kernel.as_deref().unwrap_or("—")) " (" (h.arch.as_deref().unwrap_or("?")) ")" }
            @if let Some(f) = facts {
                dt { "Model" } dd { (f.model.as_deref().unwrap_or(f.cpu.model.as_str())) }
                dt { "CPU" } dd { (f.cpu.model) " × " (f.cpu.count) }
                dt { "Memory" } dd { (format!("{:.1} GiB", f.memory_bytes as f64 / 1_073_741_824.0)) }
                dt { "Addresses" } dd {
                    @for i in &f.interfaces {
                        @for a in &i.addresses { span class="tag" { (i.name) " " (a) } }
                    }
                }
                dt { "Last boot" } dd { (when(Some(&f.boot_time.to_string()))) }
            }
            dt { "Group" } dd { (h.group.as_deref().unwrap_or("—")) " · groups: " (findings["groups"].as_array().map(|g| g.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
            dt { "Criticality" } dd { (h.criticality.as_deref().unwrap_or("—")) }
            dt { "Owner / department" } dd { (h.owner.as_deref().unwrap_or("—")) " / " (h.department.as_deref().unwrap_or("—")) }
            dt { "Tags" } dd { @for t in &h.tags { span class="tag" { (t) } } }
            dt { "Enrolled" } dd { (when(Some(&h.enrolled_at.to_string()))) }
            dt { "Last seen" } dd { (when(Some(&h.last_seen.to_string()))) @if h.stale { " " span class="warn" { "stale" } } }
            dt { "Reboot required" } dd { (if h.reboot_required { "yes" } else { "no" }) }
        }
        section aria-labelledby="findings" {
            h2 id="findings" { "Security findings: what applies, and why (" (list.len()) ")" }
            p class="muted" { "Security advisories, security-suite updates and the OS release's support. Each class names the steps that decided it." }
            @if list.is_empty() {
                p class="good" { "No security advisory in the catalog applies to this host." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Advisory or update" } th scope="col" { "Package" }
                        th scope="col" { "Installed → fixed" } th scope="col" { "Class" }
                        th scope="col" { "Deadline" } th scope="col" { "Why it applies" }
                    } }
                    tbody { @for f in l.window(&list) {
                        @let advisory = f["advisory"].as_str();
                        tr {
                            td {
                                @if let Some(a) = advisory {
                                    a href=(format!("/console/advisories/{}", encode(a))) { (a) }
                                } @else { (text(&f["kind"])) }
                                @if f["kev"] == true { " " span class="tag kev" { "KEV" } }
                                @if let Some(e) = f["exempt_by"].as_str() { " " span class="tag" { "exempt: " (e) } }
                            }
                            td { (text(&f["package"])) }
                            td { (text(&f["installed"])) " → " (text(&f["fixed"])) }
                            td {
                                (text(&f["class"]))
                                @if f["class_default"] == true { " " span class="tag" { "default" } }
                                @if let Some(rule) = f["class_rule"].as_str() { br; span class="muted" data-test="class-rule" { (rule) } }
                            }
                            td class=(match f["sla"]["state"].as_str() { Some("breached") => "bad", Some("due-soon") => "warn", _ => "" }) {
                                (when(f["sla"]["deadline"].as_str())) " " (text(&f["sla"]["state"]))
                            }
                            td { (text(&f["matched_by"])) @if let Some(r) = f["reason"].as_str() { (r) } }
                        }
                    } }
                }
                (l.pager(&format!("/console/hosts/{}", encode(&id)), list.len()))
            }
        }
        section aria-labelledby="available" {
            h2 id="available" { "Available updates, not findings (" (available.len()) ")" }
            p class="muted" { "Newer versions from ordinary suites: approvable and deployable, but no risk, and not counted against compliance." }
            @if !available.is_empty() {
                table {
                    thead { tr { th scope="col" { "Package" } th scope="col" { "Installed → available" } th scope="col" { "Suite" } } }
                    tbody { @for u in &available {
                        tr {
                            td { (text(&u["package"])) }
                            td { (text(&u["installed"])) " → " (text(&u["candidate"])) }
                            td { (text(&u["suite"])) }
                        }
                    } }
                }
            }
        }
        section aria-labelledby="history" {
            h2 id="history" { "History" }
            @if history.is_empty() && audit.is_empty() {
                p class="muted" { "No rollout has reached this host, and no one changed it." }
            } @else {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Detail" } } }
                    tbody {
                        @for (at, rollout, step, detail) in history.iter().take(100) {
                            tr {
                                td { (when(Some(&at.to_string()))) }
                                td { "rollout " a href=(format!("/console/rollouts/{}", encode(rollout))) { (rollout) } ": " (step) }
                                td { (detail.as_deref().unwrap_or("")) }
                            }
                        }
                        @for e in audit.iter().rev() {
                            tr {
                                td { (when(Some(&e.at.to_string()))) }
                                td { (e.event.action) " by " (e.event.actor) }
                                td { (e.event.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="packages" {
            h2 id="packages" { "Packages (" (packages.len()) ")" }
            details {
                summary { "Show every package" }
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Version" } th scope="col" { "Arch" } th scope="col" { "Source" } th scope="col" { "State" } } }
                    tbody { @for p in &packages {
                        tr {
                            td { (p.name) } td { (p.version) } td { (p.arch) }
                            td { (p.source.as_deref().unwrap_or("")) " " (p.source_version.as_deref().unwrap_or("")) }
                            td { (p.state.as_str()) @if p.held { " (held)" } }
                        }
                    } }
                }
            }
        }
    };
    Ok(page(
        &viewer,
        &format!("Hosts: {}", h.hostname),
        l.done.as_deref(),
        content,
    ))
}
