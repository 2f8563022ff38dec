//! `firebreak drill coverage`: which runbooks a passing drill exercises, and for a list of alarms
//! (as `aws cloudwatch describe-alarms` prints them) the runbook each would use and whether a
//! passing drill exercises it. A runbook nobody has drilled is one nobody has seen work.

use super::{check, run, DrillEnv, LoadedScenario};
use crate::runbook::{AlarmFacts, RunbookSet};
use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An alarm to place: what runbook selection looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmToPlace {
    pub name: String,
    pub namespace: Option<String>,
    pub metric: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAlarms {
    #[serde(default)]
    metric_alarms: Vec<MetricAlarm>,
    #[serde(default)]
    composite_alarms: Vec<CompositeAlarm>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricAlarm {
    alarm_name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    metric_name: Option<String>,
    /// Metric math: the first query with a `MetricStat` names the metric.
    #[serde(default)]
    metrics: Vec<MetricQuery>,
    /// Not in DescribeAlarms' output: `aws cloudwatch list-tags-for-resource` gives them.
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricQuery {
    #[serde(default)]
    metric_stat: Option<MetricStat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricStat {
    metric: StatMetric,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatMetric {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    metric_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompositeAlarm {
    alarm_name: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: String,
}

/// Reads the alarms of `aws cloudwatch describe-alarms --output json` (`MetricAlarms` and
/// `CompositeAlarms`; each may carry `Tags: [{Key, Value}]`, which DescribeAlarms leaves out).
///
/// # Errors
/// [`Error::Invalid`] naming the file and what is wrong.
pub fn read_alarms(path: &Path) -> Result<Vec<AlarmToPlace>, Error> {
    let what = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::invalid(&what, format!("cannot read: {e}")))?;
    parse_alarms(&text).map_err(|e| Error::invalid(&what, e))
}

fn parse_alarms(text: &str) -> Result<Vec<AlarmToPlace>, String> {
    let shape = "expected the output of `aws cloudwatch describe-alarms` ({\"MetricAlarms\": [...], \"CompositeAlarms\": [...]})";
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}; {shape}"))?;
    if !v.is_object() {
        return Err(format!("not an object; {shape}"));
    }
    let d: DescribeAlarms = serde_json::from_value(v).map_err(|e| format!("{e}; {shape}"))?;
    let tags = |t: Vec<Tag>| t.into_iter().map(|t| (t.key, t.value)).collect();
    let mut out = Vec::new();
    for a in d.metric_alarms {
        let stat = a
            .metrics
            .iter()
            .find_map(|q| q.metric_stat.as_ref())
            .map(|s| &s.metric);
        out.push(AlarmToPlace {
            namespace: a
                .namespace
                .clone()
                .or_else(|| stat.and_then(|m| m.namespace.clone())),
            metric: a
                .metric_name
                .clone()
                .or_else(|| stat.and_then(|m| m.metric_name.clone())),
            name: a.alarm_name,
            tags: tags(a.tags),
        });
    }
    for a in d.composite_alarms {
        out.push(AlarmToPlace {
            name: a.alarm_name,
            namespace: None,
            metric: None,
            tags: tags(a.tags),
        });
    }
    if out.is_empty() {
        return Err("no alarm in it (neither MetricAlarms nor CompositeAlarms)".into());
    }
    Ok(out)
}

/// A drill as run for coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillRun {
    pub drill: String,
    /// It ran and its `expect` held (a drill without `expect` passes when it runs).
    pub passed: bool,
    /// The runbooks its incidents used.
    pub runbooks: BTreeSet<String>,
    /// Why it did not pass.
    pub problem: Option<String>,
}

/// Runs each drill.
///
/// # Errors
/// Only when the runtime's clock fails; a drill that cannot run is reported as not passing.
pub async fn run_drills(dirs: &[PathBuf], env: &DrillEnv<'_>) -> Vec<DrillRun> {
    let mut out = Vec::new();
    for dir in dirs {
        let drill = dir.display().to_string();
        let result = match LoadedScenario::load(dir) {
            Err(e) => Err(e.to_string()),
            Ok(loaded) => match run(&loaded, env).await {
                Err(e) => Err(e.to_string()),
                Ok(report) => {
                    let diffs = loaded
                        .scenario
                        .expect
                        .as_ref()
                        .map(|x| check(&report, x))
                        .unwrap_or_default();
                    let runbooks = report
                        .incidents
                        .iter()
                        .filter_map(|i| i.runbook.clone())
                        .collect();
                    Ok((diffs, runbooks))
                }
            },
        };
        out.push(match result {
            Ok((diffs, runbooks)) => DrillRun {
                drill,
                passed: diffs.is_empty(),
                runbooks,
                problem: (!diffs.is_empty()).then(|| diffs.join("; ")),
            },
            Err(e) => DrillRun {
                drill,
                passed: false,
                runbooks: BTreeSet::new(),
                problem: Some(e),
            },
        });
    }
    out
}

/// One runbook's coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunbookCoverage {
    pub runbook: String,
    /// The passing drills that exercise it.
    pub drills: Vec<String>,
    pub covered: bool,
}

/// One alarm's coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmCoverage {
    pub alarm: String,
    /// The runbook it would use; `null` when none matches.
    pub runbook: Option<String>,
    /// Why that runbook (`the alarm name matches "*5xx*"`).
    pub because: Option<String>,
    pub drills: Vec<String>,
    pub covered: bool,
}

/// What `--json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    pub runbooks: Vec<RunbookCoverage>,
    /// Present with `--alarms`.
    pub alarms: Option<Vec<AlarmCoverage>>,
    pub drills: Vec<DrillRun>,
}

impl Coverage {
    /// Every runbook drilled, and every alarm given placed on a drilled runbook.
    pub fn complete(&self) -> bool {
        self.runbooks.iter().all(|r| r.covered)
            && self.alarms.as_ref().is_none_or(|a| a.iter().all(|x| x.covered))
    }
}

/// The coverage of `runbooks` by `drills`, and of `alarms` when given.
pub fn coverage(runbooks: &RunbookSet, drills: Vec<DrillRun>, alarms: Option<&[AlarmToPlace]>) -> Coverage {
    let drilled = |id: &str| -> Vec<String> {
        drills
            .iter()
            .filter(|d| d.passed && d.runbooks.contains(id))
            .map(|d| d.drill.clone())
            .collect()
    };
    let runbook_rows = runbooks
        .iter()
        .map(|r| {
            let d = drilled(&r.id);
            RunbookCoverage {
                runbook: r.id.clone(),
                covered: !d.is_empty(),
                drills: d,
            }
        })
        .collect();
    let alarm_rows = alarms.map(|alarms| {
        alarms
            .iter()
            .map(|a| {
                let facts = AlarmFacts {
                    alarm_name: &a.name,
                    namespace: a.namespace.as_deref(),
                    metric_name: a.metric.as_deref(),
                    tags: &a.tags,
                    runbook_hint: None,
                };
                match runbooks.select_explained(facts) {
                    Some((r, why)) => {
                        let d = drilled(&r.id);
                        AlarmCoverage {
                            alarm: a.name.clone(),
                            runbook: Some(r.id.clone()),
                            because: Some(why.to_string()),
                            covered: !d.is_empty(),
                            drills: d,
                        }
                    }
                    None => AlarmCoverage {
                        alarm: a.name.clone(),
                        runbook: None,
                        because: None,
                        drills: Vec::new(),
                        covered: false,
                    },
                }
            })
            .collect()
    });
    Coverage {
        runbooks: runbook_rows,
        alarms: alarm_rows,
        drills,
    }
}

/// The account a person reads.
pub fn render_text(c: &Coverage) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let name = |d: &str| {
        Path::new(d)
            .file_name()
            .map_or_else(|| d.to_string(), |n| n.to_string_lossy().into_owned())
    };
    let _ = writeln!(o, "Runbooks:");
    for r in &c.runbooks {
        let drills: Vec<String> = r.drills.iter().map(|d| name(d)).collect();
        let _ = writeln!(
            o,
            "  {} {:<24} {}",
            if r.covered { "ok  " } else { "NONE" },
            r.runbook,
            if r.covered {
                drills.join(", ")
            } else {
                "no passing drill exercises it".to_string()
            }
        );
    }
    if let Some(alarms) = &c.alarms {
        let _ = writeln!(o, "\nAlarms:");
        for a in alarms {
            let _ = writeln!(
                o,
                "  {} {} → {}",
                if a.covered { "ok  " } else { "NONE" },
                a.alarm,
                match (&a.runbook, &a.because) {
                    (Some(r), Some(b)) if a.covered => format!(
                        "{r} ({b}); drilled by {}",
                        a.drills.iter().map(|d| name(d)).collect::<Vec<_>>().join(", ")
                    ),
                    (Some(r), Some(b)) => format!("{r} ({b}); no passing drill exercises it"),
                    _ => "no runbook matches: the diagnosis would only record the alarm".to_string(),
                }
            );
        }
    }
    let failing: Vec<&DrillRun> = c.drills.iter().filter(|d| !d.passed).collect();
    if !failing.is_empty() {
        let _ = writeln!(o, "\nDrills that did not pass (they cover nothing):");
        for d in failing {
            let _ = writeln!(
                o,
                "  {}: {}",
                name(&d.drill),
                d.problem.as_deref().unwrap_or("failed")
            );
        }
    }
    let _ = writeln!(
        o,
        "\n{}",
        if c.complete() {
            "Every runbook (and every alarm given) is exercised by a passing drill."
        } else {
            "Not covered: write a drill for each NONE above (docs/drills.md)."
        }
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_describe_alarms_output_with_metric_math_composites_and_tags() {
        let text = r#"{"MetricAlarms": [
            {"AlarmName": "orders-5xx", "Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count"},
            {"AlarmName": "orders-error-rate", "Metrics": [{"Id": "e", "Expression": "m/1"},
                {"Id": "m", "MetricStat": {"Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization"}}}],
             "Tags": [{"Key": "runbook", "Value": "high-cpu"}]}],
            "CompositeAlarms": [{"AlarmName": "orders-down"}]}"#;
        let a = parse_alarms(text).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].metric.as_deref(), Some("CPUUtilization"));
        assert_eq!(a[1].tags["runbook"], "high-cpu");
        assert_eq!(a[2].name, "orders-down");
        for (bad, says) in [
            ("[]", "describe-alarms"),
            ("{}", "no alarm"),
            (r#"{"MetricAlarms": [{}]}"#, "AlarmName"),
        ] {
            let e = parse_alarms(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_runbook_or_alarm_counts_as_covered_only_by_a_passing_drill() {
        let runbooks = RunbookSet::shipped().unwrap();
        let run = |drill: &str, passed: bool, rb: &str| DrillRun {
            drill: drill.into(),
            passed,
            runbooks: BTreeSet::from([rb.to_string()]),
            problem: (!passed).then(|| "cause: expected x, got y".to_string()),
        };
        let drills = vec![
            run("seed", true, "high-error-rate"),
            run("cpu", false, "high-cpu"),
        ];
        let alarms = [
            AlarmToPlace {
                name: "orders-5xx-rate".into(),
                namespace: None,
                metric: None,
                tags: BTreeMap::new(),
            },
            AlarmToPlace {
                name: "orders-cpu-high".into(),
                namespace: Some("AWS/ECS".into()),
                metric: Some("CPUUtilization".into()),
                tags: BTreeMap::new(),
            },
            AlarmToPlace {
                name: "nightly-batch".into(),
                namespace: None,
                metric: None,
                tags: BTreeMap::new(),
            },
        ];
        let c = coverage(&runbooks, drills, Some(&alarms));
        let rb = |id: &str| c.runbooks.iter().find(|r| r.runbook == id).unwrap();
        assert!(rb("high-error-rate").covered);
        assert!(!rb("high-cpu").covered, "its only drill failed");
        let a = c.alarms.as_ref().unwrap();
        assert_eq!(a[0].runbook.as_deref(), Some("high-error-rate"));
        assert!(a[0].covered);
        assert_eq!(a[1].runbook.as_deref(), Some("high-cpu"));
        assert!(!a[1].covered);
        assert_eq!(a[2].runbook, None);
        assert!(!c.complete());
        let text = render_text(&c);
        assert!(
            text.contains("NONE high-cpu") && text.contains("nightly-batch → no runbook matches"),
            "{text}"
        );
        assert!(text.contains("cpu: cause: expected x, got y"), "{text}");
    }
}
