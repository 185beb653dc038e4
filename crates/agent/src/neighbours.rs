//! The neighbour table (`ip -json neigh`): the other devices this host sees
//! on its links, so that the server can list devices that are not enrolled.

use protocol::Neighbour;
use serde_json::Value;

/// Parses `ip -json neigh` output.
pub fn parse(json: &str) -> Result<Vec<Neighbour>, String> {
    let entries: Vec<Value> = serde_json::from_str(json)
        .map_err(|e| format!("ip -json neigh printed invalid JSON: {e}"))?;
    Ok(entries
        .iter()
        .filter_map(|e| {
            Some(Neighbour {
                address: e.get("dst")?.as_str()?.to_owned(),
                mac: e.get("lladdr").and_then(Value::as_str).map(str::to_owned),
                interface: e
                    .get("dev")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                state: e
                    .get("state")
                    .and_then(Value::as_array)
                    .map(|s| {
                        s.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_neigh() {
        let json = r#"[{"dst":"192.0.2.1","dev":"eth0","lladdr":"02:fc:00:00:00:05","state":["STALE"]},
                       {"dst":"fd00::1","dev":"eth0","state":["FAILED"]}]"#;
        let n = parse(json).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].mac.as_deref(), Some("02:fc:00:00:00:05"));
        assert_eq!(n[1].state, "FAILED");
        assert!(parse("not json").unwrap_err().contains("invalid JSON"));
    }
}
