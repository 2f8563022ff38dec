//! `firebreak autonomy report`: each (runbook, cause, action) with its outcomes, its level and
//! what it would take to move up, from the table or from drills.

use crate::model::autonomy::{AutonomyRecord, PromotionPolicy};
use crate::model::duration::human;
use serde::Serialize;
use std::fmt::Write as _;

/// `{"records": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutonomyReport {
    pub records: Vec<RecordReport>,
}

/// One record as reported (the `--json` contract in DESIGN.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordReport {
    pub runbook: String,
    pub cause: String,
    pub action: String,
    pub matched: u32,
    pub different: u32,
    pub unneeded: u32,
    pub contradicted: u32,
    pub verified: u32,
    pub ineffective: u32,
    /// Median lead time of the `matched` proposals: what Firebreak would have saved.
    pub median_lead_s: Option<i64>,
    /// The level the record earned: `dry-run`, `approve` or `auto`.
    pub level: String,
    /// `null` at `auto`.
    pub next_level: Option<String>,
    /// What moving up takes, in words; `null` at `auto`.
    pub needs: Option<String>,
}

/// The report of `records` under `policy`, ordered by runbook, cause and action.
pub fn report(records: &[AutonomyRecord], policy: &PromotionPolicy) -> AutonomyReport {
    let mut records: Vec<&AutonomyRecord> = records.iter().collect();
    records.sort_by(|a, b| a.key.cmp(&b.key));
    AutonomyReport {
        records: records
            .into_iter()
            .map(|r| {
                let next = r.next(policy);
                RecordReport {
                    runbook: r.key.runbook.clone(),
                    cause: r.key.cause.clone(),
                    action: r.key.action.clone(),
                    matched: r.matched,
                    different: r.different,
                    unneeded: r.unneeded,
                    contradicted: r.contradicted,
                    verified: r.verified,
                    ineffective: r.ineffective,
                    median_lead_s: r.median_lead_s(),
                    level: r.level.to_string(),
                    next_level: next.as_ref().map(|n| n.level.to_string()),
                    needs: next.map(|n| n.needs),
                }
            })
            .collect(),
    }
}

/// The report a person reads.
pub fn render_text(r: &AutonomyReport, policy: &PromotionPolicy) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Earned autonomy: to approve at {} matched of the last {}, to auto at {}, none contradicted or ineffective among them; demoted one level on either. Ceiling: {}.",
        policy.approve_after, policy.window, policy.auto_after, policy.ceiling
    );
    if r.records.is_empty() {
        let _ = writeln!(o, "\nNo proposal has been scored yet.");
        return o;
    }
    for x in &r.records {
        let _ = writeln!(o, "\n{} / {} / {}", x.runbook, x.cause, x.action);
        let _ = writeln!(
            o,
            "  proposals: {} matched, {} different, {} unneeded, {} contradicted; applied: {} verified, {} ineffective",
            x.matched, x.different, x.unneeded, x.contradicted, x.verified, x.ineffective
        );
        if let Some(l) = x.median_lead_s {
            let _ = writeln!(
                o,
                "  median lead time when matched: {} (what acting at once would have saved)",
                human(l)
            );
        }
        match (&x.next_level, &x.needs) {
            (Some(next), Some(needs)) => {
                let _ = writeln!(o, "  level: {} → {next} needs {needs}", x.level);
            }
            _ => {
                let _ = writeln!(o, "  level: {} (the top)", x.level);
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::autonomy::{AutonomyKey, Mark};

    #[test]
    fn reports_counts_levels_and_what_it_takes_in_key_order() {
        let p = PromotionPolicy::default();
        let at = "2026-03-14T15:00:00Z".parse().unwrap();
        let mut a = AutonomyRecord::new(AutonomyKey::new("z-runbook", "c", "ecs-restart"));
        a.count("1", Mark::Unneeded, None, at, &p);
        let mut b = AutonomyRecord::new(AutonomyKey::new("a-runbook", "c", "ecs-scale-out"));
        for (i, lead) in [600, 120, 300].iter().enumerate() {
            b.count(&i.to_string(), Mark::Matched, Some(*lead), at, &p);
        }
        let r = report(&[a, b], &p);
        assert_eq!(r.records[0].runbook, "a-runbook");
        assert_eq!(r.records[0].level, "approve");
        assert_eq!(r.records[0].median_lead_s, Some(300));
        assert_eq!(r.records[0].next_level.as_deref(), Some("auto"));
        assert!(r.records[0]
            .needs
            .as_deref()
            .unwrap()
            .starts_with("5 more matched"));
        assert_eq!(r.records[1].level, "dry-run");
        let json = serde_json::to_value(&r).unwrap();
        for k in [
            "runbook",
            "cause",
            "action",
            "matched",
            "different",
            "unneeded",
            "contradicted",
            "verified",
            "ineffective",
            "median_lead_s",
            "level",
            "next_level",
            "needs",
        ] {
            assert!(json["records"][1].get(k).is_some(), "{k}");
        }
        let text = render_text(&r, &p);
        assert!(
            text.contains("level: approve → auto needs 5 more matched"),
            "{text}"
        );
    }
}
