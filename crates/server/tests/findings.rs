//! Findings an admin can trust: security findings apart from available
//! updates, classes decided by the advisory and then the asset (with the
//! chain named), the Debian tracker's JSON as a feed, and compliance and
//! fixed counts that move at the inventory that fixes.

use protocol::{AvailableUpdate, EnrollResponse, Inventory, Manager, Package};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mod support;

use support::{inventory, package, TempDir};

/// The shared test server, with a directory for feed files and this
/// file's requests on top.
struct Server {
    base: support::Server,
    dir: TempDir,
}

impl std::ops::Deref for Server {
    type Target = support::Server;
    fn deref(&self) -> &support::Server {
        &self.base
    }
}

async fn spawn() -> Server {
    let dir = TempDir::new("findings-feeds");
    std::fs::create_dir_all(&dir.0).unwrap();
    Server {
        base: support::Server::spawn("findings-db").await,
        dir,
    }
}

impl Server {
    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(Some(&self.admin), method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        self.admin(Method::GET, path, None).await
    }

    /// A feed of one file, pinned by its digest.
    async fn feed(&self, name: &str, kind: &str, file: &str, content: &[u8]) -> Value {
        let path = self.dir.0.join(file);
        std::fs::write(&path, content).unwrap();
        let pin = {
            use sha2::Digest;
            let sum = sha2::Sha256::digest(content);
            sum.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        self.admin(
            Method::PUT,
            &format!("/api/v1/feeds/{name}"),
            Some(json!({"kind": kind, "location": path.display().to_string(), "verification": format!("sha256:{pin}")})),
        )
        .await
    }

    /// Enrolls a host with these attributes; its credential and id.
    async fn host(&self, hostname: &str, attributes: Value) -> EnrollResponse {
        let token = self
            .admin(Method::POST, "/api/v1/tokens", Some(json!({"max_uses": 1})))
            .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let resp = self
            .http
            .post(format!("{}/api/v1/agent/enroll", self.url))
            .json(&json!({"token": token, "hostname": hostname}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let enrolled: EnrollResponse = resp.json().await.unwrap();
        self.admin(
            Method::PUT,
            &format!("/api/v1/hosts/{}/attributes", enrolled.host_id),
            Some(attributes),
        )
        .await;
        enrolled
    }

    async fn inventory(&self, host: &EnrollResponse, inv: &Inventory) {
        let (status, body) = self
            .call(
                Some(&host.credential),
                Method::PUT,
                "/api/v1/agent/inventory",
                Some(serde_json::to_value(inv).unwrap()),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    async fn findings(&self, host: &EnrollResponse) -> Value {
        self.get(&format!("/api/v1/hosts/{}/findings", host.host_id))
            .await
    }

    async fn posture(&self) -> Value {
        self.get("/api/v1/summary/posture").await
    }

    /// The posture once `settled` holds of it. A posture whose working
    /// out was slow (a loaded machine) is given kept while the next is
    /// worked out in the background; this waits that out, at most five
    /// seconds, and gives the last one read.
    async fn posture_when(&self, settled: impl Fn(&Value) -> bool) -> Value {
        let mut p = self.posture().await;
        for _ in 0..100 {
            if settled(&p) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            p = self.posture().await;
        }
        p
    }

    /// The report's CSV of this month.
    async fn report_csv(&self) -> String {
        let month = self.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        self.http
            .get(format!(
                "{}/api/v1/reports/monthly?month={}&format=csv",
                self.url,
                month.strftime("%Y-%m")
            ))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// A binary package built from a source package.
fn built(name: &str, version: &str, source: &str) -> Package {
    Package {
        source: Some(source.into()),
        source_version: Some(version.into()),
        ..package(name, version)
    }
}

fn finding<'a>(found: &'a Value, advisory: &str) -> &'a Value {
    found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["advisory"] == advisory)
        .unwrap_or_else(|| panic!("{advisory} applies: {found:#}"))
}

fn advisories(found: &Value) -> Vec<String> {
    let mut ids: Vec<String> = found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["advisory"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// OSV records: a point release's newer base-files (an ordinary update,
/// as the apt feed makes of an ordinary suite), a security advisory with
/// a CVSS vector (8.1), and one with no severity data at all.
const OSV: &str = r#"[
  {"id": "bookworm:base-files:12.4+deb12u5", "summary": "base-files 12.4+deb12u5 in bookworm",
   "affected": [{"package": {"ecosystem": "Debian:12", "name": "base-files"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "12.4+deb12u5"}]}]}],
   "database_specific": {"patchwell": {"update_type": "update"}}},
  {"id": "PWTEST-CURL", "summary": "curl: a remote overflow",
   "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
   "affected": [{"package": {"ecosystem": "Debian:12", "name": "curl"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "7.88.1-10+deb12u6"}]}]}]},
  {"id": "PWTEST-EXPAT", "summary": "expat: a security fix, no rating given",
   "affected": [{"package": {"ecosystem": "Debian:12", "name": "expat"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.5.0-1+deb12u1"}]}]}]}
]"#;

/// The Debian tracker's JSON, written in its format: sudo's Baron Samedit
/// (in CISA's KEV catalog) rated low, openssh's regreSSHion rated high,
/// zlib's unimportant one, polkit's never affecting bookworm, an open one
/// (no fix) and sid's entries.
const TRACKER: &str = r#"{
  "sudo": {
    "CVE-2021-3156": {"description": "heap-based buffer overflow", "scope": "local", "debianbug": 980424,
      "releases": {
        "bookworm": {"status": "resolved", "repositories": {"bookworm": "1.9.13p3-1+deb12u1"},
          "fixed_version": "1.9.13p3-1+deb12u1", "urgency": "low*"},
        "sid": {"status": "resolved", "repositories": {"sid": "1.9.15p5-3"},
          "fixed_version": "1.9.5p2-1", "urgency": "high"}}}
  },
  "openssh": {
    "CVE-2024-6387": {"description": "regreSSHion", "scope": "remote", "debianbug": 1074433,
      "releases": {
        "bookworm": {"status": "resolved",
          "repositories": {"bookworm": "1:9.2p1-2+deb12u3", "bookworm-security": "1:9.2p1-2+deb12u3"},
          "fixed_version": "1:9.2p1-2+deb12u3", "urgency": "high"}}},
    "CVE-2023-51767": {"description": "row hammer",
      "releases": {
        "bookworm": {"status": "open", "repositories": {"bookworm": "1:9.2p1-2+deb12u3"},
          "urgency": "unimportant", "nodsa": "Minor issue", "nodsa_reason": "ignored"}}}
  },
  "zlib": {
    "CVE-2023-45853": {"description": "minizip overflow",
      "releases": {
        "bookworm": {"status": "resolved", "repositories": {"bookworm": "1:1.2.13.dfsg-1+deb12u1"},
          "fixed_version": "1:1.2.13.dfsg-1+deb12u1", "urgency": "unimportant"}}}
  },
  "policykit-1": {
    "CVE-2021-4034": {"description": "pwnkit",
      "releases": {
        "bookworm": {"status": "resolved", "repositories": {"bookworm": "122-3"},
          "fixed_version": "0", "urgency": "not yet assigned"}}}
  }
}"#;

/// The packages of the hosts below: every one affected.
fn vulnerable() -> Vec<Package> {
    vec![
        package("base-files", "12.4+deb12u4"),
        built("curl", "7.88.1-10+deb12u5", "curl"),
        built("libexpat1", "2.5.0-1", "expat"),
        package("sudo", "1.9.13p3-1"),
        built("openssh-server", "1:9.2p1-2+deb12u2", "openssh"),
        built("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
        package("policykit-1", "122-3"),
    ]
}

/// What the real KEV catalog says, loaded as a feed; None (skipped, with a
/// message) only outside CI when the shared data is missing.
fn kev_catalog() -> Option<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/kev/known_exploited_vulnerabilities.json");
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "{}: {e}, and CI=true",
                path.display()
            );
            eprintln!("skipping: {}: {e}", path.display());
            None
        }
    }
}

#[tokio::test]
async fn an_ordinary_update_is_not_a_finding_and_not_counted() {
    let s = spawn().await;
    s.feed("osv", "osv", "osv.json", OSV.as_bytes()).await;
    let only_updates = s.host("tidy", json!({"criticality": "critical"})).await;
    let mut inv = inventory(
        "tidy",
        s.now(),
        vec![
            package("base-files", "12.4+deb12u4"),
            package("distro-info-data", "0.58+deb12u1"),
        ],
    );
    inv.updates = vec![
        AvailableUpdate {
            manager: Manager::Dpkg,
            name: "base-files".into(),
            arch: "amd64".into(),
            installed: "12.4+deb12u4".into(),
            candidate: "12.4+deb12u5".into(),
            suite: Some("stable".into()),
            codename: Some("bookworm".into()),
            origin: Some("Debian".into()),
            security: false,
        },
        AvailableUpdate {
            manager: Manager::Dpkg,
            name: "distro-info-data".into(),
            arch: "amd64".into(),
            installed: "0.58+deb12u1".into(),
            candidate: "0.58+deb12u2".into(),
            suite: Some("stable".into()),
            codename: Some("bookworm".into()),
            origin: Some("Debian".into()),
            security: false,
        },
    ];
    s.inventory(&only_updates, &inv).await;

    let found = s.findings(&only_updates).await;
    assert_eq!(found["findings"], json!([]), "{found:#}");
    let available = found["available_updates"].as_array().unwrap();
    let names: Vec<(&str, &str, bool)> = available
        .iter()
        .map(|u| {
            (
                u["package"].as_str().unwrap(),
                u["candidate"].as_str().unwrap(),
                u["security"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("base-files", "12.4+deb12u5", false),
            ("distro-info-data", "0.58+deb12u2", false)
        ]
    );
    assert_eq!(
        available[0]["advisories"],
        json!(["bookworm:base-files:12.4+deb12u5"]),
        "the catalog's ordinary update is named beside it"
    );

    // Neither a top risk nor counted against compliance.
    let exposure = s.get("/api/v1/summary/exposure").await;
    assert_eq!(exposure["top"], json!([]), "{exposure:#}");
    let posture = s.posture().await;
    assert_eq!(posture["hosts"], 1);
    assert_eq!(posture["compliant"], 1, "{posture:#}");
    assert_eq!(posture["fully_patched"], 1, "{posture:#}");
    assert_eq!(posture["compliance_percent"], 100.0);
    assert!(posture["compliance_definition"]
        .as_str()
        .unwrap()
        .starts_with("compliant: no open security finding past its deadline"));

    // The advisory itself says it is no security advisory; the updates
    // list keeps its security flag.
    let a = s
        .get("/api/v1/advisories/bookworm:base-files:12.4+deb12u5")
        .await;
    assert_eq!(a["summary"]["security"], false, "{a:#}");
    let updates = s.get("/api/v1/updates").await;
    assert!(updates
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["security"] == false));

    // A second host with a real security finding is one: apart.
    let exposed = s.host("exposed", json!({})).await;
    s.inventory(
        &exposed,
        &inventory(
            "exposed",
            s.now(),
            vec![
                package("base-files", "12.4+deb12u4"),
                built("curl", "7.88.1-10+deb12u5", "curl"),
            ],
        ),
    )
    .await;
    let found = s.findings(&exposed).await;
    assert_eq!(advisories(&found), ["PWTEST-CURL"]);
    assert_eq!(finding(&found, "PWTEST-CURL")["security"], true);
    assert_eq!(
        found["available_updates"][0]["package"], "base-files",
        "{found:#}"
    );
    let exposure = s.get("/api/v1/summary/exposure").await;
    let top: Vec<&str> = exposure["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["PWTEST-CURL"]);
    let posture = s.posture_when(|p| p["hosts"] == 2).await;
    assert_eq!(posture["fully_patched"], 1, "{posture:#}");
    assert_eq!(posture["classes"]["high"]["open"], 1, "{posture:#}");
    assert_eq!(
        posture["classes"]["medium"]["open"], 0,
        "base-files counts in no class: {posture:#}"
    );
}

#[tokio::test]
async fn the_class_follows_the_advisory_then_the_asset_and_names_the_chain() {
    let s = spawn().await;
    s.feed("osv", "osv", "osv.json", OSV.as_bytes()).await;
    let laptop = s
        .host("laptop", json!({"criticality": "medium", "owner": "sales"}))
        .await;
    let server = s
        .host("server", json!({"criticality": "critical", "owner": "ops"}))
        .await;
    for (h, name) in [(&laptop, "laptop"), (&server, "server")] {
        s.inventory(h, &inventory(name, s.now(), vulnerable()))
            .await;
    }
    let on_laptop = s.findings(&laptop).await;
    let curl = finding(&on_laptop, "PWTEST-CURL");
    assert_eq!(curl["class"], "high");
    assert_eq!(curl["class_rule"], "high: CVSS 8.1");
    assert_eq!(curl["class_default"], false);
    let expat = finding(&on_laptop, "PWTEST-EXPAT");
    assert_eq!(expat["class"], "medium");
    assert_eq!(
        expat["class_rule"],
        "medium: default for a security update with no severity data"
    );
    assert_eq!(expat["class_default"], true);

    let on_server = s.findings(&server).await;
    assert_eq!(
        finding(&on_server, "PWTEST-CURL")["class_rule"],
        "high: CVSS 8.1; raised to critical: host criticality critical"
    );
    assert_eq!(finding(&on_server, "PWTEST-CURL")["class"], "critical");
    assert_eq!(finding(&on_server, "PWTEST-EXPAT")["class"], "high");

    // An owner marked high risk raises the laptop's too; the rule is a
    // setting that can turn it off again.
    s.admin(
        Method::PUT,
        "/api/v1/owners/sales",
        Some(json!({"risk": "high"})),
    )
    .await;
    let on_laptop = s.findings(&laptop).await;
    assert_eq!(
        finding(&on_laptop, "PWTEST-CURL")["class_rule"],
        "high: CVSS 8.1; raised to critical: owner of high risk"
    );
    s.admin(
        Method::PUT,
        "/api/v1/settings/classification",
        Some(json!({"raise_for_high_risk_owners": false, "unrated": "low"})),
    )
    .await;
    let on_laptop = s.findings(&laptop).await;
    assert_eq!(finding(&on_laptop, "PWTEST-CURL")["class"], "high");
    assert_eq!(
        finding(&on_laptop, "PWTEST-EXPAT")["class_rule"],
        "low: default for a security update with no severity data"
    );
    let setting = s.get("/api/v1/settings/classification").await;
    assert_eq!(setting["effective"]["raise_for_high_risk_owners"], false);
}

#[tokio::test]
async fn the_tracker_json_gives_cve_ids_urgency_and_kev() {
    let Some(kev) = kev_catalog() else { return };
    let s = spawn().await;
    let report = s
        .feed(
            "debian-cves",
            "debian-tracker-json",
            "tracker.json",
            TRACKER.as_bytes(),
        )
        .await;
    assert_eq!(report["records"], 3, "{report:#}");
    s.feed("kev", "kev", "kev.json", &kev).await;
    let laptop = s.host("laptop", json!({"criticality": "low"})).await;
    s.inventory(&laptop, &inventory("laptop", s.now(), vulnerable()))
        .await;
    let found = s.findings(&laptop).await;
    assert_eq!(
        advisories(&found),
        [
            "DEBIAN-CVE-2021-3156-bookworm",
            "DEBIAN-CVE-2023-45853-bookworm",
            "DEBIAN-CVE-2024-6387-bookworm",
        ],
        "polkit was never affected, the open one has no fix: {found:#}"
    );
    let sudo = finding(&found, "DEBIAN-CVE-2021-3156-bookworm");
    assert_eq!(sudo["cves"], json!(["CVE-2021-3156"]));
    assert_eq!(sudo["severity"], "low", "Debian's urgency, the * dropped");
    assert_eq!(sudo["kev"], true, "CISA lists Baron Samedit");
    assert_eq!(sudo["class"], "high");
    assert_eq!(
        sudo["class_rule"],
        "low: vendor severity low; raised to high: known exploited (CISA KEV)"
    );
    let ssh = finding(&found, "DEBIAN-CVE-2024-6387-bookworm");
    assert_eq!(ssh["severity"], "high");
    assert_eq!(ssh["kev"], false);
    assert_eq!(ssh["class"], "high");
    assert_eq!(ssh["fixed"], "1:9.2p1-2+deb12u3");
    let zlib = finding(&found, "DEBIAN-CVE-2023-45853-bookworm");
    assert_eq!(zlib["severity"], "negligible");
    assert_eq!(zlib["class"], "low");
    // Known exploited first among the top risks, then by severity.
    let exposure = s.get("/api/v1/summary/exposure").await;
    let top: Vec<&str> = exposure["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        top,
        [
            "DEBIAN-CVE-2021-3156-bookworm",
            "DEBIAN-CVE-2024-6387-bookworm",
            "DEBIAN-CVE-2023-45853-bookworm",
        ]
    );
    // Broken input is refused whole, naming the file, and nothing is lost.
    let path = s.dir.0.join("broken.json");
    std::fs::write(&path, b"{\"openssh\": [1]}").unwrap();
    let (status, body) = s
        .call(
            Some(&s.admin),
            Method::PUT,
            "/api/v1/feeds/debian-cves",
            Some(json!({"kind": "debian-tracker-json", "location": path.display().to_string(), "verification": format!("sha256:{}", {
                use sha2::Digest;
                sha2::Sha256::digest(b"{\"openssh\": [1]}").iter().map(|b| format!("{b:02x}")).collect::<String>()
            })})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a valid Debian security tracker JSON feed"),
        "{body}"
    );
    assert_eq!(advisories(&s.findings(&laptop).await).len(), 3);
}

#[tokio::test]
async fn compliance_and_fixed_counts_move_at_the_inventory_that_fixes() {
    let s = spawn().await;
    s.feed("osv", "osv", "osv.json", OSV.as_bytes()).await;
    let hosts = [
        s.host("alpha", json!({"criticality": "high"})).await,
        s.host("beta", json!({"criticality": "high"})).await,
    ];
    let before = vec![
        package("base-files", "12.4+deb12u4"),
        built("curl", "7.88.1-10+deb12u5", "curl"),
    ];
    // The inventory that shows a finding records its first detection: no
    // one reads the hosts' findings before their deadlines pass.
    for (h, name) in hosts.iter().zip(["alpha", "beta"]) {
        s.inventory(h, &inventory(name, s.now(), before.clone()))
            .await;
    }
    let posture = s.posture().await;
    assert_eq!(
        (&posture["compliant"], &posture["fully_patched"]),
        (&json!(2), &json!(0)),
        "within their deadlines, not patched: {posture:#}"
    );
    // Eight days on the High deadline (7 days) has passed on both.
    s.advance(8 * 86_400);
    let posture = s.posture_when(|p| p["breached_hosts"] == 2).await;
    assert_eq!(posture["compliant"], 0, "{posture:#}");
    assert_eq!(posture["compliance_percent"], 0.0);
    assert_eq!(posture["breached_hosts"], 2);

    // alpha's agent installs the fix and reports its inventory: the
    // posture and the report move at once (the kept posture is younger
    // than a minute, but the fleet changed).
    s.advance(10);
    let after = vec![
        package("base-files", "12.4+deb12u4"),
        built("curl", "7.88.1-10+deb12u6", "curl"),
    ];
    s.inventory(&hosts[0], &inventory("alpha", s.now(), after))
        .await;
    let posture = s.posture_when(|p| p["fully_patched"] == 1).await;
    assert_eq!(posture["compliant"], 1, "{posture:#}");
    assert_eq!(posture["compliance_percent"], 50.0);
    assert_eq!(posture["fully_patched"], 1);
    assert_eq!(posture["classes"]["high"]["open"], 1);
    let csv = s.report_csv().await;
    assert!(
        csv.contains("\nremediated,high,1,deadline met 0;"),
        "one High finding fixed, past its deadline: {csv}"
    );
    assert!(csv.contains("\nsummary,fully patched hosts,1,"), "{csv}");
    // The base-files update still waits on alpha: no finding.
    assert_eq!(
        advisories(&s.findings(&hosts[0]).await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn an_ordinary_suites_version_carrying_a_security_fix_is_a_security_update() {
    let s = spawn().await;
    // As the apt feed makes of bookworm-security: the fix, and the binary
    // packages it ships in.
    let osv = r#"[{"id": "bookworm-security:openssh:1:9.2p1-2+deb12u9",
      "summary": "openssh 1:9.2p1-2+deb12u9 in bookworm-security",
      "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssh"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:9.2p1-2+deb12u9"}]}],
        "ecosystem_specific": {"binaries": [{"binary_name": "openssh-client"}]}}]},
      {"id": "bookworm:base-files:12.4+deb12u5",
       "affected": [{"package": {"ecosystem": "Debian:12", "name": "base-files"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "12.4+deb12u5"}]}]}],
       "database_specific": {"patchwell": {"update_type": "update"}}}]"#;
    s.feed("apt-like", "osv", "apt.json", osv.as_bytes()).await;
    let host = s.host("laptop", json!({})).await;
    let mut inv = inventory(
        "laptop",
        s.now(),
        vec![
            built("openssh-client", "1:9.2p1-2+deb12u6", "openssh"),
            package("base-files", "12.4+deb12u4"),
        ],
    );
    // The point release carries a later version than the security suite:
    // apt offers it, from an ordinary suite.
    let offer = |name: &str, installed: &str, candidate: &str| AvailableUpdate {
        manager: Manager::Dpkg,
        name: name.into(),
        arch: "amd64".into(),
        installed: installed.into(),
        candidate: candidate.into(),
        suite: Some("stable".into()),
        codename: Some("bookworm".into()),
        origin: Some("Debian".into()),
        security: false,
    };
    inv.updates = vec![
        offer("base-files", "12.4+deb12u4", "12.4+deb12u5"),
        offer("openssh-client", "1:9.2p1-2+deb12u6", "1:9.2p1-2+deb12u10"),
    ];
    s.inventory(&host, &inv).await;
    let found = s.findings(&host).await;
    assert_eq!(
        advisories(&found),
        ["bookworm-security:openssh:1:9.2p1-2+deb12u9"]
    );
    assert_eq!(
        finding(&found, "bookworm-security:openssh:1:9.2p1-2+deb12u9")["offered"],
        "1:9.2p1-2+deb12u10"
    );
    let updates = s.get("/api/v1/updates").await;
    let rows: Vec<(&str, bool, bool, &Value)> = updates
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["title"].as_str().unwrap(),
                u["security"].as_bool().unwrap(),
                u["security_suite"].as_bool().unwrap(),
                &u["fixes"],
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "openssh-client=1:9.2p1-2+deb12u10",
                true,
                false,
                &json!(["bookworm-security:openssh:1:9.2p1-2+deb12u9"])
            ),
            ("base-files=12.4+deb12u5", false, false, &json!([])),
        ]
    );
}
