//! The admin commands: clients of the server's API. Each prints a table for
//! people, or the server's JSON with `--json`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};
use server::api::{Count, CreatedToken, Device, HostDetail, HostView, HostWithPackage, TokenView};

/// Where the server is and who is asking.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The server's URL.
    #[arg(
        long,
        global = true,
        env = "PATCHWELL_SERVER",
        default_value = "https://127.0.0.1:8443"
    )]
    server: String,
    /// An API token (or set PATCHWELL_TOKEN).
    #[arg(long, global = true, env = "PATCHWELL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the API token, such as the server's DATA_DIR/admin-token.
    #[arg(long, global = true, value_name = "FILE", env = "PATCHWELL_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for the server, such as its DATA_DIR/tls/ca.pem.
    #[arg(long, global = true, value_name = "FILE", env = "PATCHWELL_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokensCommand {
    /// Create an enrollment token; its secret is printed once.
    Create {
        /// Hours until it expires.
        #[arg(long, default_value_t = 24)]
        expires_in_hours: u32,
        /// How many hosts may enroll with it.
        #[arg(long, default_value_t = 1)]
        max_uses: u32,
        /// The group its hosts join.
        #[arg(long)]
        group: Option<String>,
    },
    /// List enrollment tokens.
    List,
    /// Revoke an enrollment token.
    Revoke {
        /// The token's id (not its secret).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum HostsCommand {
    /// List hosts.
    List {
        /// os-release ID, such as debian.
        #[arg(long)]
        os: Option<String>,
        /// os-release VERSION_ID, such as 12.
        #[arg(long)]
        os_version: Option<String>,
        /// Static group.
        #[arg(long)]
        group: Option<String>,
        /// Tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only hosts not seen for the server's stale period.
        #[arg(long)]
        stale: bool,
        /// Only hosts that need a reboot.
        #[arg(long)]
        reboot_required: bool,
        /// Include revoked hosts.
        #[arg(long)]
        include_revoked: bool,
        /// A host query: `os = debian and os_version >= 12 and tag = laptop`.
        #[arg(long)]
        query: Option<String>,
    },
    /// One host: facts and packages.
    Show {
        /// The host's id.
        id: String,
    },
    /// Revoke a host's enrollment.
    Revoke {
        /// The host's id.
        id: String,
    },
    /// Set a host's group, criticality, owner, department and tags.
    Set {
        /// The host's id.
        id: String,
        /// Static group.
        #[arg(long)]
        group: Option<String>,
        /// low, medium, high or critical.
        #[arg(long)]
        criticality: Option<String>,
        /// Owner.
        #[arg(long)]
        owner: Option<String>,
        /// Department.
        #[arg(long)]
        department: Option<String>,
        /// A tag; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Hosts per OS release.
    Summary,
    /// The advisories that apply to a host, with the reason for each.
    Findings {
        /// The host's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PackagesCommand {
    /// Hosts with a package installed below a version.
    Below {
        /// The package (binary) name.
        name: String,
        /// The version.
        #[arg(long, allow_hyphen_values = true)]
        version: String,
        /// dpkg, rpm or apk.
        #[arg(long, default_value = "dpkg")]
        manager: String,
    },
    /// Hosts per installed version of a package.
    Versions {
        /// The package (binary) name.
        name: String,
        /// dpkg, rpm or apk.
        #[arg(long, default_value = "dpkg")]
        manager: String,
    },
}

impl Connection {
    /// Whether `--json` was given.
    pub(crate) fn wants_json(&self) -> bool {
        self.json
    }
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    json: bool,
}

impl Client {
    pub(crate) fn new(c: Connection) -> anyhow::Result<Client> {
        let token = match (c.token, c.token_file) {
            (Some(token), _) => token,
            (None, Some(file)) => std::fs::read_to_string(&file)
                .with_context(|| format!("reading the API token from {}", file.display()))?
                .trim()
                .to_owned(),
            (None, None) => bail!("no API token: give --token, --token-file or PATCHWELL_TOKEN"),
        };
        let mut http = reqwest::Client::builder();
        if let Some(file) = &c.ca_cert {
            let pem = std::fs::read(file)
                .with_context(|| format!("reading the CA certificate {}", file.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", file.display()))?;
            http = http.add_root_certificate(cert);
        }
        let http = http.build()?;
        Ok(Client {
            http,
            base: c.server.trim_end_matches('/').to_owned(),
            token,
            json: c.json,
        })
    }

    /// A client over an HTTP client of the caller's, acting with `token`.
    pub(crate) fn over(http: reqwest::Client, base: &str, token: String) -> Client {
        Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            json: false,
        }
    }

    /// Calls the API; an error answer becomes an error naming the status and
    /// the server's sentence.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let why = value
                .get("error")
                .and_then(Value::as_str)
                .map_or_else(|| value.to_string(), str::to_owned);
            bail!("the server answered {status}: {why}");
        }
        Ok(value)
    }

    /// Gets a file from the API: its bytes; an error answer becomes an
    /// error naming the status and the server's sentence.
    pub(crate) async fn fetch(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let why = value["error"].as_str().map_or_else(
                || String::from_utf8_lossy(&bytes).into_owned(),
                str::to_owned,
            );
            bail!("the server answered {status}: {why}");
        }
        Ok(bytes.to_vec())
    }

    /// Prints `value` as JSON when asked, or the table `render` makes of it.
    pub(crate) fn print<T: serde::de::DeserializeOwned>(
        &self,
        value: Value,
        render: impl FnOnce(T) -> String,
    ) -> anyhow::Result<ExitCode> {
        let text = if self.json {
            serde_json::to_string_pretty(&value)? + "\n"
        } else {
            render(
                serde_json::from_value(value)
                    .context("the server's answer has an unexpected shape")?,
            )
        };
        match std::io::stdout().lock().write_all(text.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(ExitCode::SUCCESS),
        }
    }
}

/// Left-aligned columns, two spaces apart.
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row);
    }
    out
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

pub(crate) async fn tokens(
    connection: Connection,
    command: TokensCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        TokensCommand::Create {
            expires_in_hours,
            max_uses,
            group,
        } => {
            let body =
                json!({"expires_in_hours": expires_in_hours, "max_uses": max_uses, "group": group});
            let created = client
                .call(Method::POST, "/api/v1/tokens", Some(body))
                .await?;
            client.print(created, |t: CreatedToken| {
                format!(
                    "token:   {}\nid:      {}\nexpires: {}\nuses:    {}\ngroup:   {}\n\nEnroll a host with:\n  patchwell-agent enroll --server {} --token {}\n",
                    t.token, t.id, t.expires_at, t.max_uses, opt(&t.group), client.base, t.token
                )
            })
        }
        TokensCommand::List => {
            let tokens = client.call(Method::GET, "/api/v1/tokens", None).await?;
            client.print(tokens, |tokens: Vec<TokenView>| {
                let rows = tokens
                    .into_iter()
                    .map(|t| {
                        let state = if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        vec![
                            t.id,
                            format!("{}/{}", t.uses, t.max_uses),
                            t.expires_at.to_string(),
                            opt(&t.group),
                            state.into(),
                        ]
                    })
                    .collect();
                table(&["ID", "USED", "EXPIRES", "GROUP", "STATE"], rows)
            })
        }
        TokensCommand::Revoke { id } => {
            client
                .call(Method::DELETE, &api_path(&["tokens", &id]), None)
                .await?;
            client.print(json!({"revoked": id}), |_: Value| {
                format!("enrollment token {id} revoked\n")
            })
        }
    }
}

pub(crate) async fn hosts(
    connection: Connection,
    command: HostsCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        HostsCommand::List {
            os,
            os_version,
            group,
            tag,
            stale,
            reboot_required,
            include_revoked,
            query: selection,
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            for (key, value) in [
                ("os", os),
                ("os_version", os_version),
                ("group", group),
                ("tag", tag),
                ("query", selection),
            ] {
                if let Some(v) = value {
                    query.push((key, v));
                }
            }
            for (key, on) in [
                ("stale", stale),
                ("reboot_required", reboot_required),
                ("include_revoked", include_revoked),
            ] {
                if on {
                    query.push((key, "true".into()));
                }
            }
            let qs = query_string(&query);
            let hosts = client
                .call(Method::GET, &format!("/api/v1/hosts{qs}"), None)
                .await?;
            client.print(hosts, |hosts: Vec<HostView>| {
                let rows = hosts
                    .into_iter()
                    .map(|h| {
                        let os = format!(
                            "{} {}",
                            opt(&h.os_id),
                            h.os_version.clone().unwrap_or_default()
                        );
                        let mut flags = Vec::new();
                        if h.stale {
                            flags.push("stale");
                        }
                        if h.reboot_required {
                            flags.push("reboot");
                        }
                        if h.revoked_at.is_some() {
                            flags.push("revoked");
                        }
                        vec![
                            h.id,
                            h.hostname,
                            os.trim().to_owned(),
                            h.last_seen.to_string(),
                            opt(&h.group),
                            flags.join(","),
                        ]
                    })
                    .collect();
                table(
                    &["ID", "HOSTNAME", "OS", "LAST SEEN", "GROUP", "FLAGS"],
                    rows,
                )
            })
        }
        HostsCommand::Findings { id } => {
            let found = client
                .call(Method::GET, &api_path(&["hosts", &id, "findings"]), None)
                .await?;
            client.print(found, |found: Value| {
                crate::catalog_cli::findings_text(&found)
            })
        }
        HostsCommand::Show { id } => {
            let host = client
                .call(Method::GET, &api_path(&["hosts", &id]), None)
                .await?;
            client.print(host, |d: HostDetail| {
                let h = &d.host;
                let mut out = String::new();
                let _ = writeln!(out, "id:        {}", h.id);
                let _ = writeln!(out, "hostname:  {}", h.hostname);
                let _ = writeln!(
                    out,
                    "os:        {} {} ({})",
                    opt(&h.os_id),
                    opt(&h.os_version),
                    opt(&h.os_codename)
                );
                let _ = writeln!(out, "kernel:    {}", opt(&h.kernel));
                let _ = writeln!(
                    out,
                    "last seen: {}{}",
                    h.last_seen,
                    if h.stale { " (stale)" } else { "" }
                );
                let _ = writeln!(
                    out,
                    "reboot:    {}",
                    if h.reboot_required {
                        "required"
                    } else {
                        "not required"
                    }
                );
                let _ = writeln!(
                    out,
                    "group:     {}   tags: {}",
                    opt(&h.group),
                    h.tags.join(",")
                );
                let _ = writeln!(out, "packages:  {}\n", d.packages.len());
                let rows = d
                    .packages
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.version.clone(),
                            p.arch.clone(),
                            p.state.as_str().to_owned(),
                        ]
                    })
                    .collect();
                out + &table(&["PACKAGE", "VERSION", "ARCH", "STATE"], rows)
            })
        }
        HostsCommand::Revoke { id } => {
            client
                .call(Method::POST, &api_path(&["hosts", &id, "revoke"]), None)
                .await?;
            client.print(json!({"revoked": id}), |_: Value| {
                format!("host {id} revoked\n")
            })
        }
        HostsCommand::Set {
            id,
            group,
            criticality,
            owner,
            department,
            tags,
        } => {
            let body = json!({"group": group, "criticality": criticality, "owner": owner, "department": department, "tags": tags});
            client
                .call(
                    Method::PUT,
                    &api_path(&["hosts", &id, "attributes"]),
                    Some(body),
                )
                .await?;
            client.print(json!({"updated": id}), |_: Value| {
                format!("host {id} updated\n")
            })
        }
        HostsCommand::Summary => {
            let counts = client
                .call(Method::GET, "/api/v1/summary/os-releases", None)
                .await?;
            client.print(counts, |counts: Vec<Count>| {
                table(
                    &["OS RELEASE", "HOSTS"],
                    counts
                        .into_iter()
                        .map(|c| vec![c.value, c.hosts.to_string()])
                        .collect(),
                )
            })
        }
    }
}

pub(crate) async fn packages(
    connection: Connection,
    command: PackagesCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        PackagesCommand::Below {
            name,
            version,
            manager,
        } => {
            let qs = query_string(&[("below", version)]);
            let hosts = client
                .call(
                    Method::GET,
                    &(api_path(&["packages", &manager, &name, "hosts"]) + &qs),
                    None,
                )
                .await?;
            client.print(hosts, |hosts: Vec<HostWithPackage>| {
                let rows = hosts
                    .into_iter()
                    .map(|h| vec![h.host_id, h.hostname, h.package, h.version, h.arch])
                    .collect();
                table(&["HOST ID", "HOSTNAME", "PACKAGE", "VERSION", "ARCH"], rows)
            })
        }
        PackagesCommand::Versions { name, manager } => {
            let counts = client
                .call(
                    Method::GET,
                    &api_path(&["summary", "packages", &manager, &name]),
                    None,
                )
                .await?;
            client.print(counts, |counts: Vec<Count>| {
                table(
                    &["VERSION", "HOSTS"],
                    counts
                        .into_iter()
                        .map(|c| vec![c.value, c.hosts.to_string()])
                        .collect(),
                )
            })
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum GroupsCommand {
    /// Define or replace a dynamic group by a host query.
    Set {
        /// The group's name.
        name: String,
        /// The query: `os = debian and os_version >= 12 and tag = laptop`.
        query: String,
    },
    /// List dynamic groups with their member counts.
    List,
    /// The hosts a group selects now.
    Hosts {
        /// The group's name.
        name: String,
    },
    /// Delete a dynamic group.
    Delete {
        /// The group's name.
        name: String,
    },
}

pub(crate) async fn groups(
    connection: Connection,
    command: GroupsCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    match command {
        GroupsCommand::Set { name, query } => {
            client
                .call(
                    Method::PUT,
                    &api_path(&["groups", &name]),
                    Some(json!({"query": query})),
                )
                .await?;
            client.print(json!({"defined": name}), |_: Value| {
                format!("group {name} defined\n")
            })
        }
        GroupsCommand::List => {
            let groups = client.call(Method::GET, "/api/v1/groups", None).await?;
            client.print(groups, |groups: Vec<server::api::GroupView>| {
                let rows = groups
                    .into_iter()
                    .map(|g| vec![g.name, g.hosts.to_string(), g.query])
                    .collect();
                table(&["GROUP", "HOSTS", "QUERY"], rows)
            })
        }
        GroupsCommand::Hosts { name } => {
            let hosts = client
                .call(Method::GET, &api_path(&["groups", &name, "hosts"]), None)
                .await?;
            client.print(hosts, |hosts: Vec<HostView>| {
                let rows = hosts
                    .into_iter()
                    .map(|h| vec![h.id, h.hostname, h.last_seen.to_string()])
                    .collect();
                table(&["ID", "HOSTNAME", "LAST SEEN"], rows)
            })
        }
        GroupsCommand::Delete { name } => {
            client
                .call(Method::DELETE, &api_path(&["groups", &name]), None)
                .await?;
            client.print(json!({"deleted": name}), |_: Value| {
                format!("group {name} deleted\n")
            })
        }
    }
}

pub(crate) async fn devices(connection: Connection) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    let devices = client
        .call(Method::GET, "/api/v1/devices/unmanaged", None)
        .await?;
    client.print(devices, |devices: Vec<Device>| {
        let rows = devices
            .into_iter()
            .map(|d| vec![d.mac, d.addresses.join(","), d.seen_by.join(",")])
            .collect();
        table(&["MAC", "ADDRESSES", "SEEN BY"], rows)
    })
}

/// `?a=1&b=2`, percent-encoded; empty when there are no pairs.
fn query_string(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("?{}", joined.join("&"))
}

/// Percent-encodes one URL component (a path segment, a query value).
pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/api/v1/` and the segments, each encoded: a name with `/`, `?` or `%`
/// stays one segment.
pub(crate) fn api_path(segments: &[&str]) -> String {
    let encoded: Vec<String> = segments.iter().map(|s| encode(s)).collect();
    format!("/api/v1/{}", encoded.join("/"))
}
