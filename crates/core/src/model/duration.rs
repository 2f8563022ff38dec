//! Human durations in runbooks and settings: `90s`, `5m`, `1h`, `2d`, `250ms`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A non-negative duration with second resolution (milliseconds kept for `ms` inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub ms: i64,
}

impl Span {
    pub const fn seconds(s: i64) -> Span {
        Span { ms: s * 1000 }
    }
    pub const fn minutes(m: i64) -> Span {
        Span { ms: m * 60_000 }
    }
    pub fn as_secs(self) -> i64 {
        self.ms / 1000
    }
    pub fn to_chrono(self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.ms)
    }
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.ms).unwrap_or(0))
    }

    /// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d`; a bare number is seconds.
    pub fn parse(s: &str) -> Result<Span, crate::Error> {
        let t = s.trim();
        let bad = || {
            crate::Error::invalid(
                "duration",
                format!("{s:?} is not a duration like 90s, 5m, 1h or 2d"),
            )
        };
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: i64 = num.parse().map_err(|_| bad())?;
        let factor = match unit.trim() {
            "ms" => 1,
            "" | "s" | "sec" | "secs" => 1000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hrs" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            _ => return Err(bad()),
        };
        n.checked_mul(factor).map(|ms| Span { ms }).ok_or_else(bad)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.ms;
        if ms % 86_400_000 == 0 && ms != 0 {
            write!(f, "{}d", ms / 86_400_000)
        } else if ms % 3_600_000 == 0 && ms != 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms % 60_000 == 0 && ms != 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) if n >= 0 => Ok(Span::seconds(n)),
            Raw::N(n) => Err(serde::de::Error::custom(format!("duration {n} is negative"))),
            Raw::S(s) => Span::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration for people: `40s`, `5m`, `5m 30s`, `1h 5m`, `2d 3h`. Negative durations print
/// with a leading `-`.
pub fn human(secs: i64) -> String {
    if secs < 0 {
        return format!("-{}", human(secs.saturating_neg()));
    }
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    match parts.len() {
        0 => "0s".to_string(),
        // the two most significant units are enough for a person
        _ => parts.into_iter().take(2).collect::<Vec<_>>().join(" "),
    }
}

/// `human` for an optional duration, `-` when absent.
pub fn human_opt(secs: Option<i64>) -> String {
    secs.map_or_else(|| "-".to_string(), human)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_units() {
        assert_eq!(Span::parse("5m").unwrap(), Span::minutes(5));
        assert_eq!(Span::parse("90").unwrap(), Span::seconds(90));
        assert_eq!(Span::parse("250ms").unwrap().ms, 250);
        assert_eq!(Span::parse("2d").unwrap().to_string(), "2d");
        assert_eq!(Span::minutes(90).to_string(), "90m");
        for bad in ["", "m5", "5w", "-1m", "99999999999999999d"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }
}
