//! Closing the loop on remediations: whether an applied action worked (its verification), whether
//! a proposal was what people would have done (its shadow verdict), and the record per
//! (runbook, cause, action) those outcomes build, from which the mode `earned` takes each
//! action's level.
//!
//! Everything here is pure: the stages read ECS and CloudWatch, these types say what it means.

use crate::model::settings::RemediationMode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What CloudWatch said at the end of an applied action's verification window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verification {
    /// Every alarm of the incident was OK.
    Verified,
    /// Some alarm was still in ALARM.
    Ineffective,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Verified => "verified",
            Verification::Ineffective => "ineffective",
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a proposal compares with what people did to the service before it recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// People did the same kind of action (a rollback: to the same revision).
    Matched,
    /// People did something else, and the service recovered.
    Different,
    /// Nobody changed the service, and it recovered.
    Unneeded,
    /// People did the opposite, or undid the action Firebreak applied.
    Contradicted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Matched => "matched",
            Verdict::Different => "different",
            Verdict::Unneeded => "unneeded",
            Verdict::Contradicted => "contradicted",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of change people made to an ECS service, as ECS shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A new deployment of an older revision of the family.
    Rollback,
    /// A new deployment of a newer revision.
    RollForward,
    /// desiredCount raised.
    ScaleOut,
    /// desiredCount lowered.
    ScaleIn,
    /// A new deployment of the same revision (a forced new deployment).
    Restart,
}

impl ChangeKind {
    /// The action a change of this kind is the same kind as (`None` for the kinds no action
    /// makes).
    pub fn action(self) -> Option<&'static str> {
        match self {
            ChangeKind::Rollback => Some("ecs-rollback"),
            ChangeKind::ScaleOut => Some("ecs-scale-out"),
            ChangeKind::Restart => Some("ecs-restart"),
            ChangeKind::RollForward | ChangeKind::ScaleIn => None,
        }
    }

    /// The change that works against `action`: scaling in against a scale-out, rolling forward
    /// against a rollback. A restart has none.
    pub fn opposes(self, action: &str) -> bool {
        matches!(
            (action, self),
            ("ecs-scale-out", ChangeKind::ScaleIn) | ("ecs-rollback", ChangeKind::RollForward)
        )
    }
}

/// One change people made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleChange {
    pub kind: ChangeKind,
    /// When ECS shows it (a deployment's creation, the service event of the new count); `None`
    /// when ECS shows the change but not its time.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// The revision deployed, for deployments.
    #[serde(default)]
    pub task_definition: Option<String>,
    /// `scaled out to 6 tasks`, `rolled back to articles-api:41`.
    pub text: String,
}

/// One outcome counted on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mark {
    Matched,
    Different,
    Unneeded,
    Contradicted,
    Verified,
    Ineffective,
}

impl Mark {
    /// A mark that demotes: people contradicted the action, or it did not work.
    pub fn is_bad(self) -> bool {
        matches!(self, Mark::Contradicted | Mark::Ineffective)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Matched => "matched",
            Mark::Different => "different",
            Mark::Unneeded => "unneeded",
            Mark::Contradicted => "contradicted",
            Mark::Verified => "verified",
            Mark::Ineffective => "ineffective",
        }
    }
}

impl From<Verdict> for Mark {
    fn from(v: Verdict) -> Mark {
        match v {
            Verdict::Matched => Mark::Matched,
            Verdict::Different => Mark::Different,
            Verdict::Unneeded => Mark::Unneeded,
            Verdict::Contradicted => Mark::Contradicted,
        }
    }
}

impl From<Verification> for Mark {
    fn from(v: Verification) -> Mark {
        match v {
            Verification::Verified => Mark::Verified,
            Verification::Ineffective => Mark::Ineffective,
        }
    }
}

/// When a record moves up a level. Demotion is one level on any contradicted or ineffective
/// outcome (an approved action people undo counts one contradicted: its approval counts
/// matched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromotionPolicy {
    /// `dry-run` → `approve` at this many `matched` among the last `window` outcomes, none of
    /// them contradicted or ineffective.
    pub approve_after: u32,
    /// `approve` → `auto` at this many `matched` among the last `window`, none of them
    /// contradicted or ineffective.
    pub auto_after: u32,
    /// How many of the latest outcomes the rules look at.
    pub window: u32,
    /// The most automatic level `earned` uses, whatever the record says (`dry-run`,
    /// `approve` or `auto`).
    pub ceiling: RemediationMode,
}

impl Default for PromotionPolicy {
    fn default() -> Self {
        PromotionPolicy {
            approve_after: 3,
            auto_after: 8,
            window: 10,
            ceiling: RemediationMode::Approve,
        }
    }
}

/// The most outcomes a record keeps in order (the policy's window may not be larger).
pub const MAX_WINDOW: u32 = 50;
/// The most lead times and outcome ids a record keeps.
const KEEP: usize = 100;

impl PromotionPolicy {
    /// Checks the numbers make sense.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), crate::Error> {
        if self.window == 0 || self.window > MAX_WINDOW {
            return Err(crate::Error::invalid(
                "autonomy window",
                format!("{} is not between 1 and {MAX_WINDOW}", self.window),
            ));
        }
        for (what, n) in [
            ("approve_after", self.approve_after),
            ("auto_after", self.auto_after),
        ] {
            if n == 0 || n > self.window {
                return Err(crate::Error::invalid(
                    format!("autonomy {what}"),
                    format!("{n} is not between 1 and the window ({})", self.window),
                ));
            }
        }
        if self.auto_after < self.approve_after {
            return Err(crate::Error::invalid(
                "autonomy auto_after",
                format!(
                    "{} is below approve_after ({}): auto must take at least as much as approve",
                    self.auto_after, self.approve_after
                ),
            ));
        }
        if !matches!(
            self.ceiling,
            RemediationMode::DryRun | RemediationMode::Approve | RemediationMode::Auto
        ) {
            return Err(crate::Error::invalid(
                "autonomy ceiling",
                format!("{} is not one of dry-run, approve, auto", self.ceiling),
            ));
        }
        Ok(())
    }
}

/// Which record an outcome belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AutonomyKey {
    pub runbook: String,
    pub cause: String,
    pub action: String,
}

impl AutonomyKey {
    pub fn new(runbook: &str, cause: &str, action: &str) -> AutonomyKey {
        AutonomyKey {
            runbook: runbook.to_string(),
            cause: cause.to_string(),
            action: action.to_string(),
        }
    }

    /// `runbook#cause#action`: the record's key in the table.
    pub fn text(&self) -> String {
        format!("{}#{}#{}", self.runbook, self.cause, self.action)
    }
}

impl fmt::Display for AutonomyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {} / {}", self.runbook, self.cause, self.action)
    }
}

/// The outcomes of one (runbook, cause, action) and the level they earned. Bounded: counts, the
/// latest outcomes in order, the latest lead times and the ids already counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutonomyRecord {
    #[serde(flatten)]
    pub key: AutonomyKey,
    pub matched: u32,
    pub different: u32,
    pub unneeded: u32,
    pub contradicted: u32,
    pub verified: u32,
    pub ineffective: u32,
    /// The latest outcomes, oldest first (at most [`MAX_WINDOW`]).
    pub recent: Vec<Mark>,
    /// Lead times of the latest `matched` outcomes, seconds.
    pub leads_s: Vec<i64>,
    /// The level earned: `dry-run`, `approve` or `auto`.
    pub level: RemediationMode,
    /// Ids of the outcomes already counted (latest first out), so a retry counts once.
    pub seen: Vec<String>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Optimistic-locking counter: 0 before the first save.
    pub version: u64,
}

/// What a record still needs to move up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextLevel {
    pub level: RemediationMode,
    pub needs: String,
}

impl AutonomyRecord {
    /// A record with nothing counted, at `dry-run`.
    pub fn new(key: AutonomyKey) -> AutonomyRecord {
        AutonomyRecord {
            key,
            matched: 0,
            different: 0,
            unneeded: 0,
            contradicted: 0,
            verified: 0,
            ineffective: 0,
            recent: Vec::new(),
            leads_s: Vec::new(),
            level: RemediationMode::DryRun,
            seen: Vec::new(),
            updated_at: None,
            version: 0,
        }
    }

    /// Counts outcome `id` (once: false when it was already counted), then demotes one level
    /// on a contradicted or ineffective, or promotes as `policy` says. Returns whether anything
    /// changed.
    pub fn count(
        &mut self,
        id: &str,
        mark: Mark,
        lead_s: Option<i64>,
        at: DateTime<Utc>,
        policy: &PromotionPolicy,
    ) -> bool {
        if self.seen.iter().any(|s| s == id) {
            return false;
        }
        self.seen.push(id.to_string());
        trim(&mut self.seen, KEEP);
        let n = match mark {
            Mark::Matched => &mut self.matched,
            Mark::Different => &mut self.different,
            Mark::Unneeded => &mut self.unneeded,
            Mark::Contradicted => &mut self.contradicted,
            Mark::Verified => &mut self.verified,
            Mark::Ineffective => &mut self.ineffective,
        };
        *n = n.saturating_add(1);
        if let (Mark::Matched, Some(l)) = (mark, lead_s) {
            self.leads_s.push(l);
            trim(&mut self.leads_s, KEEP);
        }
        self.recent.push(mark);
        trim(&mut self.recent, MAX_WINDOW as usize);
        self.updated_at = Some(at);
        if mark.is_bad() {
            self.level = lower(self.level);
            return true;
        }
        let (matched, bad) = self.window_counts(policy);
        if bad == 0 {
            if self.level == RemediationMode::DryRun && matched >= policy.approve_after {
                self.level = RemediationMode::Approve;
            } else if self.level == RemediationMode::Approve && matched >= policy.auto_after {
                self.level = RemediationMode::Auto;
            }
        }
        true
    }

    /// The last `policy.window` outcomes the rules look at, oldest first. `verified` is left out:
    /// an approved action counts `matched` (its approval) and then `verified` (its window), and
    /// the second must not push the first out of the window, or approvals could never earn
    /// `auto`. `ineffective`, the verification that says something, stays in.
    fn window<'r>(&'r self, policy: &PromotionPolicy) -> Vec<&'r Mark> {
        let mut last: Vec<&Mark> = self
            .recent
            .iter()
            .rev()
            .filter(|m| **m != Mark::Verified)
            .take(policy.window as usize)
            .collect();
        last.reverse();
        last
    }

    /// `matched` and contradicted-or-ineffective in [`AutonomyRecord::window`].
    fn window_counts(&self, policy: &PromotionPolicy) -> (u32, u32) {
        let last = self.window(policy);
        let matched = last.iter().filter(|m| ***m == Mark::Matched).count();
        let bad = last.iter().filter(|m| m.is_bad()).count();
        (
            u32::try_from(matched).unwrap_or(u32::MAX),
            u32::try_from(bad).unwrap_or(u32::MAX),
        )
    }

    /// The median lead time of the `matched` outcomes kept, seconds.
    pub fn median_lead_s(&self) -> Option<i64> {
        let mut v = self.leads_s.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            // the mean of the middle two, rounded down (without overflowing)
            let (a, b) = (v[n / 2 - 1], v[n / 2]);
            a.div_euclid(2) + b.div_euclid(2) + (a.rem_euclid(2) + b.rem_euclid(2)) / 2
        })
    }

    /// The level `earned` uses: the record's, never above the policy's ceiling.
    pub fn effective(&self, policy: &PromotionPolicy) -> RemediationMode {
        self.level.min(policy.ceiling)
    }

    /// The next level and what it takes, in words; `None` at `auto`.
    pub fn next(&self, policy: &PromotionPolicy) -> Option<NextLevel> {
        let (level, required) = match self.level {
            RemediationMode::Auto => return None,
            RemediationMode::Approve => (RemediationMode::Auto, policy.auto_after),
            _ => (RemediationMode::Approve, policy.approve_after),
        };
        let (matched, bad) = self.window_counts(policy);
        let mut parts = Vec::new();
        if matched < required {
            let more = required - matched;
            parts.push(format!(
                "{more} more matched ({matched} of the {required} needed in the last {})",
                policy.window
            ));
        }
        if bad > 0 {
            let last = self.window(policy);
            // the newest bad outcome leaves the window after this many more outcomes
            let newest = last.iter().rposition(|m| m.is_bad()).unwrap_or(0);
            let leaves = policy.window as usize - (last.len() - 1 - newest);
            parts.push(format!(
                "no contradicted or ineffective in the last {} ({bad} now; the latest leaves the window after {leaves} more outcomes)",
                policy.window
            ));
        }
        if parts.is_empty() {
            // enough already: the next outcome that is not bad promotes
            parts.push("one more outcome that is not contradicted or ineffective".to_string());
        }
        let mut needs = parts.join(", and ");
        if level > policy.ceiling {
            needs.push_str(&format!(
                "; the ceiling ({}) keeps `earned` at {} even then",
                policy.ceiling,
                self.level.min(policy.ceiling)
            ));
        }
        Some(NextLevel { level, needs })
    }
}

/// One level less automatic (`auto` → `approve` → `dry-run`, which stays).
pub fn lower(level: RemediationMode) -> RemediationMode {
    match level {
        RemediationMode::Auto | RemediationMode::Earned => RemediationMode::Approve,
        _ => RemediationMode::DryRun,
    }
}

fn trim<T>(v: &mut Vec<T>, keep: usize) {
    if v.len() > keep {
        let extra = v.len() - keep;
        v.drain(..extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-03-14T15:00:00Z".parse().unwrap()
    }

    fn rec() -> AutonomyRecord {
        AutonomyRecord::new(AutonomyKey::new("db-connection-pool", "pool", "ecs-scale-out"))
    }

    fn run(r: &mut AutonomyRecord, marks: &[Mark], p: &PromotionPolicy) {
        for m in marks {
            let id = format!("o{}", r.seen.len() + r.version as usize);
            r.count(&format!("{id}-{}", r.recent.len()), *m, Some(60), at(), p);
        }
    }

    #[test]
    fn three_matched_earn_approve_and_eight_earn_auto() {
        let p = PromotionPolicy::default();
        let mut r = rec();
        run(&mut r, &[Mark::Matched, Mark::Unneeded, Mark::Matched], &p);
        assert_eq!(r.level, RemediationMode::DryRun);
        let next = r.next(&p).unwrap();
        assert_eq!(next.level, RemediationMode::Approve);
        assert!(
            next.needs.starts_with("1 more matched (2 of the 3"),
            "{}",
            next.needs
        );
        run(&mut r, &[Mark::Matched], &p);
        assert_eq!(r.level, RemediationMode::Approve);
        run(&mut r, &[Mark::Matched; 4], &p);
        assert_eq!(r.level, RemediationMode::Approve, "7 matched in the last 10");
        run(&mut r, &[Mark::Matched], &p);
        assert_eq!(r.level, RemediationMode::Auto);
        assert_eq!(r.next(&p), None);
        assert_eq!(r.effective(&p), RemediationMode::Approve, "the default ceiling");
        let open = PromotionPolicy {
            ceiling: RemediationMode::Auto,
            ..p
        };
        assert_eq!(r.effective(&open), RemediationMode::Auto);
    }

    #[test]
    fn a_contradiction_or_an_ineffective_action_demotes_and_blocks_promotion_while_in_the_window() {
        let p = PromotionPolicy::default();
        let mut r = rec();
        run(&mut r, &[Mark::Matched; 3], &p);
        assert_eq!(r.level, RemediationMode::Approve);
        run(&mut r, &[Mark::Ineffective], &p);
        assert_eq!(r.level, RemediationMode::DryRun);
        run(&mut r, &[Mark::Matched; 5], &p);
        assert_eq!(
            r.level,
            RemediationMode::DryRun,
            "the ineffective is in the last 10"
        );
        let needs = r.next(&p).unwrap().needs;
        assert!(
            needs.contains("1 now; the latest leaves the window after 5 more"),
            "{needs}"
        );
        run(&mut r, &[Mark::Matched; 5], &p);
        assert_eq!(r.level, RemediationMode::Approve);
        let mut top = rec();
        top.level = RemediationMode::Auto;
        run(&mut top, &[Mark::Contradicted], &p);
        assert_eq!(top.level, RemediationMode::Approve, "one level at a time");
        assert_eq!((top.contradicted, r.ineffective, r.matched), (1, 1, 13));
    }

    #[test]
    fn approved_and_verified_actions_can_earn_auto() {
        let p = PromotionPolicy::default();
        let mut r = rec();
        for _ in 0..8 {
            run(&mut r, &[Mark::Matched, Mark::Verified], &p);
        }
        assert_eq!(r.level, RemediationMode::Auto, "{:?}", r.recent);
        assert_eq!(r.verified, 8);
        let mut m = rec();
        m.leads_s = vec![i64::MAX, i64::MAX - 1];
        assert_eq!(m.median_lead_s(), Some(i64::MAX - 1));
    }

    #[test]
    fn an_outcome_counts_once_and_the_median_lead_is_of_matched_only() {
        let p = PromotionPolicy::default();
        let mut r = rec();
        assert!(r.count("a", Mark::Matched, Some(600), at(), &p));
        assert!(!r.count("a", Mark::Matched, Some(600), at(), &p));
        assert!(r.count("b", Mark::Matched, Some(120), at(), &p));
        assert!(r.count("c", Mark::Different, Some(5), at(), &p));
        assert_eq!(r.matched, 2);
        assert_eq!(r.median_lead_s(), Some(360));
        assert!(r.count("d", Mark::Matched, Some(300), at(), &p));
        assert_eq!(r.median_lead_s(), Some(300));
    }

    #[test]
    fn a_policy_that_cannot_work_is_refused_with_its_field() {
        for (p, field) in [
            (
                PromotionPolicy {
                    window: 0,
                    ..PromotionPolicy::default()
                },
                "window",
            ),
            (
                PromotionPolicy {
                    approve_after: 11,
                    ..PromotionPolicy::default()
                },
                "approve_after",
            ),
            (
                PromotionPolicy {
                    auto_after: 2,
                    ..PromotionPolicy::default()
                },
                "auto_after",
            ),
            (
                PromotionPolicy {
                    ceiling: RemediationMode::Off,
                    ..PromotionPolicy::default()
                },
                "ceiling",
            ),
        ] {
            let e = p.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        PromotionPolicy::default().validate().unwrap();
    }

    #[test]
    fn only_scale_in_and_roll_forward_oppose() {
        assert!(ChangeKind::ScaleIn.opposes("ecs-scale-out"));
        assert!(ChangeKind::RollForward.opposes("ecs-rollback"));
        assert!(!ChangeKind::ScaleOut.opposes("ecs-rollback"));
        assert!(!ChangeKind::Restart.opposes("ecs-restart"));
        assert_eq!(ChangeKind::Rollback.action(), Some("ecs-rollback"));
    }
}
