//! The advisory catalog at the HTTP boundary: hosts' inventories as
//! applicability sees them, and findings as JSON. `patchwell scan` prints
//! the same JSON as the API serves.

use patchwell_core::applicability::{
    Exposure, Finding, HostReport, HostView, Index, InstalledPackage, Offer, OfferedUpdate,
};
use protocol::{AvailableUpdate, Manager, OsRelease, Package};
use serde_json::{json, Value};

/// A stored host's OS release, as applicability reads it.
pub fn os_of(host: &store::HostRecord) -> OsRelease {
    OsRelease {
        id: host.os_id.clone().unwrap_or_default(),
        version_id: host.os_version.clone(),
        codename: host.os_codename.clone(),
        pretty_name: None,
        id_like: Vec::new(),
    }
}

/// The version rules of a package manager.
pub fn scheme_of(manager: Manager) -> versions::Ecosystem {
    match manager {
        Manager::Dpkg => versions::Ecosystem::Deb,
        Manager::Rpm => versions::Ecosystem::Rpm,
        Manager::Apk => versions::Ecosystem::Apk,
    }
}

/// The package manager most of a host's packages belong to (dpkg on Debian
/// even when rpm is installed too): the one whose packages are matched.
pub fn main_manager(packages: &[Package]) -> Manager {
    let mut counts = [0usize; 3];
    for p in packages {
        counts[p.manager as usize] += 1;
    }
    Manager::ALL
        .iter()
        .copied()
        .max_by_key(|m| counts[*m as usize])
        .unwrap_or(Manager::Dpkg)
}

/// The package manager whose version rules are these.
pub fn manager_of(scheme: versions::Ecosystem) -> Manager {
    match scheme {
        versions::Ecosystem::Deb => Manager::Dpkg,
        versions::Ecosystem::Rpm => Manager::Rpm,
        versions::Ecosystem::Apk => Manager::Apk,
    }
}

/// A package as applicability sees it.
pub fn installed_package(p: &Package) -> InstalledPackage {
    InstalledPackage {
        name: p.name.clone(),
        version: p.version.clone(),
        arch: p.arch.clone(),
        source: p.source.clone().unwrap_or_else(|| p.name.clone()),
        source_version: p
            .source_version
            .clone()
            .unwrap_or_else(|| p.version.clone()),
        installed: p.state.is_installed(),
    }
}

/// A host as applicability sees it: the packages of its [`main_manager`].
pub fn host_view(
    os: &OsRelease,
    kernel: &str,
    packages: &[Package],
    updates: &[AvailableUpdate],
) -> HostView {
    let manager = main_manager(packages);
    HostView {
        os_id: os.id.clone(),
        os_version: os.version_id.clone(),
        scheme: scheme_of(manager),
        kernel_release: kernel.to_owned(),
        packages: packages
            .iter()
            .filter(|p| p.manager == manager)
            .map(installed_package)
            .collect(),
        updates: updates
            .iter()
            .filter(|u| u.manager == manager)
            .map(|u| OfferedUpdate {
                name: u.name.clone(),
                installed: u.installed.clone(),
                candidate: u.candidate.clone(),
                suite: u.suite.clone().or_else(|| u.codename.clone()),
                security: u.security,
            })
            .collect(),
    }
}

/// One finding as JSON: the package, the advisory, and why.
pub fn finding_json(index: &Index, f: &Finding<'_>) -> Value {
    let kev = index.kev(f.advisory);
    let epss = index.epss(f.advisory);
    json!({
        "kind": "advisory",
        "security": true,
        "cves": f.advisory.cves().collect::<Vec<_>>(),
        "package": f.package,
        "installed": f.installed,
        "source": f.source,
        "source_version": f.source_version,
        "advisory": f.advisory.id,
        "aliases": f.advisory.aliases,
        "title": f.advisory.title,
        "ecosystem": f.ecosystem.name(),
        "matched_by": f.matched_by.to_string(),
        "fixed": f.fixed,
        "last_affected": f.last_affected,
        "severity": Index::severity(f.advisory).map(|s| s.as_str()),
        "vendor_severity": f.advisory.severity.map(|s| s.as_str()),
        "cvss": f.advisory.cvss.as_ref().map(|c| json!({ "vector": c.vector, "score": c.score })),
        "kev": kev.is_some(),
        "kev_date_added": kev.map(|k| k.date_added.to_string()),
        "kev_due_date": kev.and_then(|k| k.due_date.map(|d| d.to_string())),
        "kev_ransomware": kev.map(|k| k.ransomware),
        "epss": epss.map(|e| e.score),
        "epss_percentile": epss.map(|e| e.percentile),
        "update_type": f.advisory.update_type.as_str(),
        "offered": match &f.offer {
            Offer::Offered { candidate, .. } => Some(candidate.as_str()),
            _ => None,
        },
        "offered_suite": match &f.offer {
            Offer::Offered { suite, .. } => suite.as_deref(),
            _ => None,
        },
        "pending_reboot": matches!(f.exposure, Exposure::FixedAwaitingReboot { .. }),
        "superseded_by": f.superseded_by,
        "published": f.advisory.published.map(|t| t.to_string()),
        "origin": {
            "feed": f.advisory.origin.feed,
            "location": f.advisory.origin.location,
            "fetched_at": f.advisory.origin.fetched_at.map(|t| t.to_string()),
            "sha256": f.advisory.origin.sha256,
        },
        "reason": f.reason(),
    })
}

/// A host's available updates as a JSON array: the newer versions its
/// package manager offers from ordinary (not security) suites, and the
/// other advisories that are not security advisories and apply. Shown,
/// approvable and deployable; never a finding, never counted against
/// compliance.
pub fn available_updates_json(report: &HostReport<'_>, view: &HostView) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut shown: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for u in view.updates.iter().filter(|u| !u.security) {
        let advisories: Vec<&str> = report
            .available_updates
            .iter()
            .filter(|f| f.package == u.name)
            .map(|f| f.advisory.id.as_str())
            .collect();
        shown.insert(u.name.as_str());
        out.push(json!({
            "kind": "update",
            "security": false,
            "package": u.name,
            "installed": u.installed,
            "candidate": u.candidate,
            "suite": u.suite,
            "advisories": advisories,
        }));
    }
    for f in &report.available_updates {
        if !shown.insert(f.package.as_str()) {
            continue;
        }
        out.push(json!({
            "kind": "update",
            "security": false,
            "package": f.package,
            "installed": f.installed,
            "candidate": f.fixed,
            "suite": Value::Null,
            "advisories": [f.advisory.id],
        }));
    }
    out
}

/// Every finding of a host report as a JSON array: the advisories, then the
/// security updates that no advisory among them explains, then the OS
/// release's lifecycle when it is past full support.
pub fn report_json(index: &Index, report: &HostReport<'_>) -> Vec<Value> {
    let mut out: Vec<Value> = report
        .findings
        .iter()
        .map(|f| finding_json(index, f))
        .collect();
    for u in report
        .security_updates
        .iter()
        .filter(|u| u.advisories.is_empty())
    {
        let suite = u.suite.as_deref().unwrap_or("a security suite");
        out.push(json!({
            "kind": "security-update",
            "security": true,
            "cves": [],
            "package": u.package,
            "installed": u.installed,
            "source": Value::Null,
            "source_version": Value::Null,
            "advisory": format!("{suite}:{}:{}", u.package, u.candidate),
            "aliases": [],
            "title": format!("{} {} from {suite}", u.package, u.candidate),
            "fixed": u.candidate,
            "severity": Value::Null,
            "kev": false,
            "update_type": "security-update",
            "offered": u.candidate,
            "offered_suite": u.suite,
            "reason": format!(
                "{} {} has {} waiting in {suite}: a security update, though no advisory in the catalog names it",
                u.package, u.installed, u.candidate
            ),
        }));
    }
    if let Some(lc) = &report.lifecycle {
        out.push(json!({
            "kind": "end-of-life",
            "package": lc.product,
            "installed": lc.release.cycle,
            "source": Value::Null,
            "source_version": Value::Null,
            "advisory": format!("EOL-{}-{}", lc.product, lc.release.cycle),
            "aliases": [],
            "title": format!("{} {} is {}", lc.product, lc.release.cycle, lc.support.as_str()),
            "fixed": Value::Null,
            "severity": if matches!(lc.support, patchwell_core::lifecycle::Support::EndOfLife { .. }) { "high" } else { "medium" },
            "kev": false,
            "update_type": Value::Null,
            "reason": format!("{} {}: {}", lc.product, lc.release.cycle, lc.support),
        }));
    }
    out
}
