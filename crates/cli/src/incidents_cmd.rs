//! `firebreak incidents | show | ack | note | resolve | postmortem | mttr`: incidents over the
//! real store (or any `IncidentStore`), generic over the ports so `main` wires the DynamoDB, SNS
//! and EventBridge adapters and the tests the in-memory ones.
//!
//! Exit codes: 0 done; 2 bad input (a malformed or unknown incident id, an empty note, a bad
//! date); store and AWS failures are returned as errors (exit 1 in `main`).

use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use firebreak_core::model::incident::{Incident, IncidentId};
use firebreak_core::model::settings::Settings;
use firebreak_core::model::text::terminal;
use firebreak_core::model::timeline::{Detail, TimelineEntry};
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::{Clock, EventBus, IncidentStore, ListQuery, Notifier, StoreError};
use firebreak_core::report::metrics::{human_opt, mttr_report, GroupBy, StageTimes};
use firebreak_core::report::postmortem;
use firebreak_core::runbook::Runbook;
use firebreak_core::stages::manage::{self, AckOutcome};
use firebreak_core::stages::resolve::{Resolve, ResolveOutcome};
use firebreak_core::Error;
use serde_json::json;
use std::io::Write;

/// The incident subcommands.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum IncidentsCmd {
    /// List incidents, newest last.
    Incidents {
        /// Only open and mitigated incidents.
        #[arg(long)]
        open: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show an incident and its timeline.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an incident's page.
    Ack {
        id: String,
        /// Who acknowledges (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Add a note to an incident's timeline.
    Note {
        id: String,
        text: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Resolve an incident by hand, even while alarms still fire.
    Resolve {
        id: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Print an incident's postmortem draft (Markdown).
    Postmortem { id: String },
    /// MTTR per month: count, median, p90.
    Mttr {
        /// Incidents detected on or after this date (YYYY-MM-DD or RFC 3339).
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        /// Split each month by severity or service.
        #[arg(long, value_parser = parse_group_by)]
        by: Option<GroupBy>,
        #[arg(long)]
        json: bool,
    },
}

/// Parses `--since`: a date (midnight UTC) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{s:?} is not a date like 2026-03-01 or 2026-03-01T00:00:00Z"))
}

fn parse_group_by(s: &str) -> Result<GroupBy, String> {
    s.parse::<GroupBy>().map_err(|e| e.to_string())
}

/// What the commands run against.
pub struct IncidentsCtx<'a, S: IncidentStore, N: Notifier, B: EventBus, K: Clock> {
    pub store: &'a S,
    pub notifier: &'a N,
    pub bus: &'a B,
    pub clock: &'a K,
    pub runbooks: &'a [Runbook],
    pub settings: &'a Settings,
    pub metrics_namespace: &'a str,
}

/// The person running the command: `--by`, else `$USER`, else `firebreak-cli`.
fn person(by: Option<&String>) -> String {
    by.cloned()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "firebreak-cli".to_string())
}

/// Runs one command, writing results to `out` and input errors to `err`. Returns the exit code.
///
/// # Errors
/// Store, notifier and bus failures, and failures to write the output.
pub async fn run<S, N, B, K, W, E>(
    cmd: &IncidentsCmd,
    ctx: &IncidentsCtx<'_, S, N, B, K>,
    out: &mut W,
    err: &mut E,
) -> anyhow::Result<i32>
where
    S: IncidentStore,
    N: Notifier,
    B: EventBus,
    K: Clock,
    W: Write,
    E: Write,
{
    match execute(cmd, ctx, out).await {
        Ok(code) => Ok(code),
        Err(e @ (Error::Invalid { .. } | Error::Store(StoreError::NotFound(_)))) => {
            writeln!(err, "error: {e}")?;
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

async fn execute<S, N, B, K, W>(
    cmd: &IncidentsCmd,
    ctx: &IncidentsCtx<'_, S, N, B, K>,
    out: &mut W,
) -> Result<i32, Error>
where
    S: IncidentStore,
    N: Notifier,
    B: EventBus,
    K: Clock,
    W: Write,
{
    let io = |e: std::io::Error| Error::invalid("output", e.to_string());
    match cmd {
        IncidentsCmd::Incidents { open, json } => {
            let list = ctx
                .store
                .list(&ListQuery {
                    active_only: *open,
                    since: None,
                })
                .await?;
            if *json {
                let v: Vec<serde_json::Value> = list.iter().map(incident_json).collect();
                writeln!(out, "{}", serde_json::Value::Array(v)).map_err(io)?;
            } else {
                write!(out, "{}", terminal(&incidents_table(&list))).map_err(io)?;
            }
        }
        IncidentsCmd::Show { id, json } => {
            let id = IncidentId::parse(id)?;
            let inc = manage::load(ctx.store, &id).await?;
            let timeline = ctx.store.timeline(&id).await?;
            if *json {
                let v = json!({
                    "incident": inc,
                    "metrics": StageTimes::of(&inc),
                    "timeline": timeline,
                });
                writeln!(out, "{v}").map_err(io)?;
            } else {
                // what alarms and logs wrote reaches the terminal without control characters
                write!(out, "{}", terminal(&show_text(&inc, &timeline))).map_err(io)?;
            }
        }
        IncidentsCmd::Ack { id, by } => {
            let id = IncidentId::parse(id)?;
            let by = person(by.as_ref());
            // the on-call tools (PagerDuty acknowledge, the webhook) hear of it through the bus;
            // the acknowledgement stands whether or not the bus takes the event
            let (outcome, told) =
                manage::acknowledge_and_tell(ctx.store, ctx.bus, &id, &by, ctx.clock.now()).await?;
            if let Err(e) = told {
                eprintln!(
                    "warning: the on-call tools were not told (Incident Acknowledged not put on the bus: {e}); \
                     the acknowledgement is recorded"
                );
            }
            match outcome {
                AckOutcome::Acknowledged => writeln!(out, "{id} acknowledged by {by}").map_err(io)?,
                AckOutcome::AlreadyAcknowledged { by, at } => writeln!(
                    out,
                    "{id} was already acknowledged by {} at {}",
                    by.as_deref().unwrap_or("someone"),
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                )
                .map_err(io)?,
            }
        }
        IncidentsCmd::Note { id, text, by } => {
            let id = IncidentId::parse(id)?;
            let by = person(by.as_ref());
            let (_, new) = manage::add_note(ctx.store, &id, &by, text, ctx.clock.now()).await?;
            if new {
                writeln!(out, "note added to {id}").map_err(io)?;
            } else {
                writeln!(out, "note already on {id}").map_err(io)?;
            }
        }
        IncidentsCmd::Resolve { id, by } => {
            let id = IncidentId::parse(id)?;
            let by = person(by.as_ref());
            let resolve = Resolve {
                ports: Wired::new()
                    .store(ctx.store)
                    .notifier(ctx.notifier)
                    .bus(ctx.bus)
                    .clock(ctx.clock),
                runbooks: ctx.runbooks,
                settings: ctx.settings,
                metrics_namespace: ctx.metrics_namespace,
                // the CLI's stdout is its own output; CloudWatch would not see the lines anyway
                emf_to_stdout: false,
            };
            match resolve.resolve_manually(&id, &by, ctx.clock.now()).await? {
                ResolveOutcome::Resolved(r) => {
                    let firing: Vec<&str> = r.incident.alarms_firing().collect();
                    writeln!(
                        out,
                        "{id} resolved (MTTR {}){}",
                        human_opt(r.times.time_to_resolve_s),
                        if firing.is_empty() {
                            String::new()
                        } else {
                            format!("; still in ALARM: {}", firing.join(", "))
                        }
                    )
                    .map_err(io)?;
                    writeln!(out, "postmortem draft: firebreak postmortem {id}").map_err(io)?;
                }
                ResolveOutcome::AlreadyResolved { .. } => {
                    writeln!(out, "{id} was already resolved").map_err(io)?;
                }
                // resolve_manually never answers these; say what happened if it ever does
                ResolveOutcome::Mitigated { still_firing } | ResolveOutcome::StillOpen { still_firing } => {
                    writeln!(
                        out,
                        "{id} not resolved; still in ALARM: {}",
                        still_firing.join(", ")
                    )
                    .map_err(io)?;
                    return Ok(1);
                }
                ResolveOutcome::Refused { reason } => {
                    writeln!(out, "{id} not resolved: {reason}").map_err(io)?;
                    return Ok(1);
                }
            }
        }
        IncidentsCmd::Postmortem { id } => {
            let id = IncidentId::parse(id)?;
            let inc = manage::load(ctx.store, &id).await?;
            match &firebreak_core::ports::postmortem_of(ctx.store, &inc).await? {
                Some(md) => write!(out, "{}", terminal(md)).map_err(io)?,
                None => {
                    // not resolved yet: a preview from the current state, not stored
                    let timeline = ctx.store.timeline(&id).await?;
                    let rb = inc
                        .runbook
                        .as_deref()
                        .and_then(|r| ctx.runbooks.iter().find(|x| x.id == r));
                    writeln!(
                        out,
                        "<!-- preview: {id} is {} and has no stored draft yet -->",
                        inc.status
                    )
                    .map_err(io)?;
                    write!(out, "{}", terminal(&postmortem::draft(&inc, &timeline, rb))).map_err(io)?;
                }
            }
        }
        IncidentsCmd::Mttr { since, by, json } => {
            let list = ctx
                .store
                .list(&ListQuery {
                    active_only: false,
                    since: *since,
                })
                .await?;
            let report = mttr_report(&list, *since, by.unwrap_or_default());
            if *json {
                writeln!(out, "{}", report.to_json()).map_err(io)?;
            } else {
                write!(out, "{}", terminal(&report.to_table())).map_err(io)?;
            }
        }
    }
    Ok(0)
}

fn incident_json(i: &Incident) -> serde_json::Value {
    json!({
        "id": i.id,
        "service": i.service,
        "severity": i.severity,
        "status": i.status,
        "title": i.title,
        "detected_at": i.detected_at,
        "opened_at": i.opened_at,
        "resolved_at": i.resolved_at,
        "acknowledged": i.acknowledged_at.is_some(),
        "cause": i.cause,
        "metrics": StageTimes::of(i),
    })
}

fn incidents_table(list: &[Incident]) -> String {
    if list.is_empty() {
        return "no incidents\n".to_string();
    }
    let mut rows = vec![[
        "ID".to_string(),
        "SEV".to_string(),
        "STATUS".to_string(),
        "SERVICE".to_string(),
        "OPENED (UTC)".to_string(),
        "MTTR".to_string(),
        "TITLE".to_string(),
    ]];
    for i in list {
        rows.push([
            i.id.to_string(),
            i.severity.to_string(),
            i.status.to_string(),
            i.service.clone(),
            i.opened_at.format("%Y-%m-%d %H:%M").to_string(),
            human_opt(StageTimes::of(i).time_to_resolve_s),
            i.title.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    s
}

fn show_text(i: &Incident, timeline: &[TimelineEntry]) -> String {
    let t = StageTimes::of(i);
    let ts = |d: Option<DateTime<Utc>>| {
        d.map_or_else(|| "-".to_string(), |d| d.format("%Y-%m-%d %H:%M:%S").to_string())
    };
    let mut s = format!(
        "{} {} {} {}\n{}\n",
        i.id, i.severity, i.status, i.service, i.title
    );
    s.push_str(&format!(
        "detected {}  opened {}  resolved {}\n",
        ts(Some(i.detected_at)),
        ts(Some(i.opened_at)),
        ts(i.resolved_at)
    ));
    s.push_str(&format!(
        "acknowledged {}{}\n",
        ts(i.acknowledged_at),
        i.acknowledged_by
            .as_deref()
            .map_or_else(String::new, |b| format!(" by {b}"))
    ));
    s.push_str(&format!(
        "runbook {}  cause {}\n",
        i.runbook.as_deref().unwrap_or("-"),
        i.cause.as_deref().unwrap_or("-")
    ));
    s.push_str(&format!(
        "detect {}  diagnose {}  mitigate {}  resolve {}\n",
        human_opt(t.time_to_detect_s),
        human_opt(t.time_to_diagnose_s),
        human_opt(t.time_to_mitigate_s),
        human_opt(t.time_to_resolve_s)
    ));
    for a in i.alarms_firing() {
        s.push_str(&format!("in ALARM: {a}\n"));
    }
    s.push('\n');
    if timeline.is_empty() {
        s.push_str("(no timeline entries)\n");
    }
    let width = timeline
        .iter()
        .map(|e| e.kind().as_str().len())
        .max()
        .unwrap_or(0);
    for e in timeline {
        // who, for the entries whose summary does not already say it (an approval's does)
        let by = match e.detail() {
            Detail::Acknowledged(_) | Detail::Note(_) | Detail::Resolved(_) => e.detail().by(),
            _ => None,
        }
        .map_or_else(String::new, |b| format!(" (by {b})"));
        s.push_str(&format!(
            "{}  {:<width$}  {}{by}\n",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.kind().as_str(),
            e.summary.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use clap::Parser;
    use firebreak_core::adapters::memory::{
        InMemoryEventBus, InMemoryIncidentStore, InMemoryNotifier, SimClock,
    };
    use firebreak_core::model::incident::AttachedAlarm;
    use firebreak_core::model::severity::Severity;
    use firebreak_core::model::signal::AlarmState;
    use firebreak_core::model::timeline::EntryKind;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: IncidentsCmd,
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).unwrap()
    }

    const ID: &str = "INC-20260314-143500-3f9a";

    fn incident() -> Incident {
        let mut i = Incident::open(
            IncidentId(ID.into()),
            "prod/articles-api",
            Severity::Sev2,
            "5xx rate on articles-api",
            at(14, 35),
            at(14, 35),
        );
        i.estimated_start = Some(at(14, 30));
        i.diagnosed_at = Some(at(14, 36));
        i.alarms.insert(
            "articles-api-5xx".to_string(),
            AttachedAlarm {
                state: AlarmState::Alarm,
                changed_at: at(14, 35),
                reason: String::new(),
            },
        );
        i
    }

    struct World {
        store: InMemoryIncidentStore,
        notifier: InMemoryNotifier,
        bus: InMemoryEventBus,
        clock: SimClock,
        settings: Settings,
    }

    impl World {
        async fn new() -> World {
            let w = World {
                store: InMemoryIncidentStore::new(),
                notifier: InMemoryNotifier::new(),
                bus: InMemoryEventBus::new(),
                clock: SimClock::new(at(15, 0)),
                settings: Settings::default(),
            };
            let opened = TimelineEntry::new(
                format!("{ID}/opened"),
                at(14, 35),
                EntryKind::Opened,
                "Opened SEV2",
            );
            w.store
                .open(&incident(), &[opened], Duration::from_secs(1800))
                .await
                .unwrap();
            w
        }

        async fn run(&self, args: &[&str]) -> (i32, String, String) {
            let mut argv = vec!["firebreak"];
            argv.extend_from_slice(args);
            let cli = Cli::try_parse_from(argv).unwrap();
            let ctx = IncidentsCtx {
                store: &self.store,
                notifier: &self.notifier,
                bus: &self.bus,
                clock: &self.clock,
                runbooks: &[],
                settings: &self.settings,
                metrics_namespace: "Firebreak",
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = run(&cli.cmd, &ctx, &mut out, &mut err).await.unwrap();
            (
                code,
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            )
        }
    }

    #[tokio::test]
    async fn lists_and_shows_incidents() {
        let w = World::new().await;
        let (code, out, _) = w.run(&["incidents", "--open"]).await;
        assert_eq!(code, 0);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("ID"), "{out}");
        assert!(
            lines[1].starts_with(ID) && lines[1].contains("SEV2") && lines[1].contains("open"),
            "{out}"
        );

        let (_, out, _) = w.run(&["incidents", "--json"]).await;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["id"], ID);
        assert_eq!(v[0]["metrics"]["time_to_detect_s"], 300);
        assert!(v[0]["metrics"]["time_to_resolve_s"].is_null());

        let (code, out, _) = w.run(&["show", ID]).await;
        assert_eq!(code, 0);
        assert!(
            out.contains("detect 5m  diagnose 1m  mitigate -  resolve -"),
            "{out}"
        );
        assert!(out.contains("2026-03-14 14:35:00  opened  Opened SEV2"), "{out}");
        assert!(out.contains("in ALARM: articles-api-5xx"), "{out}");

        let (_, out, _) = w.run(&["show", ID, "--json"]).await;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["timeline"][0]["kind"], "opened");
    }

    #[tokio::test]
    async fn unknown_and_malformed_ids_exit_2_naming_them() {
        let w = World::new().await;
        let (code, out, err) = w.run(&["show", "INC-20990101-000000-beef"]).await;
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(
            err.contains("INC-20990101-000000-beef") && err.contains("not found"),
            "{err}"
        );
        let (code, _, err) = w.run(&["ack", "drop table"]).await;
        assert_eq!(code, 2);
        assert!(err.contains("drop table") && err.contains("incident id"), "{err}");
        let (code, _, err) = w.run(&["note", ID, "   ", "--by", "alice"]).await;
        assert_eq!(code, 2);
        assert!(err.contains("note"), "{err}");
        assert!(Cli::try_parse_from(["firebreak", "mttr", "--since", "March"]).is_err());
        assert!(Cli::try_parse_from(["firebreak", "mttr", "--by", "team"]).is_err());
    }

    #[tokio::test]
    async fn ack_note_resolve_and_postmortem() {
        let w = World::new().await;
        let (code, out, _) = w.run(&["ack", ID, "--by", "alice"]).await;
        assert_eq!(code, 0);
        assert_eq!(out, format!("{ID} acknowledged by alice\n"));
        let (_, out, _) = w.run(&["ack", ID, "--by", "bob"]).await;
        assert!(out.contains("already acknowledged by alice"), "{out}");
        // the on-call tools hear of it: who acknowledged first, each time (a retry is harmless)
        let acks: Vec<_> = w
            .bus
            .events()
            .into_iter()
            .filter(|e| e.detail_type == "Incident Acknowledged")
            .collect();
        assert_eq!(acks.len(), 2);
        assert!(acks.iter().all(|e| e.detail["by"] == "alice"), "{acks:?}");

        let (code, out, _) = w.run(&["note", ID, "pool raised to 20", "--by", "alice"]).await;
        assert_eq!(
            (code, out.as_str()),
            (0, format!("note added to {ID}\n").as_str())
        );

        let (_, out, _) = w.run(&["postmortem", ID]).await;
        assert!(out.starts_with("<!-- preview:"), "{out}");

        w.clock.set(at(15, 10));
        let (code, out, _) = w.run(&["resolve", ID, "--by", "alice"]).await;
        assert_eq!(code, 0);
        assert!(
            out.contains("resolved (MTTR 35m); still in ALARM: articles-api-5xx"),
            "{out}"
        );
        assert_eq!(w.notifier.sent().len(), 1);
        let (_, out, _) = w.run(&["resolve", ID]).await;
        assert_eq!(out, format!("{ID} was already resolved\n"));

        let (code, out, _) = w.run(&["postmortem", ID]).await;
        assert_eq!(code, 0);
        assert!(out.starts_with("# Postmortem: 5xx rate on articles-api"), "{out}");
        assert!(out.contains("`note` pool raised to 20"), "{out}");
        assert!(out.contains("resolved by hand"), "{out}");
        assert!(!out.contains("alice"), "{out}");

        let (_, out, _) = w.run(&["show", ID]).await;
        assert!(
            out.contains("note") && out.contains("pool raised to 20 (by alice)"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn mttr_table_and_json() {
        let w = World::new().await;
        w.clock.set(at(15, 0));
        w.run(&["resolve", ID, "--by", "alice"]).await;
        let (code, out, _) = w
            .run(&["mttr", "--since", "2026-03-01", "--by", "severity"])
            .await;
        assert_eq!(code, 0);
        assert!(out.contains("since 2026-03-01"), "{out}");
        assert!(out.contains("2026-03  SEV2      1      25m     25m  0"), "{out}");
        let (_, out, _) = w.run(&["mttr", "--json"]).await;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["rows"][0]["median_s"], 1500);
        let (_, out, _) = w.run(&["mttr", "--since", "2026-04-01T00:00:00Z"]).await;
        assert!(out.contains("no incidents"), "{out}");
    }

    #[tokio::test]
    async fn show_and_postmortem_print_no_control_characters_from_alarms() {
        let w = World::new().await;
        let id = IncidentId::parse(ID).unwrap();
        let entry = TimelineEntry::new(
            "evil-delivery/alarm-fired".to_string(),
            at(14, 36),
            firebreak_core::model::timeline::EntryKind::AlarmFired,
            "articles-api-5xx\u{1b}[2J\u{1b}]0;owned\u{7} is ALARM\u{0}\u{202e}",
        );
        w.store.append(&id, &[entry]).await.unwrap();
        for cmd in [vec!["show", ID], vec!["postmortem", ID]] {
            let (_, out, _) = w.run(&cmd).await;
            assert!(out.contains("articles-api-5xx"), "{out}");
            for raw in ['\u{1b}', '\u{0}', '\u{7}', '\u{202e}'] {
                assert!(!out.contains(raw), "{cmd:?} printed {raw:?}: {out:?}");
            }
        }
    }
}
