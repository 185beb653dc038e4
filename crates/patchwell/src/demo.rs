//! `patchwell demo`: the whole cycle on one machine, in one command.
//!
//! It starts a server on a fresh SQLite database in a temporary directory,
//! loads the advisory data the machine has (its apt lists, verified with
//! the keyring apt uses, and any data directories given), enrolls this
//! machine through the agent's code in read-only mode, adds a simulated
//! fleet whose inventories are sampled from this machine's real packages
//! and apt lists, approves the pending security updates and runs a pilot
//! rollout on the simulated hosts. Then it prints where the console is and
//! who to sign in as, and keeps running until interrupted.
//!
//! A key design decision made here is that the demo goes through the same
//! doors as everyone else: the HTTP API with the first administrator's
//! token, agent enrollment with a token, inventories and step reports
//! over the agent routes, signed jobs verified with the server's key. The
//! simulated agents only stand in for `apt-get`: they report the steps a
//! real agent reports, with a short pause between them, and a few of them
//! (one in fifty, tagged `flaky`) fail their installs, saying so.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent::{Root, SystemRunner};
use anyhow::{bail, Context};
use clap::Args;
use jiff::Timestamp;
use patchwell_core::advisory::{Advisory, Ecosystem, Event, PackageKind};
use protocol::job::{Change, JobKind, SignedJob, Step, StepReport, StepsRequest};
use protocol::{AvailableUpdate, Heartbeat, HeartbeatResponse, Inventory, Manager};
use serde_json::{json, Value};
use versions::deb;

use crate::admin::Client;

/// `patchwell demo`
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The console's address. Loopback is served over plain HTTP; any other
    /// address over HTTPS with a certificate from the server's own CA.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How many simulated hosts to add.
    #[arg(long, default_value_t = 300)]
    hosts: usize,
    /// A directory of advisory data to load besides the apt lists, laid out
    /// as ../shared/data is (kev/, endoflife/, debian-security-tracker/
    /// with DSA.list, DLA.list and the tracker's JSON as *.json,
    /// alpine-secdb/, ubuntu-osv/); repeatable.
    #[arg(long = "data", value_name = "DIR")]
    data: Vec<PathBuf>,
    /// Keep the server's data here (and keep it afterwards) instead of in a
    /// temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Removes the temporary data directory when the demo ends.
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.hosts > 5000 {
        bail!(
            "--hosts {}: the demo simulates at most 5000 hosts",
            args.hosts
        );
    }
    let (data_dir, _scratch) = match &args.data_dir {
        // The demo builds its fleet from nothing; on an earlier run's data
        // it would enroll everything twice.
        Some(dir) if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) => bail!(
            "--data-dir {}: the directory is not empty; the demo starts from an empty or new \
             directory (to look at an earlier demo's data, run `patchwell server --data-dir {}`)",
            dir.display(),
            dir.display()
        ),
        Some(dir) => (dir.clone(), Scratch(None)),
        None => {
            let nanos = Timestamp::now().as_nanosecond();
            let dir = std::env::temp_dir().join(format!(
                "patchwell-demo-{}-{}",
                std::process::id(),
                nanos % 1_000_000_000
            ));
            (dir.clone(), Scratch(Some(dir)))
        }
    };
    // Everything the machine offers is read before the server starts, so
    // that a machine without apt lists is told at once.
    eprintln!("demo: reading this machine's inventory and apt lists");
    let machine = tokio::task::spawn_blocking(|| {
        agent::inventory::collect(&Root::new("/"), &SystemRunner, Timestamp::now())
    })
    .await?
    .context("collecting this machine's inventory")?;
    if machine.packages.is_empty() {
        bail!("this machine's dpkg database lists no package: the demo samples its fleet from it");
    }
    let offers = {
        let names: Vec<String> = machine.packages.iter().map(|p| p.name.clone()).collect();
        tokio::task::spawn_blocking(move || {
            let set: HashSet<&str> = names.iter().map(String::as_str).collect();
            let mut warnings = Vec::new();
            agent::apt::offers(&Root::new("/"), &set, &mut warnings)
        })
        .await?
    };

    // HTTPS, as a deployment serves it, with the server's own CA: the
    // console a browser sees is the one an IT team would run.
    let options = server::ServeOptions {
        data_dir: data_dir.clone(),
        listen: args.listen,
        database_url: None,
        transport: server::Transport::GeneratedTls {
            names: vec!["localhost".into(), "127.0.0.1".into()],
        },
        config: server::Config {
            // The simulated fleet checks in every few seconds, well above
            // what a real agent does.
            host_requests_per_minute: 100_000,
            feed_refresh: None,
            ..server::Config::default()
        },
        audit_anchor: server::audit_anchor::AnchorOptions::default(),
    };
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve_until(
        options,
        move |address| {
            let _ = bound_tx.send(address);
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let address = match bound_rx.await {
        Ok(a) => a,
        Err(_) => {
            return match server.await? {
                Err(e) => Err(e.context("starting the demo's server")),
                Ok(()) => bail!("the demo's server stopped before it listened"),
            }
        }
    };
    let ca_path = data_dir.join("tls/ca.pem");
    let ca = std::fs::read_to_string(&ca_path).context("reading the server's CA certificate")?;
    let api = format!("https://127.0.0.1:{}", address.port());
    let ca_pem = Some(ca);
    let console = if address.ip().is_unspecified() || address.ip().is_loopback() {
        format!("{api}/console")
    } else {
        format!("https://{address}/console")
    };
    let admin_token = read_trimmed(&data_dir.join("admin-token"))?;
    let password = read_trimmed(&data_dir.join("admin-password"))?;
    let mut builder = reqwest::Client::builder().pool_max_idle_per_host(32);
    if let Some(pem) = &ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    let http = builder.build()?;
    let admin = Client::over(http.clone(), &api, admin_token);

    eprintln!("demo: loading advisory data");
    let dsa = load_feeds(&admin, &args.data).await?;

    let stop = Arc::new(AtomicBool::new(false));
    eprintln!("demo: enrolling this machine (read-only)");
    let own = enroll_machine(&admin, &api, ca_pem.clone(), &data_dir, Arc::clone(&stop)).await?;

    eprintln!("demo: adding {} simulated hosts", args.hosts);
    let mut fleet = simulate_fleet(&admin, &http, &api, &machine, &offers, args.hosts).await?;
    let legacy = legacy_packages(&dsa, &machine).await?;
    if dsa.is_empty() {
        eprintln!(
            "demo: no Debian DSA list among the --data directories \
             (debian-security-tracker/DSA.list); the demo has no Debian 11 servers"
        );
    } else if legacy.is_empty() {
        eprintln!(
            "demo: the DSA list fixes no Debian 11 source package twice that this machine's \
             apt lists ship as a binary of the same name; the demo has no Debian 11 servers"
        );
    } else {
        eprintln!(
            "demo: adding {LEGACY_HOSTS} Debian 11 servers with {} packages at their versions \
             of the first Debian 11 DSA that fixed them",
            legacy.len()
        );
        fleet.extend(legacy_servers(&admin, &http, &api, &machine, &legacy).await?);
    }
    let agents = tokio::spawn(run_agents(
        http.clone(),
        api.clone(),
        fleet,
        Arc::clone(&stop),
    ));

    eprintln!("demo: a policy, a baseline, an exemption, the procedure and a report schedule");
    plan_the_fleet(&admin).await?;
    eprintln!("demo: approving the security updates and starting a pilot rollout");
    start_pilot(&admin).await?;

    eprintln!(
        "demo: the console's certificate is signed by the server's own CA, {} \
         (a browser warns until it is trusted)",
        ca_path.display()
    );
    println!("console: {console} user: admin password: {password}");
    eprintln!(
        "demo: this machine is host {own}; stop the demo with Ctrl-C{}",
        if args.data_dir.is_some() {
            ""
        } else {
            " (its data directory is removed)"
        }
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        r = agents => { r??; }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}

fn read_trimmed(path: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned())
}

// ---------------------------------------------------------------------------
// Advisory data.

/// The keyring apt verifies a lists file with: the `Signed-By` of the
/// machine's deb822 sources, else Debian's archive keyring.
fn apt_keyring() -> Option<PathBuf> {
    let mut found = None;
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "sources") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("Signed-By:") {
                    let v = PathBuf::from(v.trim());
                    if v.is_file() {
                        found.get_or_insert(v);
                    }
                }
            }
        }
    }
    found.or_else(|| {
        let debian = PathBuf::from("/usr/share/keyrings/debian-archive-keyring.gpg");
        debian.is_file().then_some(debian)
    })
}

/// Defines and imports one feed; a feed that fails is reported and left
/// out, since the demo still has something to show without it.
async fn add_feed(
    api: &Client,
    name: &str,
    kind: &str,
    location: &Path,
    verification: String,
) -> bool {
    let body = json!({"kind": kind, "location": location.display().to_string(), "verification": verification});
    match api
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/feeds/{name}"),
            Some(body),
        )
        .await
    {
        Ok(report) => {
            eprintln!(
                "demo: feed {name} ({kind}): {} records",
                report["records"].as_u64().unwrap_or(0)
            );
            true
        }
        Err(e) => {
            eprintln!("demo: feed {name} left out: {e:#}");
            false
        }
    }
}

/// The feeds of the machine's apt lists and of each data directory; returns
/// the advisories of the Debian DSA lists among them, as parsed.
async fn load_feeds(api: &Client, data: &[PathBuf]) -> anyhow::Result<Vec<Advisory>> {
    let mut dsa = Vec::new();
    let lists = Path::new(agent::apt::LISTS_DIR);
    match apt_keyring() {
        Some(keyring) => {
            let mut releases: Vec<PathBuf> = std::fs::read_dir(lists)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            releases.retain(|p| p.to_string_lossy().ends_with("_InRelease"));
            releases.sort();
            for release in releases {
                let info = agent::apt::parse_release(
                    &std::fs::read_to_string(&release).unwrap_or_default(),
                );
                let Some(codename) = info.codename else {
                    continue;
                };
                add_feed(
                    api,
                    &format!("apt-{codename}"),
                    "apt",
                    &release,
                    format!("openpgp:{}", keyring.display()),
                )
                .await;
            }
        }
        None => eprintln!("demo: no apt keyring found; the apt lists are not loaded as feeds"),
    }
    for dir in data {
        if !dir.is_dir() {
            bail!("--data {}: not a directory", dir.display());
        }
        let mut found: Vec<(String, &str, PathBuf)> = Vec::new();
        let kev = dir.join("kev/known_exploited_vulnerabilities.json");
        if kev.is_file() {
            found.push(("kev".into(), "kev", kev));
        }
        for (sub, kind) in [
            ("endoflife", "endoflife"),
            ("ubuntu-osv", "osv"),
            ("alpine-secdb", "alpine-secdb"),
        ] {
            let p = dir.join(sub);
            if p.is_dir() {
                found.push((sub.into(), kind, p));
            }
        }
        for list in ["DSA", "DLA"] {
            let p = dir.join(format!("debian-security-tracker/{list}.list"));
            if p.is_file() {
                found.push((list.to_lowercase(), "debian-tracker", p));
            }
        }
        // The tracker's JSON (its data/json, saved under any name ending
        // in .json): CVEs, urgencies and fixed versions of every release.
        let mut json: Vec<PathBuf> = std::fs::read_dir(dir.join("debian-security-tracker"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        json.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"));
        json.sort();
        for (n, p) in json.into_iter().enumerate() {
            let name = if n == 0 {
                "debian-cves".to_owned()
            } else {
                format!("debian-cves-{n}")
            };
            found.push((name, "debian-tracker-json", p));
        }
        if found.is_empty() {
            bail!("--data {}: holds none of kev/, endoflife/, ubuntu-osv/, alpine-secdb/, debian-security-tracker/", dir.display());
        }
        for (name, kind, location) in found {
            // The operator pointed at these files: their digest now is
            // what is pinned.
            let parsed = server::feeds::FeedKind::parse(kind).map_err(anyhow::Error::msg)?;
            let documents = server::feeds::fetch(parsed, &location.display().to_string()).await?;
            let digest = server::feeds::digest(&documents);
            let added = add_feed(api, &name, kind, &location, format!("sha256:{digest}")).await;
            if added && name == "dsa" {
                for d in &documents {
                    let text = String::from_utf8_lossy(&d.content);
                    if let Ok(parsed) = feeds::debian_tracker::parse(&d.name, &text) {
                        dsa.extend(parsed.items);
                    }
                }
            }
        }
    }
    Ok(dsa)
}

// ---------------------------------------------------------------------------
// This machine, read-only.

/// Enrolls this machine through the agent's own code and keeps checking
/// it in, read-only, every minute on a thread of its own.
async fn enroll_machine(
    api: &Client,
    server: &str,
    ca_pem: Option<String>,
    data_dir: &Path,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<String> {
    let token = api
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"max_uses": 1, "expires_in_hours": 1, "group": "servers"})),
        )
        .await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let state_dir = data_dir.join("agent");
    let server = server.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let enrolled = (|| -> anyhow::Result<(agent::client::Client, String)> {
            std::fs::create_dir_all(&state_dir)?;
            let root = Root::new("/");
            let inventory = agent::inventory::collect(&root, &SystemRunner, Timestamp::now())?;
            let client = agent::client::Client::new(&server, ca_pem.as_deref(), None)?;
            let answer = client.enroll(&token, &inventory.host.hostname)?;
            let record = agent::state::Enrollment {
                server: server.clone(),
                host_id: answer.host_id.clone(),
                credential: answer.credential,
                ca_cert: ca_pem.clone(),
                job_key: Some(answer.job_key),
            };
            agent::state::save(&state_dir, &record)?;
            let client =
                agent::client::Client::new(&server, ca_pem.as_deref(), Some(record.credential))?;
            agent::checkin::check_in_read_only(
                &client,
                &state_dir,
                &root,
                &SystemRunner,
                &Timestamp::now,
            )?;
            Ok((client, answer.host_id))
        })();
        let client = match enrolled {
            Ok((client, id)) => {
                let _ = tx.send(Ok(id));
                client
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let root = Root::new("/");
        let mut waited = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_secs(1));
            waited += Duration::from_secs(1);
            if waited >= Duration::from_secs(60) {
                waited = Duration::ZERO;
                if let Err(e) = agent::checkin::check_in_read_only(
                    &client,
                    &state_dir,
                    &root,
                    &SystemRunner,
                    &Timestamp::now,
                ) {
                    eprintln!("demo: this machine's check-in failed: {e}");
                }
            }
        }
    });
    rx.await?.context("enrolling this machine")
}

// ---------------------------------------------------------------------------
// The simulated fleet.

/// A small deterministic generator: the same fleet every run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }
}

/// One simulated host: identity, credential, the server's job key, and the
/// inventory it reports.
struct SimHost {
    index: usize,
    id: String,
    credential: String,
    key: String,
    inventory: Inventory,
    /// What an install moves a package's source version to.
    sources: Arc<Sources>,
}

/// The source version of each (package, architecture, version) the apt
/// lists offer, shared by the fleet.
type Sources = HashMap<(String, String, String), String>;

/// Moves a simulated package to `version`, and its source version with it
/// (advisories name source packages, and match by the source's version).
fn move_to(p: &mut protocol::Package, version: &str, sources: &Sources) {
    p.version = version.to_owned();
    let offered = (p.name.clone(), p.arch.clone(), p.version.clone());
    p.source_version = Some(
        sources
            .get(&offered)
            .cloned()
            .unwrap_or_else(|| p.version.clone()),
    );
}

const DEPARTMENTS: [&str; 5] = ["finance", "engineering", "sales", "operations", "hr"];
const LAPTOPS: [&str; 3] = [
    "Dell Latitude 7440",
    "Lenovo ThinkPad T14 Gen 4",
    "HP EliteBook 840 G10",
];
const SERVERS: [&str; 2] = ["Dell PowerEdge R650", "HPE ProLiant DL360 Gen10"];

/// A host's inventory: this machine's packages, each one at the oldest
/// version the apt lists offer in about half the hosts (so they miss the
/// updates published since), and the updates those lists then offer.
fn sample_inventory(
    machine: &Inventory,
    oldest: &HashMap<(String, String), String>,
    newest: &HashMap<(String, String), (String, &agent::apt::Offer)>,
    sources: &Sources,
    dice: &mut Dice,
    hostname: &str,
    model: &str,
) -> Inventory {
    let mut inv = machine.clone();
    inv.collected_at = Timestamp::now();
    inv.host.hostname = hostname.to_owned();
    inv.host.machine_id = None;
    inv.host.model = Some(model.to_owned());
    inv.host.interfaces.clear();
    inv.neighbours.clear();
    inv.warnings.clear();
    inv.reboot.required = false;
    inv.reboot.packages.clear();
    let behind = dice.below(100) < 70;
    for p in &mut inv.packages {
        let key = (p.name.clone(), p.arch.clone());
        if let Some(old) = oldest.get(&key) {
            if behind && dice.below(100) < 60 && is_older(old, &p.version) {
                move_to(p, old, sources);
            }
        }
    }
    inv.updates = updates_for(&inv, newest);
    inv
}

fn is_older(a: &str, b: &str) -> bool {
    deb::compare_str(a, b).is_ok_and(|o| o.is_lt())
}

/// The updates the apt lists offer a host with these packages.
fn updates_for(
    inv: &Inventory,
    newest: &HashMap<(String, String), (String, &agent::apt::Offer)>,
) -> Vec<AvailableUpdate> {
    inv.packages
        .iter()
        .filter(|p| p.manager == Manager::Dpkg && p.state.is_installed())
        .filter_map(|p| {
            let (version, offer) = newest.get(&(p.name.clone(), p.arch.clone()))?;
            is_older(&p.version, version).then(|| AvailableUpdate {
                manager: Manager::Dpkg,
                name: p.name.clone(),
                arch: p.arch.clone(),
                installed: p.version.clone(),
                candidate: version.clone(),
                suite: offer.release.suite.clone(),
                codename: offer.release.codename.clone(),
                origin: offer.release.origin.clone(),
                security: offer.release.is_security(),
            })
        })
        .collect()
}

async fn simulate_fleet(
    api: &Client,
    http: &reqwest::Client,
    base: &str,
    machine: &Inventory,
    offers: &[agent::apt::Offer],
    count: usize,
) -> anyhow::Result<Vec<SimHost>> {
    let sources: Arc<Sources> = Arc::new(
        offers
            .iter()
            .map(|o| {
                let key = (o.name.clone(), o.arch.clone(), o.version.clone());
                (key, o.source_version.clone())
            })
            .collect(),
    );
    // Per package: the oldest version offered, and the newest with the
    // release that offers it (a security suite wins a tie, as apt's
    // candidate does for the agent).
    let mut oldest: HashMap<(String, String), String> = HashMap::new();
    let mut newest: HashMap<(String, String), (String, &agent::apt::Offer)> = HashMap::new();
    for o in offers {
        let key = (o.name.clone(), o.arch.clone());
        match oldest.get(&key) {
            Some(v) if !is_older(&o.version, v) => {}
            _ => {
                oldest.insert(key.clone(), o.version.clone());
            }
        }
        let replace = match newest.get(&key) {
            None => true,
            Some((v, at)) => {
                is_older(v, &o.version)
                    || (v == &o.version && o.release.is_security() && !at.release.is_security())
            }
        };
        if replace {
            newest.insert(key, (o.version.clone(), o));
        }
    }
    let token = api
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"max_uses": count.max(1), "expires_in_hours": 1})),
        )
        .await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut hosts = Vec::with_capacity(count);
    let mut dice = Dice(0x05ee_d0ff_1ee7);
    for i in 0..count {
        let server = i % 10 == 0;
        let department = *dice.pick(&DEPARTMENTS);
        let hostname = if server {
            format!("sim-srv-{i:04}")
        } else {
            format!("sim-ws-{i:04}")
        };
        let model = if server {
            *dice.pick(&SERVERS)
        } else {
            *dice.pick(&LAPTOPS)
        };
        let inventory = sample_inventory(
            machine, &oldest, &newest, &sources, &mut dice, &hostname, model,
        );
        let enrolled = http
            .post(format!("{base}/api/v1/agent/enroll"))
            .json(&json!({"token": token, "hostname": hostname}))
            .send()
            .await?
            .error_for_status()
            .context("enrolling a simulated host")?
            .json::<Value>()
            .await?;
        let id = enrolled["host_id"].as_str().unwrap_or_default().to_owned();
        let credential = enrolled["credential"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let key = enrolled["job_key"].as_str().unwrap_or_default().to_owned();
        let criticality = if server {
            *dice.pick(&["high", "critical"])
        } else {
            *dice.pick(&["low", "medium", "medium", "high"])
        };
        let mut tags: Vec<&str> = if server {
            vec!["simulated", "server"]
        } else if i % 3 == 0 {
            vec!["simulated", "desktop"]
        } else {
            vec!["simulated", "laptop"]
        };
        // The hosts whose installs the demo fails say so.
        if fails_installs(i) {
            tags.push("flaky");
        }
        api.call(
            reqwest::Method::PUT,
            &format!("/api/v1/hosts/{id}/attributes"),
            Some(json!({
                "group": if server { "servers" } else { department },
                "criticality": criticality,
                "owner": format!("{department}-lead@example.org"),
                "department": department,
                "tags": tags,
            })),
        )
        .await?;
        let host = SimHost {
            index: i,
            id,
            credential,
            key,
            inventory,
            sources: Arc::clone(&sources),
        };
        put_inventory(http, base, &host).await?;
        hosts.push(host);
    }
    Ok(hosts)
}

// ---------------------------------------------------------------------------
// Legacy Debian 11 servers.

/// How many Debian 11 servers the demo adds when it has the DSA list.
const LEGACY_HOSTS: usize = 8;

/// At most this many packages on a Debian 11 server.
const LEGACY_PACKAGES: usize = 40;

/// The packages of the demo's Debian 11 servers, from the DSA list itself:
/// each source package that two or more Debian 11 DSAs fixed, at the
/// version the first of them fixed it in, so that every later DSA for it
/// applies. Only sources that Debian also ships as a binary package of the
/// same name (in this machine's apt lists) are taken, with that binary's
/// architecture. The sources with the most DSAs come first.
async fn legacy_packages(
    dsa: &[Advisory],
    machine: &Inventory,
) -> anyhow::Result<Vec<protocol::Package>> {
    let Ok(bullseye) = Ecosystem::parse("Debian:11") else {
        return Ok(Vec::new());
    };
    // Per source package: the version each DSA fixed it in.
    let mut fixed: HashMap<String, Vec<String>> = HashMap::new();
    for advisory in dsa.iter().filter(|a| a.withdrawn.is_none()) {
        for affected in &advisory.affected {
            if affected.ecosystem != bullseye || affected.kind != PackageKind::Source {
                continue;
            }
            let version = affected
                .ranges
                .iter()
                .flatten()
                .filter_map(|e| match e {
                    Event::Fixed(v) if deb::Version::parse(v).is_ok() => Some(v),
                    _ => None,
                })
                .max_by(|a, b| deb::compare_str(a, b).unwrap_or(std::cmp::Ordering::Equal));
            if let Some(v) = version {
                fixed
                    .entry(affected.package.clone())
                    .or_default()
                    .push(v.clone());
            }
        }
    }
    // The earliest fix, and how many DSAs fixed it later.
    let mut candidates: Vec<(String, String, usize)> = fixed
        .into_iter()
        .filter_map(|(source, versions)| {
            let first = versions
                .iter()
                .min_by(|a, b| deb::compare_str(a, b).unwrap_or(std::cmp::Ordering::Equal))?
                .clone();
            let later = versions.iter().filter(|v| is_older(&first, v)).count();
            (later > 0).then_some((source, first, later))
        })
        .collect();
    let names: Vec<String> = candidates.iter().map(|c| c.0.clone()).collect();
    let shipped = tokio::task::spawn_blocking(move || {
        let set: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut warnings = Vec::new();
        agent::apt::offers(&Root::new("/"), &set, &mut warnings)
    })
    .await?;
    let mut arch_of: HashMap<&str, &str> = HashMap::new();
    for o in &shipped {
        // The machine's own architecture wins over `all`.
        if o.arch == machine.host.arch || !arch_of.contains_key(o.name.as_str()) {
            arch_of.insert(&o.name, &o.arch);
        }
    }
    candidates.retain(|c| arch_of.contains_key(c.0.as_str()));
    candidates.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    candidates.truncate(LEGACY_PACKAGES);
    Ok(candidates
        .into_iter()
        .map(|(source, version, _)| protocol::Package {
            manager: Manager::Dpkg,
            arch: arch_of
                .get(source.as_str())
                .copied()
                .unwrap_or("all")
                .to_owned(),
            name: source.clone(),
            version: version.clone(),
            source: Some(source),
            source_version: Some(version),
            state: protocol::PackageState::Installed,
            held: false,
        })
        .collect())
}

/// Adds the Debian 11 servers: a group of their own (`legacy`), outside
/// the simulated fleet's policies, baselines and rollout; no apt lists
/// offer them updates, so their findings stay open. Most run most of the
/// packages; some are of high criticality, one is internet-facing.
async fn legacy_servers(
    api: &Client,
    http: &reqwest::Client,
    base: &str,
    machine: &Inventory,
    packages: &[protocol::Package],
) -> anyhow::Result<Vec<SimHost>> {
    let token = api
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"max_uses": LEGACY_HOSTS, "expires_in_hours": 1})),
        )
        .await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut hosts = Vec::with_capacity(LEGACY_HOSTS);
    let mut dice = Dice(0x0b11_5e1e);
    for k in 0..LEGACY_HOSTS {
        let hostname = format!("legacy-srv-{:02}", k + 1);
        let mut inventory = machine.clone();
        inventory.collected_at = Timestamp::now();
        inventory.host.hostname = hostname.clone();
        inventory.host.machine_id = None;
        inventory.host.model = Some((*dice.pick(&SERVERS)).to_owned());
        inventory.host.interfaces.clear();
        inventory.neighbours.clear();
        inventory.warnings.clear();
        inventory.reboot.required = false;
        inventory.reboot.packages.clear();
        inventory.os = protocol::OsRelease {
            id: "debian".into(),
            version_id: Some("11".into()),
            codename: Some("bullseye".into()),
            pretty_name: Some("Debian GNU/Linux 11 (bullseye)".into()),
            id_like: Vec::new(),
        };
        // Each server lacks about a quarter of the packages.
        inventory.packages = packages
            .iter()
            .filter(|_| dice.below(100) >= 25)
            .cloned()
            .collect();
        inventory.updates.clear();
        let enrolled = http
            .post(format!("{base}/api/v1/agent/enroll"))
            .json(&json!({"token": token, "hostname": hostname}))
            .send()
            .await?
            .error_for_status()
            .context("enrolling a Debian 11 server")?
            .json::<Value>()
            .await?;
        let id = enrolled["host_id"].as_str().unwrap_or_default().to_owned();
        let credential = enrolled["credential"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let key = enrolled["job_key"].as_str().unwrap_or_default().to_owned();
        let mut tags = vec!["legacy", "server"];
        if k == 1 {
            tags.push("internet-facing");
        }
        api.call(
            reqwest::Method::PUT,
            &format!("/api/v1/hosts/{id}/attributes"),
            Some(json!({
                "group": "legacy",
                "criticality": if k % 3 == 0 { "high" } else { "medium" },
                "owner": "operations-lead@example.org",
                "department": "operations",
                "tags": tags,
            })),
        )
        .await?;
        let host = SimHost {
            // Past the simulated fleet's indexes: never one that fails.
            index: 100_000 + k * 50,
            id,
            credential,
            key,
            inventory,
            sources: Arc::default(),
        };
        put_inventory(http, base, &host).await?;
        hosts.push(host);
    }
    Ok(hosts)
}

async fn put_inventory(http: &reqwest::Client, base: &str, host: &SimHost) -> anyhow::Result<()> {
    http.put(format!("{base}/api/v1/agent/inventory"))
        .bearer_auth(&host.credential)
        .json(&host.inventory)
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("sending the inventory of {}", host.inventory.host.hostname))?;
    Ok(())
}

/// Every simulated agent checks in every few seconds; a job it gets is
/// verified with the server's key and carried out step by step.
async fn run_agents(
    http: reqwest::Client,
    base: String,
    fleet: Vec<SimHost>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let fleet: Vec<Arc<tokio::sync::Mutex<SimHost>>> = fleet
        .into_iter()
        .map(|h| Arc::new(tokio::sync::Mutex::new(h)))
        .collect();
    let busy: Arc<std::sync::Mutex<HashSet<usize>>> = Arc::default();
    while !stop.load(Ordering::Relaxed) {
        for (i, host) in fleet.iter().enumerate() {
            if busy.lock().map(|b| b.contains(&i)).unwrap_or(true) {
                continue;
            }
            let answer = {
                let h = host.lock().await;
                heartbeat(&http, &base, &h).await
            };
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("demo: a simulated check-in failed: {e:#}");
                    continue;
                }
            };
            if answer.jobs.is_empty() {
                continue;
            }
            if let Ok(mut b) = busy.lock() {
                b.insert(i);
            }
            let (http, base, host, busy) = (
                http.clone(),
                base.clone(),
                Arc::clone(host),
                Arc::clone(&busy),
            );
            tokio::spawn(async move {
                let mut h = host.lock().await;
                for signed in &answer.jobs {
                    if let Err(e) = carry_out(&http, &base, &mut h, signed).await {
                        eprintln!(
                            "demo: simulated host {} job {}: {e:#}",
                            h.inventory.host.hostname, signed.id
                        );
                    }
                }
                if let Ok(mut b) = busy.lock() {
                    b.remove(&i);
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(())
}

async fn heartbeat(
    http: &reqwest::Client,
    base: &str,
    h: &SimHost,
) -> anyhow::Result<HeartbeatResponse> {
    let digest = h.inventory.digest();
    let beat = Heartbeat {
        inventory_digest: digest.clone(),
        acknowledged_digest: Some(digest),
    };
    let answer: HeartbeatResponse = http
        .post(format!("{base}/api/v1/agent/heartbeat"))
        .bearer_auth(&h.credential)
        .json(&beat)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if answer.inventory != protocol::InventoryWanted::None {
        put_inventory(http, base, h).await?;
    }
    Ok(answer)
}

async fn report(
    http: &reqwest::Client,
    base: &str,
    h: &SimHost,
    job: &str,
    step: StepReport,
) -> anyhow::Result<()> {
    http.post(format!("{base}/api/v1/agent/jobs/{job}/steps"))
        .bearer_auth(&h.credential)
        .json(&StepsRequest { steps: vec![step] })
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// One simulated host in fifty fails its installs; they carry the tag
/// `flaky`.
fn fails_installs(index: usize) -> bool {
    index % 50 == 7
}

/// Carries out one job as an agent would, minus apt: each step reported
/// after a short pause, the package versions changed in the inventory.
/// One host in fifty fails its installs, with an error that says the
/// failure is simulated.
async fn carry_out(
    http: &reqwest::Client,
    base: &str,
    h: &mut SimHost,
    signed: &SignedJob,
) -> anyhow::Result<()> {
    let key = protocol::job::parse_key(&h.key).map_err(anyhow::Error::msg)?;
    let job = signed
        .open(&key, &h.id, Timestamp::now())
        .map_err(|e| anyhow::anyhow!("refused: {e}"))?;
    let pause = Duration::from_millis(300 + (h.index as u64 * 37) % 700);
    let fails = job.kind == JobKind::Install && fails_installs(h.index);
    for step in [
        Step::Received,
        Step::Downloading,
        Step::Downloaded,
        Step::Installing,
    ] {
        report(
            http,
            base,
            h,
            &job.id,
            StepReport::new(step, Timestamp::now()),
        )
        .await?;
        tokio::time::sleep(pause).await;
    }
    if fails {
        let mut failed = StepReport::new(Step::Failed, Timestamp::now());
        failed.exit_code = Some(100);
        failed.message = Some("apt-get install failed (simulated by the demo)".into());
        failed.output_tail =
            Some("E: Sub-process /usr/bin/dpkg returned an error code (1) [simulated]".into());
        return report(http, base, h, &job.id, failed).await;
    }
    let mut changes = Vec::new();
    for wanted in &job.packages {
        if let Some(p) = h
            .inventory
            .packages
            .iter_mut()
            .find(|p| p.name == wanted.name && p.arch == wanted.arch)
        {
            changes.push(Change {
                name: p.name.clone(),
                arch: p.arch.clone(),
                from: Some(p.version.clone()),
                to: wanted.version.clone(),
            });
            move_to(p, &wanted.version, &h.sources);
        }
    }
    let mut installed = StepReport::new(Step::Installed, Timestamp::now());
    installed.changes = changes;
    report(http, base, h, &job.id, installed).await?;
    tokio::time::sleep(pause).await;
    report(
        http,
        base,
        h,
        &job.id,
        StepReport::new(Step::Verifying, Timestamp::now()),
    )
    .await?;
    // The lists offer the same updates as before; those now installed
    // drop out.
    let installed_now: HashMap<(String, String), String> = h
        .inventory
        .packages
        .iter()
        .map(|p| ((p.name.clone(), p.arch.clone()), p.version.clone()))
        .collect();
    let mut updates = std::mem::take(&mut h.inventory.updates);
    for u in &mut updates {
        if let Some(v) = installed_now.get(&(u.name.clone(), u.arch.clone())) {
            u.installed = v.clone();
        }
    }
    updates.retain(|u| is_older(&u.installed, &u.candidate));
    h.inventory.updates = updates;
    h.inventory.collected_at = Timestamp::now();
    report(
        http,
        base,
        h,
        &job.id,
        StepReport::new(Step::Succeeded, Timestamp::now()),
    )
    .await?;
    put_inventory(http, base, h).await
}

// ---------------------------------------------------------------------------
// Planning.

/// The security updates the fleet is offered.
async fn security_updates(api: &Client) -> anyhow::Result<Vec<Value>> {
    let updates = api
        .call(reqwest::Method::GET, "/api/v1/updates", None)
        .await?;
    Ok(updates
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|u| u["security"] == true)
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}

/// What a newcomer finds on the planning pages, each true of the demo's
/// fleet: a Patch Tuesday policy with a nightly window for the simulated
/// desktops and laptops, a baseline for the servers raising them to the
/// first security update offered, a security floor for every simulated
/// host (the three most offered security updates), an exemption for the
/// second one on the servers, a published procedure, and a monthly report
/// schedule.
async fn plan_the_fleet(api: &Client) -> anyhow::Result<()> {
    let security = security_updates(api).await?;
    let mut calls = vec![
        (
            "/api/v1/policies/workstations".to_owned(),
            json!({
                "hosts": "tag = simulated and group != servers",
                "security_only": true,
                "schedule": "second tuesday of every month at 19:00",
                "windows": [{"opens": "every day at 19:00", "hours": 11}],
                "timezone": "UTC",
                "reboot": "if-required",
            }),
        ),
        (
            "/api/v1/report-schedules/monthly".to_owned(),
            json!({"when": "first monday of every month at 08:00"}),
        ),
        (
            "/api/v1/procedure".to_owned(),
            json!({"text": "Security updates are approved within one business day of their \
                release, tried on the pilot ring (about 5% of the fleet, chosen across \
                departments and models) and installed on every other host two business days \
                later, inside the hosts' maintenance windows. Critical findings are fixed \
                within 24 hours, High within 7 days, Medium within 30 days. A host that cannot \
                take an update gets an exemption with a reason, a compensating control and an \
                end date, approved by an approver. The patch team reviews each rollout after \
                it ends, and management receives the compliance report on the first Monday \
                of the month."}),
        ),
    ];
    if let Some(first) = security.first() {
        calls.push((
            "/api/v1/baselines/servers".to_owned(),
            json!({
                "group": "servers",
                "minimum": [{"package": first["name"], "version": first["candidate"]}],
            }),
        ));
    }
    // A security floor for the whole simulated fleet: the three security
    // updates offered to most hosts. A host below it is not compliant
    // until a rollout installs them, so compliance rises as the pilot's
    // hosts report their installs.
    let floor: Vec<Value> = security
        .iter()
        .take(3)
        .map(|u| json!({"package": u["name"], "version": u["candidate"]}))
        .collect();
    if !floor.is_empty() {
        calls.push((
            "/api/v1/groups/simulated".to_owned(),
            json!({"query": "tag = simulated"}),
        ));
        calls.push((
            "/api/v1/baselines/security-floor".to_owned(),
            json!({"group": "simulated", "minimum": floor}),
        ));
    }
    if let Some(second) = security.get(1) {
        let expires = Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30);
        calls.push((
            "/api/v1/exemptions/servers-vendor-freeze".to_owned(),
            json!({
                "group": "servers",
                "package": second["name"],
                "reason": "the line-of-business vendor certifies this package's updates first",
                "control": "the servers' VLAN admits only the application's clients",
                "expires": expires.to_string(),
            }),
        ));
    }
    for (path, body) in calls {
        api.call(reqwest::Method::PUT, &path, Some(body))
            .await
            .with_context(|| format!("demo: {path}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The pilot.

/// Approves the security updates the fleet is offered (by the advisories
/// they fix) and starts a rollout
/// of them to the simulated hosts: the pilot runs now, the rest waits two
/// business days.
async fn start_pilot(api: &Client) -> anyhow::Result<()> {
    let security = security_updates(api).await?;
    if security.is_empty() {
        eprintln!("demo: the simulated fleet is offered no security update; no rollout started");
        return Ok(());
    }
    // Approved as admins think: by the advisories they fix (one advisory
    // approves every binary that fixes it, on every release), and by
    // title the security updates no advisory explains; in bulk.
    let mut titles: Vec<String> = Vec::new();
    for u in &security {
        let advisories: Vec<&str> = u["advisories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .collect();
        if advisories.is_empty() {
            titles.extend(u["title"].as_str().map(str::to_owned));
        } else {
            titles.extend(advisories.into_iter().map(str::to_owned));
        }
    }
    titles.sort();
    titles.dedup();
    for chunk in titles.chunks(500) {
        api.call(
            reqwest::Method::POST,
            "/api/v1/approvals/bulk",
            Some(json!({
                "titles": chunk,
                "verdict": "approve",
                "comment": "security advisories, approved by the demo",
            })),
        )
        .await?;
    }
    api.call(
        reqwest::Method::POST,
        "/api/v1/rollouts",
        Some(json!({
            "name": "demo-security",
            "reason": "The security updates Debian published since these hosts were installed.",
            "hosts": "tag = simulated",
            "updates": "approved",
            "rings": [
                {"name": "pilot", "size": "5%"},
                {"name": "broad", "size": "rest", "wait_business_days": 2},
            ],
        })),
    )
    .await?;
    Ok(())
}
