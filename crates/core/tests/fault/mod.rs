//! The fault-injection harness (issue #12 item 5): workloads, the pipeline driver with Lambda's
//! retry semantics, the invariants, and the summary `make fault` prints.

#![allow(dead_code)] // the quick and the long set use different parts
#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness outside #[test] fns

pub mod driver;
pub mod invariants;
pub mod workload;

use firebreak_core::adapters::fault::{Fault, FaultCounts, FaultPlan};
use invariants::{Verdict, Violation};
use std::collections::BTreeMap;
use workload::{Perturb, Schedule, Workload};

/// A violation the core is known to have; the harness reports it and does not fail on it. Each
/// entry says which invariant, on which workloads (name prefix, "" for all), and substrings
/// the violation's text must all contain.
pub struct Known {
    pub invariant: &'static str,
    pub workload: &'static str,
    pub contains: &'static [&'static str],
    pub why: &'static str,
}

/// One schedule's result.
pub struct CaseResult {
    pub workload: String,
    pub seed: u64,
    pub counts: FaultCounts,
    pub verdict: Verdict,
    /// Violations of the fault-free run itself (core bugs that need no fault).
    pub reference_violations: Vec<Violation>,
    pub failed_over: usize,
    pub failed_permanent: usize,
    pub invocations: usize,
}

pub fn run_case(w: &Workload, seed: u64, rate: f64, perturb: Perturb, keep_trace: bool) -> CaseResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sched = workload::schedule(w, seed, perturb);
    let ref_plan = FaultPlan::off();
    let reference = rt.block_on(driver::run(w, &sched, &ref_plan));
    let reference_verdict = invariants::check(&reference, &reference, &ref_plan.trace());
    let plan = FaultPlan::new(seed, rate).keep_trace(keep_trace);
    let out = rt.block_on(driver::run(w, &sched, &plan));
    let verdict = invariants::check(&out, &reference, &plan.trace());
    CaseResult {
        workload: w.name.clone(),
        seed,
        counts: plan.counts(),
        verdict,
        reference_violations: reference_verdict.violations,
        failed_over: out.failed_over,
        failed_permanent: out.failed_permanent,
        invocations: out.ran.len(),
    }
}

/// Replays `sched` with exactly `faults`: whether it breaks `invariant` with a violation whose
/// text contains `needle`.
fn replay(
    w: &Workload,
    sched: &Schedule,
    faults: &BTreeMap<u64, Fault>,
    invariant: &str,
    needle: &str,
) -> (bool, FaultPlan) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reference = rt.block_on(driver::run(w, sched, &FaultPlan::off()));
    let plan = FaultPlan::scripted(faults.clone());
    let out = rt.block_on(driver::run(w, sched, &plan));
    let v = invariants::check(&out, &reference, &plan.trace());
    (
        v.violations
            .iter()
            .any(|x| x.invariant == invariant && x.detail.contains(needle)),
        plan,
    )
}

/// Shrinks the faults of a failing seed to a minimal set that still breaks `invariant`, and
/// describes the run call by call around them.
pub fn shrink(
    w: &Workload,
    seed: u64,
    rate: f64,
    perturb: Perturb,
    invariant: &str,
    needle: &str,
) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sched = workload::schedule(w, seed, perturb);
    let plan = FaultPlan::new(seed, rate);
    let _ = rt.block_on(driver::run(w, &sched, &plan));
    let mut faults = plan.injected();
    let (fails, _) = replay(w, &sched, &faults, invariant, needle);
    if !fails {
        return None;
    }
    let keys: Vec<u64> = faults.keys().copied().collect();
    for k in keys {
        let mut fewer = faults.clone();
        fewer.remove(&k);
        if replay(w, &sched, &fewer, invariant, needle).0 {
            faults = fewer;
        }
    }
    let (_, plan) = replay(w, &sched, &faults, invariant, needle);
    let out = rt.block_on(driver::run(w, &sched, &FaultPlan::scripted(faults.clone())));
    let reference = rt.block_on(driver::run(w, &sched, &FaultPlan::off()));
    let verdict = invariants::check(&out, &reference, &plan.trace());
    let mut s = format!(
        "{} seed {seed}: {} fault(s) suffice to break \"{invariant}\":\n",
        w.name,
        faults.len()
    );
    // the invocations that had a fault, and those of the calls FIREBREAK_FAULT_CALLS names
    let wanted: Vec<u64> = std::env::var("FIREBREAK_FAULT_CALLS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let contexts: std::collections::BTreeSet<u64> = plan
        .trace()
        .iter()
        .filter(|c| c.fault.is_some() || wanted.contains(&c.n))
        .map(|c| c.context)
        .collect();
    for r in &out.ran {
        if !contexts.contains(&r.context) && r.error.is_none() && !r.redriven && r.attempt == 0 {
            continue;
        }
        s.push_str(&format!(
            "  [{}] {} {}{}{}\n",
            r.at.format("%H:%M:%S"),
            r.what,
            if r.attempt > 0 {
                format!("(retry {}) ", r.attempt)
            } else {
                String::new()
            },
            if r.redriven { "(redriven) " } else { "" },
            r.error
                .as_ref()
                .map_or("ok".to_string(), |e| format!("-> Err {}", e.0))
        ));
        if contexts.contains(&r.context) {
            for c in plan.trace().iter().filter(|c| c.context == r.context) {
                s.push_str(&format!(
                    "      #{} {} {}{}\n",
                    c.n,
                    c.operation,
                    c.what,
                    c.fault.map_or(String::new(), |f| format!("  <== {}", f.name()))
                ));
            }
        }
    }
    for x in verdict.violations.iter().filter(|x| x.invariant == invariant) {
        s.push_str(&format!("  violation: {}\n", x.detail));
    }
    Some(s)
}

/// Totals over many schedules, and the line `make fault` prints.
#[derive(Default)]
pub struct Summary {
    pub schedules: usize,
    pub counts: FaultCounts,
    pub held: usize,
    pub failed: usize,
    pub known: usize,
    pub forced_lost_response: usize,
    pub forced_marker: usize,
    pub incident_count_differs_queued: usize,
    pub decision_differs_queued: usize,
    pub failed_over: usize,
    pub failed_permanent: usize,
    pub invocations: usize,
    /// (workload, seed, violation, known why)
    pub violations: Vec<(String, u64, Violation, Option<&'static str>)>,
    pub reference_violations: Vec<(String, u64, Violation)>,
}

impl Summary {
    pub fn add(&mut self, r: CaseResult, known: &[Known]) {
        self.schedules += 1;
        self.counts.add(&r.counts);
        self.forced_lost_response += r.verdict.forced_repeat_lost_response;
        self.forced_marker += r.verdict.forced_repeat_marker;
        self.incident_count_differs_queued += r.verdict.incident_count_differs_queued;
        self.decision_differs_queued += r.verdict.decision_differs_queued;
        self.failed_over += r.failed_over;
        self.failed_permanent += r.failed_permanent;
        self.invocations += r.invocations;
        let failed = r.verdict.failed();
        for inv in invariants::ALL {
            if !failed.contains(inv) {
                self.held += 1;
                continue;
            }
            let all_known = r
                .verdict
                .violations
                .iter()
                .filter(|v| v.invariant == inv)
                .all(|v| known_why(known, &r.workload, v).is_some());
            if all_known {
                self.known += 1;
            }
            self.failed += 1;
        }
        for v in r.verdict.violations {
            let why = known_why(known, &r.workload, &v);
            self.violations.push((r.workload.clone(), r.seed, v, why));
        }
        for v in r.reference_violations {
            self.reference_violations.push((r.workload.clone(), r.seed, v));
        }
    }

    /// Violations not in the KNOWN list.
    pub fn unknown(&self) -> Vec<&(String, u64, Violation, Option<&'static str>)> {
        self.violations.iter().filter(|v| v.3.is_none()).collect()
    }

    pub fn line(&self) -> String {
        let c = &self.counts;
        format!(
            "fault: {} schedules, {} faults injected (throttle {}, 5xx {}, timeout {}, lost-response {}), {} invariants held, {} failed ({} of them KNOWN); {} calls, {} invocations, {} to the failure queue ({} with a non-retryable error), repeated pages forced by at-least-once: {} lost Publish responses, {} lost page markers; not comparable because of the failure queue: {} incident count(s), {} decision(s)",
            self.schedules,
            c.total(),
            c.throttle,
            c.server_error,
            c.timeout,
            c.lost_response,
            self.held,
            self.failed,
            self.known,
            c.calls,
            self.invocations,
            self.failed_over,
            self.failed_permanent,
            self.forced_lost_response,
            self.forced_marker,
            self.incident_count_differs_queued,
            self.decision_differs_queued,
        )
    }

    /// Every violation, grouped by invariant, first few of each.
    pub fn details(&self, per_invariant: usize) -> String {
        let mut s = String::new();
        for inv in invariants::ALL {
            let vs: Vec<_> = self.violations.iter().filter(|v| v.2.invariant == inv).collect();
            if vs.is_empty() {
                continue;
            }
            s.push_str(&format!("== {inv}: {} violation(s)\n", vs.len()));
            for (w, seed, v, why) in vs.iter().take(per_invariant) {
                s.push_str(&format!(
                    "  {w} seed {seed}: {}{}\n",
                    v.detail,
                    why.map_or(String::new(), |y| format!("  [KNOWN: {y}]"))
                ));
            }
        }
        if !self.reference_violations.is_empty() {
            s.push_str(&format!(
                "== without faults (the fault-free runs): {} violation(s)\n",
                self.reference_violations.len()
            ));
            for (w, seed, v) in self.reference_violations.iter().take(per_invariant) {
                s.push_str(&format!("  {w} seed {seed}: {}: {}\n", v.invariant, v.detail));
            }
        }
        s
    }
}

fn known_why(known: &[Known], workload: &str, v: &Violation) -> Option<&'static str> {
    known
        .iter()
        .find(|k| {
            k.invariant == v.invariant
                && workload.starts_with(k.workload)
                && k.contains.iter().all(|c| v.detail.contains(c))
        })
        .map(|k| k.why)
}

/// For a storm (too long to shrink): the incidents of `service` in the run with faults and in
/// the fault-free run, their timelines, and the failed invocations that named the service.
pub fn explain_service(w: &Workload, seed: u64, rate: f64, perturb: Perturb, service: &str) -> String {
    let (out, reference, _) = outcomes(w, seed, rate, perturb);
    let short = service.rsplit('/').next().unwrap_or(service);
    let mut s = String::new();
    for (label, o) in [("with faults", &out), ("fault-free", &reference)] {
        s.push_str(&format!("--- {label}\n"));
        for i in o.incidents.iter().filter(|i| i.service.ends_with(short)) {
            s.push_str(&format!(
                "{} {} {} reopened {} opened {} resolved {:?}\n",
                i.id, i.severity, i.status, i.reopened, i.opened_at, i.resolved_at
            ));
            for e in o.timelines.get(&i.id).into_iter().flatten() {
                s.push_str(&format!(
                    "   {} {:<22} {}  {}\n",
                    e.at.format("%H:%M:%S"),
                    e.kind().to_string(),
                    e.event_id,
                    e.summary.chars().take(110).collect::<String>()
                ));
            }
        }
    }
    s.push_str("--- failed invocations naming it (with faults)\n");
    for r in out
        .ran
        .iter()
        .filter(|r| r.error.is_some() && r.what.contains(short))
    {
        s.push_str(&format!(
            "  [{}] {} attempt {} redriven {} -> {}\n",
            r.at.format("%H:%M:%S"),
            r.what,
            r.attempt,
            r.redriven,
            r.error.as_ref().map_or("", |e| e.0.as_str())
        ));
    }
    s
}

/// The fault-free and the faulty run of one schedule, and the faulty run's trace (for tests of
/// the harness itself).
pub fn outcomes(
    w: &Workload,
    seed: u64,
    rate: f64,
    perturb: Perturb,
) -> (
    driver::Outcome,
    driver::Outcome,
    Vec<firebreak_core::adapters::fault::TracedCall>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sched = workload::schedule(w, seed, perturb);
    let reference = rt.block_on(driver::run(w, &sched, &FaultPlan::off()));
    let plan = FaultPlan::new(seed, rate);
    let out = rt.block_on(driver::run(w, &sched, &plan));
    (out, reference, plan.trace())
}
