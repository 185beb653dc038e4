//! Talking to the server: enrollment, check-ins, inventory uploads. A small
//! blocking client, because the agent spends its life asleep between
//! check-ins and needs no runtime for that.

use std::io::Write;
use std::time::Duration;

use protocol::{
    EnrollRequest, EnrollResponse, ErrorBody, Heartbeat, HeartbeatResponse, Inventory,
    InventoryDelta,
};
use ureq::tls::{PemItem, RootCerts, TlsConfig};

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered, and refused.
    #[error("the server refused ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's sentence.
        message: String,
    },
    /// The server could not be reached, or the connection failed.
    #[error("cannot reach {server}: {why}")]
    Unreachable {
        /// The server.
        server: String,
        /// Why.
        why: String,
    },
    /// The configuration is unusable (a bad CA file, say).
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// Whether the server said this host may not continue (revoked, unknown).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ClientError::Refused {
                status: 401 | 403,
                ..
            }
        )
    }
}

/// A connection to one server.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    server: String,
    credential: Option<String>,
}

impl Client {
    /// A client for `server`, trusting `ca_pem` if given (else the built-in roots).
    pub fn new(
        server: &str,
        ca_pem: Option<&str>,
        credential: Option<String>,
    ) -> Result<Client, ClientError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .user_agent(concat!("patchwell-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs: Vec<_> = ureq::tls::parse_pem(pem.as_bytes())
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(cert)) => Some(cert.to_owned()),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(ClientError::Config(
                    "the CA file holds no PEM certificate".into(),
                ));
            }
            config = config.tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(Client {
            agent: config.build().into(),
            server: server.trim_end_matches('/').to_owned(),
            credential,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Unreachable {
            server: self.server.clone(),
            why: e.to_string(),
        }
    }

    /// Reads a JSON answer, or turns an error status into [`ClientError::Refused`].
    fn answer<T: serde::de::DeserializeOwned>(
        &self,
        response: ureq::http::Response<ureq::Body>,
    ) -> Result<Option<T>, ClientError> {
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if (200..300).contains(&status) {
            if status == 204 {
                return Ok(None);
            }
            return body
                .read_json()
                .map(Some)
                .map_err(|e| self.unreachable(format!("unreadable answer: {e}")));
        }
        let text = body.read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Err(ClientError::Refused { status, message })
    }

    fn authorization(&self) -> String {
        format!("Bearer {}", self.credential.as_deref().unwrap_or_default())
    }

    /// Enrolls with an enrollment token.
    pub fn enroll(&self, token: &str, hostname: &str) -> Result<EnrollResponse, ClientError> {
        let request = EnrollRequest {
            token: token.to_owned(),
            hostname: hostname.to_owned(),
        };
        let response = self
            .agent
            .post(self.url("/api/v1/agent/enroll"))
            .send_json(&request)
            .map_err(|e| self.unreachable(e))?;
        self.answer(response)?
            .ok_or_else(|| self.unreachable("empty answer to enrollment"))
    }

    /// Checks in with the digests of the current and the acknowledged inventory.
    pub fn heartbeat(
        &self,
        inventory_digest: &str,
        acknowledged_digest: Option<String>,
    ) -> Result<HeartbeatResponse, ClientError> {
        let beat = Heartbeat {
            inventory_digest: inventory_digest.to_owned(),
            acknowledged_digest,
        };
        let response = self
            .agent
            .post(self.url("/api/v1/agent/heartbeat"))
            .header("Authorization", &self.authorization())
            .send_json(&beat)
            .map_err(|e| self.unreachable(e))?;
        self.answer(response)?
            .ok_or_else(|| self.unreachable("empty answer to check-in"))
    }

    /// Sends the whole inventory, gzip-compressed: a thousand packages shrink
    /// to a few tens of kilobytes, which matters on a laptop's slow link.
    pub fn send_inventory(&self, inventory: &Inventory) -> Result<(), ClientError> {
        self.send_gzip_json(false, inventory)
    }

    /// Sends a delta against the acknowledged inventory, gzip-compressed.
    pub fn send_delta(&self, delta: &InventoryDelta) -> Result<(), ClientError> {
        self.send_gzip_json(true, delta)
    }

    fn send_gzip_json(
        &self,
        delta: bool,
        value: &impl serde::Serialize,
    ) -> Result<(), ClientError> {
        let config = |e: std::io::Error| ClientError::Config(e.to_string());
        let json = serde_json::to_vec(value).map_err(|e| ClientError::Config(e.to_string()))?;
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(json.len() / 4),
            flate2::Compression::default(),
        );
        gz.write_all(&json).map_err(config)?;
        let body = gz.finish().map_err(config)?;
        let url = self.url("/api/v1/agent/inventory");
        let request = if delta {
            self.agent.patch(&url)
        } else {
            self.agent.put(&url)
        };
        let response = request
            .header("Authorization", &self.authorization())
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .send(&body[..])
            .map_err(|e| self.unreachable(e))?;
        self.answer::<serde_json::Value>(response).map(drop)
    }
}
