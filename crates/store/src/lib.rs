//! Patchwell's storage. The embedded default is SQLite in a data directory
//! (WAL); a fleet that outgrows one machine points several stateless servers
//! at one PostgreSQL.
//!
//! A key design decision made in this crate is that there is one SQL
//! implementation, run on both databases through sqlx's `Any` driver, with
//! the schema written once and only its type names swapped per backend. The
//! traits split the store by area ([`TokenStore`], [`HostStore`],
//! [`InventoryStore`]) so that each caller sees only its part, and one
//! conformance suite (`tests/conformance.rs`) runs every behaviour against
//! both databases.
//!
//! Package versions are stored once per distinct version, however many hosts
//! have them, with the `versions` crate's sort key beside them. Both databases
//! compare byte strings as `memcmp`, so "which hosts have P below V" is an
//! indexed range query, exact by the package manager's rules.
// The traits are implemented by `Store` only, and called on it directly, so
// the futures' `Send` bounds are known where they are awaited.
#![allow(async_fn_in_trait)]

mod audit;
mod batch;
mod delta_group;
mod package_sets;
mod people;
mod plan;
mod rollout;
mod schema;
mod sql;

use jiff::Timestamp;
use protocol::{
    AvailableUpdate, HostFacts, Inventory, InventoryDelta, Manager, Neighbour, Package,
};

pub use audit::{AuditEntry, AuditEvent, AuditStore, AuditVerdict, ChainWalk, Why};
pub use people::{
    ApiTokenRecord, ApiTokenStore, NewApiToken, NewUser, PeopleStore, ProcedureVersion, UserChange,
    UserRecord,
};
pub use plan::{DetectionStore, Fixed, PlanObject, PlanStore, Remediation};
pub use rollout::{
    Assignment, JobEvent, NewRollout, NewRolloutHost, RolloutHostRecord, RolloutRecord,
    RolloutStore, RolloutUpdate, StepOutcome, StepRecord,
};
pub use sql::{Backend, Store};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed; nothing of it was applied.
    #[error("migration {version} failed: {source}")]
    Migration {
        /// The schema version that failed.
        version: u32,
        /// Why.
        source: sqlx::Error,
    },
    /// The database was written by a newer Patchwell.
    #[error("the database has schema version {found}, newer than this Patchwell knows ({known})")]
    SchemaTooNew {
        /// In the database.
        found: i64,
        /// The newest this build knows.
        known: u32,
    },
    /// No such host, token or other record.
    #[error("{0} not found")]
    NotFound(String),
    /// The request contradicts what is stored (for example an inventory older
    /// than the one already stored).
    #[error("{0}")]
    Conflict(String),
    /// The input is invalid; nothing was stored.
    #[error("{0}")]
    Invalid(String),
    /// An enrollment token was refused.
    #[error("enrollment refused: {0}")]
    Enrollment(EnrollmentRefused),
    /// A value read back could not be understood (a damaged database).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The input is over a limit of the store (for example more packages
    /// than one host may have); nothing was stored.
    #[error("{0}")]
    TooLarge(String),
}

/// The most packages one host's inventory may have, unless the store is
/// told otherwise ([`Store::with_max_packages`]).
pub const DEFAULT_MAX_PACKAGES: usize = 20_000;

/// The result of a store operation.
pub type Result<T> = std::result::Result<T, Error>;

/// Why an enrollment token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnrollmentRefused {
    /// No token has that secret.
    #[error("unknown token")]
    UnknownToken,
    /// The token's expiry has passed.
    #[error("the token has expired")]
    Expired,
    /// The token was used as many times as it allows.
    #[error("the token has no uses left")]
    UsedUp,
    /// An administrator revoked the token.
    #[error("the token was revoked")]
    Revoked,
}

/// An enrollment token to create. Only a hash of its secret is stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Public identifier, for listing and revoking.
    pub id: String,
    /// SHA-256 of the secret the agent presents.
    pub secret_hash: Vec<u8>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// How many hosts may enroll with it.
    pub max_uses: u32,
    /// The static group that hosts enrolled with it join.
    pub target_group: Option<String>,
}

/// A stored enrollment token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public identifier.
    pub id: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// How many hosts may enroll with it.
    pub max_uses: u32,
    /// How many have.
    pub uses: u32,
    /// The group its hosts join.
    pub target_group: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// A host being enrolled.
#[derive(Debug, Clone)]
pub struct NewHost {
    /// The identity the server gives it.
    pub id: String,
    /// SHA-256 of the credential the server gave it.
    pub credential_hash: Vec<u8>,
    /// The host name the agent reported at enrollment.
    pub hostname: String,
}

/// What a presented host credential is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAuth {
    /// A known, enrolled host.
    Active,
    /// A host whose enrollment was revoked.
    Revoked,
    /// No host with that identity and credential.
    Unknown,
}

/// Administrative attributes of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAttributes {
    /// Its static group.
    pub group: Option<String>,
    /// Its criticality (`low`, `medium`, `high`, `critical`).
    pub criticality: Option<String>,
    /// Its owner.
    pub owner: Option<String>,
    /// Its department.
    pub department: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
}

/// A host as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRecord {
    /// Its identity.
    pub id: String,
    /// Its host name.
    pub hostname: String,
    /// Its machine id.
    pub machine_id: Option<String>,
    /// os-release `ID`.
    pub os_id: Option<String>,
    /// os-release `VERSION_ID`.
    pub os_version: Option<String>,
    /// os-release `VERSION_CODENAME`.
    pub os_codename: Option<String>,
    /// Running kernel.
    pub kernel: Option<String>,
    /// Architecture.
    pub arch: Option<String>,
    /// Whether it needs a reboot.
    pub reboot_required: bool,
    /// When it enrolled.
    pub enrolled_at: Timestamp,
    /// When it was last heard from.
    pub last_seen: Timestamp,
    /// When its enrollment was revoked.
    pub revoked_at: Option<Timestamp>,
    /// Administrative attributes.
    pub attributes: HostAttributes,
    /// The last inventory's host facts.
    pub facts: Option<HostFacts>,
    /// The digest of the last inventory stored.
    pub inventory_digest: Option<String>,
    /// When the last inventory stored was collected.
    pub inventory_collected_at: Option<Timestamp>,
}

impl HostRecord {
    /// Whether the host has not been heard from for `stale_after`.
    pub fn is_stale(&self, now: Timestamp, stale_after: jiff::SignedDuration) -> bool {
        now.duration_since(self.last_seen) > stale_after
    }
}

/// Which hosts to list. Every field that is set must match.
#[derive(Debug, Clone, Default)]
pub struct HostFilter {
    /// os-release `ID`.
    pub os_id: Option<String>,
    /// os-release `VERSION_ID`.
    pub os_version: Option<String>,
    /// Static group.
    pub group: Option<String>,
    /// A tag the host carries.
    pub tag: Option<String>,
    /// Only hosts not seen since `now - stale_after` (true) or only those seen since (false).
    pub stale: Option<bool>,
    /// Only hosts that need (true) or do not need (false) a reboot.
    pub reboot_required: Option<bool>,
    /// Include hosts whose enrollment was revoked.
    pub include_revoked: bool,
    /// Only these hosts (by id).
    pub ids: Option<Vec<String>>,
    /// Read each host's facts (hardware, disks, interfaces). A list that
    /// does not show them leaves them out (`facts` is `None`): parsing
    /// them is most of the cost of listing a large fleet.
    pub facts: bool,
}

/// A host that has some package below some version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostWithPackage {
    /// The host.
    pub host_id: String,
    /// Its name.
    pub hostname: String,
    /// The package (binary) name.
    pub package: String,
    /// The version it has.
    pub version: String,
    /// The architecture.
    pub arch: String,
}

/// A count of hosts per value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// The value (an OS release, a version).
    pub value: String,
    /// How many hosts.
    pub hosts: u64,
}

/// An update the fleet's package managers offer: one (manager, package,
/// candidate version), with how many hosts are offered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedUpdate {
    /// Whose update it is.
    pub manager: Manager,
    /// The binary package name.
    pub name: String,
    /// The version offered.
    pub candidate: String,
    /// Offered from a security suite on at least one host.
    pub security: bool,
    /// The suite that offers it (the greatest name, where hosts' suites
    /// differ); empty when none was reported.
    pub suites: String,
    /// Hosts (not revoked) offered it.
    pub hosts: u64,
}

/// A device seen in hosts' neighbour tables that is not an enrolled host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmanagedDevice {
    /// Its link-layer address.
    pub mac: String,
    /// The addresses it was seen with.
    pub addresses: Vec<String>,
    /// The hosts that see it.
    pub seen_by: Vec<String>,
}

/// A dynamic group: a name and the query that selects its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicGroup {
    /// The group's name.
    pub name: String,
    /// Its query, as written (checked by the caller before storing).
    pub query: String,
    /// When it was defined.
    pub created_at: Timestamp,
    /// When its query last changed.
    pub updated_at: Timestamp,
}

/// Dynamic groups' definitions.
pub trait GroupStore {
    /// Creates or replaces a group, recording the change.
    async fn put_group(&self, name: &str, query: &str, why: &Why, now: Timestamp) -> Result<()>;
    /// Every group, by name.
    async fn groups(&self) -> Result<Vec<DynamicGroup>>;
    /// One group.
    async fn group(&self, name: &str) -> Result<Option<DynamicGroup>>;
    /// Deletes a group, recording it; false when there is none.
    async fn delete_group(&self, name: &str, why: &Why, now: Timestamp) -> Result<bool>;
}

/// Enrollment tokens, and enrollment itself.
pub trait TokenStore {
    /// Stores a new token, recording who made it (its terms, never its
    /// secret nor the secret's hash).
    async fn create_token(&self, token: &NewToken, why: &Why) -> Result<()>;
    /// Every token, newest first.
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Revokes a token (recorded the first time); false when there is no
    /// such token.
    async fn revoke_token(&self, id: &str, why: &Why, now: Timestamp) -> Result<bool>;
    /// Enrolls a host with the token whose secret hashes to `secret_hash`:
    /// checks and counts the use and creates the host, in one transaction,
    /// recorded with the host (`host:ID`) as the actor: no person vouches
    /// for what it says of itself.
    async fn enroll(&self, secret_hash: &[u8], host: &NewHost, now: Timestamp) -> Result<()>;
}

/// Hosts: identity, credentials, attributes, listing.
pub trait HostStore {
    /// What the presented identity and credential hash are worth.
    async fn authenticate(&self, host_id: &str, credential_hash: &[u8]) -> Result<HostAuth>;
    /// Records that the host was heard from.
    async fn touch(&self, host_id: &str, now: Timestamp) -> Result<()>;
    /// Revokes a host's enrollment (recorded the first time); false when
    /// there is no such host.
    async fn revoke_host(&self, host_id: &str, why: &Why, now: Timestamp) -> Result<bool>;
    /// One host.
    async fn host(&self, host_id: &str) -> Result<Option<HostRecord>>;
    /// Every host not revoked, as (id, host name), by host name: what a
    /// long list needs to order and page hosts before reading any whole.
    async fn host_names(&self) -> Result<Vec<(String, String)>>;
    /// Hosts matching the filter, by host name.
    async fn list_hosts(
        &self,
        filter: &HostFilter,
        now: Timestamp,
        stale_after: jiff::SignedDuration,
    ) -> Result<Vec<HostRecord>>;
    /// Replaces a host's administrative attributes, recording what changed.
    async fn set_attributes(
        &self,
        host_id: &str,
        attributes: &HostAttributes,
        why: &Why,
        now: Timestamp,
    ) -> Result<()>;
}

/// A configured advisory feed and how its last import went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRecord {
    /// Its unique name.
    pub name: String,
    /// Its format (`osv`, `debian-tracker`, `kev`, ...).
    pub kind: String,
    /// The file, directory or URL it is read from.
    pub location: String,
    /// How it is verified: `sha256:HEX`, `ed25519:KEY` or `openpgp:KEYRING`.
    pub verification: String,
    /// When it was configured.
    pub created_at: Timestamp,
    /// When its documents were last replaced by a verified import.
    pub imported_at: Option<Timestamp>,
    /// The SHA-256 of what that import verified.
    pub sha256: Option<String>,
    /// How many records it imported.
    pub records: u64,
    /// How many malformed records it skipped.
    pub rejected: u64,
    /// Why the last attempt failed, when it did (the documents in force are
    /// the last good ones).
    pub last_error: Option<String>,
    /// When that was.
    pub last_error_at: Option<Timestamp>,
}

/// One verified file of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedDocument {
    /// Its name within the feed (a file name, or a path in a directory).
    pub name: String,
    /// Its exact bytes.
    pub content: Vec<u8>,
}

/// Advisory feeds: their configuration and their last verified documents.
pub trait CatalogStore {
    /// Adds a feed, or changes the configuration of one (its documents stay
    /// until the next import).
    async fn put_feed(&self, feed: &FeedRecord) -> Result<()>;
    /// Every feed, by name.
    async fn feeds(&self) -> Result<Vec<FeedRecord>>;
    /// One feed.
    async fn feed(&self, name: &str) -> Result<Option<FeedRecord>>;
    /// Removes a feed and its documents. False when there was none.
    async fn delete_feed(&self, name: &str) -> Result<bool>;
    /// Replaces a feed's documents and definition (kind, location,
    /// verification) and records the import, in one transaction: either all
    /// of it is stored or none. The feed must exist.
    async fn store_feed_import(
        &self,
        feed: &FeedRecord,
        documents: &[FeedDocument],
        sha256: &str,
        records: u64,
        rejected: u64,
        now: Timestamp,
    ) -> Result<()>;
    /// Records that an import found the documents in force unchanged: any
    /// earlier error is cleared.
    async fn feed_unchanged(&self, name: &str) -> Result<()>;
    /// Records a failed attempt; the documents in force stay.
    async fn record_feed_error(&self, name: &str, error: &str, now: Timestamp) -> Result<()>;
    /// A feed's documents, by name.
    async fn feed_documents(&self, name: &str) -> Result<Vec<FeedDocument>>;
}

/// What a stored delta replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaStored {
    /// The stored packages the delta removed or changed, as they were.
    pub replaced: Vec<Package>,
    /// Whether the OS release changed (the host moves to other advisories).
    pub os_changed: bool,
}

/// Which of a host's packages to read: those whose binary or source name
/// is one of `names`, and those whose binary name starts with one of
/// `prefixes`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackageNames<'a> {
    /// Binary or source names.
    pub names: &'a [&'a str],
    /// Beginnings of binary names.
    pub prefixes: &'a [&'a str],
}

/// Inventories and the questions asked of them.
pub trait InventoryStore {
    /// Replaces a host's inventory in one transaction. Refused, with nothing
    /// stored, when a version is invalid for its package manager or the
    /// inventory is older than the one already stored. True when its
    /// packages (or its OS release) changed.
    async fn store_inventory(
        &self,
        host_id: &str,
        inventory: &Inventory,
        digest: &str,
        now: Timestamp,
    ) -> Result<bool>;
    /// Applies a delta to a host's stored inventory in one transaction,
    /// reading and writing only the packages it names. Refused (conflict),
    /// with nothing stored, when the stored inventory's digest is not the
    /// delta's base, when the result's digest is not the one the agent
    /// computed, or for the reasons [`InventoryStore::store_inventory`] is.
    async fn store_inventory_delta(
        &self,
        host_id: &str,
        delta: &InventoryDelta,
        now: Timestamp,
    ) -> Result<DeltaStored>;
    /// A host's packages, by name and architecture.
    async fn packages(&self, host_id: &str) -> Result<Vec<Package>>;
    /// Hosts with a package of that name installed below `version`, by the
    /// package manager's order.
    async fn hosts_with_package_below(
        &self,
        manager: Manager,
        name: &str,
        version: &str,
    ) -> Result<Vec<HostWithPackage>>;
    /// Hosts per OS release (`debian 12`), most first.
    async fn hosts_per_os_release(&self) -> Result<Vec<Count>>;
    /// Hosts per installed version of a package, in version order.
    async fn hosts_per_package_version(&self, manager: Manager, name: &str) -> Result<Vec<Count>>;
    /// Devices in neighbour tables that are not enrolled hosts.
    async fn unmanaged_devices(&self) -> Result<Vec<UnmanagedDevice>>;
    /// How many distinct package versions are stored, across all hosts.
    async fn package_version_count(&self) -> Result<u64>;
    /// Deletes the package versions that no host and no package set holds
    /// any more, and forgets them in memory; how many were deleted.
    /// Inventories wait while it runs.
    async fn prune_package_versions(&self) -> Result<u64>;
    /// A host's neighbour table as last reported.
    async fn neighbours(&self, host_id: &str) -> Result<Vec<Neighbour>>;
    /// The updates a host's package manager offered, as last reported.
    async fn updates(&self, host_id: &str) -> Result<Vec<AvailableUpdate>>;
    /// Of these hosts, the packages `names` selects, with their hosts: the
    /// part of each host's inventory one advisory's evaluation looks at.
    async fn packages_of(
        &self,
        host_ids: &[String],
        names: &PackageNames<'_>,
    ) -> Result<Vec<(String, Package)>>;
    /// These hosts' offered updates, as last reported, with their hosts.
    async fn updates_of(&self, host_ids: &[String]) -> Result<Vec<(String, AvailableUpdate)>>;
    /// Hosts (not revoked) with an installed package built from one of
    /// `sources` (or, for binary names, named so), with those packages.
    async fn hosts_with_sources(
        &self,
        manager: Manager,
        names: &[&str],
    ) -> Result<Vec<(String, Package)>>;
    /// Every update the fleet's package managers offer, security ones
    /// first, then by hosts offered it, most first.
    async fn offered_updates(&self) -> Result<Vec<OfferedUpdate>>;
}

/// The `versions` sort key of a package version, or why it has none.
pub(crate) fn sort_key(
    manager: Manager,
    version: &str,
) -> std::result::Result<Vec<u8>, versions::ParseError> {
    Ok(match manager {
        Manager::Dpkg => versions::deb::Version::parse(version)?.sort_key().to_vec(),
        Manager::Rpm => versions::rpm::Version::parse(version)?.sort_key().to_vec(),
        Manager::Apk => versions::apk::Version::parse(version)?.sort_key().to_vec(),
    })
}
