use super::*;
use crate::model::signal::{AlarmState, Channel, Trigger};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn signal(
    name: &str,
    metric: Option<(&str, &str)>,
    dims: &[(&str, &str)],
    tags: &[(&str, &str)],
) -> AlarmSignal {
    let metrics = metric
        .map(|(ns, m)| {
            vec![MetricRef {
                namespace: Some(ns.to_string()),
                metric_name: Some(m.to_string()),
                dimensions: dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                return_data: true,
                ..MetricRef::default()
            }]
        })
        .unwrap_or_default();
    AlarmSignal {
        delivery_id: "d-1".into(),
        channel: Channel::Sns,
        alarm_name: name.into(),
        alarm_arn: None,
        description: None,
        account: None,
        region: None,
        state: AlarmState::Alarm,
        previous_state: Some(AlarmState::Ok),
        reason: String::new(),
        changed_at: Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap(),
        trigger: Trigger::Metric {
            metrics,
            threshold: None,
            comparison: None,
            evaluation_periods: None,
        },
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn composite(name: &str, tags: &[(&str, &str)]) -> AlarmSignal {
    let mut s = signal(name, None, &[], tags);
    s.trigger = Trigger::Composite {
        rule: "ALARM(a) OR ALARM(b)".into(),
        triggering_alarms: vec!["a".into()],
    };
    s
}

/// A metric as `(namespace, metric name)`.
type Metric<'a> = Option<(&'a str, &'a str)>;

fn shipped() -> SeverityPolicy {
    SeverityPolicy::shipped().unwrap()
}

#[test]
fn the_shipped_policy_file_loads_and_equals_the_embedded_copy() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runbooks/policy.yaml");
    assert_eq!(SeverityPolicy::load(&path).unwrap(), shipped());
    assert_eq!(shipped().default, Severity::Sev3);
}

#[test]
fn shipped_policy_classifies_one_alarm_per_rule() {
    // (alarm name, metric, expected severity, expected rule): one row per rule, in policy order.
    let alb = "AWS/ApplicationELB";
    let rows: &[(&str, Metric, Severity, &str)] = &[
        (
            "tg-hosts",
            Some((alb, "HealthyHostCount")),
            Severity::Sev1,
            "lb-no-healthy-targets",
        ),
        (
            "tg-bad-hosts",
            Some(("AWS/NetworkELB", "UnHealthyHostCount")),
            Severity::Sev1,
            "lb-unhealthy-targets",
        ),
        (
            "tasks",
            Some(("ECS/ContainerInsights", "RunningTaskCount")),
            Severity::Sev1,
            "ecs-no-running-tasks",
        ),
        (
            "articles-api-all-unhealthy",
            None,
            Severity::Sev1,
            "outage-by-name",
        ),
        (
            "articles-api-HealthCheck-failing",
            None,
            Severity::Sev1,
            "outage-by-name",
        ),
        ("alb-unreachable", None, Severity::Sev1, "outage-by-name"),
        ("orders-db-down", None, Severity::Sev1, "outage-by-name"),
        (
            "t5",
            Some((alb, "HTTPCode_Target_5XX_Count")),
            Severity::Sev2,
            "http-5xx",
        ),
        (
            "e5",
            Some((alb, "HTTPCode_ELB_5XX_Count")),
            Severity::Sev2,
            "http-5xx",
        ),
        ("articles-api-5xx-ratio", None, Severity::Sev2, "http-5xx-by-name"),
        ("articles-api-5XX-rate", None, Severity::Sev2, "http-5xx-by-name"),
        (
            "rds",
            Some(("AWS/RDS", "DatabaseConnections")),
            Severity::Sev2,
            "db-connections",
        ),
        (
            "articles-api-connection-pool-exhausted",
            None,
            Severity::Sev2,
            "db-connection-pool-by-name",
        ),
        (
            "articles-api-db-connections",
            None,
            Severity::Sev2,
            "db-connection-pool-by-name",
        ),
        (
            "articles-api-scaling-failed",
            None,
            Severity::Sev2,
            "scaling-failure",
        ),
        ("articles-api-degraded", None, Severity::Sev2, "degraded-by-name"),
        (
            "ec",
            Some(("AWS/ElastiCache", "EngineCPUUtilization")),
            Severity::Sev3,
            "cache",
        ),
        ("articles-cache-evictions", None, Severity::Sev3, "cache-by-name"),
        ("articles-api-logging-down", None, Severity::Sev3, "logging"),
        ("firelens-log-delivery-errs", None, Severity::Sev3, "logging"),
        (
            "grafana-dashboard-unavailable",
            None,
            Severity::Sev3,
            "monitoring",
        ),
        ("rt", Some((alb, "TargetResponseTime")), Severity::Sev3, "latency"),
        ("articles-api-p99", None, Severity::Sev3, "latency-by-name"),
        (
            "cpu",
            Some(("AWS/ECS", "CPUUtilization")),
            Severity::Sev3,
            "cpu-memory",
        ),
        (
            "articles-api-high-memory",
            None,
            Severity::Sev3,
            "cpu-memory-by-name",
        ),
        (
            "acm",
            Some(("AWS/CertificateManager", "DaysToExpiry")),
            Severity::Sev4,
            "certificate-expiry",
        ),
        (
            "articles-cert-expiring-30d",
            None,
            Severity::Sev4,
            "certificate-expiry-by-name",
        ),
        (
            "agent",
            Some(("CWAgent", "disk_used_percent")),
            Severity::Sev4,
            "disk-usage",
        ),
        ("bastion-disk-70pct", None, Severity::Sev4, "disk-usage-by-name"),
        (
            "partner-api-rate-limit-warning",
            None,
            Severity::Sev4,
            "rate-limit-warning",
        ),
        ("something-else-entirely", None, Severity::Sev3, DEFAULT_RULE),
    ];
    let policy = shipped();
    for (name, metric, sev, rule) in rows {
        let c = policy.classify(&signal(name, *metric, &[], &[]));
        assert_eq!((c.severity, c.rule.as_deref()), (*sev, Some(*rule)), "{name}");
    }
    // Every rule of the shipped policy has a row.
    for rule in &policy.rules {
        assert!(
            rows.iter().any(|r| r.3 == rule.name),
            "rule {} has no table row",
            rule.name
        );
    }
}

#[test]
fn shipped_policy_classifies_the_seed_examples() {
    // The seed's examples, each as an alarm the way it would be set up for articles-api.
    let alb = "AWS/ApplicationELB";
    let rows: &[(&str, &str, Metric, Severity)] = &[
        (
            "all containers failing health checks",
            "articles-api-all-unhealthy",
            Some((alb, "HealthyHostCount")),
            Severity::Sev1,
        ),
        (
            "load balancer unreachable",
            "prod-alb-unreachable",
            None,
            Severity::Sev1,
        ),
        ("database crashed", "articles-db-down", None, Severity::Sev1),
        (
            "one endpoint returning 500s",
            "articles-api-5xx-rate",
            Some((alb, "HTTPCode_Target_5XX_Count")),
            Severity::Sev2,
        ),
        (
            "DB connection pool exhausted",
            "articles-api-db-connections",
            Some(("AWS/RDS", "DatabaseConnections")),
            Severity::Sev2,
        ),
        (
            "auto-scaling failing to add capacity",
            "articles-api-capacity-not-added",
            None,
            Severity::Sev2,
        ),
        (
            "logging service down",
            "articles-api-log-delivery-failing",
            None,
            Severity::Sev3,
        ),
        (
            "cache degraded",
            "articles-cache-hit-rate-low",
            Some(("AWS/ElastiCache", "CacheHitRate")),
            Severity::Sev3,
        ),
        (
            "monitoring dashboard unavailable",
            "ops-dashboard-down",
            None,
            Severity::Sev3,
        ),
        (
            "SSL certificate expiring in 30 days",
            "articles-cert-expiry-30d",
            Some(("AWS/CertificateManager", "DaysToExpiry")),
            Severity::Sev4,
        ),
        (
            "disk usage at 70%",
            "articles-worker-disk-70",
            Some(("CWAgent", "disk_used_percent")),
            Severity::Sev4,
        ),
        (
            "API rate limit warnings",
            "payments-api-throttling-warning",
            None,
            Severity::Sev4,
        ),
    ];
    let policy = shipped();
    for (example, name, metric, sev) in rows {
        assert_eq!(
            policy.classify(&signal(name, *metric, &[], &[])).severity,
            *sev,
            "{example}"
        );
    }
}

#[test]
fn shipped_policy_classifies_the_sample_events() {
    let policy = shipped();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let read =
        |f: &str| crate::intake::parse_event_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
    let c = policy.classify(&read("sns-metric-alarm.json")[0]);
    assert_eq!(
        (c.severity, c.rule.as_deref()),
        (Severity::Sev2, Some("http-5xx"))
    );
    // No ECS dimensions on an ALB metric: the policy's mapping names the ECS service.
    assert_eq!(c.service, "prod/articles-api");
    assert_eq!(c.ecs, Some(EcsService::new("prod", "articles-api")));
    let c = policy.classify(&read("eventbridge-composite-alarm.json")[0]);
    assert_eq!((c.severity, c.rule.as_deref()), (Severity::Sev2, Some(TAG_RULE)));
    assert_eq!(c.service, "prod/articles-api");
    assert_eq!(c.runbook_hint.as_deref(), Some("db-connection-pool"));
    let batch = read("sns-batch-2-records.json");
    assert_eq!(policy.classify(&batch[1]).rule.as_deref(), Some("db-connections"));
}

#[test]
fn a_valid_severity_tag_overrides_the_rules() {
    let s = signal("articles-api-5xx-rate", None, &[], &[("severity", "sev1")]);
    let c = shipped().classify(&s);
    assert_eq!((c.severity, c.rule.as_deref()), (Severity::Sev1, Some(TAG_RULE)));
    assert!(c.notes.is_empty());
}

#[test]
fn the_severity_tag_changes_the_paged_severity_but_not_the_policy_severity() {
    let s = signal("articles-api-5xx-rate", None, &[], &[("severity", "SEV1")]);
    let c = shipped().classify(&s);
    assert_eq!((c.severity, c.rule.as_deref()), (Severity::Sev1, Some(TAG_RULE)));
    assert_eq!(
        (c.policy_severity, c.policy_rule.as_str()),
        (Severity::Sev2, "http-5xx-by-name")
    );
    // a tag that lowers the severity does not lower the policy's either
    let s = signal("articles-api-5xx-rate", None, &[], &[("severity", "SEV4")]);
    let c = shipped().classify(&s);
    assert_eq!((c.severity, c.policy_severity), (Severity::Sev4, Severity::Sev2));
    // without a tag the two are the same
    let c = shipped().classify(&signal("articles-api-5xx-rate", None, &[], &[]));
    assert_eq!((c.severity, c.policy_severity), (Severity::Sev2, Severity::Sev2));
    assert_eq!(c.rule.as_deref(), Some(c.policy_rule.as_str()));
}

#[test]
fn an_invalid_severity_tag_is_ignored_and_noted() {
    let s = signal("articles-api-5xx-rate", None, &[], &[("severity", "urgent")]);
    let c = shipped().classify(&s);
    assert_eq!(
        (c.severity, c.rule.as_deref()),
        (Severity::Sev2, Some("http-5xx-by-name"))
    );
    assert_eq!(c.notes.len(), 1);
    assert!(c.notes[0].contains("urgent"), "{:?}", c.notes);
}

#[test]
fn the_service_tag_wins_over_everything() {
    let s = signal(
        "articles-api-5xx-rate",
        Some(("AWS/ECS", "CPUUtilization")),
        &[("ClusterName", "prod"), ("ServiceName", "articles-api")],
        &[
            ("service", "articles"),
            ("ecs-cluster", "blue"),
            ("ecs-service", "articles-api-v2"),
        ],
    );
    let c = shipped().classify(&s);
    assert_eq!(c.service, "articles");
    assert_eq!(c.ecs, Some(EcsService::new("blue", "articles-api-v2")));
}

#[test]
fn ecs_tags_win_over_dimensions_and_dimensions_over_the_mapping() {
    let dims = [("ClusterName", "staging"), ("ServiceName", "articles-api")];
    let metric = Some(("AWS/ECS", "CPUUtilization"));
    let tagged = signal(
        "articles-api-cpu",
        metric,
        &dims,
        &[("ecs-cluster", "prod"), ("ecs-service", "articles-api")],
    );
    assert_eq!(shipped().classify(&tagged).service, "prod/articles-api");
    // Dimensions beat the policy mapping (which says prod/articles-api).
    let by_dims = shipped().classify(&signal("articles-api-cpu", metric, &dims, &[]));
    assert_eq!(by_dims.service, "staging/articles-api");
    assert_eq!(by_dims.ecs, Some(EcsService::new("staging", "articles-api")));
    // Only one of the two ECS tags: ignored, noted, dimensions decide.
    let half = shipped().classify(&signal(
        "articles-api-cpu",
        metric,
        &dims,
        &[("ecs-cluster", "prod")],
    ));
    assert_eq!(half.service, "staging/articles-api");
    assert!(half.notes.iter().any(|n| n.contains("both")), "{:?}", half.notes);
}

#[test]
fn composite_alarms_without_dimensions_take_service_from_mapping_or_tags_else_their_name() {
    let policy = shipped();
    let mapped = policy.classify(&composite("articles-api-degraded", &[]));
    assert_eq!(mapped.service, "prod/articles-api");
    assert_eq!(mapped.ecs, Some(EcsService::new("prod", "articles-api")));
    let service_only = policy.classify(&composite("articles-db-replica-lag", &[]));
    assert_eq!(service_only.service, "articles-db");
    assert_eq!(service_only.ecs, None);
    let tagged = policy.classify(&composite("checkout-degraded", &[("service", "checkout")]));
    assert_eq!(tagged.service, "checkout");
    let unmapped = policy.classify(&composite("checkout-degraded", &[]));
    assert_eq!(unmapped.service, "checkout-degraded");
    assert_eq!(unmapped.ecs, None);
    // Composites have no metrics: metric rules cannot match them, name rules can.
    assert_eq!(unmapped.rule.as_deref(), Some("degraded-by-name"));
}

#[test]
fn escalate_only_moves_towards_sev1() {
    assert_eq!(escalate(Severity::Sev3, Severity::Sev1), Some(Severity::Sev1));
    assert_eq!(escalate(Severity::Sev2, Severity::Sev2), None);
    assert_eq!(escalate(Severity::Sev1, Severity::Sev4), None);
    assert_eq!(escalate(Severity::Sev4, Severity::Sev3), Some(Severity::Sev3));
}

const SMALL: &str = r#"
default: SEV4
rules:
  - name: prod-api
    severity: SEV1
    match:
      alarm_name: "api-*"
      dimensions: { ClusterName: "prod*" }
      tags: { tier: gold }
  - name: any-5xx
    severity: SEV2
    match:
      metric: "*5XX*"
      namespace: AWS/ApplicationELB
"#;

#[test]
fn a_rule_matches_only_when_all_its_criteria_hold_and_first_match_wins() {
    let p = SeverityPolicy::from_yaml_str(SMALL).unwrap();
    let dims = [("ClusterName", "prod-eu")];
    let gold = [("tier", "gold")];
    let m = Some(("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"));
    assert_eq!(
        p.classify(&signal("api-5xx", m, &dims, &gold)).rule.as_deref(),
        Some("prod-api")
    );
    // One criterion fails each time: falls through to the next rule or the default.
    assert_eq!(
        p.classify(&signal("api-5xx", m, &dims, &[("tier", "silver")]))
            .rule
            .as_deref(),
        Some("any-5xx")
    );
    assert_eq!(
        p.classify(&signal("api-5xx", m, &[("ClusterName", "staging")], &gold))
            .rule
            .as_deref(),
        Some("any-5xx")
    );
    assert_eq!(
        p.classify(&signal("web-5xx", m, &dims, &gold)).rule.as_deref(),
        Some("any-5xx")
    );
    let other_ns = Some(("AWS/ApiGateway", "5XXError"));
    let c = p.classify(&signal("web", other_ns, &[], &[]));
    assert_eq!(
        (c.severity, c.rule.as_deref()),
        (Severity::Sev4, Some(DEFAULT_RULE))
    );
}

#[test]
fn namespace_and_metric_must_match_the_same_metric_entry() {
    let p = SeverityPolicy::from_yaml_str(SMALL).unwrap();
    let mut s = signal("web", Some(("AWS/ApplicationELB", "RequestCount")), &[], &[]);
    if let Trigger::Metric { metrics, .. } = &mut s.trigger {
        metrics.push(MetricRef {
            namespace: Some("Custom".into()),
            metric_name: Some("HTTP_5XX".into()),
            ..MetricRef::default()
        });
    }
    assert_eq!(p.classify(&s).rule.as_deref(), Some(DEFAULT_RULE));
}

#[test]
fn policy_errors_name_the_source_rule_and_field() {
    let cases: &[(&str, &str)] = &[
        ("default: SEV9\n", "policy"),
        ("default: SEV3\nrules:\n  - name: a\n    severity: SEV1\n    sevrity: SEV2\n", "sevrity"),
        ("default: SEV3\nrules:\n  - name: a\n    severity: SEV1\n    match: { alarm: x }\n", "alarm"),
        ("default: SEV3\nrules:\n  - name: ''\n    severity: SEV1\n", "policy: rules[0].name"),
        (
            "default: SEV3\nrules:\n  - {name: a, severity: SEV1}\n  - {name: a, severity: SEV2}\n",
            "policy: rules[1] (\"a\").name",
        ),
        (
            "default: SEV3\nrules:\n  - name: bad-glob\n    severity: SEV1\n    match: { alarm_name: [ok, 'x[0-9]'] }\n",
            "policy: rules[0] (\"bad-glob\").match.alarm_name[1]",
        ),
        (
            "default: SEV3\nrules:\n  - name: d\n    severity: SEV1\n    match: { dimensions: { ClusterName: '' } }\n",
            "match.dimensions.ClusterName",
        ),
        ("default: SEV3\nservices:\n  - alarm: 'a-*'\n", "policy: services[0] (\"a-*\").service"),
        ("default: SEV3\nservices:\n  - { alarm: 'a-*', ecs: prod }\n", "services[0] (\"a-*\").ecs"),
        ("default: SEV3\nrules:\n  - {name: default, severity: SEV1}\n", "reserved"),
        ("rules: []\n", "default"),
    ];
    for (yaml, want) in cases {
        let err = SeverityPolicy::from_yaml_str(yaml).unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }));
        assert!(
            err.to_string().contains(want),
            "{yaml:?}: {err} does not mention {want:?}"
        );
    }
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("firebreak-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.yaml");
    std::fs::write(
        &path,
        "default: SEV3\nrules:\n  - {name: a, severity: SEV1, colour: red}\n",
    )
    .unwrap();
    let err = SeverityPolicy::load(&path).unwrap_err().to_string();
    assert!(err.contains("broken.yaml") && err.contains("colour"), "{err}");
    let err = SeverityPolicy::load(dir.join("missing.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.yaml") && err.contains("cannot read"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn glob_matches_stars_question_marks_and_case() {
    let yes = [
        ("*", ""),
        ("*", "anything"),
        ("a*", "a"),
        ("*-5xx-*", "articles-api-5xx-rate"),
        ("*5xx*", "articles-api-5XX-rate"),
        ("a?c", "abc"),
        ("*cert*expir*", "articles-cert-expiry-30d"),
        ("a*b*c", "aXXbYYbZZc"),
        ("**a", "a"),
        ("é?", "éx"),
    ];
    let no = [
        ("a", ""),
        ("a?c", "ac"),
        ("abc", "abcd"),
        ("*5xx", "5xx-rate"),
        ("a*b*c", "aXXbYY"),
        ("?", ""),
        ("prod", "production"),
    ];
    for (p, t) in yes {
        assert!(glob_match(p, t), "{p} should match {t}");
    }
    for (p, t) in no {
        assert!(!glob_match(p, t), "{p} should not match {t}");
    }
}

#[test]
fn validate_glob_rejects_empty_and_unsupported_syntax() {
    assert!(validate_glob("*-5xx-?").is_ok());
    for bad in ["", "x[0-9]", "{a,b}", "a\\*"] {
        assert!(validate_glob(bad).is_err(), "{bad:?}");
    }
}

/// A reference matcher by recursion, to check the linear one against.
fn glob_reference(p: &[char], t: &[char]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some('*'), _) => glob_reference(&p[1..], t) || (!t.is_empty() && glob_reference(p, &t[1..])),
        (Some('?'), Some(_)) => glob_reference(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob_reference(&p[1..], &t[1..]),
        _ => false,
    }
}

proptest! {
    #[test]
    fn glob_agrees_with_the_reference_matcher(p in "[ab*?]{0,8}", t in "[abAB]{0,10}") {
        let pc: Vec<char> = p.chars().collect();
        let tc: Vec<char> = t.chars().collect();
        prop_assert_eq!(glob_match(&p, &t), glob_reference(&pc, &tc));
    }
}
