//! Talking to the server: enrollment, check-ins, inventory uploads. A small
//! blocking client, because the agent spends its life asleep between
//! check-ins and needs no runtime for that.

use std::io::Write;
use std::time::Duration;

use protocol::job::{StepReport, StepsRequest};
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

    /// Reports steps of a job, in order. The server answers 204; sending
    /// the same steps again is how a report that was lost is retried.
    pub fn report_steps(&self, job_id: &str, steps: &[StepReport]) -> Result<(), ClientError> {
        let request = StepsRequest {
            steps: steps.to_vec(),
        };
        let url = self.url(&format!(
            "/api/v1/agent/jobs/{}/steps",
            percent_encode(job_id)
        ));
        let response = self
            .agent
            .post(&url)
            .header("Authorization", &self.authorization())
            .send_json(&request)
            .map_err(|e| self.unreachable(e))?;
        self.answer::<serde_json::Value>(response).map(drop)
    }

    /// Asks the server to defer this host's updates (a user's request, with
    /// a business justification); returns the request as stored.
    pub fn request_deferral(
        &self,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let response = self
            .agent
            .post(self.url("/api/v1/agent/deferrals"))
            .header("Authorization", &self.authorization())
            .send_json(request)
            .map_err(|e| self.unreachable(e))?;
        self.answer(response)?
            .ok_or_else(|| self.unreachable("empty answer to a deferral request"))
    }

    /// This host's deferral requests, with their decisions.
    pub fn deferrals(&self) -> Result<serde_json::Value, ClientError> {
        let response = self
            .agent
            .get(self.url("/api/v1/agent/deferrals"))
            .header("Authorization", &self.authorization())
            .call()
            .map_err(|e| self.unreachable(e))?;
        self.answer(response)?
            .ok_or_else(|| self.unreachable("empty answer"))
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

/// `text` as one URL path segment. Job ids are server-made and checked
/// before a job runs, but a refused job is reported by whatever id its
/// envelope carried, so nothing in it may reach the path unescaped.
fn percent_encode(text: &str) -> String {
    // `.` and `..` would be read as path steps, not as a segment.
    let only_dots = text.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_~".contains(&byte) || (byte == b'.' && !only_dots) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_id_cannot_leave_its_path_segment() {
        assert_eq!(percent_encode("j-1.a_b"), "j-1.a_b");
        assert_eq!(percent_encode("../x?y#z"), "..%2Fx%3Fy%23z");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode(".."), "%2E%2E");
    }
}
