//! Exemptions: a decision that a host or group need not apply an update for
//! now, with the reason, the compensating control, who approved it and when
//! it lapses. Every exemption expires: one that has lapsed stops counting by
//! itself, with nothing to run.

use jiff::Timestamp;

/// Which hosts an exemption covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One host, by id.
    Host(String),
    /// Several hosts, by id.
    Hosts(Vec<String>),
    /// Every host of a group (static group or dynamic group name).
    Group(String),
}

/// What an exemption excuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One advisory, by id.
    Advisory(String),
    /// Every update of one package (binary or source name).
    Package(String),
}

/// An exemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    /// Its name.
    pub name: String,
    /// The hosts.
    pub scope: Scope,
    /// The advisory or package.
    pub target: Target,
    /// Why.
    pub reason: String,
    /// What reduces the risk meanwhile (an isolated VLAN, a WAF rule).
    pub control: Option<String>,
    /// Who approved it.
    pub approver: String,
    /// From when it counts.
    pub from: Timestamp,
    /// When it lapses.
    pub expires: Timestamp,
}

/// Where an exemption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not yet in force.
    Pending,
    /// In force.
    InForce,
    /// Lapsed at its expiry.
    Lapsed,
}

impl Standing {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Pending => "pending",
            Standing::InForce => "in-force",
            Standing::Lapsed => "lapsed",
        }
    }
}

impl Exemption {
    /// Where it stands at `now`.
    pub fn standing(&self, now: Timestamp) -> Standing {
        if now < self.from {
            Standing::Pending
        } else if now >= self.expires {
            Standing::Lapsed
        } else {
            Standing::InForce
        }
    }

    /// Whether it covers this host (with its groups) and this finding (an
    /// advisory and the packages it concerns), whatever its standing.
    pub fn covers(
        &self,
        host_id: &str,
        groups: &[&str],
        advisory: Option<&str>,
        packages: &[&str],
    ) -> bool {
        let host = match &self.scope {
            Scope::Host(h) => h == host_id,
            Scope::Hosts(ids) => ids.iter().any(|h| h == host_id),
            Scope::Group(g) => groups.contains(&g.as_str()),
        };
        host && match &self.target {
            Target::Advisory(a) => advisory == Some(a.as_str()),
            Target::Package(p) => packages.contains(&p.as_str()),
        }
    }

    /// Checks what the type cannot: an expiry after the start, a reason.
    pub fn check(&self) -> Result<(), String> {
        if self.reason.trim().is_empty() {
            return Err(format!("exemption {}: a reason is required", self.name));
        }
        if self.expires <= self.from {
            return Err(format!(
                "exemption {}: it expires ({}) before it starts ({})",
                self.name, self.expires, self.from
            ));
        }
        Ok(())
    }
}

/// The first exemption in force at `now` covering the finding, if any.
pub fn in_force<'a>(
    exemptions: &'a [Exemption],
    host_id: &str,
    groups: &[&str],
    advisory: Option<&str>,
    packages: &[&str],
    now: Timestamp,
) -> Option<&'a Exemption> {
    exemptions.iter().find(|e| {
        e.standing(now) == Standing::InForce && e.covers(host_id, groups, advisory, packages)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn exemption(scope: Scope, target: Target) -> Exemption {
        Exemption {
            name: "e".into(),
            scope,
            target,
            reason: "vendor appliance".into(),
            control: Some("isolated VLAN".into()),
            approver: "alice".into(),
            from: t(0),
            expires: t(100),
        }
    }

    #[test]
    fn an_exemption_covers_its_hosts_and_target_until_it_lapses() {
        let e = exemption(
            Scope::Group("dmz".into()),
            Target::Package("openssl".into()),
        );
        assert!(e.covers("web-1", &["dmz"], Some("DSA-1"), &["openssl", "libssl3"]));
        assert!(!e.covers("web-1", &["lan"], Some("DSA-1"), &["openssl"]));
        assert!(!e.covers("web-1", &["dmz"], Some("DSA-1"), &["curl"]));
        let list = [e];
        let found = |now| in_force(&list, "web-1", &["dmz"], None, &["openssl"], now).is_some();
        assert!(!found(t(-1)), "pending");
        assert!(found(t(0)));
        assert!(found(t(99)));
        assert!(!found(t(100)), "lapsed by itself at its expiry");
        assert_eq!(list[0].standing(t(100)), Standing::Lapsed);
    }

    #[test]
    fn a_host_exemption_names_one_advisory() {
        let e = exemption(Scope::Host("h1".into()), Target::Advisory("DSA-1".into()));
        assert!(e.covers("h1", &[], Some("DSA-1"), &[]));
        assert!(!e.covers("h2", &[], Some("DSA-1"), &[]));
        assert!(!e.covers("h1", &[], Some("DSA-2"), &[]));
    }

    #[test]
    fn an_exemption_needs_a_reason_and_an_expiry_after_its_start() {
        let mut e = exemption(Scope::Host("h1".into()), Target::Advisory("DSA-1".into()));
        assert!(e.check().is_ok());
        e.expires = t(0);
        assert!(e.check().unwrap_err().contains("before it starts"));
        e.expires = t(1);
        e.reason = " ".into();
        assert!(e.check().unwrap_err().contains("reason"));
    }
}
