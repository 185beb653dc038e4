//! Patchwell's server: the HTTP API that agents check in to and that the
//! command line and the console use, over the store.
//!
//! A key design decision made in this crate is that the whole application is
//! built by one function, [`app`], from an [`AppState`] that carries the
//! store, the configuration and the clock. Tests call it directly, or start
//! the real server on port 0 with a fresh database, and control time through
//! the clock rather than by sleeping. Besides a per-host rate budget, a
//! server keeps in memory the advisory catalog (a parse of the feeds'
//! stored documents) and the fleet's applicability. Several servers can
//! share one PostgreSQL, but today each sees another's feed imports only
//! at its next refresh or restart, and another's inventories only at
//! restart: run one server, or expect that lag.

pub mod api;
mod approvals;
pub mod audit_anchor;
mod auth;
mod body;
mod browser;
pub mod catalog;
mod catalog_api;
mod connections;
mod console;
mod deferrals;
pub mod deployments;
mod error;
pub mod feeds;
mod fields;
pub mod fleet;
mod handlers;
pub mod jobkey;
mod keepalive;
mod kept;
pub mod notify;
pub mod openapi;
mod pdf;
mod people_api;
mod plan_api;
mod plan_docs;
pub mod posture;
mod ratelimit;
pub mod report_mail;
mod rollouts;
mod secrets;
mod sign_in_audit;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use jiff::{SignedDuration, Timestamp};
use store::Store;

pub use body::Budget;
pub use connections::serve_app;
pub use error::ApiError;
pub use people_api::{ensure_first_admin, hash_password, verdict_json, FirstAdmin};
pub use posture::PostureCache;
pub use ratelimit::{RateLimiter, SignInLimiter};
pub use rollouts::{Deploy, SharedDeploy};

/// The server's clock: `Timestamp::now` in service, a controlled one in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// What the server does, apart from where it listens and stores.
#[derive(Debug, Clone)]
pub struct Config {
    /// A host not heard from for this long is stale. Its last inventory is
    /// kept. The default, 7 days, fits laptops that are rarely online.
    pub stale_after: SignedDuration,
    /// How long agents wait between check-ins, before jitter.
    pub checkin_interval: Duration,
    /// The largest request body accepted, after decompression, in bytes.
    pub max_body_bytes: usize,
    /// The largest request body accepted on the wire, in bytes.
    pub max_wire_bytes: usize,
    /// The bytes that request bodies may hold in memory at once, across
    /// all requests, counted after decompression; a body that finds them
    /// spent waits a few seconds, then is answered 503. At least
    /// `max_wire_bytes + max_body_bytes` is used.
    pub body_budget_bytes: usize,
    /// How long a request's whole body may take to arrive (408 after).
    pub body_timeout: Duration,
    /// How long a new connection may take to send a whole request head,
    /// its TLS handshake included, before it is closed.
    pub header_timeout: Duration,
    /// How long a connection may stay open after an answer without
    /// sending the next request's whole head.
    pub idle_timeout: Duration,
    /// Connections open at once, in all; one more is closed as it comes.
    pub max_connections: usize,
    /// Connections open at once from one source address (an IPv6 /64).
    pub max_connections_per_source: usize,
    /// The most packages one host's inventory may list (413 beyond).
    pub max_packages: usize,
    /// Requests a minute one host may make.
    pub host_requests_per_minute: u32,
    /// Sign-in attempts a minute from one source address, in bursts of as
    /// many (429 beyond); a success does not count.
    pub sign_in_per_minute: u32,
    /// Sign-in attempts a minute for the whole server, in bursts of as
    /// many: what bounds the CPU spent hashing passwords.
    pub sign_in_global_per_minute: u32,
    /// How often every feed is fetched and imported again; `None` never
    /// (then only `patchwell feeds import` does).
    pub feed_refresh: Option<Duration>,
    /// The mail relay contacts with an email address are told through;
    /// `None`: only webhooks.
    pub smtp: Option<notify::Smtp>,
    /// Whether browsers reach the server over HTTPS: the session cookie is
    /// then `Secure`, answers carry HSTS, and a change must come from an
    /// `https://` origin. `serve` sets it from the transport.
    pub https: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stale_after: SignedDuration::from_hours(24 * 7),
            checkin_interval: Duration::from_secs(15 * 60),
            max_body_bytes: 32 << 20,
            max_wire_bytes: 8 << 20,
            body_budget_bytes: 128 << 20,
            body_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            max_connections: 20_000,
            max_connections_per_source: 1_000,
            max_packages: store::DEFAULT_MAX_PACKAGES,
            host_requests_per_minute: 60,
            sign_in_per_minute: 10,
            sign_in_global_per_minute: 300,
            feed_refresh: Some(Duration::from_secs(6 * 3600)),
            smtp: None,
            https: false,
        }
    }
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The configuration.
    pub config: Arc<Config>,
    /// The clock.
    pub clock: Clock,
    /// Per-host request budgets.
    pub limiter: Arc<RateLimiter>,
    /// Sign-in budgets.
    pub sign_in: Arc<SignInLimiter>,
    /// The bytes request bodies may hold at once.
    pub bodies: Arc<Budget>,
    /// The advisory catalog in force.
    pub catalog: feeds::SharedCatalog,
    /// The fleet's applicability, kept current.
    pub fleet: Arc<fleet::FleetHandle>,
    /// The key jobs are signed with.
    pub job_key: Arc<jobkey::JobKey>,
    /// Jobs waiting for delivery, the step writer and the executor.
    pub deploy: rollouts::SharedDeploy,
    /// The fleet's posture last worked out, for the console.
    pub posture: Arc<posture::PostureCache>,
    /// The audit chain's last verdict, for the console.
    pub audit_verdict: Arc<kept::Kept<serde_json::Value>>,
    /// Failed sign-ins counted and not yet in the audit log.
    pub sign_ins: Arc<sign_in_audit::SignInLog>,
    /// The audit log's checkpoint writer.
    pub anchor: Arc<audit_anchor::Anchor>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `store` with `config`, on the system clock.
    pub fn new(store: Store, config: Config) -> Self {
        Self::with_clock(store, config, Arc::new(Timestamp::now))
    }

    /// State with a given clock.
    pub fn with_clock(store: Store, config: Config, clock: Clock) -> Self {
        // Tests get a key of their own; `serve` replaces it with the data
        // directory's.
        let job_key = Arc::new(jobkey::JobKey::ephemeral().expect("randomness"));
        // Likewise a checkpoint key, and no checkpoints.
        let anchor = Arc::new(audit_anchor::Anchor::none().expect("randomness"));
        let limiter = Arc::new(RateLimiter::new(config.host_requests_per_minute));
        let sign_in = Arc::new(SignInLimiter::new(
            config.sign_in_per_minute,
            config.sign_in_global_per_minute,
        ));
        let bodies = Arc::new(Budget::new(
            config.body_budget_bytes,
            config.max_wire_bytes,
            config.max_body_bytes,
        ));
        AppState {
            store: store.with_max_packages(config.max_packages),
            config: Arc::new(config),
            clock,
            limiter,
            sign_in,
            bodies,
            catalog: Arc::default(),
            fleet: Arc::default(),
            job_key,
            deploy: Arc::default(),
            posture: Arc::default(),
            audit_verdict: Arc::default(),
            sign_ins: Arc::default(),
            anchor,
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let guard = axum::middleware::from_fn_with_state(state.clone(), browser::guard);
    Router::new()
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/v1/agent/enroll", post(handlers::enroll))
        .route("/api/v1/agent/heartbeat", post(handlers::heartbeat))
        .route(
            "/api/v1/agent/inventory",
            put(handlers::put_inventory).patch(handlers::patch_inventory),
        )
        .route(
            "/api/v1/tokens",
            get(handlers::list_tokens).post(handlers::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(handlers::revoke_token))
        .route("/api/v1/hosts", get(handlers::list_hosts))
        .route("/api/v1/hosts/{id}", get(handlers::show_host))
        .route("/api/v1/hosts/{id}/revoke", post(handlers::revoke_host))
        .route(
            "/api/v1/hosts/{id}/attributes",
            put(handlers::set_attributes),
        )
        .route(
            "/api/v1/packages/{manager}/{name}/hosts",
            get(handlers::hosts_with_package),
        )
        .route("/api/v1/summary/os-releases", get(handlers::os_summary))
        .route(
            "/api/v1/summary/packages/{manager}/{name}",
            get(handlers::package_summary),
        )
        .route(
            "/api/v1/devices/unmanaged",
            get(handlers::unmanaged_devices),
        )
        .route("/api/v1/groups", get(handlers::list_groups))
        .route(
            "/api/v1/groups/{name}",
            put(handlers::put_group).delete(handlers::delete_group),
        )
        .route("/api/v1/groups/{name}/hosts", get(handlers::group_hosts))
        .route("/api/v1/feeds", get(catalog_api::list_feeds))
        .route(
            "/api/v1/feeds/{name}",
            put(catalog_api::put_feed).delete(catalog_api::delete_feed),
        )
        .route(
            "/api/v1/feeds/{name}/import",
            post(catalog_api::import_feed),
        )
        .route("/api/v1/advisories", get(catalog_api::list_advisories))
        .route("/api/v1/advisories/{id}", get(catalog_api::show_advisory))
        .route(
            "/api/v1/hosts/{id}/findings",
            get(catalog_api::host_findings),
        )
        .route("/api/v1/summary/exposure", get(catalog_api::exposure))
        .route("/api/v1/summary/posture", get(posture::summary))
        .route("/api/v1/summary/risk", get(plan_api::risk_ranking))
        .route("/api/v1/updates", get(plan_api::offered_updates))
        .route(
            "/api/v1/session",
            post(people_api::sign_in).delete(people_api::sign_out),
        )
        .route("/api/v1/me", get(people_api::me))
        .route("/api/v1/me/password", put(people_api::change_password))
        .route(
            "/api/v1/users",
            get(people_api::list_users).post(people_api::create_user),
        )
        .route("/api/v1/users/{name}", patch(people_api::patch_user))
        .route(
            "/api/v1/api-tokens",
            get(people_api::list_api_tokens).post(people_api::create_api_token),
        )
        .route(
            "/api/v1/api-tokens/{id}",
            delete(people_api::revoke_api_token),
        )
        .route(
            "/api/v1/procedure",
            get(people_api::show_procedure).put(people_api::publish_procedure),
        )
        .route(
            "/api/v1/procedure/acknowledge",
            post(people_api::acknowledge_procedure),
        )
        .route("/api/v1/audit", get(people_api::audit_log))
        .route("/api/v1/audit/verify", get(people_api::verify_audit))
        .route(
            "/api/v1/settings/{name}",
            get(plan_api::show_setting).put(plan_api::put_setting),
        )
        .route(
            "/api/v1/baselines/{name}/compliance",
            get(plan_api::baseline_compliance),
        )
        .route(
            "/api/v1/baselines/{name}/raise",
            post(plan_api::raise_baseline),
        )
        .route("/api/v1/approvals/bulk", post(approvals::bulk))
        .route(
            "/api/v1/approvals/{title}/eligibility",
            get(plan_api::eligibility),
        )
        .route(
            "/api/v1/agent/jobs/{id}/steps",
            post(rollouts::report_steps),
        )
        .route(
            "/api/v1/agent/deferrals",
            get(deferrals::agent_list).post(deferrals::agent_request),
        )
        .route(
            "/api/v1/deferrals",
            get(deferrals::list).post(deferrals::person_request),
        )
        .route("/api/v1/deferrals/{id}/grant", post(deferrals::grant))
        .route("/api/v1/deferrals/{id}/refuse", post(deferrals::refuse))
        .route(
            "/api/v1/rollouts/{name}/raise-baseline",
            post(rollouts::raise_baseline),
        )
        .route(
            "/api/v1/rollouts",
            get(rollouts::list).post(rollouts::create),
        )
        .route("/api/v1/rollouts/{name}", get(rollouts::show))
        .route("/api/v1/rollouts/{name}/events", get(rollouts::events))
        .route("/api/v1/rollouts/{name}/review", get(rollouts::review))
        .route("/api/v1/rollouts/{name}/notes", post(rollouts::add_note))
        .route("/api/v1/rollouts/{name}/halt", post(rollouts::halt))
        .route("/api/v1/rollouts/{name}/resume", post(rollouts::resume))
        .route("/api/v1/rollouts/{name}/rollback", post(rollouts::rollback))
        .route("/api/v1/rollouts/{name}/redeploy", post(rollouts::redeploy))
        .route("/api/v1/rollouts/{name}/approve", post(rollouts::approve))
        .route("/api/v1/rollouts/{name}/release", post(rollouts::release))
        .route("/api/v1/rollouts/{name}/refuse", post(rollouts::refuse))
        .route("/api/v1/rollouts/{name}/gate", post(rollouts::lower_gate))
        .merge(plan_routes::<plan_docs::PolicyDoc, auth::Administrator>())
        .merge(plan_routes::<plan_docs::BaselineDoc, auth::Approver>())
        .merge(plan_routes::<plan_docs::ExemptionDoc, auth::Approver>())
        .merge(plan_routes::<plan_docs::ApprovalDoc, auth::Approver>())
        .merge(plan_routes::<plan_docs::GoNoGoDoc, auth::Approver>())
        .merge(plan_routes::<plan_docs::ApprovalRuleDoc, auth::Administrator>())
        .merge(plan_routes::<plan_docs::ContactDoc, auth::Administrator>())
        .merge(plan_routes::<plan_docs::OwnerDoc, auth::Administrator>())
        .merge(plan_routes::<
            plan_docs::ReportScheduleDoc,
            auth::Administrator,
        >())
        .route(
            "/api/v1/report-schedules/{name}/send",
            post(report_mail::send_now),
        )
        .route("/api/v1/reports/monthly", get(report_mail::monthly))
        .merge(console::routes(state.clone()))
        // The body arrives whole and bounded (body.rs); the extractors
        // take it as it is.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body::read_whole,
        ))
        // Refuses cross-origin changes and adds the security headers, to
        // every answer, errors included.
        .layer(guard)
        // Outermost: an answer given before the body was read still leaves
        // the connection usable, or says it will close.
        .layer(axum::middleware::from_fn(keepalive::finish_request_body))
        .with_state(state)
}

/// The four routes of one kind of planning object: list, show, put, delete;
/// changes need the access `A` checks.
fn plan_routes<D, A>() -> Router<AppState>
where
    D: plan_docs::Doc,
    A: axum::extract::FromRequestParts<AppState, Rejection = ApiError>
        + Into<auth::Caller>
        + Send
        + Sync
        + 'static,
{
    let kind = D::KIND;
    Router::new()
        .route(&format!("/api/v1/{kind}"), get(plan_api::list_docs::<D>))
        .route(
            &format!("/api/v1/{kind}/{{name}}"),
            get(plan_api::show_doc::<D>)
                .put(plan_api::put_doc::<D, A>)
                .delete(plan_api::delete_doc::<D, A>),
        )
}

/// How the server speaks to its clients.
#[derive(Debug, Clone)]
pub enum Transport {
    /// HTTPS with a certificate the server makes from its own CA at first
    /// start, naming these extra host names besides its own.
    GeneratedTls {
        /// Extra names for the certificate.
        names: Vec<String>,
    },
    /// HTTPS with the given certificate (PEM, chain first) and key.
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The private key file.
        key: PathBuf,
    },
    /// Plain HTTP: on loopback, or anywhere when `insecure` is set.
    PlainHttp {
        /// Allow addresses other than loopback.
        insecure: bool,
    },
}

/// Where and how to run the server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The data directory: SQLite database, first API token, generated TLS files.
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// PostgreSQL instead of the embedded SQLite.
    pub database_url: Option<String>,
    /// HTTPS or plain HTTP.
    pub transport: Transport,
    /// Behaviour.
    pub config: Config,
    /// Where the audit log's signed checkpoints go.
    pub audit_anchor: audit_anchor::AnchorOptions,
}

/// Fetches and imports every feed again, forever, `every` apart. A feed that
/// fails keeps its last good import; the failure is on the feed and in the log.
async fn refresh_feeds(state: AppState, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let feeds = match store::CatalogStore::feeds(&state.store).await {
            Ok(feeds) => feeds,
            Err(e) => {
                tracing::error!("listing feeds to refresh: {e}");
                continue;
            }
        };
        for feed in feeds {
            let what = feeds::ImportOf::Stored(&feed.name);
            match feeds::import(
                &state.store,
                &state.catalog,
                &state.fleet,
                what,
                (state.clock)(),
            )
            .await
            {
                Ok(outcome) => {
                    tracing::info!(feed = %feed.name, records = outcome.records, "Feed refreshed.")
                }
                Err(e) => tracing::warn!(feed = %feed.name, "Feed refresh refused: {e}"),
            }
        }
    }
}

/// Records, once a minute, when each host was first seen affected by each
/// advisory, for SLA clocks that start at first detection. (Reading a
/// host's findings records its own at once.)
async fn record_detections(state: AppState) {
    let mut recorded = std::collections::HashSet::new();
    let mut swept = None;
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticks.tick().await;
        // Nothing to do until the fleet is loaded, nor while it is as the
        // last sweep found it.
        let generation = state.fleet.generation();
        if !state.fleet.loaded() || swept == Some(generation) {
            continue;
        }
        match plan_api::sweep_detections(&state, &mut recorded).await {
            Ok(n) => {
                swept = Some(generation);
                if n > 0 {
                    tracing::info!(pairs = n, "First detections recorded.");
                }
            }
            Err(e) => tracing::warn!("recording first detections: {e}"),
        }
    }
}
/// Frees, every ten minutes, what no host has any more (an inventory
/// replaced by a smaller one leaves it): the package versions no host and
/// no package set holds, in the database, and in memory the fleet's keys
/// and offered titles.
async fn free_unused(state: AppState) {
    let mut ticks = tokio::time::interval(Duration::from_secs(600));
    loop {
        ticks.tick().await;
        match store::InventoryStore::prune_package_versions(&state.store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(versions = n, "Unused package versions deleted."),
            Err(e) => tracing::warn!("deleting unused package versions: {e}"),
        }
        let fleet = Arc::clone(&state.fleet);
        match tokio::task::spawn_blocking(move || fleet.compact()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "Unused fleet entries dropped."),
            Err(e) => tracing::warn!("compacting the fleet: {e}"),
        }
    }
}

/// Opens the store the options name, with migrations run.
pub async fn open_store(options: &ServeOptions, now: Timestamp) -> anyhow::Result<Store> {
    Ok(match &options.database_url {
        Some(url) => Store::open_postgres(url, now)
            .await
            .with_context(|| format!("opening PostgreSQL at {}", redact(url)))?,
        None => Store::open_sqlite(&options.data_dir, now)
            .await
            .with_context(|| {
                format!(
                    "opening the SQLite database in {}",
                    options.data_dir.display()
                )
            })?,
    })
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Creates the data directory readable by its owner only, or makes an
/// existing one so: it holds the database, the keys and the first
/// administrator's password.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to its owner (mode 0700)", dir.display()))?;
        tracing::info!(dir = %dir.display(), "Data directory restricted to its owner (it was {:o}).", mode & 0o777);
    }
    Ok(())
}

/// Writes a file only its owner can read, replacing any file there.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Runs the server until interrupted.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    serve_until(options, |_| {}, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Runs the server until `stop` completes; `listening` is told the
/// address it listens on (the port chosen, when the options gave port 0).
pub async fn serve_until(
    options: ServeOptions,
    listening: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let now = Timestamp::now();
    if let Transport::PlainHttp { insecure: false } = options.transport {
        if !options.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve plain HTTP on {}: serve HTTPS, use a loopback address, or add --insecure-http",
                options.listen
            );
        }
    }
    create_private_dir(&options.data_dir)?;
    let tls = match &options.transport {
        Transport::PlainHttp { .. } => None,
        Transport::Tls { cert, key } => Some(tls::server_config(cert, key)?),
        Transport::GeneratedTls { names } => {
            let files = tls::ensure_generated(&options.data_dir, options.listen.ip(), names)?;
            tracing::info!(ca = %files.ca_cert.display(), "Serving HTTPS with the server's own CA; agents trust it with --ca-cert.");
            Some(tls::server_config(&files.cert, &files.key)?)
        }
    };
    let store = open_store(&options, now).await?;
    let first = ensure_first_admin(&store, &options.data_dir, now).await?;
    if let Some(path) = first.password_file {
        tracing::info!(file = %path.display(), "First administrator `admin` created; the password is in this file.");
    }
    if let Some(path) = first.token_file {
        tracing::info!(file = %path.display(), "First API token written.");
    }
    let mut config = options.config;
    config.https = tls.is_some();
    let mut state = AppState::new(store.clone(), config);
    state.job_key = Arc::new(jobkey::JobKey::load_or_create(&options.data_dir)?);
    state.anchor = Arc::new(audit_anchor::Anchor::open(
        &options.data_dir,
        &options.audit_anchor,
    )?);
    // The log as found at start is anchored before anything is added.
    if let Err(e) = state.anchor.checkpoint(&state.store, now).await {
        tracing::error!("{e:#}");
    }
    let started = std::time::Instant::now();
    state.catalog.set(
        feeds::load(&store)
            .await
            .context("loading the advisory catalog")?,
    );
    tracing::info!(
        advisories = state.catalog.get().index.advisories().len(),
        "advisory catalog loaded in {} ms",
        started.elapsed().as_millis()
    );
    {
        let (store, fleet, catalog) = (
            state.store.clone(),
            Arc::clone(&state.fleet),
            Arc::clone(&state.catalog),
        );
        tokio::spawn(async move {
            if let Err(e) = fleet::load(&store, &fleet, &catalog, Timestamp::now()).await {
                tracing::error!("loading the fleet's applicability: {e:#}");
            }
        });
    }
    if let Some(every) = state.config.feed_refresh {
        tokio::spawn(refresh_feeds(state.clone(), every));
    }
    tokio::spawn(record_detections(state.clone()));
    tokio::spawn(posture::record_daily(state.clone()));
    tokio::spawn(people_api::verify_at_start(state.clone()));
    tokio::spawn(audit_anchor::run(state.clone()));
    tokio::spawn(sign_in_audit::run(state.clone()));
    tokio::spawn(report_mail::run(state.clone()));
    tokio::spawn(deployments::run(state.clone()));
    {
        let state = state.clone();
        tokio::spawn(async move { rollouts::start(&state).await });
    }
    tokio::spawn(free_unused(state.clone()));
    let std_listener = std::net::TcpListener::bind(options.listen)
        .with_context(|| format!("listening on {}", options.listen))?;
    let address = std_listener.local_addr()?;
    let last_state = state.clone();
    match tls {
        None => tracing::info!(address = %address, "Patchwell server listening (plain HTTP)."),
        Some(_) => tracing::info!(address = %address, "Patchwell server listening (HTTPS)."),
    }
    listening(address);
    serve_app(state, std_listener, tls, stop).await?;
    // What happened up to the stop is in the log, and anchored.
    sign_in_audit::flush(&last_state).await;
    if let Err(e) = last_state
        .anchor
        .checkpoint(&last_state.store, Timestamp::now())
        .await
    {
        tracing::error!("{e:#}");
    }
    store.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://pw:secret@db:5432/x"),
            "postgres://pw:***@db:5432/x"
        );
        assert_eq!(redact("postgres://pw@db/x"), "postgres://pw@db/x");
    }
}
