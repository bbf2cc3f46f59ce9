//! The grant policy: which SE or container may use which service and calls, until when.
//!
//! Pure: no clock, no I/O. The registration handler asks [`Policy::decide`] and signs what
//! it answers.

/// Whom a grant entry covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectPattern {
    /// Every SE certified by the issuer CA (`eid = "*"`).
    Any,
    /// Every container of one SE (EID).
    Se([u8; 16]),
    /// One container: EID and ICCID (10-byte wire form).
    Container([u8; 16], [u8; 10]),
}

impl SubjectPattern {
    /// Whether the subject identifier of a certificate (EID || ICCID) matches.
    pub fn matches(&self, eid: &[u8; 16], iccid: &[u8; 10]) -> bool {
        match self {
            SubjectPattern::Any => true,
            SubjectPattern::Se(e) => e == eid,
            SubjectPattern::Container(e, i) => e == eid && i == iccid,
        }
    }
}

/// One entry of the policy.
#[derive(Debug, Clone)]
pub struct Grant {
    pub service: String,
    pub subject: SubjectPattern,
    /// Calls granted (a subset of what the service offers).
    pub calls: Vec<String>,
    /// Unix seconds; the grant no longer applies at or after this instant.
    pub until: u64,
}

/// The entries, in the order of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub grants: Vec<Grant>,
}

/// What the policy answers for one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Granted { calls: Vec<String>, until: u64 },
    Refused { reason: String },
}

impl Policy {
    /// The first entry for `service` whose subject matches decides; none: refused.
    pub fn decide(&self, service: &str, eid: &[u8; 16], iccid: &[u8; 10], now: u64) -> Decision {
        let Some(g) = self
            .grants
            .iter()
            .find(|g| g.service == service && g.subject.matches(eid, iccid))
        else {
            return Decision::Refused {
                reason: format!("no grant for this SE and service `{service}`"),
            };
        };
        if now >= g.until {
            return Decision::Refused {
                reason: format!("the grant for service `{service}` expired at {}", g.until),
            };
        }
        if g.calls.is_empty() {
            return Decision::Refused {
                reason: "the grant lists no call".into(),
            };
        }
        Decision::Granted {
            calls: g.calls.clone(),
            until: g.until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(subject: SubjectPattern, until: u64) -> Grant {
        Grant {
            service: "demo".into(),
            subject,
            calls: vec!["echo".into()],
            until,
        }
    }

    #[test]
    fn first_matching_entry_decides() {
        let eid = [1u8; 16];
        let iccid = [2u8; 10];
        let p = Policy {
            grants: vec![
                grant(SubjectPattern::Container(eid, [3u8; 10]), 100),
                grant(SubjectPattern::Se(eid), 50),
                grant(SubjectPattern::Any, 1000),
            ],
        };
        assert_eq!(
            p.decide("demo", &eid, &iccid, 10),
            Decision::Granted {
                calls: vec!["echo".into()],
                until: 50
            }
        );
        assert!(matches!(
            p.decide("demo", &eid, &iccid, 50),
            Decision::Refused { .. }
        ));
        assert!(matches!(
            p.decide("other", &eid, &iccid, 10),
            Decision::Refused { .. }
        ));
        assert!(matches!(
            p.decide("demo", &[9u8; 16], &iccid, 999),
            Decision::Granted { until: 1000, .. }
        ));
    }

    #[test]
    fn no_entry_refuses() {
        assert!(matches!(
            Policy::default().decide("demo", &[0; 16], &[0; 10], 0),
            Decision::Refused { .. }
        ));
    }
}
