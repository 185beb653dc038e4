//! Risk ranking: which hosts to patch first. A host's score is the sum over
//! its open findings of a weight per class (Critical 8, High 4, Medium 2,
//! Low 1; known exploited counts double), multiplied by what the host is
//! worth to an attacker: its criticality, whether it faces the internet,
//! and its owner's risk (executives, and people who download and share a
//! lot). Each factor is kept, so the ranking explains itself.

use crate::classify::Class;

/// What is known about a host for ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Factors {
    /// Its criticality (`None`: not set, counted as Medium).
    pub criticality: Option<Class>,
    /// It faces the internet.
    pub internet_facing: bool,
    /// Its owner is a high-risk person.
    pub owner_high_risk: bool,
}

/// One open finding, for ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// Its class.
    pub class: Class,
    /// Known exploited.
    pub kev: bool,
}

/// A host's score and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The score.
    pub score: f64,
    /// The findings' weight before the host's multipliers.
    pub findings_weight: f64,
    /// The product of the host's multipliers.
    pub multiplier: f64,
    /// The multipliers in words.
    pub because: Vec<String>,
}

fn weight(class: Class) -> f64 {
    match class {
        Class::Critical => 8.0,
        Class::High => 4.0,
        Class::Medium => 2.0,
        Class::Low => 1.0,
    }
}

/// A host's score.
pub fn score(factors: &Factors, open: &[Open]) -> Score {
    let findings_weight: f64 = open
        .iter()
        .map(|o| weight(o.class) * if o.kev { 2.0 } else { 1.0 })
        .sum();
    let mut multiplier = 1.0;
    let mut because = Vec::new();
    let criticality = factors.criticality.unwrap_or(Class::Medium);
    let c = match criticality {
        Class::Critical => 2.0,
        Class::High => 1.5,
        Class::Medium => 1.0,
        Class::Low => 0.5,
    };
    if c != 1.0 {
        multiplier *= c;
        because.push(format!("criticality {criticality} ×{c}"));
    }
    if factors.internet_facing {
        multiplier *= 1.5;
        because.push("internet-facing ×1.5".into());
    }
    if factors.owner_high_risk {
        multiplier *= 1.5;
        because.push("high-risk owner ×1.5".into());
    }
    Score {
        score: findings_weight * multiplier,
        findings_weight,
        multiplier,
        because,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exploited_findings_on_exposed_critical_hosts_rank_first() {
        let plain = Factors {
            criticality: None,
            internet_facing: false,
            owner_high_risk: false,
        };
        let findings = [
            Open {
                class: Class::High,
                kev: true,
            },
            Open {
                class: Class::Low,
                kev: false,
            },
        ];
        let s = score(&plain, &findings);
        assert_eq!((s.score, s.multiplier), (9.0, 1.0));
        assert!(s.because.is_empty());
        let exposed = Factors {
            criticality: Some(Class::Critical),
            internet_facing: true,
            owner_high_risk: true,
        };
        let s = score(&exposed, &findings);
        assert_eq!(s.score, 9.0 * 2.0 * 1.5 * 1.5);
        assert_eq!(s.because.len(), 3);
        assert_eq!(score(&exposed, &[]).score, 0.0);
    }
}
