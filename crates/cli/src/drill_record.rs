//! `firebreak drill record INCIDENT_ID --out DIR`: a drill directory from a real incident. The
//! reads (the table, ECS, FilterLogEvents, GetMetricData) are here; what the files say is
//! `firebreak_core::drill::record`. The directory is written beside DIR under a temporary name
//! and renamed at the end, so a failure leaves no half-written drill.

use crate::drill_cmd::EXIT_BAD_INPUT;
use firebreak_aws::record::LogRecorder;
use firebreak_aws::{CloudWatchMetrics, EcsServiceControl};
use firebreak_core::drill::record::{self, RecordedFleet, RecordedMetrics, Recording};
use firebreak_core::model::incident::IncidentId;
use firebreak_core::ports::{IncidentStore, MetricQueries, ServiceControl};
use firebreak_core::runbook::{embedded, RunbookSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// The default bound on the log events read.
pub const DEFAULT_MAX_EVENTS: usize = 200_000;

#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// The incident (`INC-…`), read from the table named by TABLE_NAME.
    pub incident: String,
    /// The drill directory to write; it must not exist or be empty (see --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace DIR when it exists and is not empty.
    #[arg(long)]
    pub force: bool,
    /// At most this many log events in all; the recording stops there and says so.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_EVENTS)]
    pub max_events: usize,
    /// Do not read the metrics again (GetMetricData); the drill has no metrics file.
    #[arg(long)]
    pub no_metrics: bool,
}

fn refuse(err: &mut dyn Write, msg: impl std::fmt::Display) -> anyhow::Result<i32> {
    writeln!(err, "error: {msg}")?;
    Ok(EXIT_BAD_INPUT)
}

/// Records the incident; returns the exit status (2 for anything refused).
///
/// # Errors
/// Only when the output cannot be written.
pub fn run(args: &RecordArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let id = match IncidentId::parse(&args.incident) {
        Ok(id) => id,
        Err(e) => return refuse(err, format!("incident {}: {e}", args.incident)),
    };
    // `.`, `..`, `/` or a directory that holds the working directory: never replaced
    if let Some(why) = unsafe_out(&args.out) {
        return refuse(err, format!("--out {}: {why}", args.out.display()));
    }
    match std::fs::read_dir(&args.out) {
        Ok(mut rd) => {
            if rd.next().is_some() && !args.force {
                return refuse(
                    err,
                    format!(
                        "{} exists and is not empty; name another directory or pass --force to replace it",
                        args.out.display()
                    ),
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return refuse(err, format!("{}: {e}", args.out.display())),
    }
    let runtime = crate::drill_cmd::runtime()?;
    let recorded = runtime.block_on(read_all(&id, args, err))?;
    let files = match recorded {
        Ok(f) => f,
        Err(msg) => return refuse(err, msg),
    };
    if let Err(e) = write_dir(&args.out, &files.files, args.force) {
        return refuse(err, format!("writing {}: {e}", args.out.display()));
    }
    for n in &files.notes {
        writeln!(err, "note: {n}")?;
    }
    let events = files
        .files
        .iter()
        .filter(|(n, _)| n.ends_with(".eventbridge.json"))
        .count();
    writeln!(
        out,
        "recorded {id} into {} ({events} alarm event(s){}{}); run `firebreak drill {} --check`",
        args.out.display(),
        if files.get("logs.jsonl").is_some() {
            ", logs.jsonl"
        } else {
            ""
        },
        if files.get("metrics.jsonl").is_some() {
            ", metrics.jsonl"
        } else {
            ""
        },
        args.out.display()
    )?;
    Ok(0)
}

/// Every read, then the files. `Ok(Err(msg))` is a refusal (unknown incident, no table).
async fn read_all(
    id: &IncidentId,
    args: &RecordArgs,
    err: &mut dyn Write,
) -> anyhow::Result<Result<record::DrillFiles, String>> {
    let ctx = match crate::aws_ctx::from_env().await {
        Ok(c) => c,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    let incident = match ctx.store.get(id).await {
        Ok(Some(i)) => i,
        Ok(None) => return Ok(Err(format!("no incident {id} in the table {table}"))),
        Err(e) => return Ok(Err(format!("reading incident {id}: {e}"))),
    };
    let timeline = match ctx.store.timeline(id).await {
        Ok(t) => t,
        Err(e) => return Ok(Err(format!("reading the timeline of {id}: {e}"))),
    };
    let plan = record::plan(&incident, &timeline);
    let clients = firebreak_aws::Clients::from_env().await;

    // the fleet
    let fleet = match &plan.ecs {
        None => Err(format!("incident {id} names no ECS service")),
        Some(svc) => {
            let ecs = EcsServiceControl::new(clients.ecs());
            match ecs.describe(svc).await {
                Err(e) => {
                    writeln!(err, "warning: ECS DescribeServices {svc}: {e}; no fleet recorded")?;
                    Err(format!("ECS DescribeServices {svc} failed: {e}"))
                }
                Ok(state) => {
                    let mut task_definitions = Vec::new();
                    for name in record::revisions_to_read(&state, &timeline) {
                        match ecs.task_definition(&name).await {
                            Ok(d) => task_definitions.push((name, d)),
                            Err(e) => {
                                writeln!(err, "warning: ECS DescribeTaskDefinition {name}: {e}")?;
                                task_definitions.push((name, None));
                            }
                        }
                    }
                    Ok(RecordedFleet {
                        state,
                        task_definitions,
                    })
                }
            }
        }
    };

    // the logs of the diagnosis window
    let mut logs = Vec::new();
    let mut logs_note = None;
    if let Some(w) = plan.window.filter(|_| !plan.log_groups.is_empty()) {
        let recorder = LogRecorder::new(clients.logs(), args.max_events);
        let tty = std::io::stderr().is_terminal();
        let bound = args.max_events;
        let mut progress = |n: usize, group: &str| {
            if tty {
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\r\x1b[Klogs: {n} / {bound} events, {group}");
                let _ = e.flush();
            }
        };
        let read = recorder
            .read(&plan.log_groups, w.start, w.end, &mut progress)
            .await;
        if tty {
            writeln!(err)?;
        }
        match read {
            Ok(r) => {
                if !tty {
                    // one line per group, at the end
                    for g in &plan.log_groups {
                        let n = r.events.iter().filter(|e| &e.group == g).count();
                        writeln!(err, "logs: {g}: {n} event(s)")?;
                    }
                }
                if let Some(g) = &r.stopped_in {
                    let msg = format!(
                        "logs stopped at the bound of {bound} events (--max-events) in {g}: the drill's logs end there"
                    );
                    writeln!(err, "warning: {msg}")?;
                    logs_note = Some(msg);
                }
                logs = r.events;
            }
            Err(e) => {
                let msg = format!("logs not recorded: Logs FilterLogEvents failed: {e}");
                writeln!(err, "warning: {msg}")?;
                logs_note = Some(msg);
            }
        }
    }

    // the metrics the runbook read
    let metrics = if plan.metric_reads.is_empty() {
        RecordedMetrics::NotRead
    } else if args.no_metrics {
        RecordedMetrics::Missing("--no-metrics".into())
    } else {
        let (start, end) = metric_range(&plan);
        match record::metric_request(&plan.metric_reads, start, end) {
            None => RecordedMetrics::Missing("the diagnosis window is unknown".into()),
            Some(req) => match CloudWatchMetrics::new(clients.cloudwatch()).get(&req).await {
                Ok(answers) => RecordedMetrics::Points(record::metric_points(&req, &answers)),
                Err(e) => {
                    let e = shorten(&e.to_string(), 160);
                    writeln!(
                        err,
                        "warning: CloudWatch GetMetricData failed ({e}); the drill gets no metrics file"
                    )?;
                    RecordedMetrics::Missing(format!("CloudWatch GetMetricData failed: {e}"))
                }
            },
        }
    };

    let recording = Recording {
        incident: &incident,
        timeline: &timeline,
        fleet,
        logs,
        logs_note,
        metrics,
    };
    Ok(record::scenario_files(&recording).map_err(|e| e.to_string()))
}

/// At most `max` characters of `s`, with `…` when cut (an SDK error can run to pages).
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// The range the metric steps read: from the earliest baseline start (the shipped runbook's step
/// windows and baselines before the alarm) to the diagnosis window's end.
fn metric_range(plan: &record::Plan) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let end = plan
        .window
        .map(|w| w.end)
        .or(plan.alarm_at)
        .unwrap_or_else(chrono::Utc::now);
    let alarm = plan.alarm_at.unwrap_or(end);
    let runbooks = RunbookSet::from_embedded(embedded::FILES).ok();
    let from_runbook = runbooks.as_ref().and_then(|set| {
        let rb = set.get(plan.runbook.as_deref()?)?;
        plan.metric_reads
            .iter()
            .filter_map(|m| rb.metrics.iter().find(|s| s.name == m.step))
            .map(|s| alarm - s.window.to_chrono() - s.baseline.to_chrono())
            .min()
    });
    let start = from_runbook
        .or(plan.window.map(|w| w.start))
        .unwrap_or(alarm - chrono::Duration::hours(2));
    (start, end)
}

/// Why `out` may not be written, if it may not: a path without a last component (`.`, `..`,
/// `/`), or the working directory or one of its parents.
fn unsafe_out(out: &Path) -> Option<&'static str> {
    if out.file_name().is_none()
        || out
            .components()
            .next_back()
            .is_some_and(|c| matches!(c, std::path::Component::ParentDir | std::path::Component::CurDir))
    {
        return Some("name a directory of its own (not ., .. or /)");
    }
    let here = std::env::current_dir().ok().and_then(|d| d.canonicalize().ok());
    let there = out.canonicalize().ok();
    if let (Some(here), Some(there)) = (here, there) {
        if here.starts_with(&there) {
            return Some("it holds the working directory");
        }
    }
    None
}

/// Writes the files into a temporary directory beside `out`, then renames it to `out`. With
/// `force` an existing `out` is renamed aside first and removed only once the new one is in
/// place, so a failure leaves the old drill as it was.
fn write_dir(out: &Path, files: &[(String, String)], force: bool) -> std::io::Result<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "drill".into());
    let tmp = parent.join(format!(".{name}.recording-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let written = (|| {
        std::fs::create_dir_all(&tmp)?;
        for (n, c) in files {
            std::fs::write(tmp.join(n), c)?;
        }
        let aside = parent.join(format!(".{name}.replaced-{}", std::process::id()));
        let moved = if out.exists() {
            if force || std::fs::read_dir(out)?.next().is_none() {
                let _ = std::fs::remove_dir_all(&aside);
                std::fs::rename(out, &aside)?;
                true
            } else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not empty",
                ));
            }
        } else {
            false
        };
        if let Err(e) = std::fs::rename(&tmp, out) {
            if moved {
                let _ = std::fs::rename(&aside, out);
            }
            return Err(e);
        }
        if moved {
            let _ = std::fs::remove_dir_all(&aside);
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}
