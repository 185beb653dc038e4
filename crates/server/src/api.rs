//! The admin API's JSON: what the HTTP layer reads and writes, and what the
//! `patchwell` command line reads back. Domain and store types stay free of
//! serde; these are converted from them at the boundary.

use jiff::Timestamp;
use protocol::{HostFacts, Neighbour, Package};
use serde::{Deserialize, Serialize};

/// `POST /api/v1/tokens`: a new enrollment token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Hours until it stops working (1 to 8760; default 24).
    #[serde(default = "default_hours")]
    pub expires_in_hours: u32,
    /// Hosts that may enroll with it (1 to 100000; default 1).
    #[serde(default = "default_uses")]
    pub max_uses: u32,
    /// The static group its hosts join.
    #[serde(default)]
    pub group: Option<String>,
}

fn default_hours() -> u32 {
    24
}

fn default_uses() -> u32 {
    1
}

/// The created token; its secret is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    /// Identifier, for listing and revoking.
    pub id: String,
    /// The secret to give `patchwell-agent enroll --token`.
    pub token: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Hosts that may enroll with it.
    pub max_uses: u32,
    /// The group its hosts join.
    pub group: Option<String>,
}

/// An enrollment token, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenView {
    /// Identifier.
    pub id: String,
    /// Created.
    pub created_at: Timestamp,
    /// Expires.
    pub expires_at: Timestamp,
    /// Hosts that may enroll with it.
    pub max_uses: u32,
    /// Hosts that did.
    pub uses: u32,
    /// The group its hosts join.
    pub group: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// A host in a list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostView {
    /// Identity.
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// os-release ID.
    pub os_id: Option<String>,
    /// os-release VERSION_ID.
    pub os_version: Option<String>,
    /// os-release VERSION_CODENAME.
    pub os_codename: Option<String>,
    /// Running kernel.
    pub kernel: Option<String>,
    /// Architecture.
    pub arch: Option<String>,
    /// Needs a reboot.
    pub reboot_required: bool,
    /// Enrolled.
    pub enrolled_at: Timestamp,
    /// Last heard from.
    pub last_seen: Timestamp,
    /// Not heard from for longer than the server's stale period.
    pub stale: bool,
    /// Revoked.
    pub revoked_at: Option<Timestamp>,
    /// Static group.
    pub group: Option<String>,
    /// Criticality.
    pub criticality: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// When its last inventory was collected.
    pub inventory_collected_at: Option<Timestamp>,
}

/// One host with its facts and packages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostDetail {
    /// The host.
    #[serde(flatten)]
    pub host: HostView,
    /// Its facts from the last inventory.
    pub facts: Option<HostFacts>,
    /// Its packages.
    pub packages: Vec<Package>,
    /// Its neighbour table.
    pub neighbours: Vec<Neighbour>,
}

/// `GET /api/v1/hosts` filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsQuery {
    /// os-release ID, such as `debian`.
    pub os: Option<String>,
    /// os-release VERSION_ID, such as `12`.
    pub os_version: Option<String>,
    /// Static group.
    pub group: Option<String>,
    /// Tag.
    pub tag: Option<String>,
    /// Only stale (true) or only fresh (false) hosts.
    pub stale: Option<bool>,
    /// Only hosts that need (true) or do not need (false) a reboot.
    pub reboot_required: Option<bool>,
    /// Include revoked hosts.
    pub include_revoked: Option<bool>,
    /// A host query, as for a dynamic group: `os = debian and tag = laptop`.
    pub query: Option<String>,
}

/// `PUT /api/v1/groups/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDefinition {
    /// The query that selects the group's hosts.
    pub query: String,
}

/// A dynamic group and how many hosts it holds now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupView {
    /// Its name.
    pub name: String,
    /// Its query.
    pub query: String,
    /// Hosts that match it now.
    pub hosts: u64,
    /// When its query last changed.
    pub updated_at: Timestamp,
}

/// `PUT /api/v1/hosts/{id}/attributes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attributes {
    /// Static group.
    #[serde(default)]
    pub group: Option<String>,
    /// Criticality: low, medium, high or critical.
    #[serde(default)]
    pub criticality: Option<String>,
    /// Owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Department.
    #[serde(default)]
    pub department: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `GET /api/v1/packages/{manager}/{name}/hosts?below=VERSION`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BelowQuery {
    /// The version the hosts' package is below.
    pub below: String,
}

/// A host with a package below a version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostWithPackage {
    /// The host.
    pub host_id: String,
    /// Its name.
    pub hostname: String,
    /// The package.
    pub package: String,
    /// Its installed version.
    pub version: String,
    /// Its architecture.
    pub arch: String,
}

/// A count of hosts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Count {
    /// What is counted: an OS release, a version.
    pub value: String,
    /// Hosts.
    pub hosts: u64,
}

/// A device that hosts see but that is not enrolled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    /// Link-layer address.
    pub mac: String,
    /// IP addresses it was seen with.
    pub addresses: Vec<String>,
    /// Host names of the hosts that see it.
    pub seen_by: Vec<String>,
}

/// `PUT /api/v1/feeds/{name}`: where a feed comes from and how it is verified.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedDefinition {
    /// Its format: osv, debian-tracker, alpine-secdb, kev, epss, endoflife,
    /// vendor or apt.
    pub kind: String,
    /// A file or directory on the server, or an http(s) URL.
    pub location: String,
    /// `sha256:HEX` (a pinned digest), `ed25519:KEY` (a vendor feed's public
    /// key) or `openpgp:KEYRING-FILE` (apt InRelease).
    pub verification: String,
}

/// A feed and how its last import went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedView {
    /// Its name.
    pub name: String,
    /// Its format.
    pub kind: String,
    /// Where it is read from.
    pub location: String,
    /// How it is verified.
    pub verification: String,
    /// When its documents were last replaced by a verified import.
    pub imported_at: Option<Timestamp>,
    /// The digest that import verified.
    pub sha256: Option<String>,
    /// Records imported then.
    pub records: u64,
    /// Malformed records skipped then.
    pub rejected: u64,
    /// Why the last attempt failed, if it did; the last good import stays in force.
    pub last_error: Option<String>,
    /// When that was.
    pub last_error_at: Option<Timestamp>,
}

/// A malformed record, skipped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// The file it was in.
    pub file: String,
    /// Its id, or position.
    pub record: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportReport {
    /// The feed.
    pub feed: String,
    /// The digest verified.
    pub sha256: String,
    /// Records imported.
    pub records: u64,
    /// How many records were skipped.
    pub rejected_count: u64,
    /// The first of them (up to 100), with reasons.
    pub rejected: Vec<RejectedRecord>,
    /// Advisories in the whole catalog now.
    pub catalog_advisories: u64,
}
