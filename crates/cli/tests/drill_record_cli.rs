//! `firebreak drill record` through the real binary against moto: an incident made by the real
//! triage and diagnose stages over the AWS adapters (DynamoDB store, FilterLogEvents over a moto
//! log group, ECS in moto), recorded into a drill directory, and the drill replayed with
//! `--check`. Also the refusals: an unknown incident, an existing directory, a reached bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use chrono::{DateTime, Duration, SubsecRound, Utc};
use firebreak_aws::{
    Clients, DynamoIncidentStore, EcsServiceControl, FetchingLogQueries, FilterLogEventsFetcher,
};
use firebreak_core::adapters::local_metrics::RecordedMetrics;
use firebreak_core::adapters::memory::InMemoryAlarmStatus;
use firebreak_core::adapters::memory::{InMemoryEventBus, InMemoryNotifier};
use firebreak_core::intake::parse_event_str;
use firebreak_core::model::evidence::TaskDefinition;
use firebreak_core::model::incident::{EcsService, IncidentStatus};
use firebreak_core::model::pipeline::Event;
use firebreak_core::model::settings::RemediationMode;
use firebreak_core::model::settings::Settings;
use firebreak_core::model::signal::AlarmState;
use firebreak_core::policy::SeverityPolicy;
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::{
    IncidentStore, PortError, ServiceControl, ServiceState, ServiceUpdate, SystemClock,
};
use firebreak_core::runbook::{embedded, RunbookSet};
use firebreak_core::stages::diagnose::Diagnose;
use firebreak_core::stages::remediate::Remediate;
use firebreak_core::stages::resolve::Resolve;
use firebreak_core::stages::triage::{Triage, TriageOutcome};
use firebreak_integration::{ecs_service, moto, table, unique, workspace_root, Moto, ACCOUNT, REGION};
use std::path::Path;
use std::process::{Command, Output};

fn firebreak(m: &Moto, table: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", m.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCOUNT_ID", ACCOUNT)
        .env("TABLE_NAME", table)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Creates `group` in moto with `events` (epoch ms, message) through boto3 in the test venv
/// (this package's tests do not depend on the Logs SDK's types).
fn put_logs(m: &Moto, group: &str, events: &[(i64, String)]) {
    let payload = serde_json::json!({
        "endpoint": m.endpoint(),
        "group": group,
        "events": events.iter().map(|(t, msg)| serde_json::json!({"timestamp": t, "message": msg})).collect::<Vec<_>>(),
    });
    let script = r#"
import json, sys, boto3
p = json.load(sys.stdin)
c = boto3.client("logs", endpoint_url=p["endpoint"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing")
c.create_log_group(logGroupName=p["group"])
c.create_log_stream(logGroupName=p["group"], logStreamName="ecs/app/1")
ev = p["events"]
for i in range(0, len(ev), 5000):
    c.put_log_events(logGroupName=p["group"], logStreamName="ecs/app/1", logEvents=ev[i:i + 5000])
"#;
    let mut child = Command::new(workspace_root().join(".venv/bin/python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(payload.to_string().as_bytes()).unwrap();
    }
    assert!(child.wait().unwrap().success(), "putting the log events");
}

/// The seed's logs relative to `alarm`: steady acquisitions, doubling 12 minutes before it,
/// pool-exhausted 500s in the last 3 minutes.
fn seed_lines(alarm: DateTime<Utc>) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for minute in (1..=70).rev() {
        let t0 = alarm - Duration::minutes(minute);
        let doubled = minute <= 12;
        for i in 0..(if doubled { 12 } else { 6 }) {
            let t = t0 + Duration::seconds(i * 4);
            out.push((
                t.timestamp_millis(),
                format!(
                    "INFO acquired database connection pool=articles in_use={} max_connections=10",
                    if doubled { 10 } else { 5 }
                ),
            ));
            if doubled && minute <= 3 && i % 3 == 0 {
                out.push((
                    t.timestamp_millis() + 1,
                    "ERROR DatabaseError: connection pool exhausted, max_connections=10 path=/articles status=500".into(),
                ));
            }
        }
    }
    out
}

/// The 5xx alarm of the fleet's service as EventBridge delivers it, with the ECS tags.
fn alarm_event(alarm: &str, cluster: &str, service: &str, at: DateTime<Utc>) -> String {
    state_event(alarm, cluster, service, at, "ALARM", "OK")
}

fn state_event(
    alarm: &str,
    cluster: &str,
    service: &str,
    at: DateTime<Utc>,
    state: &str,
    previous: &str,
) -> String {
    serde_json::json!({
        "version": "0",
        "id": unique("record-delivery"),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": at.to_rfc3339(),
        "region": REGION,
        "resources": [format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}")],
        "detail": {
            "alarmName": alarm,
            "state": {"value": state, "reason": format!("Threshold Crossed: now {state}"),
                      "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()},
            "previousState": {"value": previous},
            "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {
                "namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count",
                "dimensions": {"LoadBalancer": "app/prod-alb/50dc6c495c0c9188",
                               "TargetGroup": "targetgroup/articles-api/73e2d6bc24d8a067"}},
                "period": 60, "stat": "Sum"}, "returnData": true}]},
            "alarmTags": {"ecs-cluster": cluster, "ecs-service": service}
        }
    })
    .to_string()
}

/// Triage and diagnosis of a real 5xx alarm over moto; returns the table and the incident id.
async fn real_incident(m: &Moto, test: &str) -> (String, String) {
    let cfg = m.sdk_config().await;
    let clients = Clients::new(cfg.clone());
    let (ddb, table_name) = table(&cfg, test).await.unwrap();
    let fleet = ecs_service(&cfg, test, 2, 2).await.unwrap();
    // moto keeps log events of the last 14 days only: the incident happens now
    let alarm_at = Utc::now().trunc_subsecs(0);
    put_logs(m, &format!("/ecs/{}", fleet.service), &seed_lines(alarm_at));

    let store = DynamoIncidentStore::new(ddb, &table_name);
    let notifier = InMemoryNotifier::new();
    let bus = InMemoryEventBus::new();
    let policy = SeverityPolicy::shipped().unwrap();
    let settings = Settings::default();
    let alarm = format!("{}-5xx-rate", fleet.service);
    let signals = parse_event_str(&alarm_event(&alarm, &fleet.cluster, &fleet.service, alarm_at)).unwrap();
    let triage = Triage {
        ports: Wired::new()
            .store(&store)
            .notifier(&notifier)
            .bus(&bus)
            .clock(&SystemClock),
        policy: &policy,
        settings: &settings,
    };
    let TriageOutcome::Opened { id } = triage.handle(&signals[0]).await.unwrap() else {
        panic!("no incident opened")
    };
    let raised = bus
        .drain()
        .iter()
        .find_map(|e| match Event::from_pipeline(e) {
            Ok(Event::Opened(r)) => Some(r),
            _ => None,
        })
        .expect("Incident Opened");

    let logs = FetchingLogQueries::new(FilterLogEventsFetcher::new(clients.logs(), 50_000));
    let metrics = RecordedMetrics::new(Vec::new());
    let ecs = EcsServiceControl::new(clients.ecs());
    let runbooks = RunbookSet::from_embedded(embedded::FILES).unwrap();
    let diagnose = Diagnose {
        ports: Wired::new()
            .store(&store)
            .logs(&logs)
            .metrics(&metrics)
            .notifier(&notifier)
            .ecs(&ecs)
            .bus(&bus)
            .clock(&SystemClock),
        runbooks: &runbooks,
        settings: &settings,
    };
    diagnose.handle(&raised).await.unwrap();
    let stored = store.get(&id).await.unwrap().unwrap();
    assert!(stored.diagnosed_at.is_some(), "{stored:#?}");
    (table_name, id.to_string())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_incident_replays_as_a_drill_that_passes_its_check() {
    let m = moto().unwrap();
    let (table, id) = real_incident(&m, "record-e2e").await;
    let o = firebreak(&m, &table, &["drill", "record", &id, "--out", "/dev/null/x"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an out path that cannot be a directory: {}",
        text(&o)
    );
    assert!(text(&o).contains("/dev/null/x"), "{}", text(&o));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drill");
    let dir_s = dir.to_str().unwrap();

    let o = firebreak(&m, &table, &["drill", "record", &id, "--out", dir_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(&format!("recorded {id}")), "{}", text(&o));
    let scenario = read(&dir.join("scenario.yaml"));
    assert!(dir.join("event-001.eventbridge.json").is_file(), "{scenario}");
    let logs = read(&dir.join("logs.jsonl"));
    assert!(logs.contains("connection pool exhausted"), "{logs}");
    // non-terminal stderr: one line per log group at the end
    assert!(text(&o).contains("logs: /ecs/"), "{}", text(&o));
    // moto does not serve CloudWatch's protocol: the metrics are a named gap, not a failure
    assert!(
        text(&o).contains("warning: CloudWatch GetMetricData failed"),
        "{}",
        text(&o)
    );
    assert!(
        scenario.contains("# metrics not recorded: CloudWatch GetMetricData failed"),
        "{scenario}"
    );
    assert!(!dir.join("metrics.jsonl").exists());
    // no temporary directory left beside it
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");

    let check = firebreak(&m, &table, &["drill", dir_s, "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}\n{scenario}", text(&check));

    // expect is the real outcome, and the replay agrees with it
    let loaded = firebreak_core::drill::LoadedScenario::load(&dir).unwrap();
    let expect = loaded.scenario.expect.clone().unwrap();
    let json = firebreak(&m, &table, &["drill", dir_s, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let inc = &report["incidents"][0];
    assert_eq!(report["incidents"].as_array().unwrap().len(), 1);
    assert_eq!(
        inc["severity"].as_str(),
        expect.severity.map(|s| s.to_string()).as_deref()
    );
    assert_eq!(expect.incidents, Some(1));
    assert_eq!(inc["cause"].as_str(), expect.cause.as_deref());

    // refused: the directory now exists and is not empty
    let again = firebreak(&m, &table, &["drill", "record", &id, "--out", dir_s]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("not empty"), "{}", text(&again));
    // unless --force
    let forced = firebreak(&m, &table, &["drill", "record", &id, "--out", dir_s, "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    // never the working directory or a parent of it, --force or not
    for out in [".", "..", "/"] {
        let o = firebreak(&m, &table, &["drill", "record", &id, "--out", out, "--force"]);
        assert_eq!(o.status.code(), Some(2), "{out}: {}", text(&o));
        assert!(text(&o).contains("--out"), "{}", text(&o));
    }
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("Cargo.toml")
        .exists());

    // --no-metrics: no GetMetricData, and the gap is said
    let nm = tmp.path().join("no-metrics");
    let n = firebreak(
        &m,
        &table,
        &[
            "drill",
            "record",
            &id,
            "--out",
            nm.to_str().unwrap(),
            "--no-metrics",
        ],
    );
    assert_eq!(n.status.code(), Some(0), "{}", text(&n));
    assert!(!text(&n).contains("GetMetricData failed"), "{}", text(&n));
    assert!(read(&nm.join("scenario.yaml")).contains("# metrics not recorded: --no-metrics"));

    // a bound that is reached is reported, and the logs end there
    let bounded = tmp.path().join("bounded");
    let b = firebreak(
        &m,
        &table,
        &[
            "drill",
            "record",
            &id,
            "--out",
            bounded.to_str().unwrap(),
            "--max-events",
            "5",
        ],
    );
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    assert!(text(&b).contains("bound of 5 events"), "{}", text(&b));
    assert_eq!(read(&bounded.join("logs.jsonl")).lines().count(), 5);
    assert!(read(&bounded.join("scenario.yaml")).contains("# logs stopped at the bound of 5"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_incident_is_refused_naming_it() {
    let m = moto().unwrap();
    let cfg = m.sdk_config().await;
    let (_, table) = table(&cfg, "record-unknown").await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("drill");
    let id = "INC-20260314-143500-dead";
    let o = firebreak(
        &m,
        &table,
        &["drill", "record", id, "--out", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(id), "{}", text(&o));
    assert!(!out.exists(), "nothing written");
}

#[test]
fn an_existing_directory_is_refused_before_anything_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("scenario.yaml"), "x").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(["drill", "record", "INC-20260314-143500-dead", "--out"])
        .arg(tmp.path())
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("exists and is not empty"), "{}", text(&o));
    assert_eq!(read(&tmp.path().join("scenario.yaml")), "x");
}

/// moto never completes an ECS rollout (its `deployments[]` never change after CreateService), so
/// a lone PRIMARY deployment stays IN_PROGRESS and the "no action during a rollout" guardrail
/// would refuse every action; this reports it COMPLETED, as ECS does once the service is steady.
struct Settled(EcsServiceControl);

impl ServiceControl for Settled {
    async fn describe(&self, service: &EcsService) -> Result<ServiceState, PortError> {
        let mut s = self.0.describe(service).await?;
        if let [only] = s.deployments.as_mut_slice() {
            only.rollout_state = Some("COMPLETED".into());
        }
        Ok(s)
    }
    async fn task_definitions(&self, family: &str) -> Result<Vec<String>, PortError> {
        self.0.task_definitions(family).await
    }
    async fn task_definition(&self, name: &str) -> Result<Option<TaskDefinition>, PortError> {
        self.0.task_definition(name).await
    }
    async fn update(&self, service: &EcsService, change: &ServiceUpdate) -> Result<ServiceState, PortError> {
        self.0.update(service, change).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scale_out_applied_for_real_is_recorded_with_the_fleet_as_it_was_before_it() {
    let test = "record-applied";
    let m = moto().unwrap();
    let cfg = m.sdk_config().await;
    let clients = Clients::new(cfg.clone());
    let (ddb, table_name) = table(&cfg, test).await.unwrap();
    let fleet = ecs_service(&cfg, test, 2, 2).await.unwrap();
    let svc = EcsService::new(&fleet.cluster, &fleet.service);
    let alarm_at = Utc::now().trunc_subsecs(0) - Duration::minutes(8);
    let ok_at = alarm_at + Duration::minutes(3);
    put_logs(&m, &format!("/ecs/{}", fleet.service), &seed_lines(alarm_at));

    let store = DynamoIncidentStore::new(ddb, &table_name);
    let notifier = InMemoryNotifier::new();
    let bus = InMemoryEventBus::new();
    let policy = SeverityPolicy::shipped().unwrap();
    let mut settings = Settings::default();
    settings.remediation.mode = RemediationMode::Auto;
    settings.remediation.allow = vec![svc.clone()];
    let alarm = format!("{}-5xx-rate", fleet.service);
    let alarms = InMemoryAlarmStatus::new();
    alarms.set(&alarm, AlarmState::Alarm);
    let logs = FetchingLogQueries::new(FilterLogEventsFetcher::new(clients.logs(), 50_000));
    let metrics = RecordedMetrics::new(Vec::new());
    let ecs = Settled(EcsServiceControl::new(clients.ecs()));
    let runbooks = RunbookSet::from_embedded(embedded::FILES).unwrap();
    let ports = Wired::new()
        .store(&store)
        .notifier(&notifier)
        .bus(&bus)
        .clock(&SystemClock)
        .ecs(&ecs)
        .alarms(&alarms)
        .logs(&logs)
        .metrics(&metrics);
    let triage = Triage {
        ports,
        policy: &policy,
        settings: &settings,
    };
    let diagnose = Diagnose {
        ports,
        runbooks: &runbooks,
        settings: &settings,
    };
    let remediate = Remediate {
        ports,
        runbooks: runbooks.runbooks(),
        settings: &settings,
    };
    let resolve = Resolve {
        ports,
        runbooks: runbooks.runbooks(),
        settings: &settings,
        metrics_namespace: "Firebreak",
        emf_to_stdout: false,
    };
    // the pipeline: each event a stage puts on the bus goes to the next stage
    let deliver = |state: &str, previous: &str, at| {
        parse_event_str(&state_event(
            &alarm,
            &fleet.cluster,
            &fleet.service,
            at,
            state,
            previous,
        ))
        .unwrap()
    };
    let TriageOutcome::Opened { id } = triage.handle(&deliver("ALARM", "OK", alarm_at)[0]).await.unwrap()
    else {
        panic!("no incident opened")
    };
    let mut applied = false;
    for _ in 0..4 {
        for e in bus.drain() {
            match Event::from_pipeline(&e).unwrap() {
                Event::Opened(r) => {
                    diagnose.handle(&r).await.unwrap();
                }
                Event::Diagnosed(d) => {
                    let out = remediate.on_diagnosis(&d).await.unwrap();
                    applied |= out.decisions.iter().any(|x| x.outcome == "applied");
                }
                _ => {}
            }
        }
    }
    assert!(applied, "{:#?}", store.timeline(&id).await.unwrap());
    assert_eq!(ecs.describe(&svc).await.unwrap().desired, 4, "scaled out in moto");
    alarms.set(&alarm, AlarmState::Ok);
    triage.handle(&deliver("OK", "ALARM", ok_at)[0]).await.unwrap();
    for e in bus.drain() {
        if let Ok(Event::Recovered(r)) = Event::from_pipeline(&e) {
            resolve.on_recovered(&r).await.unwrap();
        }
    }
    let real = store.get(&id).await.unwrap().unwrap();
    assert_eq!(real.status, IncidentStatus::Resolved);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drill");
    let o = firebreak(
        &m,
        &table_name,
        &["drill", "record", &id.to_string(), "--out", dir.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let scenario = read(&dir.join("scenario.yaml"));
    let s = firebreak_core::drill::LoadedScenario::load(&dir)
        .unwrap()
        .scenario;
    assert_eq!(
        s.ecs[0].desired, 2,
        "the desired count before the scale-out, not moto's 4:\n{scenario}"
    );
    assert!(scenario.contains("before its ecs-scale-out"), "{scenario}");
    assert_eq!(s.settings.remediation_mode, Some(RemediationMode::Auto));
    assert_eq!(s.settings.allow, vec![svc.to_string()]);
    assert_eq!(s.steps.len(), 2, "{scenario}");
    assert_eq!(s.steps[0].at, alarm_at);
    assert_eq!(s.steps[1].at, ok_at);
    let expect = s.expect.unwrap();
    assert_eq!(expect.remediation.as_deref(), Some("ecs-scale-out"));
    assert_eq!(expect.status, Some(IncidentStatus::Resolved));

    let check = firebreak(&m, &table_name, &["drill", dir.to_str().unwrap(), "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}\n{scenario}", text(&check));
}
