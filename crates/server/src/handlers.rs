//! Request handlers: check the input, call the store, convert the answer.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiff::{SignedDuration, Timestamp};
use patchwell_core::query::{Query as HostQuery, Subject};
use protocol::{
    EnrollRequest, EnrollResponse, Heartbeat, HeartbeatResponse, Inventory, InventoryDelta,
    InventoryWanted, Manager,
};
use store::{
    DetectionStore, GroupStore, HostFilter, HostRecord, HostStore, InventoryStore, NewHost,
    NewToken, TokenStore, Why,
};

use crate::api::{
    self, Attributes, BelowQuery, CreateToken, CreatedToken, HostDetail, HostView, HostsQuery,
    TokenView,
};
use crate::auth::{Host, Operator, Reader};
use crate::error::ApiError;
use crate::{fields, secrets, AppState};

pub(crate) type ApiResult<T> = Result<T, ApiError>;
pub(crate) type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

pub(crate) fn now(state: &AppState) -> Timestamp {
    (state.clock)()
}

/// A stored host, or 404.
pub(crate) async fn stored_host(state: &AppState, id: &str) -> ApiResult<HostRecord> {
    state
        .store
        .host(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("host {id} not found")))
}

/// Checks a name that goes into URLs, logs and the audit log: 1 to `max`
/// ASCII letters, digits and the characters of `extra`.
pub(crate) fn check_identifier(what: &str, name: &str, max: usize, extra: &str) -> ApiResult<()> {
    let fine = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if fine {
        return Ok(());
    }
    let others: Vec<String> = extra.chars().map(|c| format!("'{c}'")).collect();
    Err(ApiError::bad_request(format!(
        "{what} {name:?}: 1 to {max} letters, digits, {}",
        others.join(", ")
    )))
}

/// Checks the name of a thing an admin defines (a group, a feed).
pub(crate) fn check_name(what: &str, name: &str) -> ApiResult<()> {
    check_identifier(&format!("{what} name"), name, 64, "-_.")
}

fn host_view(h: HostRecord, now: Timestamp, stale_after: SignedDuration) -> HostView {
    HostView {
        stale: h.is_stale(now, stale_after),
        id: h.id,
        hostname: h.hostname,
        os_id: h.os_id,
        os_version: h.os_version,
        os_codename: h.os_codename,
        kernel: h.kernel,
        arch: h.arch,
        reboot_required: h.reboot_required,
        enrolled_at: h.enrolled_at,
        last_seen: h.last_seen,
        revoked_at: h.revoked_at,
        group: h.attributes.group,
        criticality: h.attributes.criticality,
        owner: h.attributes.owner,
        department: h.attributes.department,
        tags: h.attributes.tags,
        inventory_collected_at: h.inventory_collected_at,
    }
}

/// A package manager named in a path; `deb` is accepted for `dpkg`.
fn parse_manager(name: &str) -> ApiResult<Manager> {
    let name = if name == "deb" { "dpkg" } else { name };
    name.parse().map_err(|e: protocol::UnknownName| {
        ApiError::bad_request(format!("{e}: use dpkg, rpm or apk"))
    })
}

/// `POST /api/v1/agent/enroll`
pub(crate) async fn enroll(
    State(state): State<AppState>,
    body: JsonBody<EnrollRequest>,
) -> ApiResult<(StatusCode, Json<EnrollResponse>)> {
    let Json(request) = body?;
    let hostname = request.hostname.trim();
    if hostname.is_empty() || hostname.len() > fields::HOSTNAME {
        return Err(ApiError::bad_request(format!(
            "hostname must be 1 to {} bytes; this one is {}",
            fields::HOSTNAME,
            hostname.len()
        )));
    }
    if request.token.len() > fields::TOKEN {
        return Err(ApiError::bad_request(format!(
            "the enrollment token is {} bytes long; at most {} are accepted",
            request.token.len(),
            fields::TOKEN
        )));
    }
    let host_id = secrets::generate(16).map_err(ApiError::internal)?;
    let secret = secrets::generate(32).map_err(ApiError::internal)?;
    let host = NewHost {
        id: host_id.clone(),
        credential_hash: secrets::hash(&secret),
        hostname: hostname.to_owned(),
    };
    state
        .store
        .enroll(&secrets::hash(request.token.trim()), &host, now(&state))
        .await?;
    tracing::info!(host = %host_id, hostname = %hostname, "Host enrolled.");
    Ok((
        StatusCode::CREATED,
        Json(EnrollResponse {
            credential: format!("{host_id}.{secret}"),
            job_key: state.job_key.public_text(),
            host_id,
        }),
    ))
}

/// `POST /api/v1/agent/heartbeat`
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    host: Host,
    body: JsonBody<Heartbeat>,
) -> ApiResult<Json<HeartbeatResponse>> {
    let Json(beat) = body?;
    let at = now(&state);
    let record = state.store.host(&host.id).await?;
    let record = record.ok_or_else(|| ApiError::not_found(format!("host {}", host.id)))?;
    // Staleness is counted in days: recording a check-in at most once a
    // minute keeps heartbeats from queueing behind the database's writer.
    if at.duration_since(record.last_seen) >= SignedDuration::from_secs(60) {
        state.store.touch(&host.id, at).await?;
    }
    let inventory = match record.inventory_digest {
        Some(s) if s == beat.inventory_digest => InventoryWanted::None,
        Some(s) if Some(&s) == beat.acknowledged_digest.as_ref() => InventoryWanted::Delta,
        _ => InventoryWanted::Full,
    };
    Ok(Json(HeartbeatResponse {
        inventory,
        next_checkin_seconds: state.config.checkin_interval.as_secs(),
        jobs: crate::rollouts::jobs_for(&state, &host.id).await?,
    }))
}

/// Refuses an inventory of a schema this server does not read.
fn check_schema(schema: u32) -> ApiResult<()> {
    if schema == protocol::INVENTORY_SCHEMA {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!(
            "inventory schema {schema} is not understood; this server reads schema {}",
            protocol::INVENTORY_SCHEMA
        ),
    ))
}

/// `PUT /api/v1/agent/inventory`
pub(crate) async fn put_inventory(
    State(state): State<AppState>,
    host: Host,
    body: JsonBody<Inventory>,
) -> ApiResult<StatusCode> {
    let Json(inventory) = body?;
    check_schema(inventory.schema)?;
    fields::inventory(&inventory, state.config.max_packages)?;
    let digest = inventory.digest();
    let len = inventory.packages.len();
    let changed = state
        .store
        .store_inventory(&host.id, &inventory, &digest, now(&state))
        .await?;
    // An unchanged inventory leaves the fleet alone, unless the fleet lacks
    // the host (it is still loading, or failed to).
    if changed || !state.fleet.holds(&host.id) {
        let moved = set_fleet_host(&state, &host.id, inventory).await;
        findings_moved(&state, &host.id, moved).await;
    }
    tracing::info!(host = %host.id, packages = len, "Inventory stored.");
    Ok(StatusCode::NO_CONTENT)
}

/// What a stored inventory moved is recorded as it is stored: a finding
/// that appeared gets its first detection now (the SLA clock starts at
/// the inventory that shows it), and one that went is recorded fixed, so
/// that the dashboard, reports and remediation counts move now.
async fn findings_moved(state: &AppState, host: &str, moved: crate::fleet::Moved) {
    if moved.found {
        let ids = crate::plan_api::open_advisories(state, host);
        let pairs: Vec<(&str, &str)> = ids.iter().map(|a| (host, a.as_str())).collect();
        if let Err(e) = state.store.record_detections(&pairs, now(state)).await {
            tracing::warn!(host = %host, "recording first detections: {e}");
        }
    }
    if moved.fixed {
        crate::posture::record_fixes(state, host).await;
    }
}

/// Sets a stored host in the fleet's applicability by its whole inventory;
/// says which way its findings moved.
async fn set_fleet_host(state: &AppState, host: &str, inventory: Inventory) -> crate::fleet::Moved {
    on_fleet(state, host, move |fleet, host| {
        let view = crate::catalog::host_view(
            &inventory.os,
            &inventory.host.kernel,
            &inventory.packages,
            &inventory.updates,
        );
        let moved = fleet.set_host(host, &view);
        fleet.set_offers(host, &inventory.updates);
        moved
    })
    .await
    .unwrap_or_default()
}

/// Runs `work` on the fleet on a blocking thread: the fleet's lock may be
/// held for a whole catalog check, which must not stall the async workers.
async fn on_fleet<T, F>(state: &AppState, host: &str, work: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce(&crate::fleet::FleetHandle, &str) -> T + Send + 'static,
{
    let fleet = std::sync::Arc::clone(&state.fleet);
    let host = host.to_owned();
    match tokio::task::spawn_blocking(move || work(&fleet, &host)).await {
        Ok(done) => Some(done),
        Err(e) => {
            tracing::error!("updating the fleet: {e}");
            None
        }
    }
}

/// `PATCH /api/v1/agent/inventory`: a delta against the stored inventory.
/// Refused with 409 (send the full inventory) when the stored inventory is
/// not the delta's base, or when the result does not have the digest the
/// agent computed: a delta can never leave a wrong record. Only the rows
/// the delta names are read and written.
pub(crate) async fn patch_inventory(
    State(state): State<AppState>,
    host: Host,
    body: JsonBody<InventoryDelta>,
) -> ApiResult<StatusCode> {
    let Json(delta) = body?;
    check_schema(delta.schema)?;
    fields::delta(&delta, state.config.max_packages)?;
    let stored = state
        .store
        .store_inventory_delta(&host.id, &delta, now(&state))
        .await?;
    // The fleet moves by the delta's packages alone, unless the host moved
    // to another release or the fleet lacks it: then it is set whole.
    let moved = if stored.os_changed {
        None
    } else {
        let brought = delta.packages_changed.clone();
        let offers = delta.updates.clone();
        on_fleet(&state, &host.id, move |fleet, host| {
            let moved = fleet.update_host(host, &stored.replaced, &brought);
            if moved.is_some() {
                fleet.set_offers(host, &offers);
            }
            moved
        })
        .await
        .flatten()
    };
    let moved = match moved {
        Some(moved) => moved,
        None => {
            let packages = state.store.packages(&host.id).await?;
            set_fleet_host(&state, &host.id, Inventory::from_delta(packages, &delta)).await
        }
    };
    findings_moved(&state, &host.id, moved).await;
    tracing::info!(
        host = %host.id,
        changed = delta.packages_changed.len(),
        removed = delta.packages_removed.len(),
        "Inventory delta stored."
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/tokens`
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Vec<TokenView>>> {
    let tokens = state.store.list_tokens().await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                created_at: t.created_at,
                expires_at: t.expires_at,
                max_uses: t.max_uses,
                uses: t.uses,
                group: t.target_group,
                revoked_at: t.revoked_at,
            })
            .collect(),
    ))
}

/// `POST /api/v1/tokens`
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Operator(caller): Operator,
    body: JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let Json(request) = body?;
    if !(1..=8760).contains(&request.expires_in_hours) {
        return Err(ApiError::bad_request(
            "expires_in_hours must be from 1 to 8760 (a year)",
        ));
    }
    if !(1..=100_000).contains(&request.max_uses) {
        return Err(ApiError::bad_request("max_uses must be from 1 to 100000"));
    }
    // Whole seconds, as stored.
    let created_at = Timestamp::from_second(now(&state).as_second()).map_err(ApiError::internal)?;
    let expires_at = created_at
        .checked_add(SignedDuration::from_hours(i64::from(
            request.expires_in_hours,
        )))
        .map_err(ApiError::internal)?;
    let id = secrets::generate(8).map_err(ApiError::internal)?;
    let token = format!("pwe_{}", secrets::generate(32).map_err(ApiError::internal)?);
    state
        .store
        .create_token(
            &NewToken {
                id: id.clone(),
                secret_hash: secrets::hash(&token),
                created_at,
                expires_at,
                max_uses: request.max_uses,
                target_group: request.group.clone(),
            },
            &Why::new(&caller.username, "create-token"),
        )
        .await?;
    tracing::info!(token = %id, by = %caller.username, "Enrollment token created.");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id,
            token,
            expires_at,
            max_uses: request.max_uses,
            group: request.group,
        }),
    ))
}

/// `DELETE /api/v1/tokens/{id}`
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let why = Why::new(&caller.username, "revoke-token");
    if !state.store.revoke_token(&id, &why, now(&state)).await? {
        return Err(ApiError::not_found(format!(
            "enrollment token {id} not found"
        )));
    }
    tracing::info!(token = %id, by = %caller.username, "Enrollment token revoked.");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/hosts`
pub(crate) async fn list_hosts(
    State(state): State<AppState>,
    _caller: Reader,
    query: Result<Query<HostsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<HostView>>> {
    let Query(q) = query?;
    let selection = q.query.as_deref().map(parse_query).transpose()?;
    let filter = HostFilter {
        os_id: q.os,
        os_version: q.os_version,
        group: q.group,
        tag: q.tag,
        stale: q.stale,
        reboot_required: q.reboot_required,
        include_revoked: q.include_revoked.unwrap_or(false),
        ids: None,
        facts: false,
    };
    let at = now(&state);
    let stale_after = state.config.stale_after;
    let hosts = state.store.list_hosts(&filter, at, stale_after).await?;
    let hosts = hosts.into_iter().filter(|h| {
        selection
            .as_ref()
            .is_none_or(|q| selected(q, h, at, stale_after))
    });
    Ok(Json(hosts.map(|h| host_view(h, at, stale_after)).collect()))
}

pub(crate) fn parse_query(text: &str) -> ApiResult<HostQuery> {
    HostQuery::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Whether a host is in a query's selection, at `now`.
pub(crate) fn selected(
    query: &HostQuery,
    h: &HostRecord,
    now: Timestamp,
    stale_after: SignedDuration,
) -> bool {
    let a = &h.attributes;
    query.matches(&Subject {
        os: h.os_id.as_deref(),
        os_version: h.os_version.as_deref(),
        codename: h.os_codename.as_deref(),
        kernel: h.kernel.as_deref(),
        arch: h.arch.as_deref(),
        hostname: &h.hostname,
        group: a.group.as_deref(),
        tags: &a.tags,
        criticality: a.criticality.as_deref(),
        owner: a.owner.as_deref(),
        department: a.department.as_deref(),
        reboot_required: h.reboot_required,
        stale: h.is_stale(now, stale_after),
    })
}

/// The hosts (not revoked) a query selects now.
async fn members(state: &AppState, query: &HostQuery) -> ApiResult<Vec<HostRecord>> {
    let at = now(state);
    let stale_after = state.config.stale_after;
    let hosts = state
        .store
        .list_hosts(&HostFilter::default(), at, stale_after)
        .await?;
    Ok(hosts
        .into_iter()
        .filter(|h| selected(query, h, at, stale_after))
        .collect())
}

/// `GET /api/v1/groups`
pub(crate) async fn list_groups(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Vec<api::GroupView>>> {
    let mut out = Vec::new();
    for g in state.store.groups().await? {
        // Stored queries were checked when stored; one that no longer parses
        // (after a language change) shows as empty rather than failing the list.
        let hosts = match HostQuery::parse(&g.query) {
            Ok(q) => members(&state, &q).await?.len() as u64,
            Err(_) => 0,
        };
        out.push(api::GroupView {
            name: g.name,
            query: g.query,
            hosts,
            updated_at: g.updated_at,
        });
    }
    Ok(Json(out))
}

/// `PUT /api/v1/groups/{name}`
pub(crate) async fn put_group(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(name): Path<String>,
    body: JsonBody<api::GroupDefinition>,
) -> ApiResult<StatusCode> {
    let Json(definition) = body?;
    check_name("group", &name)?;
    parse_query(&definition.query)?;
    state
        .store
        .put_group(
            &name,
            definition.query.trim(),
            &Why::new(&caller.username, "define-group"),
            now(&state),
        )
        .await?;
    tracing::info!(group = %name, by = %caller.username, "Dynamic group defined.");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/groups/{name}/hosts`
pub(crate) async fn group_hosts(
    State(state): State<AppState>,
    _caller: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<HostView>>> {
    let group = state
        .store
        .group(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("group {name} not found")))?;
    let query = parse_query(&group.query)?;
    let at = now(&state);
    let stale_after = state.config.stale_after;
    Ok(Json(
        members(&state, &query)
            .await?
            .into_iter()
            .map(|h| host_view(h, at, stale_after))
            .collect(),
    ))
}

/// `DELETE /api/v1/groups/{name}`
pub(crate) async fn delete_group(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let why = Why::new(&caller.username, "delete-group");
    if !state.store.delete_group(&name, &why, now(&state)).await? {
        return Err(ApiError::not_found(format!("group {name} not found")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/hosts/{id}`
pub(crate) async fn show_host(
    State(state): State<AppState>,
    _caller: Reader,
    Path(id): Path<String>,
) -> ApiResult<Json<HostDetail>> {
    let host = stored_host(&state, &id).await?;
    let packages = state.store.packages(&id).await?;
    let neighbours = state.store.neighbours(&id).await?;
    let facts = host.facts.clone();
    Ok(Json(HostDetail {
        host: host_view(host, now(&state), state.config.stale_after),
        facts,
        packages,
        neighbours,
    }))
}

/// `POST /api/v1/hosts/{id}/revoke`
pub(crate) async fn revoke_host(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let why = Why::new(&caller.username, "revoke-host");
    if !state.store.revoke_host(&id, &why, now(&state)).await? {
        return Err(ApiError::not_found(format!("host {id} not found")));
    }
    state.fleet.remove_host(&id);
    tracing::info!(host = %id, by = %caller.username, "Host revoked.");
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/hosts/{id}/attributes`
pub(crate) async fn set_attributes(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
    body: JsonBody<Attributes>,
) -> ApiResult<StatusCode> {
    let Json(a) = body?;
    fields::attributes(&a)?;
    if let Some(c) = &a.criticality {
        if !["low", "medium", "high", "critical"].contains(&c.as_str()) {
            return Err(ApiError::bad_request(format!(
                "criticality {c:?}: use low, medium, high or critical"
            )));
        }
    }
    if let Some(tag) = a
        .tags
        .iter()
        .find(|t| t.is_empty() || t.len() > 64 || t.contains(char::is_whitespace))
    {
        return Err(ApiError::bad_request(format!(
            "tag {tag:?}: 1 to 64 characters without spaces"
        )));
    }
    let attributes = store::HostAttributes {
        group: a.group,
        criticality: a.criticality,
        owner: a.owner,
        department: a.department,
        tags: a.tags,
    };
    let why = Why::new(&caller.username, "set-attributes");
    state
        .store
        .set_attributes(&id, &attributes, &why, now(&state))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/packages/{manager}/{name}/hosts?below=VERSION`
pub(crate) async fn hosts_with_package(
    State(state): State<AppState>,
    _caller: Reader,
    Path((manager, name)): Path<(String, String)>,
    query: Result<Query<BelowQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<api::HostWithPackage>>> {
    let Query(q) = query?;
    let manager = parse_manager(&manager)?;
    let hosts = state
        .store
        .hosts_with_package_below(manager, &name, &q.below)
        .await?;
    Ok(Json(
        hosts
            .into_iter()
            .map(|h| api::HostWithPackage {
                host_id: h.host_id,
                hostname: h.hostname,
                package: h.package,
                version: h.version,
                arch: h.arch,
            })
            .collect(),
    ))
}

fn counts(counts: Vec<store::Count>) -> Json<Vec<api::Count>> {
    Json(
        counts
            .into_iter()
            .map(|c| api::Count {
                value: c.value,
                hosts: c.hosts,
            })
            .collect(),
    )
}

/// `GET /api/v1/summary/os-releases`
pub(crate) async fn os_summary(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Vec<api::Count>>> {
    Ok(counts(state.store.hosts_per_os_release().await?))
}

/// `GET /api/v1/summary/packages/{manager}/{name}`
pub(crate) async fn package_summary(
    State(state): State<AppState>,
    _caller: Reader,
    Path((manager, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<api::Count>>> {
    Ok(counts(
        state
            .store
            .hosts_per_package_version(parse_manager(&manager)?, &name)
            .await?,
    ))
}

/// `GET /api/v1/devices/unmanaged`
pub(crate) async fn unmanaged_devices(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Vec<api::Device>>> {
    let devices = state.store.unmanaged_devices().await?;
    Ok(Json(
        devices
            .into_iter()
            .map(|d| api::Device {
                mac: d.mac,
                addresses: d.addresses,
                seen_by: d.seen_by,
            })
            .collect(),
    ))
}
