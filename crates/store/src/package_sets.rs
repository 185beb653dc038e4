//! Package sets (schema 11): hosts cloned from one image share one stored
//! copy of its package list, and each keeps rows of its own only where it
//! differs. A fleet's first inventories then write one row per host, not a
//! thousand rows and a thousand entries of the by-package index each.
//!
//! A set is never changed once written, so its rows are kept in memory by
//! id after they are first read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use protocol::PackageSum;
use sqlx::Row;

use crate::batch::Batch;
use crate::sql::{json_list, split_joined, Backend, Store};
use crate::{Error, Result};

/// A row's state and whether it is held, as stored.
pub(crate) type RowState = (String, i64);

/// Package rows by package version id: a set's, or what a host should have.
pub(crate) type Rows = HashMap<i64, RowState>;

/// A host's own row: whether it adds (or replaces) a package, and the row.
pub(crate) type OwnRow = (bool, String, i64);

/// Sets read so far, by id. Sets are immutable; one that is deleted is
/// dropped from here, and one created is added only once it is committed.
#[derive(Debug, Default)]
pub(crate) struct SetCache {
    /// The sets, and how many rows they hold together.
    sets: Mutex<(HashMap<i64, Arc<Rows>>, usize)>,
}

/// At most this many sets are kept in memory (a fleet has a few images),
/// holding at most this many rows together (some 100 bytes each).
const CACHED_SETS: usize = 64;
const CACHED_ROWS: usize = 1_000_000;

impl SetCache {
    fn get(&self, id: i64) -> Option<Arc<Rows>> {
        self.sets.lock().ok()?.0.get(&id).cloned()
    }

    pub(crate) fn put(&self, id: i64, rows: Arc<Rows>) {
        if let Ok(mut cached) = self.sets.lock() {
            let (sets, held) = &mut *cached;
            if sets.len() >= CACHED_SETS || *held + rows.len() > CACHED_ROWS {
                sets.clear();
                *held = 0;
            }
            *held += rows.len();
            if let Some(old) = sets.insert(id, rows) {
                *held -= old.len();
            }
        }
    }

    fn forget(&self, id: i64) {
        if let Ok(mut cached) = self.sets.lock() {
            let (sets, held) = &mut *cached;
            if let Some(old) = sets.remove(&id) {
                *held -= old.len();
            }
        }
    }
}

/// Package version ids by stored key. A version's row is never changed,
/// so an id read once stays true until the row is deleted: only
/// [`crate::InventoryStore::prune_package_versions`] deletes rows, with
/// every writer of package rows held off, and it forgets them all here and
/// moves the generation on. Ids are only remembered as read from committed
/// rows, and only under the generation their writer began in.
#[derive(Debug, Default)]
pub(crate) struct VersionIds {
    ids: Mutex<(HashMap<String, i64>, u64)>,
}

/// At most this many version ids are kept in memory (some 100 bytes each).
const REMEMBERED_VERSIONS: usize = 500_000;

impl VersionIds {
    /// Puts the ids known of `packages` into `ids`, the others into `unknown`.
    pub(crate) fn lookup<'p>(
        &self,
        packages: &[(&'p str, &'p protocol::Package)],
        ids: &mut HashMap<String, i64>,
        unknown: &mut Vec<(&'p str, &'p protocol::Package)>,
    ) {
        let Ok(known) = self.ids.lock() else {
            unknown.extend_from_slice(packages);
            return;
        };
        for &(key, p) in packages {
            match known.0.get(key) {
                Some(&id) => {
                    ids.insert(key.to_owned(), id);
                }
                None => unknown.push((key, p)),
            }
        }
    }

    /// The generation now: read by a writer when it begins, under the
    /// writer's turn (SQLite) or lock (PostgreSQL).
    pub(crate) fn generation(&self) -> u64 {
        self.ids.lock().map_or(u64::MAX, |known| known.1)
    }

    /// Remembers ids read from committed rows by a writer that began in
    /// `generation`; none if versions were deleted since.
    pub(crate) fn remember(&self, generation: u64, found: &HashMap<String, i64>) {
        if let Ok(mut known) = self.ids.lock() {
            if known.1 != generation {
                return;
            }
            if known.0.len() + found.len() > REMEMBERED_VERSIONS {
                known.0 = HashMap::new();
            }
            known.0.extend(found.iter().map(|(k, id)| (k.clone(), *id)));
        }
    }

    /// Forgets every id, for a new generation.
    pub(crate) fn forget_all(&self) {
        if let Ok(mut known) = self.ids.lock() {
            known.0 = HashMap::new();
            known.1 = known.1.wrapping_add(1);
        }
    }
}

/// How many rows of its own a host may keep beside its set before its
/// packages are settled again: an eighth of the set, and at least 16.
pub(crate) fn own_limit(set_size: usize) -> usize {
    (set_size / 8).max(16)
}

/// How many rows differ between a set and what a host should have,
/// counting no further than `limit + 1`.
fn difference(set: &Rows, target: &Rows, limit: usize) -> usize {
    let mut n = 0;
    for (id, row) in target {
        if set.get(id) != Some(row) {
            n += 1;
            if n > limit {
                return n;
            }
        }
    }
    for id in set.keys() {
        if !target.contains_key(id) {
            n += 1;
            if n > limit {
                return n;
            }
        }
    }
    n
}

/// The host's own row for package `id`, given what its set has and what
/// the host should have; none when the set already says it.
pub(crate) fn own_row(set: Option<&RowState>, wanted: Option<&RowState>) -> Option<OwnRow> {
    match (set, wanted) {
        (s, w) if s == w => None,
        (_, Some((state, held))) => Some((true, state.clone(), *held)),
        (Some((state, held)), None) => Some((false, state.clone(), *held)),
        (None, None) => None,
    }
}

/// A host's own rows as [`Store::own_rows_sql`] joins them, by version id.
pub(crate) fn parse_own_rows(joined: Option<&str>, host_id: &str) -> Result<HashMap<i64, OwnRow>> {
    let mut rows = HashMap::new();
    for fields in split_joined(joined) {
        let [package, present, state, held] = fields[..] else {
            return Err(Error::Corrupt(format!("a package row of host {host_id}")));
        };
        let number = |text: &str| {
            text.parse::<i64>()
                .map_err(|_| Error::Corrupt(format!("package row {text:?} of host {host_id}")))
        };
        rows.insert(
            number(package)?,
            (number(present)? != 0, state.to_owned(), number(held)?),
        );
    }
    Ok(rows)
}

/// How rows name a package version: by its id, or by its stored key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VersionBy {
    Id,
    Key,
}

/// Where a host's packages were settled.
pub(crate) struct Settled {
    /// The set the host now points at.
    pub(crate) set: Option<i64>,
    /// How many rows of its own it keeps.
    pub(crate) own: usize,
    /// The set it left, to drop if no host points at it any more.
    pub(crate) left: Option<i64>,
    /// A set this transaction created, to remember once it is committed.
    pub(crate) created: Option<(i64, Arc<Rows>)>,
}

impl Store {
    /// A set's rows, from memory or read in `tx`. Only for sets committed
    /// before `tx` began or by another transaction.
    pub(crate) async fn set_rows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: i64,
    ) -> Result<Arc<Rows>> {
        if let Some(rows) = self.sets.get(id) {
            return Ok(rows);
        }
        let sql = format!(
            "SELECT {} FROM package_set_rows WHERE set_id = $1",
            self.joined(&["package_id", "state", "held"])
        );
        let joined: Option<String> = sqlx::query(&sql)
            .bind(id)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        let mut rows = Rows::new();
        for fields in split_joined(joined.as_deref()) {
            let [package, state, held] = fields[..] else {
                return Err(Error::Corrupt(format!("a row of package set {id}")));
            };
            let number = |text: &str| {
                text.parse::<i64>()
                    .map_err(|_| Error::Corrupt(format!("row {text:?} of package set {id}")))
            };
            rows.insert(number(package)?, (state.to_owned(), number(held)?));
        }
        let rows = Arc::new(rows);
        self.sets.put(id, rows.clone());
        Ok(rows)
    }

    /// A host's own rows, by package version id.
    pub(crate) async fn own_rows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        host_id: &str,
    ) -> Result<HashMap<i64, OwnRow>> {
        let sql = format!("SELECT {}", self.own_rows_sql(1));
        let joined: Option<String> = sqlx::query(&sql)
            .bind(host_id)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        parse_own_rows(joined.as_deref(), host_id)
    }

    /// A subquery of the own rows of the host whose id is parameter
    /// `param`, joined into one text (see [`parse_own_rows`]).
    pub(crate) fn own_rows_sql(&self, param: usize) -> String {
        format!(
            "(SELECT {} FROM host_packages WHERE host_id = ${param})",
            self.joined(&["package_id", "present", "state", "held"])
        )
    }

    /// Points the host at the set that leaves it fewest rows of its own, and
    /// writes those rows: a set with exactly `target`'s rows, else its
    /// present set or one of the fleet's most common sets if they differ by
    /// at most [`own_limit`] rows, else a new set of `target`.
    ///
    /// `same` are the sets whose sum is `sum`, when already read. The
    /// host's own rows are written by `batch`, which the caller runs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn settle(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        batch: &mut Batch,
        host_id: &str,
        current: Option<i64>,
        own: &HashMap<i64, OwnRow>,
        target: Rows,
        sum: PackageSum,
        same: Option<Vec<i64>>,
    ) -> Result<Settled> {
        let limit = own_limit(target.len());
        let mut chosen: Option<(i64, Arc<Rows>)> = None;
        if !target.is_empty() {
            let same = match same {
                Some(same) => same,
                None => {
                    let rows =
                        sqlx::query("SELECT id FROM package_sets WHERE sum = $1 ORDER BY id")
                            .bind(sum.to_bytes().to_vec())
                            .fetch_all(&mut **tx)
                            .await?;
                    rows.iter()
                        .map(|r| r.try_get::<i64, _>(0))
                        .collect::<std::result::Result<Vec<_>, _>>()?
                }
            };
            for id in same {
                let rows = self.set_rows(tx, id).await?;
                if *rows == target {
                    chosen = Some((id, rows));
                    break;
                }
            }
        }
        if chosen.is_none() && !target.is_empty() {
            let mut best: Option<(usize, i64, Arc<Rows>)> = None;
            let consider =
                |best: &mut Option<(usize, i64, Arc<Rows>)>, id: i64, rows: Arc<Rows>| {
                    let d = difference(&rows, &target, limit);
                    if d <= limit && best.as_ref().is_none_or(|(b, _, _)| d < *b) {
                        *best = Some((d, id, rows));
                    }
                };
            if let Some(id) = current {
                let rows = self.set_rows(tx, id).await?;
                consider(&mut best, id, rows);
            }
            if best.is_none() {
                let common = sqlx::query(
                    "SELECT package_set FROM hosts WHERE package_set IS NOT NULL \
                     GROUP BY package_set ORDER BY COUNT(*) DESC, package_set LIMIT 3",
                )
                .fetch_all(&mut **tx)
                .await?;
                for row in common {
                    let id: i64 = row.try_get(0)?;
                    if Some(id) != current {
                        let rows = self.set_rows(tx, id).await?;
                        consider(&mut best, id, rows);
                    }
                }
            }
            chosen = best.map(|(_, id, rows)| (id, rows));
        }
        let mut created = None;
        let (set, set_rows) = match chosen {
            Some((id, rows)) => (Some(id), rows),
            None if target.is_empty() => (None, Arc::new(Rows::new())),
            None => {
                let id = self.create_set(tx, &target, sum).await?;
                let rows = Arc::new(target.clone());
                created = Some((id, rows.clone()));
                (Some(id), rows)
            }
        };

        let mut wanted: HashMap<i64, OwnRow> = HashMap::new();
        for (id, row) in &target {
            if let Some(r) = own_row(set_rows.get(id), Some(row)) {
                wanted.insert(*id, r);
            }
        }
        for (id, row) in set_rows.iter() {
            if !target.contains_key(id) {
                if let Some(r) = own_row(Some(row), None) {
                    wanted.insert(*id, r);
                }
            }
        }
        let delete: Vec<i64> = own
            .keys()
            .filter(|id| !wanted.contains_key(id))
            .copied()
            .collect();
        let upsert: Vec<(i64, &OwnRow)> = wanted
            .iter()
            .filter(|(id, row)| own.get(id) != Some(row))
            .map(|(id, row)| (*id, row))
            .collect();
        self.push_own(batch, host_id, VersionBy::Id, &delete, &upsert)?;
        Ok(Settled {
            set,
            own: wanted.len(),
            left: current.filter(|c| Some(*c) != set),
            created,
        })
    }

    /// Ends an inventory's transaction: drops the set the host left if no
    /// host points at it now, commits, and then remembers a set it created
    /// and the package version ids it `learned`.
    pub(crate) async fn commit_settled(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        settled: Option<Settled>,
        learned: &HashMap<String, i64>,
        generation: u64,
    ) -> Result<()> {
        if let Some(left) = settled.as_ref().and_then(|s| s.left) {
            self.drop_set_if_unused(&mut tx, left).await?;
        }
        tx.commit().await?;
        self.version_ids.remember(generation, learned);
        if let Some((id, rows)) = settled.and_then(|s| s.created) {
            self.sets.put(id, rows);
        }
        Ok(())
    }

    /// Stores a new set of `rows`; its id.
    async fn create_set(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        rows: &Rows,
        sum: PackageSum,
    ) -> Result<i64> {
        let id: i64 =
            sqlx::query("INSERT INTO package_sets (sum, size) VALUES ($1, $2) RETURNING id")
                .bind(sum.to_bytes().to_vec())
                .bind(i64::try_from(rows.len()).unwrap_or(i64::MAX))
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?;
        let list: Vec<(i64, &str, i64)> = rows
            .iter()
            .map(|(package, (state, held))| (*package, state.as_str(), *held))
            .collect();
        let sql = format!(
            "INSERT INTO package_set_rows (set_id, package_id, state, held) \
             SELECT $1, {}, {}, {} FROM {}",
            self.json_col(0, true),
            self.json_col(1, false),
            self.json_col(2, true),
            self.json_rows(2)
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(json_list(serde_json::to_string(&list))?)
            .execute(&mut **tx)
            .await?;
        Ok(id)
    }

    /// Deletes a host's own rows of `delete` and writes those of `upsert`,
    /// each version named `by` its id or its stored key.
    pub(crate) fn push_own<K: serde::Serialize>(
        &self,
        batch: &mut Batch,
        host_id: &str,
        by: VersionBy,
        delete: &[K],
        upsert: &[(K, &OwnRow)],
    ) -> Result<()> {
        if !delete.is_empty() {
            let versions = match by {
                VersionBy::Id => self.json_values(2, "bigint"),
                VersionBy::Key => format!(
                    "SELECT id FROM package_versions WHERE key IN ({})",
                    self.json_values(2, "text")
                ),
            };
            batch.push(
                format!(
                    "DELETE FROM host_packages WHERE host_id = $1 AND package_id IN ({versions})"
                ),
                vec![
                    host_id.into(),
                    json_list(serde_json::to_string(delete))?.into(),
                ],
            );
        }
        if !upsert.is_empty() {
            let list: Vec<(&K, i64, &str, i64)> = upsert
                .iter()
                .map(|(version, (present, state, held))| {
                    (version, i64::from(*present), state.as_str(), *held)
                })
                .collect();
            let (id, join) = match by {
                VersionBy::Id => (self.json_col(0, true), String::new()),
                VersionBy::Key => (
                    "pv.id".to_owned(),
                    format!(
                        " JOIN package_versions pv ON pv.key = {}",
                        self.json_col(0, false)
                    ),
                ),
            };
            // `WHERE true` tells SQLite's parser that ON CONFLICT is the
            // upsert's, not a join constraint.
            batch.push(
                format!(
                    "INSERT INTO host_packages (host_id, package_id, present, state, held) \
                     SELECT $1, {id}, {}, {}, {} FROM {}{join} WHERE true \
                     ON CONFLICT (host_id, package_id) DO UPDATE SET \
                     present = excluded.present, state = excluded.state, held = excluded.held",
                    self.json_col(1, true),
                    self.json_col(2, false),
                    self.json_col(3, true),
                    self.json_rows(2)
                ),
                vec![
                    host_id.into(),
                    json_list(serde_json::to_string(&list))?.into(),
                ],
            );
        }
        Ok(())
    }

    /// Deletes a set no host points at any more. On PostgreSQL another
    /// transaction may be pointing a host at it meanwhile; then the delete
    /// fails on the reference, which is undone alone and leaves the set.
    pub(crate) async fn drop_set_if_unused(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: i64,
    ) -> Result<()> {
        let delete = "DELETE FROM package_sets WHERE id = $1 \
                      AND NOT EXISTS (SELECT 1 FROM hosts WHERE package_set = $1)";
        let gone = match self.backend {
            Backend::Sqlite => sqlx::query(delete).bind(id).execute(&mut **tx).await?,
            Backend::Postgres => {
                sqlx::query("SAVEPOINT drop_set").execute(&mut **tx).await?;
                match sqlx::query(delete).bind(id).execute(&mut **tx).await {
                    Ok(done) => {
                        sqlx::query("RELEASE SAVEPOINT drop_set")
                            .execute(&mut **tx)
                            .await?;
                        done
                    }
                    Err(_) => {
                        sqlx::query("ROLLBACK TO SAVEPOINT drop_set")
                            .execute(&mut **tx)
                            .await?;
                        return Ok(());
                    }
                }
            }
        };
        if gone.rows_affected() > 0 {
            // Foreign keys cascade; this is for a database where they are off.
            sqlx::query("DELETE FROM package_set_rows WHERE set_id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            self.sets.forget(id);
        }
        Ok(())
    }

    /// `template` once over hosts' own present rows and once over the rows
    /// of their sets that they have no row of their own for, joined by
    /// UNION ALL. In the template, `{ROWS}` is where the rows and their
    /// hosts are named (as `hp`, with `package_id`, `state` and `held`, and
    /// `h`), `{KEEP}` a condition it must AND in, and `{HOST}` the host's
    /// id. Each half is planned on its own, so each uses its indexes.
    pub(crate) fn effective(&self, template: &str) -> String {
        let own = template
            .replace(
                "{ROWS}",
                "host_packages hp JOIN hosts h ON h.id = hp.host_id",
            )
            .replace("{KEEP}", "hp.present = 1")
            .replace("{HOST}", "hp.host_id");
        let set = template
            .replace(
                "{ROWS}",
                "package_set_rows hp JOIN hosts h ON h.package_set = hp.set_id",
            )
            .replace(
                "{KEEP}",
                "NOT EXISTS (SELECT 1 FROM host_packages o \
                 WHERE o.host_id = h.id AND o.package_id = hp.package_id)",
            )
            .replace("{HOST}", "h.id");
        format!("{own} UNION ALL {set}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[(i64, &str, i64)]) -> Rows {
        list.iter()
            .map(|(id, state, held)| (*id, ((*state).to_owned(), *held)))
            .collect()
    }

    #[test]
    fn a_host_keeps_rows_only_where_it_differs_from_its_set() {
        let installed = ("installed".to_owned(), 0);
        let held = ("installed".to_owned(), 1);
        assert_eq!(own_row(Some(&installed), Some(&installed)), None);
        assert_eq!(own_row(None, None), None);
        assert_eq!(
            own_row(Some(&installed), Some(&held)),
            Some((true, "installed".to_owned(), 1))
        );
        assert_eq!(
            own_row(None, Some(&installed)),
            Some((true, "installed".to_owned(), 0))
        );
        assert_eq!(
            own_row(Some(&held), None),
            Some((false, "installed".to_owned(), 1))
        );
    }

    #[test]
    fn difference_counts_rows_either_side_and_stops_past_the_limit() {
        let set = rows(&[
            (1, "installed", 0),
            (2, "installed", 0),
            (3, "installed", 0),
        ]);
        let target = rows(&[
            (1, "installed", 0),
            (2, "installed", 1),
            (4, "installed", 0),
        ]);
        // 2 changed its hold, 3 went, 4 came.
        assert_eq!(difference(&set, &target, 10), 3);
        assert_eq!(difference(&set, &target, 1), 2);
        assert_eq!(difference(&set, &set, 0), 0);
        assert_eq!(own_limit(1000), 125);
        assert_eq!(own_limit(10), 16);
    }

    /// Schema 11 keeps the package rows stored before it as the hosts' own
    /// rows, and the hosts' next inventories move them to one shared set.
    #[tokio::test]
    async fn rows_stored_before_schema_11_are_kept_and_shared_later() {
        use crate::InventoryStore;
        use protocol::{Inventory, Manager, Package, PackageState};

        let dir = std::env::temp_dir().join(format!("patchwell-schema-11-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", dir.join("patchwell.db").display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let now = jiff::Timestamp::from_second(1_000).unwrap();
        crate::schema::migrate_to(&pool, Backend::Sqlite, now, 10)
            .await
            .unwrap();

        let packages: Vec<Package> = (0..20)
            .map(|i| Package {
                manager: Manager::Dpkg,
                name: format!("pkg{i:02}"),
                version: format!("1.{i}-1"),
                arch: "amd64".into(),
                source: Some(format!("pkg{i:02}")),
                source_version: Some(format!("1.{i}-1")),
                state: PackageState::Installed,
                held: i == 3,
            })
            .collect();
        let mut inventory: Inventory = serde_json::from_value(serde_json::json!({
            "schema": protocol::INVENTORY_SCHEMA,
            "collected_at": "2026-01-01T00:00:00Z",
            "host": {"hostname": "old", "machine_id": null, "kernel": "6.1.0-18-amd64", "arch": "amd64",
                     "cpu": {"model": "x", "count": 2}, "memory_bytes": 1, "disks": [],
                     "interfaces": [], "uptime_seconds": 1, "boot_time": "2026-01-01T00:00:00Z"},
            "os": {"id": "debian", "version_id": "12", "codename": "bookworm", "pretty_name": null, "id_like": []},
            "reboot": {"required": false, "packages": []},
            "packages": [], "updates": [], "neighbours": [], "warnings": []
        }))
        .unwrap();
        inventory.packages = packages.clone();
        let sum = PackageSum::of(&packages).to_bytes().to_vec();

        // Two hosts with the same packages, stored as schema 10 stored them.
        let rows = crate::sql::package_rows(&packages).unwrap();
        for r in rows.values() {
            let p = r.package;
            sqlx::query(
                "INSERT INTO package_versions (key, manager, name, version, arch, source, \
                 source_version, sort_key, source_sort_key) VALUES ($1, 'dpkg', $2, $3, 'amd64', $2, $3, $4, $5)",
            )
            .bind(r.key.clone())
            .bind(p.name.clone())
            .bind(p.version.clone())
            .bind(r.sort_key.clone())
            .bind(r.source_sort_key.clone())
            .execute(&pool)
            .await
            .unwrap();
        }
        for host in ["h1", "h2"] {
            sqlx::query(
                "INSERT INTO hosts (id, credential_hash, enrolled_at, enrolled_with, last_seen, \
                 hostname, packages_sum, inventory_digest, inventory_collected_at, os_id, os_version) \
                 VALUES ($1, x'00', 0, 't', 0, $1, $2, 'd0', 0, 'debian', '12')",
            )
            .bind(host)
            .bind(sum.clone())
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO host_packages (host_id, package_id, state, held) \
                 SELECT $1, id, 'installed', CASE WHEN name = 'pkg03' THEN 1 ELSE 0 END \
                 FROM package_versions",
            )
            .bind(host)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;

        let store = Store::open_sqlite(&dir, now).await.unwrap();
        let storage = || async {
            let mut found = Vec::new();
            for table in ["package_sets", "package_set_rows", "host_packages"] {
                let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(store.pool())
                    .await
                    .unwrap()
                    .try_get(0)
                    .unwrap();
                found.push(n);
            }
            found
        };
        let mut expected = packages.clone();
        expected.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(store.packages("h1").await.unwrap(), expected);
        assert_eq!(storage().await, [0, 0, 40]);

        // Each host resends the same packages: nothing changed for it, and
        // its rows move to one set both share.
        for host in ["h1", "h2"] {
            let changed = store
                .store_inventory(host, &inventory, "d1", now)
                .await
                .unwrap();
            assert!(!changed);
        }
        assert_eq!(storage().await, [1, 20, 0]);
        assert_eq!(store.packages("h2").await.unwrap(), expected);
        store.close().await;
        std::fs::remove_dir_all(&dir).ok();
    }
}
