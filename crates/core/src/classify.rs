//! Classification of a finding into Critical, High, Medium or Low, by rules
//! that can be changed, with every step that decided it kept beside the
//! class.
//!
//! A class starts from the advisory and is then adjusted by the asset. The
//! default rules, in order:
//! 1. the base class is the advisory's own: the vendor's severity (Debian's
//!    urgency, Ubuntu's priority), else the CVSS rating; a security update
//!    with neither gets the default class (Medium), named as a default;
//! 2. known exploited (CISA KEV) makes it at least High;
//! 3. known use in ransomware campaigns makes it Critical;
//! 4. an EPSS probability at or above 0.5 raises it one class;
//! 5. a host whose criticality is critical raises it one class;
//! 6. a host reachable from the internet raises it one class;
//! 7. a host whose owner is marked high risk raises it one class.
//!
//! Each rule that moves the class adds a step to the decision's chain,
//! which reads as one line: `high: CVSS 8.1; raised to critical: known
//! exploited (CISA KEV); raised to critical: host criticality critical`
//! (a rule that applies without moving the class is still named, as
//! "already ...", so that the chain says everything that counted).

use std::fmt;

use crate::advisory::Severity;

/// How urgent an update is. Ordered: Low < Medium < High < Critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Next rollup.
    Low,
    /// Within a month.
    Medium,
    /// Within a week.
    High,
    /// Within a day.
    Critical,
}

impl Class {
    /// Every class, lowest first.
    pub const ALL: [Class; 4] = [Class::Low, Class::Medium, Class::High, Class::Critical];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Low => "low",
            Class::Medium => "medium",
            Class::High => "high",
            Class::Critical => "critical",
        }
    }

    /// Reads a name.
    pub fn parse(name: &str) -> Option<Class> {
        Class::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name.trim()))
    }

    fn raised(self) -> Class {
        match self {
            Class::Low => Class::Medium,
            Class::Medium => Class::High,
            Class::High | Class::Critical => Class::Critical,
        }
    }

    fn of_severity(s: Severity) -> Class {
        match s {
            Severity::Critical => Class::Critical,
            Severity::High => Class::High,
            Severity::Medium => Class::Medium,
            Severity::Low | Severity::Negligible => Class::Low,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Low => "Low",
            Class::Medium => "Medium",
            Class::High => "High",
            Class::Critical => "Critical",
        })
    }
}

/// How exposed a host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exposure {
    /// Reachable only from inside.
    #[default]
    Internal,
    /// Reachable from the internet.
    InternetFacing,
}

/// What is known about one finding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signals {
    /// The vendor's severity.
    pub severity: Option<Severity>,
    /// The CVSS base score.
    pub cvss: Option<f64>,
    /// In CISA's KEV catalog.
    pub kev: bool,
    /// Known to be used in ransomware campaigns.
    pub ransomware: bool,
    /// The EPSS probability.
    pub epss: Option<f64>,
    /// The host's criticality (`Class::Critical` for a critical host).
    pub host_criticality: Option<Class>,
    /// The host's exposure.
    pub exposure: Exposure,
    /// The host's owner is marked high risk.
    pub owner_high_risk: bool,
}

/// The rules, with the defaults of the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// The class when no severity or CVSS score is given.
    pub unrated: Class,
    /// The least class of a known exploited vulnerability; None: no rule.
    pub kev_minimum: Option<Class>,
    /// The least class of one used in ransomware; None: no rule.
    pub ransomware_minimum: Option<Class>,
    /// EPSS at or above this raises one class; None: no rule.
    pub epss_raise_at: Option<f64>,
    /// A critical host raises one class.
    pub raise_for_critical_hosts: bool,
    /// An internet-facing host raises one class.
    pub raise_for_internet_facing: bool,
    /// A host whose owner is marked high risk raises one class.
    pub raise_for_high_risk_owners: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            unrated: Class::Medium,
            kev_minimum: Some(Class::High),
            ransomware_minimum: Some(Class::Critical),
            epss_raise_at: Some(0.5),
            raise_for_critical_hosts: true,
            raise_for_internet_facing: true,
            raise_for_high_risk_owners: true,
        }
    }
}

/// A class and the steps that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The class.
    pub class: Class,
    /// The steps, in words, the first the advisory's own class: the chain
    /// of the module documentation, joined by "; ".
    pub rule: String,
    /// Each step alone.
    pub steps: Vec<String>,
    /// The advisory gave no severity data: the base class is the
    /// configured default.
    pub default: bool,
}

impl Decision {
    fn start(class: Class, why: String, default: bool) -> Decision {
        let step = format!("{}: {why}", class.as_str());
        Decision {
            class,
            rule: step.clone(),
            steps: vec![step],
            default,
        }
    }

    fn step(&mut self, step: String) {
        self.rule.push_str("; ");
        self.rule.push_str(&step);
        self.steps.push(step);
    }

    /// Takes at least `to`, naming why (and naming it too when the class
    /// is already as high).
    fn at_least(&mut self, to: Class, why: &str) {
        if to > self.class {
            self.class = to;
            self.step(format!("raised to {}: {why}", to.as_str()));
        } else {
            self.step(format!("{why}: already at least {}", to.as_str()));
        }
    }

    /// Raises one class, naming why (already Critical: said so).
    fn raise(&mut self, why: &str) {
        if self.class == Class::Critical {
            self.step(format!("already critical: {why}"));
        } else {
            self.class = self.class.raised();
            self.step(format!("raised to {}: {why}", self.class.as_str()));
        }
    }
}

impl Rules {
    /// Classifies one finding.
    pub fn classify(&self, s: &Signals) -> Decision {
        let mut d = match (s.severity, s.cvss) {
            (Some(sev), _) => Decision::start(
                Class::of_severity(sev),
                format!("vendor severity {sev}"),
                false,
            ),
            (None, Some(score)) => Decision::start(
                Class::of_severity(Severity::of_cvss(score)),
                format!("CVSS {score:.1}"),
                false,
            ),
            (None, None) => Decision::start(
                self.unrated,
                "default for a security update with no severity data".to_owned(),
                true,
            ),
        };
        if s.kev {
            if let Some(min) = self.kev_minimum {
                d.at_least(min, "known exploited (CISA KEV)");
            }
        }
        if s.ransomware {
            if let Some(min) = self.ransomware_minimum {
                d.at_least(min, "used in ransomware campaigns");
            }
        }
        if let (Some(epss), Some(at)) = (s.epss, self.epss_raise_at) {
            if epss >= at {
                d.raise(&format!("EPSS {epss:.2} ≥ {at:.2}"));
            }
        }
        if self.raise_for_critical_hosts && s.host_criticality == Some(Class::Critical) {
            d.raise("host criticality critical");
        }
        if self.raise_for_internet_facing && s.exposure == Exposure::InternetFacing {
            d.raise("internet-facing host");
        }
        if self.raise_for_high_risk_owners && s.owner_high_risk {
            d.raise("owner of high risk");
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advisory_decides_first_and_the_chain_names_each_step() {
        let rules = Rules::default();
        let d = rules.classify(&Signals {
            severity: Some(Severity::Medium),
            ..Signals::default()
        });
        assert_eq!(
            (d.class, d.rule.as_str(), d.default),
            (Class::Medium, "medium: vendor severity medium", false)
        );
        let d = rules.classify(&Signals {
            cvss: Some(9.8),
            ..Signals::default()
        });
        assert_eq!(
            (d.class, d.rule.as_str()),
            (Class::Critical, "critical: CVSS 9.8")
        );
        let d = rules.classify(&Signals::default());
        assert_eq!(
            (d.class, d.rule.as_str(), d.default),
            (
                Class::Medium,
                "medium: default for a security update with no severity data",
                true
            )
        );
        let d = rules.classify(&Signals {
            severity: Some(Severity::Low),
            kev: true,
            ..Signals::default()
        });
        assert_eq!(
            (d.class, d.rule.as_str()),
            (
                Class::High,
                "low: vendor severity low; raised to high: known exploited (CISA KEV)"
            )
        );
        let d = rules.classify(&Signals {
            severity: Some(Severity::Low),
            kev: true,
            ransomware: true,
            ..Signals::default()
        });
        assert_eq!(d.class, Class::Critical);
        assert_eq!(
            d.steps,
            [
                "low: vendor severity low",
                "raised to high: known exploited (CISA KEV)",
                "raised to critical: used in ransomware campaigns"
            ]
        );
        let d = rules.classify(&Signals {
            cvss: Some(8.1),
            kev: true,
            host_criticality: Some(Class::Critical),
            ..Signals::default()
        });
        assert_eq!(
            d.rule,
            "high: CVSS 8.1; known exploited (CISA KEV): already at least high; \
             raised to critical: host criticality critical"
        );
        let d = rules.classify(&Signals {
            severity: Some(Severity::Low),
            epss: Some(0.93),
            exposure: Exposure::InternetFacing,
            owner_high_risk: true,
            ..Signals::default()
        });
        assert_eq!(d.class, Class::Critical);
        assert_eq!(
            d.rule,
            "low: vendor severity low; raised to medium: EPSS 0.93 ≥ 0.50; \
             raised to high: internet-facing host; raised to critical: owner of high risk"
        );
    }

    #[test]
    fn the_same_host_gets_different_classes_for_different_advisories() {
        let rules = Rules::default();
        let laptop = |severity| Signals {
            severity,
            host_criticality: Some(Class::Medium),
            ..Signals::default()
        };
        let classes: Vec<Class> = [Some(Severity::Negligible), Some(Severity::High), None]
            .into_iter()
            .map(|s| rules.classify(&laptop(s)).class)
            .collect();
        assert_eq!(classes, [Class::Low, Class::High, Class::Medium]);
    }

    #[test]
    fn rules_can_be_changed() {
        let rules = Rules {
            kev_minimum: Some(Class::Critical),
            epss_raise_at: None,
            raise_for_internet_facing: false,
            ..Rules::default()
        };
        let d = rules.classify(&Signals {
            severity: Some(Severity::Low),
            kev: true,
            epss: Some(0.99),
            exposure: Exposure::InternetFacing,
            ..Signals::default()
        });
        assert_eq!(d.class, Class::Critical);
        assert_eq!(
            d.rule,
            "low: vendor severity low; raised to critical: known exploited (CISA KEV)"
        );
        let quiet = Rules {
            epss_raise_at: None,
            raise_for_internet_facing: false,
            raise_for_high_risk_owners: false,
            unrated: Class::Low,
            ..Rules::default()
        };
        let d = quiet.classify(&Signals {
            severity: Some(Severity::Low),
            epss: Some(0.99),
            exposure: Exposure::InternetFacing,
            owner_high_risk: true,
            ..Signals::default()
        });
        assert_eq!(d.class, Class::Low);
        assert_eq!(quiet.classify(&Signals::default()).class, Class::Low);
        assert_eq!(Class::parse("HIGH"), Some(Class::High));
    }
}
