//! The one SQL implementation of the store traits, on SQLite or PostgreSQL.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use jiff::Timestamp;
use protocol::{
    AvailableUpdate, Inventory, InventoryDelta, InventoryHead, Manager, Neighbour, Package,
    PackageSum,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::audit::{append, AuditEvent, Why};
use crate::batch::Batch;
use crate::{
    schema, sort_key, Count, EnrollmentRefused, Error, HostAttributes, HostAuth, HostFilter,
    HostRecord, HostStore, HostWithPackage, InventoryStore, NewHost, NewToken, OfferedUpdate,
    Result, TokenRecord, TokenStore, UnmanagedDevice,
};

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in a data directory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The store: a pool of connections to one database.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    /// SQLite has one writer at a time. Writers in this process queue here
    /// rather than in SQLite's busy handler, which sleeps in growing steps
    /// and wastes most of the time it waits.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Package sets read so far (see [`crate::package_sets`]).
    pub(crate) sets: std::sync::Arc<crate::package_sets::SetCache>,
    /// Package version ids by stored key, as read (see
    /// [`crate::package_sets::VersionIds`]).
    pub(crate) version_ids: std::sync::Arc<crate::package_sets::VersionIds>,
    /// Hosts found active with their credentials (SQLite only).
    active: std::sync::Arc<ActiveHosts>,
    /// Deltas waiting to be stored together (see [`crate::delta_group`]).
    pub(crate) deltas: std::sync::Arc<crate::delta_group::Waiting>,
    /// The most packages one host may have.
    max_packages: usize,
}

/// The PostgreSQL advisory lock that writers of package rows hold shared
/// and [`crate::InventoryStore::prune_package_versions`] holds alone
/// ("patchwel" in ASCII).
const VERSIONS_LOCK: i64 = 0x7061_7463_6877_656c;

/// Up to this many package versions unknown to the store's memory are
/// inserted without looking for them first.
const FEW_VERSIONS: usize = 32;

/// Rows per multi-row statement; well inside both databases' parameter limits.
pub(crate) const CHUNK: usize = 200;

pub(crate) fn ts(seconds: i64) -> Result<Timestamp> {
    Timestamp::from_second(seconds).map_err(|e| Error::Corrupt(format!("time {seconds}: {e}")))
}

pub(crate) fn opt_ts(seconds: Option<i64>) -> Result<Option<Timestamp>> {
    seconds.map(ts).transpose()
}

/// Rows a query built into one JSON array (see [`Store::json_array_of`]),
/// parsed; none when it aggregated no row. `what` names them in an error.
pub(crate) fn parse_json_array<T: serde::de::DeserializeOwned>(
    built: Option<String>,
    what: &str,
) -> Result<Vec<T>> {
    match built {
        None => Ok(Vec::new()),
        Some(json) => {
            serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
        }
    }
}

/// A package as a database-built JSON row gives it: manager, name,
/// version, arch, source, source version, state, held.
type PackageJson = (String, String, String, String, String, String, String, i64);

/// A package from its [`PackageJson`] row.
fn stored_package(row: PackageJson) -> Result<Package> {
    let (manager, name, version, arch, source, source_version, state, held) = row;
    Ok(Package {
        manager: parse_stored(&manager)?,
        name,
        version,
        arch,
        source: Some(source),
        source_version: Some(source_version),
        state: parse_stored(&state)?,
        held: held != 0,
    })
}

/// A stored name read back; one the protocol does not know means a damaged database.
fn parse_stored<T: std::str::FromStr<Err = protocol::UnknownName>>(name: &str) -> Result<T> {
    name.parse()
        .map_err(|e: protocol::UnknownName| Error::Corrupt(e.to_string()))
}

/// `($1, $2, ...), ($n+1, ...)`: placeholders for `rows` rows of `columns`.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A package ready to store: its version checked and its sort keys made.
pub(crate) struct PackageRow<'a> {
    pub(crate) key: String,
    pub(crate) package: &'a Package,
    pub(crate) sort_key: Vec<u8>,
    pub(crate) source_sort_key: Vec<u8>,
}

/// What is stored of a host's inventory.
pub(crate) struct StoredHead {
    collected_at: Option<i64>,
    digest: Option<String>,
    os_id: Option<String>,
    os_version: Option<String>,
    sum: Option<PackageSum>,
    head: Option<Vec<u8>>,
    /// The host's package set, the size of that set, and how many rows of
    /// its own the host keeps beside it.
    pub(crate) package_set: Option<i64>,
    set_size: i64,
    own: i64,
}

/// The columns of a host's row that [`StoredHead::from_row`] reads.
const STORED_HEAD: &str = "inventory_collected_at, inventory_digest, os_id, os_version, \
     packages_sum, head_digest, package_set, own_packages, \
     (SELECT size FROM package_sets s WHERE s.id = hosts.package_set)";

impl StoredHead {
    /// The stored head from the first columns of `row` ([`STORED_HEAD`]).
    fn from_row(row: &AnyRow) -> Result<StoredHead> {
        Ok(StoredHead {
            collected_at: row.try_get(0)?,
            digest: row.try_get(1)?,
            os_id: row.try_get(2)?,
            os_version: row.try_get(3)?,
            sum: sum_of(row.try_get(4)?),
            head: row.try_get(5)?,
            package_set: row.try_get(6)?,
            own: row.try_get(7)?,
            set_size: row.try_get::<Option<i64>, _>(8)?.unwrap_or(0),
        })
    }

    /// Whether the host keeps so many rows of its own that its packages
    /// should be settled again.
    fn too_many_own(&self) -> bool {
        usize::try_from(self.own).unwrap_or(usize::MAX)
            > crate::package_sets::own_limit(usize::try_from(self.set_size).unwrap_or(0))
    }
}

impl StoredHead {
    /// Refuses an inventory collected before the stored one.
    fn check_older(&self, collected_at: Timestamp) -> Result<()> {
        match self.collected_at {
            Some(stored) if stored > collected_at.as_second() => Err(Error::Conflict(format!(
                "inventory collected at {collected_at} is older than the stored one, collected at {}",
                ts(stored)?
            ))),
            _ => Ok(()),
        }
    }

    /// Whether `os` is another release than the stored one.
    pub(crate) fn os_changed(&self, os: &protocol::OsRelease) -> bool {
        self.os_id.as_deref() != Some(os.id.as_str()) || self.os_version != os.version_id
    }
}

/// A host's stored rows of some packages' names (see `Store::delta_base`),
/// each by its stored key.
#[derive(Default)]
pub(crate) struct RowsByKey {
    /// The packages the host has, by package key, with their stored keys.
    packages: HashMap<protocol::PackageKey, (String, Package)>,
    /// The host's own rows.
    own: HashMap<String, crate::package_sets::OwnRow>,
    /// Its set's rows.
    set: HashMap<String, crate::package_sets::RowState>,
}

/// A row of [`Store::delta_base`]: a package as [`PackageJson`] gives it,
/// then whether the row is the host's own and whether it is present.
type DeltaRowJson = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
);

/// The parameters of [`Store::delta_base_sql`].
pub(crate) fn delta_base_args(
    host_id: &str,
    keys: &[protocol::PackageKey],
) -> Result<Vec<crate::batch::Arg>> {
    let names: std::collections::BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    let managers: std::collections::BTreeSet<&str> =
        keys.iter().map(|k| k.manager.as_str()).collect();
    let list = |values: Vec<&str>| json_list(serde_json::to_string(&values));
    Ok(vec![
        host_id.into(),
        list(managers.into_iter().collect())?.into(),
        list(names.into_iter().collect())?.into(),
    ])
}

/// A row of [`Store::delta_base_sql`]: the stored head, and the host's rows
/// of the packages with these keys' names.
pub(crate) fn parse_delta_base(
    row: &AnyRow,
    host_id: &str,
    keys: &[protocol::PackageKey],
) -> Result<(StoredHead, RowsByKey)> {
    if row.try_get::<Option<String>, _>(10)?.is_none() {
        return Err(Error::NotFound(format!("host {host_id}")));
    }
    let wanted: std::collections::HashSet<&protocol::PackageKey> = keys.iter().collect();
    let stored = StoredHead::from_row(row)?;
    let rows: Vec<DeltaRowJson> = parse_json_array(
        row.try_get(9)?,
        &format!("the package rows of host {host_id}"),
    )?;
    let mut found = RowsByKey::default();
    let mut from_set = Vec::new();
    for (manager, name, version, arch, source, source_version, state, held, own, present) in rows {
        let package = stored_package((
            manager,
            name,
            version,
            arch,
            source,
            source_version,
            state,
            held,
        ))?;
        let key = stored_key(&package);
        let row = (package.state.as_str().to_owned(), i64::from(package.held));
        if own != 0 {
            if present != 0 && wanted.contains(&package.key()) {
                found.packages.insert(package.key(), (key.clone(), package));
            }
            found.own.insert(key, (present != 0, row.0, row.1));
        } else {
            found.set.insert(key.clone(), row);
            from_set.push((key, package));
        }
    }
    // The set's rows count where the host has no row of its own.
    for (key, package) in from_set {
        if !found.own.contains_key(&key) && wanted.contains(&package.key()) {
            found.packages.insert(package.key(), (key, package));
        }
    }
    Ok((stored, found))
}

/// The head of an inventory as it is written to the host's row.
pub(crate) struct WrittenHead<'a> {
    head: InventoryHead<'a>,
    collected_at: Timestamp,
    digest: &'a str,
    sum: PackageSum,
    head_digest: &'a [u8],
    /// The host's package set and its count of own rows.
    package_set: Option<i64>,
    own: usize,
}

/// The rows of a [`Store::joined`] aggregate, each as its fields.
pub(crate) fn split_joined(joined: Option<&str>) -> impl Iterator<Item = Vec<&str>> {
    joined
        .into_iter()
        .flat_map(|text| text.split('\u{1d}'))
        .map(|row| row.split('\u{1e}').collect())
}

/// A list bound as one JSON parameter (see [`Store::json_values`]).
/// Lists of strings and numbers always serialise; the error is kept only
/// so that none is ever swallowed.
pub(crate) fn json_list(json: serde_json::Result<String>) -> Result<String> {
    json.map_err(|e| Error::Invalid(format!("a list of package rows: {e}")))
}

/// A stored package sum, when it is one.
fn sum_of(bytes: Option<Vec<u8>>) -> Option<PackageSum> {
    bytes.as_deref().and_then(PackageSum::from_bytes)
}

/// A host's MAC addresses, lower case, each once.
fn macs(host: &protocol::HostFacts) -> Vec<String> {
    let mut macs: Vec<String> = host
        .interfaces
        .iter()
        .filter_map(|i| i.mac.as_ref().map(|m| m.to_ascii_lowercase()))
        .collect();
    macs.sort();
    macs.dedup();
    macs
}

/// What the rows besides the host's own say: its updates, neighbours (with
/// their states) and MAC addresses, hashed in the order given. A change of
/// order rewrites them needlessly, never wrongly.
fn head_digest(head: &InventoryHead<'_>) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let json =
        serde_json::to_vec(&(head.updates, head.neighbours, macs(head.host))).unwrap_or_default();
    Sha256::digest(json).to_vec()
}

/// A package's stored key: manager, name, version, arch, source and
/// source version joined by U+001F.
fn stored_key(p: &Package) -> String {
    [
        p.manager.as_str(),
        &p.name,
        &p.version,
        &p.arch,
        p.source.as_deref().unwrap_or(&p.name),
        p.source_version.as_deref().unwrap_or(&p.version),
    ]
    .join("\u{1f}")
}

/// Packages by stored key, each listed once. Only their keys are made:
/// versions the fleet already stored were checked when first stored, so a
/// package is checked ([`checked_row`]) only when its version is new.
pub(crate) fn package_keys(packages: &[Package]) -> Result<BTreeMap<String, &Package>> {
    let mut keys = BTreeMap::new();
    for p in packages {
        if keys.insert(stored_key(p), p).is_some() {
            return Err(Error::Invalid(format!(
                "package {} {} {} is listed twice",
                p.name, p.arch, p.version
            )));
        }
    }
    Ok(keys)
}

/// A package checked and ready to store: its version and source version
/// valid for its package manager, no control characters in its names.
fn checked_row(key: String, p: &Package) -> Result<PackageRow<'_>> {
    let invalid = |what: &str, e: versions::ParseError| {
        Error::Invalid(format!(
            "package {} ({}): {what} {e}",
            p.name,
            p.manager.as_str()
        ))
    };
    let version_key = sort_key(p.manager, &p.version).map_err(|e| invalid("version", e))?;
    let source = p.source.as_deref().unwrap_or(&p.name);
    let source_version = p.source_version.as_deref().unwrap_or(&p.version);
    let source_sort_key =
        sort_key(p.manager, source_version).map_err(|e| invalid("source version", e))?;
    for (what, text) in [
        ("name", &*p.name),
        ("architecture", &p.arch),
        ("source", source),
    ] {
        if text.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "package {:?} ({}): its {what} {text:?} holds a control character",
                p.name,
                p.manager.as_str()
            )));
        }
    }
    Ok(PackageRow {
        key,
        package: p,
        sort_key: version_key,
        source_sort_key,
    })
}

/// Packages checked before anything touches the database, by stored key.
pub(crate) fn package_rows(packages: &[Package]) -> Result<BTreeMap<String, PackageRow<'_>>> {
    package_keys(packages)?
        .into_iter()
        .map(|(key, p)| Ok((key.clone(), checked_row(key, p)?)))
        .collect()
}

/// Hosts found active, with their credential hashes, so that an agent's
/// every request is not a read. Only where this process is the database's
/// one writer (SQLite): a revocation by another server would not reach it.
/// A revocation forgets the host once committed; an answer read before a
/// revocation is not remembered after it (the generation moved on).
#[derive(Debug)]
struct ActiveHosts {
    enabled: bool,
    state: std::sync::Mutex<(u64, HashMap<String, Vec<u8>>)>,
}

/// At most this many hosts are remembered.
const REMEMBERED_HOSTS: usize = 200_000;

impl ActiveHosts {
    fn new(enabled: bool) -> ActiveHosts {
        ActiveHosts {
            enabled,
            state: Default::default(),
        }
    }

    fn holds(&self, host_id: &str, credential_hash: &[u8]) -> bool {
        self.enabled
            && self.state.lock().is_ok_and(|state| {
                state
                    .1
                    .get(host_id)
                    .is_some_and(|stored| constant_time_eq(stored, credential_hash))
            })
    }

    fn generation(&self) -> u64 {
        self.state.lock().map_or(0, |state| state.0)
    }

    fn remember(&self, host_id: &str, credential_hash: Vec<u8>, seen: u64) {
        if !self.enabled {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            if state.0 != seen {
                return;
            }
            if state.1.len() >= REMEMBERED_HOSTS {
                state.1.clear();
            }
            state.1.insert(host_id.to_owned(), credential_hash);
        }
    }

    fn forget(&self, host_id: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.0 += 1;
            state.1.remove(host_id);
        }
    }
}

/// Copies the WAL back into the database file four times a second, beside
/// the writers (a passive checkpoint waits for no one and blocks no one),
/// until the pool is closed. Outside a Tokio runtime it does nothing, and
/// SQLite's own checkpoint (at 20,000 pages) stays.
fn checkpoint_in_background(pool: AnyPool) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(250));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!("checkpointing the SQLite WAL: {e}");
            }
        }
    });
}

impl Store {
    /// Opens (creating if needed) the SQLite database in `data_dir`, in WAL
    /// mode, and brings its schema up to date.
    pub async fn open_sqlite(data_dir: &Path, now: Timestamp) -> Result<Store> {
        let path = data_dir.join("patchwell.db");
        make_private(data_dir, &path)?;
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::open(&url, Backend::Sqlite, now).await
    }

    /// Connects to PostgreSQL at `url` and brings its schema up to date.
    pub async fn open_postgres(url: &str, now: Timestamp) -> Result<Store> {
        Self::open(url, Backend::Postgres, now).await
    }

    async fn open(url: &str, backend: Backend, now: Timestamp) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let options = AnyPoolOptions::new().max_connections(8);
        let options = match backend {
            Backend::Sqlite => options.after_connect(|conn, _| {
                Box::pin(async move {
                    // Per connection: wait for the writer rather than fail at once,
                    // and keep foreign keys on.
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    // A first inventory writes thousands of index entries in
                    // one transaction; SQLite's default 2 MiB cache spills.
                    sqlx::query("PRAGMA cache_size = -16384")
                        .execute(&mut *conn)
                        .await?;
                    // Read the database file through a memory map: pages
                    // that are read often (hosts, rollout lines) then cost
                    // no system call and no copy each time.
                    sqlx::query("PRAGMA mmap_size = 2147418112")
                        .execute(&mut *conn)
                        .await?;
                    // Statement journals (a multi-row INSERT keeps one) in
                    // memory rather than in temporary files.
                    sqlx::query("PRAGMA temp_store = MEMORY")
                        .execute(&mut *conn)
                        .await?;
                    // The WAL is copied back into the database by a task of
                    // its own (see `checkpoint_in_background`), not by the
                    // writer that happens to pass 1,000 pages while holding
                    // the writer's turn; this is only the backstop.
                    sqlx::query("PRAGMA wal_autocheckpoint = 20000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let pool = options.connect(url).await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        schema::migrate(&pool, backend, now).await?;
        if backend == Backend::Sqlite {
            checkpoint_in_background(pool.clone());
        }
        Ok(Store {
            pool,
            backend,
            writer: Default::default(),
            sets: Default::default(),
            version_ids: Default::default(),
            deltas: Default::default(),
            active: std::sync::Arc::new(ActiveHosts::new(backend == Backend::Sqlite)),
            max_packages: crate::DEFAULT_MAX_PACKAGES,
        })
    }

    /// The same store, refusing an inventory or delta that would leave a
    /// host with more than `max` packages.
    pub fn with_max_packages(mut self, max: usize) -> Self {
        self.max_packages = max;
        self
    }

    /// Refuses `count` packages for one host when over the limit.
    fn check_package_count(&self, count: usize, what: &str) -> Result<()> {
        if count > self.max_packages {
            return Err(Error::TooLarge(format!(
                "{what} {count} packages; a host may have at most {}",
                self.max_packages
            )));
        }
        Ok(())
    }

    /// Holds off [`crate::InventoryStore::prune_package_versions`] until
    /// `tx` ends, on PostgreSQL (on SQLite the writer's turn does), and
    /// says which generation of remembered version ids `tx` runs in.
    async fn hold_versions(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<u64> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                .bind(VERSIONS_LOCK)
                .execute(&mut **tx)
                .await?;
        }
        Ok(self.version_ids.generation())
    }

    /// The connection pool, for tools and tests that need SQL the traits do
    /// not offer (the conformance suite uses it to tamper with the audit log).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The SQL that builds one JSON array (as text) of one array per row
    /// of `columns`: the way long lists are read, since sqlx's SQLite
    /// driver hands each row over from a worker thread one at a time.
    pub(crate) fn json_array_of(&self, columns: &str) -> String {
        let row = self.json_array_sql(columns);
        match self.backend {
            Backend::Sqlite => format!("CAST(json_group_array({row}) AS TEXT)"),
            Backend::Postgres => format!("CAST(json_agg({row}) AS TEXT)"),
        }
    }

    /// The SQL of one JSON array of `columns` (within a row of
    /// [`Store::json_array_of`]).
    pub(crate) fn json_array_sql(&self, columns: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("json_array({columns})"),
            Backend::Postgres => format!("json_build_array({columns})"),
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Waits for this process's turn to write, on SQLite.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// The package sum stored for a host, when it has one.
    async fn stored_sum<'c, E>(&self, executor: E, host_id: &str) -> Result<Option<PackageSum>>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        let row = sqlx::query("SELECT packages_sum FROM hosts WHERE id = $1")
            .bind(host_id)
            .fetch_optional(executor)
            .await?;
        Ok(match row {
            Some(row) => sum_of(row.try_get(0)?),
            None => None,
        })
    }

    /// What is stored of a host's inventory, read under the writer's turn
    /// (and on PostgreSQL locked) in `tx`; with its own package rows and
    /// the package sets whose sum is `sum`, which settling it needs.
    async fn stored_head(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        host_id: &str,
        sum: PackageSum,
    ) -> Result<(
        StoredHead,
        HashMap<i64, crate::package_sets::OwnRow>,
        Vec<i64>,
    )> {
        let sql = format!(
            "SELECT {STORED_HEAD}, {}, (SELECT {} FROM package_sets WHERE sum = $2) \
             FROM hosts WHERE id = $1{}",
            self.own_rows_sql(1),
            self.joined(&["id"]),
            self.for_update()
        );
        let row = sqlx::query(&sql)
            .bind(host_id)
            .bind(sum.to_bytes().to_vec())
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| Error::NotFound(format!("host {host_id}")))?;
        let own_joined: Option<String> = row.try_get(9)?;
        let own = crate::package_sets::parse_own_rows(own_joined.as_deref(), host_id)?;
        let same_joined: Option<String> = row.try_get(10)?;
        let mut same = split_joined(same_joined.as_deref())
            .map(|fields| {
                fields
                    .first()
                    .and_then(|id| id.parse::<i64>().ok())
                    .ok_or_else(|| Error::Corrupt("a package set id".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        same.sort_unstable();
        let stored = StoredHead::from_row(&row)?;
        Ok((stored, own, same))
    }

    /// What is stored of a host's inventory (as [`Store::stored_head`]) and
    /// its rows of the packages with these keys' names, in one statement.
    async fn delta_base(
        &self,
        conn: &mut sqlx::AnyConnection,
        host_id: &str,
        keys: &[protocol::PackageKey],
    ) -> Result<(StoredHead, RowsByKey)> {
        let sql = self.delta_base_sql(false);
        let mut query = sqlx::query(&sql);
        for arg in delta_base_args(host_id, keys)? {
            query = crate::batch::bind(query, arg);
        }
        let row = query
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::NotFound(format!("host {host_id}")))?;
        parse_delta_base(&row, host_id, keys)
    }

    /// The SQL of [`Store::delta_base`], with parameters `$1` (the host),
    /// `$2` (managers) and `$3` (names) from [`delta_base_args`]. Read
    /// `outer`, it gives a row even for a host that does not exist, with
    /// the host's id (column 10) null.
    pub(crate) fn delta_base_sql(&self, outer: bool) -> String {
        // The package versions of these names first, then the host's and
        // its set's rows of them: CROSS JOIN keeps SQLite to that order,
        // which reads a handful of rows instead of a thousand.
        let names_of = format!(
            "pv.manager IN ({}) AND pv.name IN ({})",
            self.json_values(2, "text"),
            self.json_values(3, "text"),
        );
        let from = if outer {
            "(SELECT $1 AS wanted) AS q LEFT JOIN hosts ON hosts.id = q.wanted".to_owned()
        } else {
            format!("hosts WHERE id = $1{}", self.for_update())
        };
        format!(
            "SELECT {STORED_HEAD}, (SELECT {} FROM ( \
               SELECT pv.manager, pv.name, pv.version, pv.arch, pv.source, pv.source_version, \
               hp.state, hp.held, 1 AS own, hp.present \
               FROM package_versions pv CROSS JOIN host_packages hp \
               WHERE hp.package_id = pv.id AND hp.host_id = $1 AND {names_of} \
               UNION ALL \
               SELECT pv.manager, pv.name, pv.version, pv.arch, pv.source, pv.source_version, \
               sr.state, sr.held, 0, 1 \
               FROM package_versions pv CROSS JOIN package_set_rows sr \
               WHERE sr.package_id = pv.id AND {names_of} \
                 AND sr.set_id = (SELECT h2.package_set FROM hosts h2 WHERE h2.id = $1)) AS x), \
             hosts.id FROM {from}",
            self.json_array_of(
                "x.manager, x.name, x.version, x.arch, x.source, x.source_version, \
                 x.state, x.held, x.own, x.present"
            ),
        )
    }

    /// The version ids of these packages (by stored key), storing the
    /// versions not yet known, each checked first. Hosts cloned from one
    /// image know most already: those come from memory. The ids found
    /// otherwise are to be remembered once the transaction is committed
    /// ([`Store::commit_settled`]).
    async fn ensure_package_ids(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        packages: &[(&str, &Package)],
    ) -> Result<(HashMap<String, i64>, HashMap<String, i64>)> {
        let mut ids = HashMap::with_capacity(packages.len());
        let mut unknown = Vec::new();
        self.version_ids.lookup(packages, &mut ids, &mut unknown);
        if unknown.is_empty() {
            return Ok((ids, HashMap::new()));
        }
        // A few unknown versions (an upgrade) are inserted where new and
        // then read: two statements. Many (a host unlike the fleet) are
        // looked for first, so that only the new ones are checked and sent.
        let missing: Vec<(&str, &Package)> = if unknown.len() <= FEW_VERSIONS {
            unknown
        } else {
            let found = self
                .package_ids(tx, unknown.iter().map(|(k, _)| *k))
                .await?;
            let missing = unknown
                .into_iter()
                .filter(|(k, _)| !found.contains_key(*k))
                .collect();
            // Committed before this transaction wrote any (on SQLite it
            // holds the only write lock), and no prune runs meanwhile:
            // safe to remember now.
            self.version_ids
                .remember(self.version_ids.generation(), &found);
            ids.extend(found);
            missing
        };
        let rows = missing
            .iter()
            .map(|(k, p)| checked_row((*k).to_owned(), p))
            .collect::<Result<Vec<_>>>()?;
        let rows_ref: Vec<&PackageRow<'_>> = rows.iter().collect();
        for chunk in rows_ref.chunks(CHUNK) {
            // One statement each: a first inventory may bring thousands.
            let mut batch = Batch::default();
            Self::push_versions(&mut batch, chunk);
            batch.run(self, tx).await?;
        }
        let learned = self
            .package_ids(tx, rows.iter().map(|r| r.key.as_str()))
            .await?;
        ids.extend(learned.iter().map(|(k, id)| (k.clone(), *id)));
        Ok((ids, learned))
    }

    /// Inserts of these package versions, where not stored yet.
    fn push_versions(batch: &mut Batch, rows: &[&PackageRow<'_>]) {
        for chunk in rows.chunks(CHUNK) {
            let mut args = Vec::with_capacity(chunk.len() * 9);
            for r in chunk {
                let p = r.package;
                args.push(r.key.clone().into());
                args.push(p.manager.as_str().into());
                args.push(p.name.clone().into());
                args.push(p.version.clone().into());
                args.push(p.arch.clone().into());
                args.push(p.source.clone().unwrap_or_else(|| p.name.clone()).into());
                args.push(
                    p.source_version
                        .clone()
                        .unwrap_or_else(|| p.version.clone())
                        .into(),
                );
                args.push(r.sort_key.clone().into());
                args.push(r.source_sort_key.clone().into());
            }
            batch.push(
                format!(
                    "INSERT INTO package_versions \
                     (key, manager, name, version, arch, source, source_version, sort_key, source_sort_key) \
                     VALUES {} ON CONFLICT (key) DO NOTHING",
                    placeholders(chunk.len(), 9)
                ),
                args,
            );
        }
    }

    /// These packages by version id, as a host should have them.
    fn target_rows(
        packages: &[(&str, &Package)],
        ids: &HashMap<String, i64>,
    ) -> Result<crate::package_sets::Rows> {
        let mut target = crate::package_sets::Rows::with_capacity(packages.len());
        for (key, p) in packages {
            let id = *ids
                .get(*key)
                .ok_or_else(|| Error::Corrupt(format!("package {key} vanished")))?;
            target.insert(id, (p.state.as_str().to_owned(), i64::from(p.held)));
        }
        Ok(target)
    }

    /// A host's packages as they are stored: its set's rows with its own
    /// laid over them.
    async fn stored_rows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        host_id: &str,
        package_set: Option<i64>,
    ) -> Result<(
        crate::package_sets::Rows,
        HashMap<i64, crate::package_sets::OwnRow>,
    )> {
        let own = self.own_rows(tx, host_id).await?;
        let mut rows = match package_set {
            Some(id) => (*self.set_rows(tx, id).await?).clone(),
            None => crate::package_sets::Rows::new(),
        };
        for (id, (present, state, held)) in &own {
            if *present {
                rows.insert(*id, (state.clone(), *held));
            } else {
                rows.remove(id);
            }
        }
        Ok((rows, own))
    }

    /// Writes the host's row from an inventory's head, and its updates,
    /// neighbours and MAC addresses when `children` (they changed).
    /// Runs `batch` (writes that go before it) with the update of the
    /// host's row at its end.
    async fn write_head(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        mut batch: Batch,
        host_id: &str,
        written: &WrittenHead<'_>,
        children: bool,
        now: Timestamp,
    ) -> Result<()> {
        if children {
            self.write_children(tx, host_id, &written.head).await?;
        }
        Self::push_head(&mut batch, host_id, written, now)?;
        batch.run(self, tx).await
    }

    /// The update of the host's row from an inventory's head.
    pub(crate) fn push_head(
        batch: &mut Batch,
        host_id: &str,
        written: &WrittenHead<'_>,
        now: Timestamp,
    ) -> Result<()> {
        let head = &written.head;
        let facts = serde_json::to_string(head.host)
            .map_err(|e| Error::Invalid(format!("host facts: {e}")))?;
        batch.push(
            "UPDATE hosts SET hostname = $2, machine_id = $3, os_id = $4, os_version = $5, os_codename = $6, \
             kernel = $7, arch = $8, reboot_required = $9, facts = $10, inventory_digest = $11, \
             inventory_collected_at = $12, last_seen = CASE WHEN last_seen < $13 THEN $13 ELSE last_seen END, \
             packages_sum = $14, head_digest = $15, package_set = $16, own_packages = $17 \
             WHERE id = $1",
            vec![
                host_id.into(),
                head.host.hostname.clone().into(),
                head.host.machine_id.clone().into(),
                head.os.id.clone().into(),
                head.os.version_id.clone().into(),
                head.os.codename.clone().into(),
                head.host.kernel.clone().into(),
                head.host.arch.clone().into(),
                i64::from(head.reboot.required).into(),
                facts.into(),
                written.digest.to_owned().into(),
                written.collected_at.as_second().into(),
                now.as_second().into(),
                written.sum.to_bytes().to_vec().into(),
                written.head_digest.to_vec().into(),
                written.package_set.into(),
                i64::try_from(written.own).unwrap_or(i64::MAX).into(),
            ],
        );
        Ok(())
    }

    /// Replaces a host's updates, neighbours and MAC addresses.
    async fn write_children(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        host_id: &str,
        head: &InventoryHead<'_>,
    ) -> Result<()> {
        sqlx::query("DELETE FROM host_updates WHERE host_id = $1")
            .bind(host_id)
            .execute(&mut **tx)
            .await?;
        for u in head.updates {
            sqlx::query(
                "INSERT INTO host_updates (host_id, manager, name, arch, installed, candidate, suite, codename, origin, security) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (host_id, manager, name, arch) DO NOTHING",
            )
            .bind(host_id)
            .bind(u.manager.as_str())
            .bind(u.name.clone())
            .bind(u.arch.clone())
            .bind(u.installed.clone())
            .bind(u.candidate.clone())
            .bind(u.suite.clone())
            .bind(u.codename.clone())
            .bind(u.origin.clone())
            .bind(i64::from(u.security))
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query("DELETE FROM neighbours WHERE host_id = $1")
            .bind(host_id)
            .execute(&mut **tx)
            .await?;
        for n in head.neighbours {
            sqlx::query(
                "INSERT INTO neighbours (host_id, address, mac, interface, state) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (host_id, address, interface) DO NOTHING",
            )
            .bind(host_id)
            .bind(n.address.clone())
            .bind(n.mac.clone().map(|m| m.to_ascii_lowercase()))
            .bind(n.interface.clone())
            .bind(n.state.clone())
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query("DELETE FROM host_macs WHERE host_id = $1")
            .bind(host_id)
            .execute(&mut **tx)
            .await?;
        for mac in macs(head.host) {
            sqlx::query("INSERT INTO host_macs (host_id, mac) VALUES ($1, $2)")
                .bind(host_id)
                .bind(mac)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// An aggregate that joins `columns` of every row into one text:
    /// fields split by U+001E, rows by U+001D (stored names hold no control
    /// characters). Many rows then travel as one value, which matters on
    /// SQLite, where sqlx hands each row over from its worker thread.
    pub(crate) fn joined(&self, columns: &[&str]) -> String {
        let (aggregate, char_fn) = match self.backend {
            Backend::Sqlite => ("group_concat", "char"),
            Backend::Postgres => ("string_agg", "chr"),
        };
        let fields: Vec<String> = columns
            .iter()
            .map(|c| format!("CAST({c} AS TEXT)"))
            .collect();
        format!(
            "{aggregate}({}, {char_fn}(29))",
            fields.join(&format!(" || {char_fn}(30) || "))
        )
    }

    /// A subquery of the values of the JSON array bound as parameter
    /// `param`, for `x IN (...)`: a list of any length as one parameter.
    /// PostgreSQL reads them as `pg_type`.
    pub(crate) fn json_values(&self, param: usize, pg_type: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("SELECT value FROM json_each(${param})"),
            Backend::Postgres => {
                format!("SELECT json_array_elements_text(${param}::json)::{pg_type} AS value")
            }
        }
    }

    /// A FROM-clause source of the rows of a JSON array of arrays bound as
    /// parameter `param`, aliased `r`; [`Store::json_col`] reads its columns.
    pub(crate) fn json_rows(&self, param: usize) -> String {
        match self.backend {
            Backend::Sqlite => format!("json_each(${param}) AS r"),
            Backend::Postgres => format!("json_array_elements(${param}::json) AS r"),
        }
    }

    /// Column `i` of a row of [`Store::json_rows`], as text or as a number.
    pub(crate) fn json_col(&self, i: usize, number: bool) -> String {
        match (self.backend, number) {
            (Backend::Sqlite, _) => format!("json_extract(r.value, '$[{i}]')"),
            (Backend::Postgres, false) => format!("(r->>{i})"),
            (Backend::Postgres, true) => format!("(r->>{i})::bigint"),
        }
    }

    /// The ids of the package versions with these keys, among those stored.
    async fn package_ids<'k>(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        keys: impl Iterator<Item = &'k str>,
    ) -> Result<HashMap<String, i64>> {
        let keys: Vec<&str> = keys.collect();
        let mut ids = HashMap::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(ids);
        }
        let sql = format!(
            "SELECT {} FROM package_versions WHERE key IN ({})",
            self.joined(&["key", "id"]),
            self.json_values(1, "text")
        );
        let keys = json_list(serde_json::to_string(&keys))?;
        let joined: Option<String> = sqlx::query(&sql)
            .bind(keys)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        for fields in split_joined(joined.as_deref()) {
            let [key, id] = fields[..] else {
                return Err(Error::Corrupt("a package version row".into()));
            };
            let id = id
                .parse()
                .map_err(|_| Error::Corrupt(format!("package version id {id:?}")))?;
            ids.insert(key.to_owned(), id);
        }
        Ok(ids)
    }

    /// Starts a transaction that will write. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`), waiting for it under the busy
    /// timeout: a transaction that reads first and upgrades later fails at
    /// once, without waiting, when another writer committed in between.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The row `sql` selects by its one key (`$1`), read inside `tx` and,
    /// on PostgreSQL, locked until the transaction ends: the state a change
    /// starts from, and the "before" of its audit entry.
    pub(crate) async fn locked_row(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        sql: &str,
        key: &str,
    ) -> Result<Option<AnyRow>> {
        let sql = format!("{sql}{}", self.for_update());
        Ok(sqlx::query(&sql)
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?)
    }

    /// ` FOR UPDATE` on PostgreSQL, where it locks the row for the
    /// transaction; SQLite's write transaction already excludes other writers.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    async fn tags(&self, host_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT tag FROM host_tags WHERE host_id = $1 ORDER BY tag")
            .bind(host_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(Error::from))
            .collect()
    }

    fn host_from_row(row: &AnyRow, tags: Vec<String>) -> Result<HostRecord> {
        let facts: Option<String> = row.try_get("facts")?;
        let facts = facts
            .map(|json| {
                serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("host facts: {e}")))
            })
            .transpose()?;
        Ok(HostRecord {
            id: row.try_get("id")?,
            hostname: row.try_get("hostname")?,
            machine_id: row.try_get("machine_id")?,
            os_id: row.try_get("os_id")?,
            os_version: row.try_get("os_version")?,
            os_codename: row.try_get("os_codename")?,
            kernel: row.try_get("kernel")?,
            arch: row.try_get("arch")?,
            reboot_required: row.try_get::<i64, _>("reboot_required")? != 0,
            enrolled_at: ts(row.try_get("enrolled_at")?)?,
            last_seen: ts(row.try_get("last_seen")?)?,
            revoked_at: opt_ts(row.try_get("revoked_at")?)?,
            attributes: HostAttributes {
                group: row.try_get("static_group")?,
                criticality: row.try_get("criticality")?,
                owner: row.try_get("owner")?,
                department: row.try_get("department")?,
                tags,
            },
            facts,
            inventory_digest: row.try_get("inventory_digest")?,
            inventory_collected_at: opt_ts(row.try_get("inventory_collected_at")?)?,
        })
    }
}

const HOST_COLUMNS: &str = "id, hostname, machine_id, os_id, os_version, os_codename, kernel, arch, \
    reboot_required, enrolled_at, last_seen, revoked_at, static_group, criticality, owner, department, \
    facts, inventory_digest, inventory_collected_at";

/// A host as `list_hosts` reads it: the columns of [`HOST_COLUMNS`] in
/// order (facts only when asked for), then the host's tags.
#[derive(serde::Deserialize)]
struct ListedHost(
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Vec<String>,
);

impl ListedHost {
    fn into_record(self) -> Result<HostRecord> {
        let facts = self
            .16
            .map(|json| {
                serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("host facts: {e}")))
            })
            .transpose()?;
        Ok(HostRecord {
            id: self.0,
            hostname: self.1,
            machine_id: self.2,
            os_id: self.3,
            os_version: self.4,
            os_codename: self.5,
            kernel: self.6,
            arch: self.7,
            reboot_required: self.8 != 0,
            enrolled_at: ts(self.9)?,
            last_seen: ts(self.10)?,
            revoked_at: opt_ts(self.11)?,
            attributes: HostAttributes {
                group: self.12,
                criticality: self.13,
                owner: self.14,
                department: self.15,
                tags: self.19,
            },
            facts,
            inventory_digest: self.17,
            inventory_collected_at: opt_ts(self.18)?,
        })
    }
}

impl crate::GroupStore for Store {
    async fn put_group(&self, name: &str, query: &str, why: &Why, now: Timestamp) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let before: Option<String> = self
            .locked_row(
                &mut tx,
                "SELECT query FROM dynamic_groups WHERE name = $1",
                name,
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        sqlx::query(
            "INSERT INTO dynamic_groups (name, query, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (name) DO UPDATE SET query = excluded.query, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(query)
        .bind(now.as_second())
        .execute(&mut *tx)
        .await?;
        let state = |q: &str| serde_json::json!({ "query": q }).to_string();
        let event = AuditEvent::of(
            why,
            format!("groups/{name}"),
            before.as_deref().map(state),
            Some(state(query)),
        );
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn groups(&self) -> Result<Vec<crate::DynamicGroup>> {
        let rows = sqlx::query(
            "SELECT name, query, created_at, updated_at FROM dynamic_groups ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(group_from_row).collect()
    }

    async fn group(&self, name: &str) -> Result<Option<crate::DynamicGroup>> {
        let row = sqlx::query(
            "SELECT name, query, created_at, updated_at FROM dynamic_groups WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn delete_group(&self, name: &str, why: &Why, now: Timestamp) -> Result<bool> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let Some(row) = self
            .locked_row(
                &mut tx,
                "SELECT query FROM dynamic_groups WHERE name = $1",
                name,
            )
            .await?
        else {
            return Ok(false);
        };
        let query: String = row.try_get(0)?;
        sqlx::query("DELETE FROM dynamic_groups WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent::of(
            why,
            format!("groups/{name}"),
            Some(serde_json::json!({ "query": query }).to_string()),
            None,
        );
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

fn group_from_row(r: &AnyRow) -> Result<crate::DynamicGroup> {
    Ok(crate::DynamicGroup {
        name: r.try_get(0)?,
        query: r.try_get(1)?,
        created_at: ts(r.try_get(2)?)?,
        updated_at: ts(r.try_get(3)?)?,
    })
}

impl TokenStore for Store {
    async fn create_token(&self, token: &NewToken, why: &Why) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO enrollment_tokens (id, secret_hash, created_at, expires_at, max_uses, uses, target_group) \
             VALUES ($1, $2, $3, $4, $5, 0, $6)",
        )
        .bind(&token.id)
        .bind(token.secret_hash.clone())
        .bind(token.created_at.as_second())
        .bind(token.expires_at.as_second())
        .bind(i64::from(token.max_uses))
        .bind(token.target_group.clone())
        .execute(&mut *tx)
        .await?;
        let terms = serde_json::json!({
            "id": token.id,
            "expires_at": token.expires_at,
            "max_uses": token.max_uses,
            "group": token.target_group,
        });
        let event = AuditEvent::of(
            why,
            format!("enrollment-tokens/{}", token.id),
            None,
            Some(terms.to_string()),
        );
        append(&mut tx, &event, token.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(
            "SELECT id, created_at, expires_at, max_uses, uses, target_group, revoked_at \
             FROM enrollment_tokens ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRecord {
                    id: r.try_get(0)?,
                    created_at: ts(r.try_get(1)?)?,
                    expires_at: ts(r.try_get(2)?)?,
                    max_uses: u32::try_from(r.try_get::<i64, _>(3)?).unwrap_or(u32::MAX),
                    uses: u32::try_from(r.try_get::<i64, _>(4)?).unwrap_or(u32::MAX),
                    target_group: r.try_get(5)?,
                    revoked_at: opt_ts(r.try_get(6)?)?,
                })
            })
            .collect()
    }

    async fn revoke_token(&self, id: &str, why: &Why, now: Timestamp) -> Result<bool> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM enrollment_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE enrollment_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now.as_second())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            let event = AuditEvent::of(
                why,
                format!("enrollment-tokens/{id}"),
                Some(r#"{"revoked":false}"#.to_owned()),
                Some(r#"{"revoked":true}"#.to_owned()),
            );
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn enroll(&self, secret_hash: &[u8], host: &NewHost, now: Timestamp) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT id, expires_at, max_uses, uses, target_group, revoked_at \
             FROM enrollment_tokens WHERE secret_hash = $1{}",
            self.for_update()
        );
        let row = sqlx::query(&sql)
            .bind(secret_hash.to_vec())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(Error::Enrollment(EnrollmentRefused::UnknownToken));
        };
        let token_id: String = row.try_get(0)?;
        let revoked: Option<i64> = row.try_get(5)?;
        if revoked.is_some() {
            return Err(Error::Enrollment(EnrollmentRefused::Revoked));
        }
        if row.try_get::<i64, _>(1)? <= now.as_second() {
            return Err(Error::Enrollment(EnrollmentRefused::Expired));
        }
        // Count the use only while uses remain: the condition in the UPDATE
        // makes two simultaneous enrollments unable to overspend a token.
        let counted = sqlx::query(
            "UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = $1 AND uses < max_uses",
        )
        .bind(&token_id)
        .execute(&mut *tx)
        .await?;
        if counted.rows_affected() == 0 {
            return Err(Error::Enrollment(EnrollmentRefused::UsedUp));
        }
        let group: Option<String> = row.try_get(4)?;
        sqlx::query(
            "INSERT INTO hosts (id, credential_hash, enrolled_at, enrolled_with, last_seen, hostname, static_group) \
             VALUES ($1, $2, $3, $4, $3, $5, $6)",
        )
        .bind(&host.id)
        .bind(host.credential_hash.clone())
        .bind(now.as_second())
        .bind(&token_id)
        .bind(&host.hostname)
        .bind(group.clone())
        .execute(&mut *tx)
        .await?;
        // The host name is only what the host says of itself.
        let enrolled = serde_json::json!({
            "token": token_id,
            "group": group,
            "hostname_reported_by_host": host.hostname,
        });
        let event = AuditEvent::of(
            &Why::new(format!("host:{}", host.id), "enroll"),
            format!("hosts/{}", host.id),
            None,
            Some(enrolled.to_string()),
        );
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl HostStore for Store {
    async fn authenticate(&self, host_id: &str, credential_hash: &[u8]) -> Result<HostAuth> {
        if self.active.holds(host_id, credential_hash) {
            return Ok(HostAuth::Active);
        }
        let seen = self.active.generation();
        let row = sqlx::query("SELECT credential_hash, revoked_at FROM hosts WHERE id = $1")
            .bind(host_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(HostAuth::Unknown);
        };
        let stored: Vec<u8> = row.try_get(0)?;
        if !constant_time_eq(&stored, credential_hash) {
            return Ok(HostAuth::Unknown);
        }
        let revoked: Option<i64> = row.try_get(1)?;
        Ok(if revoked.is_some() {
            HostAuth::Revoked
        } else {
            self.active.remember(host_id, stored, seen);
            HostAuth::Active
        })
    }

    async fn touch(&self, host_id: &str, now: Timestamp) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE hosts SET last_seen = $2 WHERE id = $1 AND last_seen < $2")
            .bind(host_id)
            .bind(now.as_second())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke_host(&self, host_id: &str, why: &Why, now: Timestamp) -> Result<bool> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let Some(row) = self
            .locked_row(
                &mut tx,
                "SELECT revoked_at FROM hosts WHERE id = $1",
                host_id,
            )
            .await?
        else {
            return Ok(false);
        };
        let revoked: Option<i64> = row.try_get(0)?;
        if revoked.is_none() {
            sqlx::query("UPDATE hosts SET revoked_at = $2 WHERE id = $1")
                .bind(host_id)
                .bind(now.as_second())
                .execute(&mut *tx)
                .await?;
            let event = AuditEvent::of(
                why,
                format!("hosts/{host_id}"),
                Some(r#"{"revoked":false}"#.to_owned()),
                Some(r#"{"revoked":true}"#.to_owned()),
            );
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        self.active.forget(host_id);
        Ok(true)
    }

    async fn host(&self, host_id: &str) -> Result<Option<HostRecord>> {
        let sql = format!("SELECT {HOST_COLUMNS} FROM hosts WHERE id = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(host_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let tags = self.tags(host_id).await?;
        Self::host_from_row(&row, tags).map(Some)
    }

    async fn host_names(&self) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT {} FROM hosts WHERE revoked_at IS NULL",
            self.json_array_of("id, hostname")
        );
        let built: Option<String> = sqlx::query(&sql).fetch_one(&self.pool).await?.try_get(0)?;
        let mut names: Vec<(String, String)> = parse_json_array(built, "the host names")?;
        names.sort_by(|(a, x), (b, y)| (x, a).cmp(&(y, b)));
        Ok(names)
    }

    async fn list_hosts(
        &self,
        filter: &HostFilter,
        now: Timestamp,
        stale_after: jiff::SignedDuration,
    ) -> Result<Vec<HostRecord>> {
        // Each condition is written so that an unset filter binds NULL and
        // matches everything: one statement, no SQL assembled from input.
        // The hosts come back as one JSON array in one row: a long list
        // read row by row spends most of its time handing rows over.
        let stale_before = now.as_second() - stale_after.as_secs();
        let (row, all) = match self.backend {
            Backend::Sqlite => (
                "json_array(h.id, h.hostname, h.machine_id, h.os_id, h.os_version, h.os_codename, \
                 h.kernel, h.arch, h.reboot_required, h.enrolled_at, h.last_seen, h.revoked_at, \
                 h.static_group, h.criticality, h.owner, h.department, \
                 CASE WHEN $9 = 1 THEN h.facts END, h.inventory_digest, h.inventory_collected_at, \
                 json((SELECT json_group_array(tag) FROM \
                       (SELECT tag FROM host_tags t WHERE t.host_id = h.id ORDER BY tag))))",
                "json_group_array",
            ),
            Backend::Postgres => (
                "json_build_array(h.id, h.hostname, h.machine_id, h.os_id, h.os_version, \
                 h.os_codename, h.kernel, h.arch, h.reboot_required, h.enrolled_at, h.last_seen, \
                 h.revoked_at, h.static_group, h.criticality, h.owner, h.department, \
                 CASE WHEN $9 = 1 THEN h.facts END, h.inventory_digest, h.inventory_collected_at, \
                 (SELECT COALESCE(json_agg(t.tag ORDER BY t.tag), '[]'::json) \
                  FROM host_tags t WHERE t.host_id = h.id))",
                "json_agg",
            ),
        };
        let sql = format!(
            "SELECT CAST({all}({row}) AS TEXT) FROM hosts h WHERE \
             ($1 IS NULL OR os_id = $1) AND \
             ($2 IS NULL OR os_version = $2) AND \
             ($3 IS NULL OR static_group = $3) AND \
             ($4 IS NULL OR EXISTS (SELECT 1 FROM host_tags t WHERE t.host_id = h.id AND t.tag = $4)) AND \
             ($5 IS NULL OR ($5 = 1 AND last_seen < $6) OR ($5 = 0 AND last_seen >= $6)) AND \
             ($7 IS NULL OR reboot_required = $7) AND \
             ($8 = 1 OR revoked_at IS NULL) AND {ids}",
            // A list of ids reads those rows by key, not the whole table.
            ids = match filter.ids {
                Some(_) => format!("h.id IN ({})", self.json_values(10, "text")),
                None => "$10 IS NULL".to_owned(),
            }
        );
        let listed: Option<String> = sqlx::query(&sql)
            .bind(filter.os_id.clone())
            .bind(filter.os_version.clone())
            .bind(filter.group.clone())
            .bind(filter.tag.clone())
            .bind(filter.stale.map(i64::from))
            .bind(stale_before)
            .bind(filter.reboot_required.map(i64::from))
            .bind(i64::from(filter.include_revoked))
            .bind(i64::from(filter.facts))
            .bind(
                filter
                    .ids
                    .as_ref()
                    .map(|ids| json_list(serde_json::to_string(ids)))
                    .transpose()?,
            )
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let rows: Vec<ListedHost> = parse_json_array(listed, "the host list")?;
        let mut hosts = rows
            .into_iter()
            .map(ListedHost::into_record)
            .collect::<Result<Vec<_>>>()?;
        hosts.sort_by(|a, b| (&a.hostname, &a.id).cmp(&(&b.hostname, &b.id)));
        Ok(hosts)
    }

    async fn set_attributes(
        &self,
        host_id: &str,
        a: &HostAttributes,
        why: &Why,
        now: Timestamp,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let sql = "SELECT static_group, criticality, owner, department FROM hosts WHERE id = $1";
        let Some(row) = self.locked_row(&mut tx, sql, host_id).await? else {
            return Err(Error::NotFound(format!("host {host_id}")));
        };
        let tag_rows = sqlx::query("SELECT tag FROM host_tags WHERE host_id = $1 ORDER BY tag")
            .bind(host_id)
            .fetch_all(&mut *tx)
            .await?;
        let before = HostAttributes {
            group: row.try_get(0)?,
            criticality: row.try_get(1)?,
            owner: row.try_get(2)?,
            department: row.try_get(3)?,
            tags: tag_rows
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?,
        };
        let done = sqlx::query(
            "UPDATE hosts SET static_group = $2, criticality = $3, owner = $4, department = $5 WHERE id = $1",
        )
        .bind(host_id)
        .bind(a.group.clone())
        .bind(a.criticality.clone())
        .bind(a.owner.clone())
        .bind(a.department.clone())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("host {host_id}")));
        }
        sqlx::query("DELETE FROM host_tags WHERE host_id = $1")
            .bind(host_id)
            .execute(&mut *tx)
            .await?;
        let mut tags = a.tags.clone();
        tags.sort();
        tags.dedup();
        for tag in &tags {
            sqlx::query("INSERT INTO host_tags (host_id, tag) VALUES ($1, $2)")
                .bind(host_id)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
        }
        let after = HostAttributes { tags, ..a.clone() };
        if after != before {
            let event = AuditEvent::of(
                why,
                format!("hosts/{host_id}/attributes"),
                Some(attributes_json(&before)),
                Some(attributes_json(&after)),
            );
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn attributes_json(a: &HostAttributes) -> String {
    serde_json::json!({
        "group": a.group,
        "criticality": a.criticality,
        "owner": a.owner,
        "department": a.department,
        "tags": a.tags,
    })
    .to_string()
}

/// Compares two secrets' hashes without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a delta is checked and keyed into, before anything is read: its
/// changed packages checked, the keys it touches, the digest of its head.
pub(crate) struct DeltaParts<'a> {
    rows: BTreeMap<String, PackageRow<'a>>,
    pub(crate) touched: Vec<protocol::PackageKey>,
    head: Vec<u8>,
}

impl<'a> DeltaParts<'a> {
    pub(crate) fn of(delta: &'a InventoryDelta) -> Result<DeltaParts<'a>> {
        Ok(DeltaParts {
            rows: package_rows(&delta.packages_changed)?,
            touched: delta
                .packages_removed
                .iter()
                .cloned()
                .chain(delta.packages_changed.iter().map(Package::key))
                .collect(),
            head: head_digest(&delta.head()),
        })
    }

    pub(crate) fn input<'b>(
        &'b self,
        host_id: &'b str,
        delta: &'b InventoryDelta,
        now: Timestamp,
    ) -> DeltaInput<'b>
    where
        'a: 'b,
    {
        DeltaInput {
            host_id,
            delta,
            rows: &self.rows,
            touched: &self.touched,
            head: &self.head,
            now,
        }
    }
}

/// An inventory delta checked and ready to store (see
/// `InventoryStore::store_inventory_delta`).
pub(crate) struct DeltaInput<'a> {
    pub(crate) host_id: &'a str,
    pub(crate) delta: &'a InventoryDelta,
    pub(crate) rows: &'a BTreeMap<String, PackageRow<'a>>,
    pub(crate) touched: &'a [protocol::PackageKey],
    pub(crate) head: &'a [u8],
    pub(crate) now: Timestamp,
}

impl<'a> DeltaInput<'a> {
    /// The host's row as the delta leaves it, on `package_set`.
    pub(crate) fn written(&self, plan: &DeltaPlan, package_set: Option<i64>) -> WrittenHead<'a> {
        WrittenHead {
            head: self.delta.head(),
            collected_at: self.delta.collected_at,
            digest: &self.delta.result_digest,
            sum: plan.sum,
            head_digest: self.head,
            package_set,
            own: plan.own,
        }
    }
}

/// What a delta writes, worked out from what is stored.
pub(crate) struct DeltaPlan {
    /// The new package versions and the host's own rows, by key.
    pub(crate) batch: Batch,
    pub(crate) replaced: Vec<Package>,
    sum: PackageSum,
    own: usize,
    /// The host drifted far from its set: settle it again.
    pub(crate) rebase: bool,
    /// Its updates, neighbours or MAC addresses changed.
    pub(crate) children: bool,
}

/// A transaction begun by hand on a pooled connection (see
/// `Store::delta_in_group`). Dropped while open, its connection is
/// closed rather than returned to the pool inside the transaction.
pub(crate) struct OpenTransaction {
    pub(crate) conn: sqlx::pool::PoolConnection<sqlx::Any>,
    pub(crate) open: bool,
}

impl OpenTransaction {
    pub(crate) async fn rollback(mut self) -> Result<()> {
        sqlx::query("ROLLBACK").execute(&mut *self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

impl Store {
    /// Works out what a delta writes: checks its base and its result, and
    /// puts the new versions and the host's own rows of the versions it
    /// touches (so that its set's rows and its own give what it has) in a
    /// batch, written by key.
    pub(crate) fn plan_delta(
        &self,
        input: &DeltaInput<'_>,
        stored: &StoredHead,
        mut before: RowsByKey,
    ) -> Result<DeltaPlan> {
        let delta = input.delta;
        let stale_base = || {
            Error::Conflict(
                "the delta's base is not the stored inventory; send the full inventory".into(),
            )
        };
        stored.check_older(delta.collected_at)?;
        if stored.digest.as_deref() != Some(delta.base_digest.as_str()) {
            return Err(stale_base());
        }
        let Some(mut sum) = stored.sum else {
            return Err(stale_base());
        };

        // As `Inventory::from_delta` does: removals first, then the changed
        // packages replace what is left under their key. `after` is what
        // the host has of each version touched, by stored key: none, or a row.
        let mut replaced = Vec::new();
        let mut after: HashMap<String, Option<crate::package_sets::RowState>> = HashMap::new();
        for key in &input.touched[..delta.packages_removed.len()] {
            if let Some((stored_key, old)) = before.packages.remove(key) {
                sum.remove(&old);
                after.insert(stored_key, None);
                replaced.push(old);
            }
        }
        for r in input.rows.values() {
            if let Some((stored_key, old)) = before.packages.remove(&r.package.key()) {
                sum.remove(&old);
                after.insert(stored_key, None);
                replaced.push(old);
            }
            sum.add(r.package);
        }
        if delta.head().digest(&sum) != delta.result_digest {
            return Err(Error::Conflict(
                "the delta does not reproduce the agent's inventory; send the full inventory"
                    .into(),
            ));
        }
        for r in input.rows.values() {
            after.insert(
                r.key.clone(),
                Some((
                    r.package.state.as_str().to_owned(),
                    i64::from(r.package.held),
                )),
            );
        }

        let mut batch = Batch::default();
        let keyed: Vec<(&str, &Package)> = input
            .rows
            .values()
            .map(|r| (r.key.as_str(), r.package))
            .collect();
        let mut known = HashMap::new();
        let mut unknown = Vec::new();
        match self.backend {
            Backend::Sqlite => self.version_ids.lookup(&keyed, &mut known, &mut unknown),
            // Another server on the same database may have deleted a version
            // this one remembers: every version the delta brings is inserted
            // where missing (they are few).
            Backend::Postgres => unknown = keyed.clone(),
        }
        let unknown_rows: Vec<&PackageRow<'_>> = unknown
            .iter()
            .filter_map(|(key, _)| input.rows.get(*key))
            .collect();
        Self::push_versions(&mut batch, &unknown_rows);

        let mut delete = Vec::new();
        let mut upsert = Vec::new();
        let mut own = usize::try_from(stored.own).unwrap_or(usize::MAX);
        for (key, wanted) in &after {
            let row = crate::package_sets::own_row(before.set.get(key), wanted.as_ref());
            let had = before.own.get(key);
            match (row, had) {
                (None, None) => {}
                (None, Some(_)) => {
                    delete.push(key.as_str());
                    own = own.saturating_sub(1);
                }
                (Some(row), had) if had != Some(&row) => {
                    if had.is_none() {
                        own += 1;
                    }
                    upsert.push((key.as_str(), row));
                }
                (Some(_), _) => {}
            }
        }
        let upsert: Vec<(&str, &crate::package_sets::OwnRow)> =
            upsert.iter().map(|(key, row)| (*key, row)).collect();
        self.push_own(
            &mut batch,
            input.host_id,
            crate::package_sets::VersionBy::Key,
            &delete,
            &upsert,
        )?;
        // The host may have up to its set's size and its own rows; past
        // the limit, it is settled again, which counts them exactly.
        let rebase = usize::try_from(stored.set_size).map_or(true, |size| {
            own > crate::package_sets::own_limit(size)
                || size.saturating_add(own) > self.max_packages
        });
        Ok(DeltaPlan {
            batch,
            replaced,
            sum,
            own,
            rebase,
            children: stored.head.as_deref() != Some(input.head),
        })
    }

    /// A delta in a transaction, settling the host again when it drifted
    /// far from its set.
    pub(crate) async fn delta_in_transaction(
        &self,
        input: &DeltaInput<'_>,
    ) -> Result<crate::DeltaStored> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let generation = self.hold_versions(&mut tx).await?;
        let (stored, before) = self
            .delta_base(&mut tx, input.host_id, input.touched)
            .await?;
        let plan = self.plan_delta(input, &stored, before)?;
        let mut written = input.written(&plan, stored.package_set);
        let mut batch = plan.batch;
        let settled = if plan.rebase {
            batch.run(self, &mut tx).await?;
            batch = Batch::default();
            let (target, own) = self
                .stored_rows(&mut tx, input.host_id, stored.package_set)
                .await?;
            self.check_package_count(target.len(), "the delta would leave the host with")?;
            let settled = self
                .settle(
                    &mut tx,
                    &mut batch,
                    input.host_id,
                    stored.package_set,
                    &own,
                    target,
                    plan.sum,
                    None,
                )
                .await?;
            written.package_set = settled.set;
            written.own = settled.own;
            Some(settled)
        } else {
            None
        };
        self.write_head(
            &mut tx,
            batch,
            input.host_id,
            &written,
            plan.children,
            input.now,
        )
        .await?;
        self.commit_settled(tx, settled, &HashMap::new(), generation)
            .await?;
        Ok(crate::DeltaStored {
            replaced: plan.replaced,
            os_changed: stored.os_changed(&input.delta.os),
        })
    }
}

/// Whether `e` is a row naming a package version that is not stored: a
/// version id remembered from before another server deleted it.
fn names_a_deleted_version(e: &Error) -> bool {
    matches!(e, Error::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation())
}

impl Store {
    /// [`InventoryStore::store_inventory`], once.
    async fn store_inventory_once(
        &self,
        host_id: &str,
        inv: &Inventory,
        digest: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let sum = PackageSum::of(&inv.packages);
        let head = head_digest(&inv.head());

        // Key the packages before taking the writer's turn, unless they
        // are those stored (an inventory resent unchanged).
        let mut keyed = match self.stored_sum(&self.pool, host_id).await? {
            Some(stored) if stored == sum => None,
            _ => Some(package_keys(&inv.packages)?),
        };
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let generation = self.hold_versions(&mut tx).await?;
        let (stored, own, same) = self.stored_head(&mut tx, host_id, sum).await?;
        stored.check_older(inv.collected_at)?;
        let os_changed = stored.os_changed(&inv.os);
        let packages_changed = stored.sum != Some(sum);
        let mut learned = HashMap::new();
        let mut batch = Batch::default();

        // Packages that changed, or a host with too many rows of its own
        // (it drifted from its set, or has none yet), are settled again.
        let settled = if packages_changed || stored.too_many_own() {
            // Check everything before writing anything.
            let keyed = match keyed.take() {
                Some(keyed) => keyed,
                None => package_keys(&inv.packages)?,
            };
            let keyed: Vec<(&str, &Package)> =
                keyed.iter().map(|(k, p)| (k.as_str(), *p)).collect();
            let (ids, new_ids) = self.ensure_package_ids(&mut tx, &keyed).await?;
            learned = new_ids;
            let target = Self::target_rows(&keyed, &ids)?;
            Some(
                self.settle(
                    &mut tx,
                    &mut batch,
                    host_id,
                    stored.package_set,
                    &own,
                    target,
                    sum,
                    Some(same),
                )
                .await?,
            )
        } else {
            None
        };
        let children = stored.head.as_deref() != Some(head.as_slice());
        let written = WrittenHead {
            head: inv.head(),
            collected_at: inv.collected_at,
            digest,
            sum,
            head_digest: &head,
            package_set: settled.as_ref().map_or(stored.package_set, |s| s.set),
            own: settled
                .as_ref()
                .map_or(usize::try_from(stored.own).unwrap_or(usize::MAX), |s| s.own),
        };
        self.write_head(&mut tx, batch, host_id, &written, children, now)
            .await?;
        self.commit_settled(tx, settled, &learned, generation)
            .await?;
        Ok(os_changed || packages_changed)
    }
}

impl InventoryStore for Store {
    async fn store_inventory(
        &self,
        host_id: &str,
        inv: &Inventory,
        digest: &str,
        now: Timestamp,
    ) -> Result<bool> {
        self.check_package_count(inv.packages.len(), "the inventory lists")?;
        match self.store_inventory_once(host_id, inv, digest, now).await {
            Err(e) if names_a_deleted_version(&e) => {
                tracing::info!(host = %host_id, "Package versions were deleted meanwhile; storing the inventory again.");
                self.version_ids.forget_all();
                self.store_inventory_once(host_id, inv, digest, now).await
            }
            stored => stored,
        }
    }

    async fn store_inventory_delta(
        &self,
        host_id: &str,
        delta: &InventoryDelta,
        now: Timestamp,
    ) -> Result<crate::DeltaStored> {
        self.check_package_count(delta.packages_changed.len(), "the delta changes")?;
        if self.backend == Backend::Sqlite {
            if let Some(stored) = self.delta_in_group(host_id, delta, now).await? {
                return Ok(stored);
            }
        }
        let parts = DeltaParts::of(delta)?;
        self.delta_in_transaction(&parts.input(host_id, delta, now))
            .await
    }

    async fn packages(&self, host_id: &str) -> Result<Vec<Package>> {
        let rows = self.effective(
            "SELECT pv.manager, pv.name, pv.version, pv.arch, pv.source, pv.source_version, \
             hp.state, hp.held FROM {ROWS}, package_versions pv \
             WHERE {HOST} = $1 AND {KEEP} AND pv.id = hp.package_id",
        );
        let sql = format!(
            "SELECT {} FROM ({rows}) AS x",
            self.json_array_of(
                "x.manager, x.name, x.version, x.arch, x.source, x.source_version, x.state, x.held"
            )
        );
        let built: Option<String> = sqlx::query(&sql)
            .bind(host_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let rows: Vec<PackageJson> =
            parse_json_array(built, &format!("the packages of host {host_id}"))?;
        let mut packages = rows
            .into_iter()
            .map(stored_package)
            .collect::<Result<Vec<_>>>()?;
        packages.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
        Ok(packages)
    }

    async fn hosts_with_package_below(
        &self,
        manager: Manager,
        name: &str,
        version: &str,
    ) -> Result<Vec<HostWithPackage>> {
        let key = sort_key(manager, version).map_err(|e| Error::Invalid(e.to_string()))?;
        let rows = self.effective(
            "SELECT h.id AS host_id, h.hostname, pv.name, pv.version, pv.arch \
             FROM package_versions pv, {ROWS} \
             WHERE pv.manager = $1 AND pv.name = $2 AND pv.sort_key < $3 \
               AND hp.package_id = pv.id AND {KEEP} \
               AND hp.state <> 'config-files' AND h.revoked_at IS NULL",
        );
        let rows = sqlx::query(&format!(
            "SELECT * FROM ({rows}) AS x ORDER BY x.hostname, x.host_id, x.arch"
        ))
        .bind(manager.as_str())
        .bind(name)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HostWithPackage {
                    host_id: r.try_get(0)?,
                    hostname: r.try_get(1)?,
                    package: r.try_get(2)?,
                    version: r.try_get(3)?,
                    arch: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn hosts_per_os_release(&self) -> Result<Vec<Count>> {
        let rows = sqlx::query(
            "SELECT COALESCE(os_id, 'unknown'), COALESCE(os_version, ''), COUNT(*) AS n FROM hosts \
             WHERE revoked_at IS NULL GROUP BY os_id, os_version ORDER BY n DESC, 1, 2",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let (id, version): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                let value = if version.is_empty() {
                    id
                } else {
                    format!("{id} {version}")
                };
                Ok(Count {
                    value,
                    hosts: u64::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn hosts_per_package_version(&self, manager: Manager, name: &str) -> Result<Vec<Count>> {
        let rows = self.effective(
            "SELECT pv.version, pv.sort_key, {HOST} AS host_id FROM package_versions pv, {ROWS} \
             WHERE pv.manager = $1 AND pv.name = $2 AND hp.package_id = pv.id AND {KEEP} \
               AND hp.state <> 'config-files' AND h.revoked_at IS NULL",
        );
        let rows = sqlx::query(&format!(
            "SELECT x.version, COUNT(DISTINCT x.host_id) FROM ({rows}) AS x \
             GROUP BY x.version, x.sort_key ORDER BY x.sort_key"
        ))
        .bind(manager.as_str())
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Count {
                    value: r.try_get(0)?,
                    hosts: u64::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn unmanaged_devices(&self) -> Result<Vec<UnmanagedDevice>> {
        let rows = sqlx::query(
            "SELECT n.mac, n.address, h.hostname FROM neighbours n JOIN hosts h ON h.id = n.host_id \
             WHERE n.mac IS NOT NULL AND h.revoked_at IS NULL \
               AND NOT EXISTS (SELECT 1 FROM host_macs m JOIN hosts mh ON mh.id = m.host_id \
                               WHERE m.mac = n.mac AND mh.revoked_at IS NULL) \
             ORDER BY n.mac, n.address, h.hostname",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut devices: Vec<UnmanagedDevice> = Vec::new();
        for r in rows {
            let (mac, address, seen_by): (String, String, String) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            if devices.last().map(|d| &d.mac) != Some(&mac) {
                devices.push(UnmanagedDevice {
                    mac: mac.clone(),
                    addresses: Vec::new(),
                    seen_by: Vec::new(),
                });
            }
            if let Some(d) = devices.last_mut() {
                if !d.addresses.contains(&address) {
                    d.addresses.push(address);
                }
                if !d.seen_by.contains(&seen_by) {
                    d.seen_by.push(seen_by);
                }
            }
        }
        Ok(devices)
    }

    async fn package_version_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM package_versions")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn prune_package_versions(&self) -> Result<u64> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(VERSIONS_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "DELETE FROM package_versions \
             WHERE NOT EXISTS (SELECT 1 FROM host_packages hp WHERE hp.package_id = package_versions.id) \
               AND NOT EXISTS (SELECT 1 FROM package_set_rows sr WHERE sr.package_id = package_versions.id)",
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            // While every writer is held off: none remembers a deleted id
            // after this, and SQLite may give a deleted id to a new row.
            self.version_ids.forget_all();
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn neighbours(&self, host_id: &str) -> Result<Vec<Neighbour>> {
        let rows = sqlx::query(
            "SELECT address, mac, interface, state FROM neighbours WHERE host_id = $1 ORDER BY interface, address",
        )
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Neighbour {
                    address: r.try_get(0)?,
                    mac: r.try_get(1)?,
                    interface: r.try_get(2)?,
                    state: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn updates(&self, host_id: &str) -> Result<Vec<AvailableUpdate>> {
        let hosts = [host_id.to_owned()];
        Ok(self
            .updates_of(&hosts)
            .await?
            .into_iter()
            .map(|(_, u)| u)
            .collect())
    }

    async fn packages_of(
        &self,
        host_ids: &[String],
        names: &crate::PackageNames<'_>,
    ) -> Result<Vec<(String, Package)>> {
        if host_ids.is_empty() {
            return Ok(Vec::new());
        }
        // The package versions wanted first (once), then each host's rows
        // of them by key.
        let rows = self.effective(&format!(
            "SELECT {{HOST}} AS host_id, pv.manager, pv.name, pv.version, pv.arch, pv.source, \
             pv.source_version, hp.state, hp.held FROM {{ROWS}}, package_versions pv \
             WHERE {{HOST}} IN ({}) AND {{KEEP}} AND pv.id = hp.package_id AND hp.package_id IN ( \
               SELECT id FROM package_versions WHERE name IN ({names}) OR source IN ({names}) \
               UNION SELECT v.id FROM package_versions v, ({}) AS n \
                 WHERE substr(v.name, 1, length(n.value)) = n.value)",
            self.json_values(1, "text"),
            self.json_values(3, "text"),
            names = self.json_values(2, "text"),
        ));
        let sql = format!(
            "SELECT {} FROM ({rows}) AS x",
            self.json_array_of(&format!(
                "x.host_id, {}",
                self.json_array_sql(
                    "x.manager, x.name, x.version, x.arch, x.source, x.source_version, \
                     x.state, x.held"
                )
            )),
        );
        let built: Option<String> = sqlx::query(&sql)
            .bind(json_list(serde_json::to_string(host_ids))?)
            .bind(json_list(serde_json::to_string(names.names))?)
            .bind(json_list(serde_json::to_string(names.prefixes))?)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let rows: Vec<(String, PackageJson)> = parse_json_array(built, "the packages of hosts")?;
        let mut found = rows
            .into_iter()
            .map(|(host, row)| Ok((host, stored_package(row)?)))
            .collect::<Result<Vec<_>>>()?;
        found.sort_by(|(h, a), (g, b)| (h, &a.name, &a.arch).cmp(&(g, &b.name, &b.arch)));
        Ok(found)
    }

    async fn updates_of(&self, host_ids: &[String]) -> Result<Vec<(String, AvailableUpdate)>> {
        if host_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM host_updates WHERE host_id IN ({})",
            self.json_array_of(
                "host_id, manager, name, arch, installed, candidate, suite, codename, origin, security"
            ),
            self.json_values(1, "text"),
        );
        let built: Option<String> = sqlx::query(&sql)
            .bind(json_list(serde_json::to_string(host_ids))?)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
        );
        let rows: Vec<Row> = parse_json_array(built, "the updates of hosts")?;
        let mut found = rows
            .into_iter()
            .map(
                |(
                    host,
                    manager,
                    name,
                    arch,
                    installed,
                    candidate,
                    suite,
                    codename,
                    origin,
                    security,
                )| {
                    Ok((
                        host,
                        AvailableUpdate {
                            manager: parse_stored(&manager)?,
                            name,
                            arch,
                            installed,
                            candidate,
                            suite,
                            codename,
                            origin,
                            security: security != 0,
                        },
                    ))
                },
            )
            .collect::<Result<Vec<_>>>()?;
        found.sort_by(|(h, a), (g, b)| {
            (h, a.manager.as_str(), &a.name, &a.arch).cmp(&(
                g,
                b.manager.as_str(),
                &b.name,
                &b.arch,
            ))
        });
        Ok(found)
    }

    async fn hosts_with_sources(
        &self,
        manager: Manager,
        names: &[&str],
    ) -> Result<Vec<(String, Package)>> {
        let mut found = Vec::new();
        for chunk in names.chunks(200) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let list = marks.join(", ");
            let rows = self.effective(&format!(
                "SELECT {{HOST}} AS host_id, pv.manager, pv.name, pv.version, pv.arch, pv.source, \
                 pv.source_version, hp.state, hp.held FROM package_versions pv, {{ROWS}} \
                 WHERE pv.manager = $1 AND (pv.source IN ({list}) OR pv.name IN ({list})) \
                   AND hp.package_id = pv.id AND {{KEEP}} AND h.revoked_at IS NULL"
            ));
            let sql = format!("SELECT * FROM ({rows}) AS x ORDER BY x.host_id, x.name, x.arch");
            let mut q = sqlx::query(&sql).bind(manager.as_str());
            for name in chunk {
                q = q.bind(*name);
            }
            for r in q.fetch_all(&self.pool).await? {
                found.push((r.try_get(0)?, package_from_row(&r, 1)?));
            }
        }
        Ok(found)
    }

    async fn offered_updates(&self) -> Result<Vec<OfferedUpdate>> {
        let rows = sqlx::query(
            "SELECT u.manager, u.name, u.candidate, CAST(MAX(u.security) AS BIGINT),                     MAX(COALESCE(u.suite, '')), COUNT(DISTINCT u.host_id) AS n              FROM host_updates u JOIN hosts h ON h.id = u.host_id              WHERE h.revoked_at IS NULL              GROUP BY u.manager, u.name, u.candidate              ORDER BY 4 DESC, n DESC, u.name, u.candidate",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OfferedUpdate {
                    manager: parse_stored(&r.try_get::<String, _>(0)?)?,
                    name: r.try_get(1)?,
                    candidate: r.try_get(2)?,
                    security: r.try_get::<i64, _>(3)? != 0,
                    suites: r.try_get(4)?,
                    hosts: u64::try_from(r.try_get::<i64, _>(5)?).unwrap_or(0),
                })
            })
            .collect()
    }
}

/// A package from the columns manager, name, version, arch, source,
/// source_version, state, held, starting at column `at`.
fn package_from_row(r: &AnyRow, at: usize) -> Result<Package> {
    Ok(Package {
        manager: parse_stored(&r.try_get::<String, _>(at)?)?,
        name: r.try_get(at + 1)?,
        version: r.try_get(at + 2)?,
        arch: r.try_get(at + 3)?,
        source: Some(r.try_get(at + 4)?),
        source_version: Some(r.try_get(at + 5)?),
        state: parse_stored(&r.try_get::<String, _>(at + 6)?)?,
        held: r.try_get::<i64, _>(at + 7)? != 0,
    })
}

const FEED_COLUMNS: &str = "name, kind, location, verification, created_at, imported_at, sha256, \
    records, rejected, last_error, last_error_at";

fn feed_from_row(r: &AnyRow) -> Result<crate::FeedRecord> {
    Ok(crate::FeedRecord {
        name: r.try_get(0)?,
        kind: r.try_get(1)?,
        location: r.try_get(2)?,
        verification: r.try_get(3)?,
        created_at: ts(r.try_get(4)?)?,
        imported_at: opt_ts(r.try_get(5)?)?,
        sha256: r.try_get(6)?,
        records: r.try_get::<i64, _>(7)?.max(0) as u64,
        rejected: r.try_get::<i64, _>(8)?.max(0) as u64,
        last_error: r.try_get(9)?,
        last_error_at: opt_ts(r.try_get(10)?)?,
    })
}

impl crate::CatalogStore for Store {
    async fn put_feed(&self, feed: &crate::FeedRecord) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO feeds (name, kind, location, verification, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, location = excluded.location, \
             verification = excluded.verification",
        )
        .bind(feed.name.clone())
        .bind(feed.kind.clone())
        .bind(feed.location.clone())
        .bind(feed.verification.clone())
        .bind(feed.created_at.as_second())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn feeds(&self) -> Result<Vec<crate::FeedRecord>> {
        let sql = format!("SELECT {FEED_COLUMNS} FROM feeds ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(feed_from_row).collect()
    }

    async fn feed(&self, name: &str) -> Result<Option<crate::FeedRecord>> {
        let sql = format!("SELECT {FEED_COLUMNS} FROM feeds WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(feed_from_row).transpose()
    }

    async fn delete_feed(&self, name: &str) -> Result<bool> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM feed_documents WHERE feed = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM feeds WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn store_feed_import(
        &self,
        feed: &crate::FeedRecord,
        documents: &[crate::FeedDocument],
        sha256: &str,
        records: u64,
        rejected: u64,
        now: Timestamp,
    ) -> Result<()> {
        let name = feed.name.as_str();
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE feeds SET kind = $2, location = $3, verification = $4, imported_at = $5, sha256 = $6, \
             records = $7, rejected = $8, last_error = NULL, last_error_at = NULL WHERE name = $1",
        )
        .bind(name)
        .bind(feed.kind.clone())
        .bind(feed.location.clone())
        .bind(feed.verification.clone())
        .bind(now.as_second())
        .bind(sha256)
        .bind(i64::try_from(records).unwrap_or(i64::MAX))
        .bind(i64::try_from(rejected).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Invalid(format!("no feed named {name:?}")));
        }
        sqlx::query("DELETE FROM feed_documents WHERE feed = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        for doc in documents {
            sqlx::query("INSERT INTO feed_documents (feed, name, content) VALUES ($1, $2, $3)")
                .bind(name)
                .bind(doc.name.clone())
                .bind(doc.content.clone())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn feed_unchanged(&self, name: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE feeds SET last_error = NULL, last_error_at = NULL WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_feed_error(&self, name: &str, error: &str, now: Timestamp) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE feeds SET last_error = $2, last_error_at = $3 WHERE name = $1")
            .bind(name)
            .bind(error)
            .bind(now.as_second())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn feed_documents(&self, name: &str) -> Result<Vec<crate::FeedDocument>> {
        let rows =
            sqlx::query("SELECT name, content FROM feed_documents WHERE feed = $1 ORDER BY name")
                .bind(name)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::FeedDocument {
                    name: r.try_get(0)?,
                    content: r.try_get(1)?,
                })
            })
            .collect()
    }
}

/// Makes the data directory readable by its owner only (0700), whoever
/// created it, and the database with its WAL and shared-memory files 0600:
/// they hold password hashes and every host's inventory. The database is
/// created here, before SQLite opens it, so that it never exists with the
/// process's umask; SQLite gives the files it adds beside a database the
/// database's own mode.
fn make_private(data_dir: &Path, db: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |what: &Path, e: std::io::Error| {
        Error::Invalid(format!("data directory {}: {e}", what.display()))
    };
    std::fs::create_dir_all(data_dir).map_err(|e| fail(data_dir, e))?;
    let restrict = |path: &Path, mode: u32| -> Result<()> {
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o777 != mode => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| fail(path, e))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(fail(path, e)),
        }
    };
    restrict(data_dir, 0o700)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(db)
        .map_err(|e| fail(db, e))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        restrict(Path::new(&name), 0o600)?;
    }
    Ok(())
}
