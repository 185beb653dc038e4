//! Classification of a finding into Critical, High, Medium or Low, by rules
//! that can be changed, with the rule that decided kept beside the class.
//!
//! The default rules, in order:
//! 1. the base class is the vendor's severity, else the CVSS rating, else
//!    Medium ("no rating given");
//! 2. known exploited (CISA KEV) makes it at least High;
//! 3. known use in ransomware campaigns makes it Critical;
//! 4. an EPSS probability at or above 0.5 raises it one class;
//! 5. a critical host, or one exposed to the internet, raises it one class.
//!
//! The class is the highest any rule gives; the reason names that rule.

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
        }
    }
}

/// A class and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The class.
    pub class: Class,
    /// The rule that gave it, in words.
    pub rule: String,
}

impl Decision {
    /// Takes a higher class, and the rule that gave it.
    fn raise_to(&mut self, to: Class, why: impl FnOnce() -> String) {
        if to > self.class {
            self.class = to;
            self.rule = why();
        }
    }
}

impl Rules {
    /// Classifies one finding.
    pub fn classify(&self, s: &Signals) -> Decision {
        let mut d = match (s.severity, s.cvss) {
            (Some(sev), _) => Decision {
                class: Class::of_severity(sev),
                rule: format!("vendor severity {sev}"),
            },
            (None, Some(score)) => Decision {
                class: Class::of_severity(Severity::of_cvss(score)),
                rule: format!("CVSS {score:.1}"),
            },
            (None, None) => Decision {
                class: self.unrated,
                rule: "no severity or CVSS given".to_owned(),
            },
        };
        if s.kev {
            if let Some(min) = self.kev_minimum {
                d.raise_to(min, || {
                    format!("known exploited (CISA KEV): at least {min}")
                });
            }
        }
        if s.ransomware {
            if let Some(min) = self.ransomware_minimum {
                d.raise_to(min, || {
                    format!("used in ransomware campaigns: at least {min}")
                });
            }
        }
        if let (Some(epss), Some(at)) = (s.epss, self.epss_raise_at) {
            if epss >= at {
                let to = d.class.raised();
                d.raise_to(to, || format!("EPSS {epss:.2} ≥ {at:.2}: raised to {to}"));
            }
        }
        if self.raise_for_critical_hosts && s.host_criticality == Some(Class::Critical) {
            let to = d.class.raised();
            d.raise_to(to, || format!("critical host: raised to {to}"));
        }
        if self.raise_for_internet_facing && s.exposure == Exposure::InternetFacing {
            let to = d.class.raised();
            d.raise_to(to, || format!("internet-facing host: raised to {to}"));
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_decides_and_says_so() {
        let rules = Rules::default();
        let d = rules.classify(&Signals {
            severity: Some(Severity::Medium),
            ..Signals::default()
        });
        assert_eq!(
            (d.class, d.rule.as_str()),
            (Class::Medium, "vendor severity medium")
        );
        let d = rules.classify(&Signals {
            cvss: Some(9.8),
            ..Signals::default()
        });
        assert_eq!((d.class, d.rule.as_str()), (Class::Critical, "CVSS 9.8"));
        let d = rules.classify(&Signals::default());
        assert_eq!(
            (d.class, d.rule.as_str()),
            (Class::Medium, "no severity or CVSS given")
        );
        let d = rules.classify(&Signals {
            severity: Some(Severity::Low),
            kev: true,
            ..Signals::default()
        });
        assert_eq!(
            (d.class, d.rule.as_str()),
            (Class::High, "known exploited (CISA KEV): at least High")
        );
        let d = rules.classify(&Signals {
            severity: Some(Severity::Low),
            kev: true,
            ransomware: true,
            ..Signals::default()
        });
        assert_eq!(d.class, Class::Critical);
        assert_eq!(d.rule, "used in ransomware campaigns: at least Critical");
        let d = rules.classify(&Signals {
            severity: Some(Severity::Low),
            epss: Some(0.93),
            exposure: Exposure::InternetFacing,
            ..Signals::default()
        });
        assert_eq!(d.class, Class::High);
        assert_eq!(d.rule, "internet-facing host: raised to High");
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
        assert_eq!(d.rule, "known exploited (CISA KEV): at least Critical");
        let quiet = Rules {
            epss_raise_at: None,
            raise_for_internet_facing: false,
            ..Rules::default()
        };
        let d = quiet.classify(&Signals {
            severity: Some(Severity::Low),
            epss: Some(0.99),
            exposure: Exposure::InternetFacing,
            ..Signals::default()
        });
        assert_eq!(d.class, Class::Low);
        assert_eq!(Class::parse("HIGH"), Some(Class::High));
    }
}
