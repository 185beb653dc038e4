//! Console pages on a real `patchwell server` with the embedded SQLite,
//! 10,000 hosts and the advisories of this machine's apt lists (the
//! bookworm suites: some 34,000) plus KEV when ../shared/data is there.
//! Every host reports this machine's real inventory (its packages and the
//! updates its apt lists offer), and one rollout targets them all. Prints,
//! per page, the first answer and the median and slowest of 5, measured
//! from this process over loopback (target: 200 ms each).
//! Run with `cargo bench -p patchwell --bench console`. Setting up takes
//! some eight minutes; with `PATCHWELL_BENCH_DATA=DIR` the server's data
//! directory is DIR and is kept, and a later run on the same DIR measures
//! the pages at once on the fleet set up before.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const HOSTS: usize = 10_000;
const CONCURRENCY: usize = 48;
const ROUNDS: usize = 5;

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http.request(method, url).bearer_auth(auth);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn main() {
    let kept = std::env::var_os("PATCHWELL_BENCH_DATA").map(std::path::PathBuf::from);
    let reused = kept
        .as_ref()
        .is_some_and(|d| d.join("admin-token").exists());
    let server = match &kept {
        Some(dir) => support::Server::start_in(dir.clone(), true),
        None => support::Server::start("console-bench"),
    };
    let (url, admin) = (server.url.clone(), server.admin.clone());
    let machine = agent::inventory::collect(
        &agent::Root::new("/"),
        &agent::SystemRunner,
        jiff::Timestamp::now(),
    )
    .expect("this machine's inventory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::builder().pool_max_idle_per_host(128).build().expect("client");
        let setup = Instant::now();
        let first_host = Arc::new(std::sync::Mutex::new(String::new()));
        let minimum: Vec<Value> = machine.packages.iter().take(50)
            .map(|p| json!({"package": p.name, "version": p.version})).collect();
        if !reused {
        // Advisories: the apt lists' suites, verified with Debian's keyring.
        let mut lists: Vec<_> = std::fs::read_dir("/var/lib/apt/lists")
            .expect("apt lists")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with("_InRelease"))
            .collect();
        lists.sort();
        for (i, list) in lists.iter().enumerate() {
            call(&http, reqwest::Method::PUT, &format!("{url}/api/v1/feeds/apt-{i}"), &admin, Some(json!({
                "kind": "apt", "location": list.display().to_string(),
                "verification": "openpgp:/usr/share/keyrings/debian-archive-keyring.gpg"}))).await;
        }
        let kev = std::path::Path::new("../../../shared/data/kev/known_exploited_vulnerabilities.json");
        if kev.exists() {
            let documents = server::feeds::fetch(server::feeds::FeedKind::Kev, &kev.display().to_string()).await.expect("kev");
            call(&http, reqwest::Method::PUT, &format!("{url}/api/v1/feeds/kev"), &admin, Some(json!({
                "kind": "kev", "location": kev.canonicalize().expect("kev").display().to_string(),
                "verification": format!("sha256:{}", server::feeds::digest(&documents))}))).await;
        }
        let advisories = call(&http, reqwest::Method::GET, &format!("{url}/api/v1/advisories?limit=1"), &admin, None).await["total"].clone();
        // The fleet: every host this machine's inventory, its own name.
        let token = call(&http, reqwest::Method::POST, &format!("{url}/api/v1/tokens"), &admin,
            Some(json!({"max_uses": HOSTS}))).await["token"].as_str().expect("token").to_owned();
        let next = Arc::new(AtomicUsize::new(0));
        let machine = Arc::new(machine);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let (http, url, token, next, machine, first_host, admin) =
                (http.clone(), url.clone(), token.clone(), next.clone(), machine.clone(), first_host.clone(), admin.clone());
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= HOSTS {
                        return;
                    }
                    let enrolled: Value = http.post(format!("{url}/api/v1/agent/enroll"))
                        .json(&json!({"token": token, "hostname": format!("host-{i:05}")}))
                        .send().await.expect("enroll").json().await.expect("json");
                    let id = enrolled["host_id"].as_str().expect("id").to_owned();
                    let credential = enrolled["credential"].as_str().expect("credential");
                    let mut inv = (*machine).clone();
                    inv.host.hostname = format!("host-{i:05}");
                    call(&http, reqwest::Method::PUT, &format!("{url}/api/v1/agent/inventory"), credential,
                        Some(serde_json::to_value(&inv).expect("json"))).await;
                    call(&http, reqwest::Method::PUT, &format!("{url}/api/v1/hosts/{id}/attributes"), &admin,
                        Some(json!({"department": (["finance", "sales", "it"][i % 3]), "criticality": (["low", "medium", "high"][i % 3]), "tags": ["bench"]}))).await;
                    if i == 0 {
                        *first_host.lock().expect("lock") = id;
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        call(&http, reqwest::Method::POST, &format!("{url}/api/v1/rollouts"), &admin, Some(json!({
            "name": "bench", "reason": "benchmark", "updates": "security",
            "rings": [{"name": "pilot", "size": "5%"}, {"name": "broad", "size": "rest", "wait_business_days": 2}]}))).await;
        println!("{HOSTS} hosts ({} packages each), {advisories} advisories and a rollout to every host set up in {:.0} s",
            machine.packages.len(), setup.elapsed().as_secs_f64());
        } else {
            // The fleet set up before: wait until the server has loaded it.
            while call(&http, reqwest::Method::GET, &format!("{url}/api/v1/summary/exposure?limit=1"), &admin, None).await["fleet_loaded"] != true {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let hosts = call(&http, reqwest::Method::GET, &format!("{url}/api/v1/hosts"), &admin, None).await;
            *first_host.lock().expect("lock") = hosts[0]["id"].as_str().expect("a host").to_owned();
            println!("the fleet set up before ({} hosts) loaded in {:.0} s", hosts.as_array().map_or(0, Vec::len), setup.elapsed().as_secs_f64());
        }

        // A baseline over every host (its compliance page reads them all),
        // a policy and the procedure: stored again on a reused fleet.
        call(&http, reqwest::Method::PUT, &format!("{url}/api/v1/groups/bench"), &admin,
            Some(json!({"query": "tag = bench"}))).await;
        call(&http, reqwest::Method::PUT, &format!("{url}/api/v1/baselines/bench"), &admin,
            Some(json!({"group": "bench", "minimum": minimum}))).await;
        call(&http, reqwest::Method::PUT, &format!("{url}/api/v1/policies/bench"), &admin,
            Some(json!({"hosts": "tag = bench", "schedule": "second tuesday of every month at 22:00",
                        "windows": [{"opens": "every day at 20:00", "hours": 8}]}))).await;
        call(&http, reqwest::Method::PUT, &format!("{url}/api/v1/procedure"), &admin,
            Some(json!({"text": "Patch within the deadlines of each class."}))).await;
        let last_month = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date()
            .first_of_month().yesterday().expect("a month before").strftime("%Y-%m").to_string();
        let session = call(&http, reqwest::Method::POST, &format!("{url}/api/v1/session"), "",
            Some(json!({"username": "admin", "password": std::fs::read_to_string(server.data.join("admin-password")).expect("password").trim()}))).await;
        let cookie = format!("patchwell_session={}", session["token"].as_str().expect("session"));
        let host = first_host.lock().expect("lock").clone();
        let advisory = call(&http, reqwest::Method::GET, &format!("{url}/api/v1/summary/exposure?limit=1"), &admin, None).await["top"][0]["id"]
            .as_str().unwrap_or("none").to_owned();
        let pages = [
            "/console".to_owned(),
            "/console/hosts".to_owned(),
            "/console/hosts?sort=open&dir=desc&page=150".to_owned(),
            "/console/hosts?q=department%20%3D%20finance%20and%20criticality%20%3E%3D%20medium".to_owned(),
            format!("/console/hosts/{host}"),
            "/console/advisories".to_owned(),
            "/console/advisories?q=openssl&sort=hosts&dir=desc".to_owned(),
            format!("/console/advisories/{advisory}"),
            "/console/updates".to_owned(),
            "/console/rollouts".to_owned(),
            "/console/rollouts/bench".to_owned(),
            "/console/rollouts/bench?page=100&sort=progress".to_owned(),
            "/console/audit".to_owned(),
            "/console/plans/approvals".to_owned(),
            "/console/plans/baselines".to_owned(),
            "/console/baselines/bench".to_owned(),
            "/console/plans/exemptions".to_owned(),
            "/console/plans/policies".to_owned(),
            "/console/deferrals".to_owned(),
            "/console/users".to_owned(),
            "/console/procedure".to_owned(),
            "/console/reports".to_owned(),
            "/console/reports/monthly".to_owned(),
            format!("/console/reports/monthly?month={last_month}"),
            "/console/reports/monthly.csv".to_owned(),
            "/console/reports/monthly.pdf".to_owned(),
        ];
        // Right after a start the dashboard may answer that the fleet's
        // first posture is still being worked out: how long that answer
        // took, and when the posture was ready.
        let started = Instant::now();
        let mut first_answer = None;
        loop {
            let asked = Instant::now();
            let page = http.get(format!("{url}/console")).header("cookie", &cookie).send().await.expect("dashboard")
                .text().await.expect("dashboard text");
            first_answer.get_or_insert((asked.elapsed(), page.contains("posture-pending")));
            if !page.contains("posture-pending") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some((took, pending)) = first_answer {
            println!(
                "dashboard's first answer: {:.1} ms ({}); the posture ready after {:.1} s",
                took.as_secs_f64() * 1000.0,
                if pending { "the posture still being worked out" } else { "with the posture" },
                started.elapsed().as_secs_f64()
            );
        }
        println!("{:<70} {:>9} {:>9} {:>9}", "page", "first ms", "p50 ms", "max ms");
        for page in &pages {
            let mut times = Vec::with_capacity(ROUNDS);
            for _ in 0..=ROUNDS {
                let start = Instant::now();
                let resp = http.get(format!("{url}{page}")).header("cookie", &cookie).send().await.expect("page");
                let status = resp.status();
                let body = resp.bytes().await.expect("body");
                assert!(status.is_success(), "{page}: {status}: {}", String::from_utf8_lossy(&body));
                times.push(start.elapsed());
            }
            let first = times.remove(0);
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!("{:<70} {:>9.1} {:>9.1} {:>9.1}", page, ms(first), ms(times[ROUNDS / 2]), ms(times[ROUNDS - 1]));
        }
    });
    drop(server);
}
