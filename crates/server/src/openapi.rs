//! The OpenAPI document at `/api/openapi.json`, written by hand from the
//! route table below. A test requests every route it lists from the real
//! router, so the document cannot name a route the server does not have.

use axum::Json;
use serde_json::{json, Value};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    None,
    /// An administrator's API token.
    Admin,
    /// An enrolled host's credential.
    Host,
}

/// Every route: method, path, who may call it, and what it does.
pub const ROUTES: &[(&str, &str, Auth, &str)] = &[
    ("get", "/api/openapi.json", Auth::None, "This document."),
    ("post", "/api/v1/agent/enroll", Auth::None, "Enroll a host with an enrollment token; returns its identity and credential."),
    ("post", "/api/v1/agent/heartbeat", Auth::Host, "Check in; the answer says whether to send the inventory."),
    ("put", "/api/v1/agent/inventory", Auth::Host, "Replace the host's inventory (JSON, optionally gzip-encoded)."),
    ("patch", "/api/v1/agent/inventory", Auth::Host, "Change the host's inventory by a delta against the stored one (409: send it whole)."),
    ("get", "/api/v1/tokens", Auth::Admin, "List enrollment tokens."),
    ("post", "/api/v1/tokens", Auth::Admin, "Create an enrollment token (expiry, number of uses, target group)."),
    ("delete", "/api/v1/tokens/{id}", Auth::Admin, "Revoke an enrollment token."),
    ("get", "/api/v1/hosts", Auth::Admin, "List hosts; filter by os, os_version, group, tag, stale, reboot_required, include_revoked, or a query."),
    ("get", "/api/v1/hosts/{id}", Auth::Admin, "One host with its facts, packages and neighbours."),
    ("post", "/api/v1/hosts/{id}/revoke", Auth::Admin, "Revoke a host's enrollment; its credential stops working."),
    ("put", "/api/v1/hosts/{id}/attributes", Auth::Admin, "Set a host's group, criticality, owner, department and tags."),
    ("get", "/api/v1/packages/{manager}/{name}/hosts", Auth::Admin, "Hosts with the package installed below ?below=VERSION, by the package manager's order."),
    ("get", "/api/v1/summary/os-releases", Auth::Admin, "Hosts per OS release."),
    ("get", "/api/v1/summary/packages/{manager}/{name}", Auth::Admin, "Hosts per installed version of a package."),
    ("get", "/api/v1/devices/unmanaged", Auth::Admin, "Devices in hosts' neighbour tables that are not enrolled."),
    ("get", "/api/v1/groups", Auth::Admin, "List dynamic groups with their member counts."),
    ("put", "/api/v1/groups/{name}", Auth::Admin, "Define or replace a dynamic group by a host query, such as `os = debian and os_version >= 12 and tag = laptop`."),
    ("delete", "/api/v1/groups/{name}", Auth::Admin, "Delete a dynamic group."),
    ("get", "/api/v1/groups/{name}/hosts", Auth::Admin, "The hosts a dynamic group's query selects now."),
    ("get", "/api/v1/feeds", Auth::Admin, "List advisory feeds with the outcome of their last import."),
    ("put", "/api/v1/feeds/{name}", Auth::Admin, "Define a feed (kind, location, verification: sha256:HEX, ed25519:KEY or openpgp:KEYRING) and import it; 422 when it fails verification or parsing, with the catalog in force unchanged."),
    ("delete", "/api/v1/feeds/{name}", Auth::Admin, "Remove a feed and take its advisories out of the catalog."),
    ("post", "/api/v1/feeds/{name}/import", Auth::Admin, "Fetch, verify and import a feed again."),
    ("get", "/api/v1/advisories", Auth::Admin, "Search the catalog: ?search=words&ecosystem=Debian:12&kev=true&limit=&offset=."),
    ("get", "/api/v1/advisories/{id}", Auth::Admin, "One advisory (as OSV), its KEV status, the advisories that supersede it, and the hosts it applies to with the reason for each."),
    ("get", "/api/v1/summary/exposure", Auth::Admin, "The advisories that reach hosts now, known exploited first, then by severity and hosts reached (?limit=), from the fleet's applicability in memory."),
    ("get", "/api/v1/hosts/{id}/findings", Auth::Admin, "The advisories that apply to a host, its pending security updates and its OS lifecycle, each with the reason."),
];

fn operation(path: &str, auth: Auth, summary: &str) -> Value {
    let parameters: Vec<Value> = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let mut op = json!({
        "summary": summary,
        "parameters": parameters,
        "responses": {
            "default": {
                "description": "On error, a JSON object whose `error` says what is wrong.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            },
            "200": {"description": "Success.", "content": {"application/json": {}}}
        }
    });
    match auth {
        Auth::None => op["security"] = json!([]),
        Auth::Admin => op["security"] = json!([{"apiToken": []}]),
        Auth::Host => op["security"] = json!([{"hostCredential": []}]),
    }
    op
}

/// The document.
pub fn spec() -> Value {
    let mut paths = serde_json::Map::new();
    for &(method, path, auth, summary) in ROUTES {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = operation(path, auth, summary);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Patchwell",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted patch management: the API that agents, the command line and the console use."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer", "description": "An administrator's API token (pwa_...)."},
                "hostCredential": {"type": "http", "scheme": "bearer", "description": "An enrolled host's credential (<host id>.<secret>)."}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
            }
        }
    })
}

/// `GET /api/openapi.json`
pub(crate) async fn document() -> Json<Value> {
    Json(spec())
}
