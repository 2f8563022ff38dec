use super::*;
use crate::model::incident::fnv1a;
use crate::model::signal::{AlarmState, Channel, Trigger};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn load(name: &str) -> Vec<AlarmSignal> {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
    parse_event_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn one(name: &str) -> AlarmSignal {
    let mut signals = load(name);
    assert_eq!(signals.len(), 1, "{name}");
    signals.remove(0)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_sample_event_parses_into_the_state_and_channel_its_name_says() {
    let files = json_files(&events_dir());
    assert!(
        files.len() >= 22,
        "expected the full sample set, found {}",
        files.len()
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let signals = parse_event_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!signals.is_empty(), "{name}");
        for s in &signals {
            let want_channel = if name.starts_with("sns-") {
                Channel::Sns
            } else if name.starts_with("eventbridge-") {
                Channel::EventBridge
            } else if name.starts_with("lambda-action-") {
                Channel::LambdaAction
            } else {
                panic!("{name}: sample names start with sns-, eventbridge- or lambda-action-")
            };
            assert_eq!(s.channel, want_channel, "{name}");
            let want_state = if name.contains("insufficient-data") {
                AlarmState::InsufficientData
            } else if name.contains("-ok") {
                AlarmState::Ok
            } else {
                AlarmState::Alarm
            };
            assert_eq!(s.state, want_state, "{name}");
            let want_composite = name.contains("composite");
            assert_eq!(
                matches!(s.trigger, Trigger::Composite { .. }),
                want_composite,
                "{name}"
            );
            assert_eq!(s.account.as_deref(), Some("123456789012"), "{name}");
            assert_eq!(s.region.as_deref(), Some("us-east-1"), "{name}");
            assert!(!s.delivery_id.is_empty(), "{name}");
        }
    }
}

#[test]
fn every_invalid_sample_fails_with_the_error_its_expected_file_names() {
    let dir = events_dir().join("invalid");
    let files = json_files(&dir);
    assert!(files.len() >= 10);
    for path in files {
        let expected_path = path.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let text = std::fs::read_to_string(&path).unwrap();
        match parse_event_str(&text) {
            Ok(s) => panic!("{}: parsed into {s:?}", path.display()),
            Err(e) => {
                assert!(matches!(e, Error::Invalid { .. }));
                assert!(
                    e.to_string().contains(expected.trim()),
                    "{}: error {e:?} does not contain {:?}",
                    path.display(),
                    expected.trim()
                );
            }
        }
    }
}

#[test]
fn sns_single_metric_alarm_normalises_every_field() {
    let s = one("sns-metric-alarm.json");
    assert_eq!(s.delivery_id, "b9b4574f-8c0e-5e46-9f2e-d0c3a5e3c6a1");
    assert_eq!(s.alarm_name, "articles-api-5xx-rate");
    assert_eq!(
        s.alarm_arn.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:articles-api-5xx-rate")
    );
    assert_eq!(
        s.description.as_deref(),
        Some("5xx responses from articles-api targets above 5 per minute")
    );
    assert_eq!(s.previous_state, Some(AlarmState::Ok));
    assert_eq!(s.changed_at, utc("2026-03-14T14:35:00Z"));
    assert!(s.reason.starts_with("Threshold Crossed"));
    assert!(s.tags.is_empty());
    let Trigger::Metric {
        metrics,
        threshold,
        comparison,
        evaluation_periods,
    } = &s.trigger
    else {
        panic!("not a metric trigger: {:?}", s.trigger)
    };
    assert_eq!(*threshold, Some(5.0));
    assert_eq!(comparison.as_deref(), Some("GreaterThanThreshold"));
    assert_eq!(*evaluation_periods, Some(1));
    assert_eq!(metrics.len(), 1);
    let m = &metrics[0];
    assert_eq!(m.namespace.as_deref(), Some("AWS/ApplicationELB"));
    assert_eq!(m.metric_name.as_deref(), Some("HTTPCode_Target_5XX_Count"));
    assert_eq!(m.statistic.as_deref(), Some("SUM"));
    assert_eq!(m.period_s, Some(60));
    assert!(m.return_data);
    assert_eq!(
        m.dimensions.get("TargetGroup").map(String::as_str),
        Some("targetgroup/articles-api/73e2d6bc24d8a067")
    );
}

#[test]
fn sns_metric_math_alarm_keeps_every_entry_and_its_ecs_dimensions() {
    let s = one("sns-metric-math-alarm.json");
    let metrics = s.trigger.metrics();
    assert_eq!(metrics.len(), 3);
    assert_eq!(metrics[0].id.as_deref(), Some("e1"));
    assert_eq!(metrics[0].expression.as_deref(), Some("100 * errors / requests"));
    assert!(metrics[0].return_data);
    assert!(metrics[0].metric_name.is_none());
    assert_eq!(metrics[1].id.as_deref(), Some("errors"));
    assert!(!metrics[1].return_data);
    assert_eq!(metrics[1].statistic.as_deref(), Some("Sum"));
    assert_eq!(
        s.trigger.primary_metric().and_then(|m| m.metric_name.as_deref()),
        Some("HTTPCode_Target_5XX_Count")
    );
    assert_eq!(
        s.ecs_dimensions(),
        Some(("prod".to_string(), "articles-api".to_string()))
    );
    assert!(
        matches!(s.trigger, Trigger::Metric { threshold: Some(t), evaluation_periods: Some(2), .. } if t == 5.0)
    );
}

#[test]
fn sns_composite_alarm_has_rule_children_and_list_shaped_tags() {
    let s = one("sns-composite-alarm.json");
    assert_eq!(
        s.trigger,
        Trigger::Composite {
            rule: "ALARM(\"articles-api-5xx-rate\") AND ALARM(\"articles-api-db-connections\")".into(),
            triggering_alarms: vec!["articles-api-5xx-rate".into()],
        }
    );
    assert_eq!(s.tag("service"), Some("prod/articles-api"));
    assert_eq!(s.tag("severity"), Some("SEV2"));
}

#[test]
fn sns_batch_gives_one_signal_per_record_in_order() {
    let signals = load("sns-batch-2-records.json");
    let names: Vec<&str> = signals.iter().map(|s| s.alarm_name.as_str()).collect();
    assert_eq!(names, ["articles-api-5xx-rate", "articles-api-db-connections"]);
    assert_ne!(signals[0].delivery_id, signals[1].delivery_id);
    assert_eq!(signals[1].changed_at, utc("2026-03-14T14:35:20Z"));
}

#[test]
fn eventbridge_metric_alarm_takes_id_account_region_and_arn_from_the_envelope() {
    let s = one("eventbridge-metric-alarm.json");
    assert_eq!(s.delivery_id, "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92");
    assert_eq!(
        s.alarm_arn.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:articles-api-5xx-rate")
    );
    assert_eq!(s.changed_at, utc("2026-03-14T14:35:00Z"));
    assert_eq!(s.previous_state, Some(AlarmState::Ok));
    // The threshold comes from the state's reasonData.
    assert!(matches!(s.trigger, Trigger::Metric { threshold: Some(t), .. } if t == 5.0));
    let m = &s.trigger.metrics()[0];
    assert_eq!(m.metric_name.as_deref(), Some("HTTPCode_Target_5XX_Count"));
    assert_eq!(m.period_s, Some(60));
    assert_eq!(m.dimensions.len(), 2);
}

#[test]
fn eventbridge_composite_reads_alarm_tags_and_triggering_alarms() {
    let s = one("eventbridge-composite-alarm.json");
    assert_eq!(s.tag("ecs-cluster"), Some("prod"));
    assert_eq!(s.tag("ecs-service"), Some("articles-api"));
    assert_eq!(s.tag("runbook"), Some("db-connection-pool"));
    let Trigger::Composite {
        rule,
        triggering_alarms,
    } = &s.trigger
    else {
        panic!("not composite")
    };
    assert!(rule.starts_with("ALARM("));
    assert_eq!(triggering_alarms, &["articles-api-5xx-rate".to_string()]);
    assert_eq!(
        s.description.as_deref(),
        Some("articles-api is failing requests and its database pool is saturated")
    );
}

#[test]
fn lambda_action_delivery_id_is_a_stable_digest_of_arn_time_and_state() {
    let s = one("lambda-action-metric-alarm.json");
    let arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:articles-api-5xx-rate";
    let want = fnv1a(format!("{arn}\n2026-03-14T14:35:00.000+0000\nALARM").as_bytes());
    assert_eq!(s.delivery_id, format!("{want:016x}"));
    assert_eq!(s.channel, Channel::LambdaAction);
    assert_eq!(s.tag("service"), Some("prod/articles-api"));
    // A redelivery computes the same id; the OK transition a different one.
    assert_eq!(one("lambda-action-metric-alarm.json").delivery_id, s.delivery_id);
    assert_ne!(one("lambda-action-metric-ok.json").delivery_id, s.delivery_id);
}

#[test]
fn lambda_action_composite_without_tags_or_description_parses() {
    let s = one("lambda-action-composite-alarm.json");
    assert!(s.tags.is_empty());
    assert!(s.description.is_none());
    assert_eq!(s.previous_state, Some(AlarmState::Ok));
    assert!(
        matches!(&s.trigger, Trigger::Composite { triggering_alarms, .. } if triggering_alarms.len() == 1)
    );
}

#[test]
fn a_minimal_sns_notification_with_optional_fields_missing_parses() {
    let message = json!({
        "AlarmName": "articles-api-latency",
        "NewStateValue": "INSUFFICIENT_DATA",
        "StateChangeTime": "2026-03-14T14:35:00.000+0000",
        "Region": "EU - Ireland",
        "Trigger": {"MetricName": "TargetResponseTime", "Namespace": "AWS/ApplicationELB",
                    "ExtendedStatistic": "p99", "Threshold": null, "Dimensions": null}
    });
    let event = json!({"Records": [{"Sns": {"MessageId": "m-1", "Message": message.to_string()}}]});
    let s = parse_event(&event).unwrap().remove(0);
    assert_eq!(s.state, AlarmState::InsufficientData);
    assert_eq!(s.previous_state, None);
    assert_eq!(s.alarm_arn, None);
    assert_eq!(s.account, None);
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    assert_eq!(s.reason, "");
    let m = &s.trigger.metrics()[0];
    assert_eq!(m.statistic.as_deref(), Some("p99"));
    assert!(m.dimensions.is_empty());
    assert!(matches!(s.trigger, Trigger::Metric { threshold: None, .. }));
}

#[test]
fn sns_region_code_comes_from_the_alarm_arn_not_the_region_name() {
    let message = json!({
        "AlarmName": "x", "NewStateValue": "ALARM", "StateChangeTime": "2026-03-14T14:35:00Z",
        "Region": "US East (N. Virginia)",
        "AlarmArn": "arn:aws:cloudwatch:eu-central-1:210987654321:alarm:x"
    });
    let event = json!({"Records": [{"Sns": {"MessageId": "m-1", "Message": message.to_string()}}]});
    let s = parse_event(&event).unwrap().remove(0);
    assert_eq!(s.region.as_deref(), Some("eu-central-1"));
    assert_eq!(s.account.as_deref(), Some("210987654321"));
}

#[test]
fn tags_accept_a_map_or_a_key_value_list() {
    for tags in [
        json!({"service": "checkout", "tier": 1}),
        json!([{"Key": "service", "Value": "checkout"}, {"key": "tier", "value": "1"}]),
    ] {
        let message = json!({"AlarmName": "x", "NewStateValue": "OK",
            "StateChangeTime": "2026-03-14T14:35:00Z", "AlarmTags": tags});
        let event = json!({"Records": [{"Sns": {"MessageId": "m", "Message": message.to_string()}}]});
        let s = parse_event(&event).unwrap().remove(0);
        assert_eq!(s.tag("service"), Some("checkout"));
        assert_eq!(s.tag("tier"), Some("1"));
    }
}

#[test]
fn timestamps_parse_with_and_without_a_colon_in_the_offset() {
    let want = utc("2026-03-14T14:35:00Z");
    for s in [
        "2026-03-14T14:35:00.000+0000",
        "2026-03-14T14:35:00+0000",
        "2026-03-14T14:35:00Z",
        "2026-03-14T14:35:00.000+00:00",
        "2026-03-14T15:35:00.000+0100",
        "2026-03-14T14:35:00.000",
    ] {
        assert_eq!(parse_time(s), Some(want), "{s}");
    }
    assert_eq!(parse_time("14/03/2026"), None);
    assert_eq!(parse_time(""), None);
}

#[test]
fn an_eventbridge_event_of_another_source_is_refused_naming_source() {
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(events_dir().join("eventbridge-metric-ok.json")).unwrap(),
    )
    .unwrap();
    event["source"] = json!("aws.ec2");
    let err = parse_event(&event).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { what, .. } if what == "source"),
        "{err}"
    );
}

#[test]
fn arn_alarm_name_keeps_colons_in_names_and_rejects_other_arns() {
    assert_eq!(
        arn_alarm_name("arn:aws:cloudwatch:us-east-1:1:alarm:a:b").as_deref(),
        Some("a:b")
    );
    assert_eq!(arn_alarm_name("arn:aws:sns:us-east-1:1:topic"), None);
    assert_eq!(arn_alarm_name("nonsense"), None);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("ALARM"),
            Just("OK"),
            Just("2026-03-14T14:35:00.000+0000"),
            Just("arn:aws:cloudwatch:us-east-1:1:alarm:x"),
            Just("CloudWatch Alarm State Change"),
            Just("aws.cloudwatch"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    let keys = prop_oneof![
        Just("Records".to_string()),
        Just("Sns".to_string()),
        Just("Message".to_string()),
        Just("MessageId".to_string()),
        Just("detail".to_string()),
        Just("detail-type".to_string()),
        Just("alarmData".to_string()),
        Just("state".to_string()),
        Just("value".to_string()),
        Just("configuration".to_string()),
        Just("metrics".to_string()),
        "[a-zA-Z]{1,8}",
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the value at a pseudo-random path of `v` with `replacement`.
fn mutate(v: &mut Value, choice: usize, replacement: Value) {
    let descend = choice % 3 != 0
        && match v {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => false,
        };
    if !descend {
        *v = replacement;
        return;
    }
    let next = choice / 3;
    match v {
        Value::Object(m) => {
            let n = m.len();
            if let Some(child) = m.values_mut().nth(choice % n) {
                mutate(child, next, replacement);
            }
        }
        Value::Array(a) => {
            let n = a.len();
            if let Some(child) = a.get_mut(choice % n) {
                mutate(child, next, replacement);
            }
        }
        _ => {}
    }
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let _ = parse_event(&v);
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = parse_event_str(&s);
    }

    #[test]
    fn mutated_sample_events_never_panic(file in 0usize..64, choice in any::<usize>(), replacement in arb_json()) {
        let files = json_files(&events_dir());
        let path = &files[file % files.len()];
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        mutate(&mut v, choice, replacement.clone());
        let _ = parse_event(&v);
        // Also mutate inside the SNS message text, which is a JSON document of its own.
        if let Some(text) = v.pointer("/Records/0/Sns/Message").and_then(Value::as_str) {
            if let Ok(mut inner) = serde_json::from_str::<Value>(text) {
                mutate(&mut inner, choice / 7, replacement);
                v["Records"][0]["Sns"]["Message"] = Value::String(inner.to_string());
                let _ = parse_event(&v);
            }
        }
    }
}
