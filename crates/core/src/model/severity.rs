//! Severity levels SEV1..SEV4 and what each one asks of the people who respond.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How bad an incident is. `Sev1` is the most severe; ordering follows urgency, so
/// `Severity::Sev1 < Severity::Sev2` and "escalate" means moving towards `Sev1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Critical: complete outage, all users affected. Page immediately.
    #[serde(rename = "SEV1")]
    Sev1,
    /// Major: significant degradation, some users affected. Respond within an hour.
    #[serde(rename = "SEV2")]
    Sev2,
    /// Minor: limited impact, workarounds exist. Within four business hours.
    #[serde(rename = "SEV3")]
    Sev3,
    /// Informational: no user impact yet. A ticket for planned work.
    #[serde(rename = "SEV4")]
    Sev4,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Sev1, Severity::Sev2, Severity::Sev3, Severity::Sev4];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Sev1 => "SEV1",
            Severity::Sev2 => "SEV2",
            Severity::Sev3 => "SEV3",
            Severity::Sev4 => "SEV4",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Severity::Sev1 => "critical",
            Severity::Sev2 => "major",
            Severity::Sev3 => "minor",
            Severity::Sev4 => "informational",
        }
    }

    /// True when `self` is more urgent than `other`.
    pub fn is_more_severe_than(self, other: Severity) -> bool {
        self < other
    }

    /// One level more severe, saturating at SEV1.
    pub fn raised(self) -> Severity {
        match self {
            Severity::Sev1 | Severity::Sev2 => Severity::Sev1,
            Severity::Sev3 => Severity::Sev2,
            Severity::Sev4 => Severity::Sev3,
        }
    }

    /// The response target the seed sets for this level, in seconds
    /// (SEV1 minutes, SEV2 an hour, SEV3 four hours, SEV4 none).
    pub fn response_target_s(self) -> Option<i64> {
        match self {
            Severity::Sev1 => Some(15 * 60),
            Severity::Sev2 => Some(60 * 60),
            Severity::Sev3 => Some(4 * 60 * 60),
            Severity::Sev4 => None,
        }
    }

    /// Who is told and how, in words for the page.
    pub fn response(self) -> &'static str {
        match self {
            Severity::Sev1 => "page the on-call engineer now; response within minutes",
            Severity::Sev2 => "notify the on-call engineer; response within 1 hour",
            Severity::Sev3 => "notify the team; response within 4 business hours",
            Severity::Sev4 => "ticket for planned work; no immediate response",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of SEV1..SEV4 (case-insensitive; `1`..`4` and `sev-1` also accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected one of SEV1, SEV2, SEV3, SEV4")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_uppercase().replace(['-', '_', ' '], "");
        let digits = t.strip_prefix("SEV").unwrap_or(&t);
        match digits {
            "1" => Ok(Severity::Sev1),
            "2" => Ok(Severity::Sev2),
            "3" => Ok(Severity::Sev3),
            "4" => Ok(Severity::Sev4),
            _ => match t.as_str() {
                "CRITICAL" => Ok(Severity::Sev1),
                "MAJOR" => Ok(Severity::Sev2),
                "MINOR" => Ok(Severity::Sev3),
                "INFO" | "INFORMATIONAL" => Ok(Severity::Sev4),
                _ => Err(UnknownSeverity(s.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sev1_is_the_most_severe_and_raising_saturates() {
        assert!(Severity::Sev1.is_more_severe_than(Severity::Sev2));
        assert!(!Severity::Sev3.is_more_severe_than(Severity::Sev2));
        assert_eq!(Severity::Sev4.raised(), Severity::Sev3);
        assert_eq!(Severity::Sev1.raised(), Severity::Sev1);
    }

    #[test]
    fn parses_the_spellings_people_put_in_tags() {
        for (s, want) in [
            ("SEV1", Severity::Sev1),
            ("sev2", Severity::Sev2),
            ("Sev-3", Severity::Sev3),
            ("4", Severity::Sev4),
            ("critical", Severity::Sev1),
        ] {
            assert_eq!(s.parse::<Severity>().unwrap(), want, "{s}");
        }
        assert!("SEV5".parse::<Severity>().is_err());
        assert!("".parse::<Severity>().is_err());
    }

    #[test]
    fn serialises_as_the_contract_spelling() {
        assert_eq!(serde_json::to_string(&Severity::Sev2).unwrap(), "\"SEV2\"");
    }
}
