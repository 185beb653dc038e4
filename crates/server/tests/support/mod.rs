//! What the server's test files share: a scratch directory removed when
//! dropped, and a host's inventory as an agent sends it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use protocol::{
    Cpu, HostFacts, Interface, Inventory, Manager, OsRelease, Package, PackageState, RebootStatus,
};

/// The test clock's start, and the hosts' boot five seconds before.
pub(crate) const T0: i64 = 1_780_000_000;

/// A directory under the system's temporary one, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    /// A fresh path named for the test (`what`), the process and a count;
    /// nothing is created.
    pub(crate) fn new(what: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        TempDir(std::env::temp_dir().join(format!(
            "patchwell-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// An installed dpkg package for amd64, its own source.
pub(crate) fn package(name: &str, version: &str) -> Package {
    Package {
        manager: Manager::Dpkg,
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source: None,
        source_version: None,
        state: PackageState::Installed,
        held: false,
    }
}

/// A Debian 12 host's inventory with these packages and nothing offered.
pub(crate) fn inventory(
    hostname: &str,
    collected_at: Timestamp,
    packages: Vec<Package>,
) -> Inventory {
    Inventory {
        schema: protocol::INVENTORY_SCHEMA,
        collected_at,
        host: HostFacts {
            hostname: hostname.into(),
            machine_id: None,
            kernel: "6.1.0-18-amd64".into(),
            arch: "amd64".into(),
            cpu: Cpu {
                model: "EPYC".into(),
                count: 2,
            },
            model: None,
            memory_bytes: 1 << 30,
            disks: vec![],
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some(format!("02:00:00:00:00:{:02x}", hostname.len())),
                addresses: vec![],
            }],
            uptime_seconds: 5,
            boot_time: Timestamp::from_second(T0 - 5).unwrap(),
        },
        os: OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            pretty_name: None,
            id_like: vec![],
        },
        reboot: RebootStatus {
            required: false,
            packages: vec![],
        },
        packages,
        updates: vec![],
        neighbours: vec![],
        warnings: vec![],
    }
}

/// The real server on a loopback port: a fresh SQLite database, the first
/// administrator's token and password, and a clock the test moves.
pub(crate) struct Server {
    pub(crate) url: String,
    pub(crate) admin: String,
    pub(crate) admin_password: String,
    pub(crate) clock: std::sync::Arc<std::sync::atomic::AtomicI64>,
    pub(crate) http: reqwest::Client,
    _db: TempDir,
}

impl Server {
    /// Starts one; `what` names its database directory.
    pub(crate) async fn spawn(what: &str) -> Server {
        use std::sync::atomic::AtomicI64;
        use std::sync::Arc;
        let db = TempDir::new(what);
        let clock = Arc::new(AtomicI64::new(T0));
        let now = Timestamp::from_second(T0).unwrap();
        let store = store::Store::open_sqlite(&db.0, now).await.unwrap();
        let first = server::ensure_first_admin(&store, &db.0, now)
            .await
            .unwrap();
        let read = |p: Option<PathBuf>| {
            std::fs::read_to_string(p.expect("the first admin's file"))
                .unwrap()
                .trim()
                .to_owned()
        };
        let admin = read(first.token_file);
        let admin_password = read(first.password_file);
        let c = clock.clone();
        let state = server::AppState::with_clock(
            store,
            server::Config::default(),
            Arc::new(move || Timestamp::from_second(c.load(Ordering::SeqCst)).unwrap()),
        );
        server::fleet::load(&state.store, &state.fleet, &state.catalog, now)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, server::app(state)).await.unwrap() });
        Server {
            url,
            admin,
            admin_password,
            clock,
            http: reqwest::Client::new(),
            _db: db,
        }
    }

    /// The test clock's time.
    pub(crate) fn now(&self) -> Timestamp {
        Timestamp::from_second(self.clock.load(Ordering::SeqCst)).unwrap()
    }

    /// Moves the test clock on.
    pub(crate) fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    /// One request, with a bearer secret if given; the status and the JSON
    /// answer (null when it is not JSON).
    pub(crate) async fn call(
        &self,
        secret: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(secret) = secret {
            req = req.bearer_auth(secret);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}
