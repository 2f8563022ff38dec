//! What PagerDuty and the webhook are sent about an incident (`model::oncall` says when and
//! how it is signed): the Events API v2 bodies and the webhook's JSON.

use crate::model::incident::{Incident, IncidentStatus};
use crate::model::oncall::{pagerduty_severity, Lifecycle};
use crate::model::page::PageFacts;
use crate::report::page::{cut, links};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// PagerDuty's limit on `payload.summary`.
pub const PAGERDUTY_SUMMARY_MAX_CHARS: usize = 1024;

/// The Events API v2 body for `action` (`trigger`, `acknowledge`, `resolve`) on `inc`.
pub fn pagerduty_body(inc: &Incident, action: &str, routing_key: &str, region: &str) -> Value {
    if action != "trigger" {
        return json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": inc.id.as_str(),
        });
    }
    let facts = PageFacts::of(inc, crate::model::page::PageEvent::Notice);
    let summary = cut(
        &crate::model::text::one_line(&format!("[{}] {}: {}", inc.severity, inc.service, inc.title)),
        PAGERDUTY_SUMMARY_MAX_CHARS,
    );
    let shown: Vec<Value> = links(&facts, region)
        .into_iter()
        .map(|l| json!({"href": l.url, "text": l.label}))
        .collect();
    let mut payload = json!({
        "summary": summary,
        "source": inc.service,
        "severity": pagerduty_severity(inc.severity),
        "timestamp": inc.detected_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "class": inc.cause.as_deref().or(inc.rule.as_deref()).unwrap_or("alarm"),
        "custom_details": details(inc),
    });
    if let Some(ecs) = &inc.ecs {
        payload["component"] = json!(ecs.service);
        payload["group"] = json!(ecs.cluster);
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": inc.id.as_str(),
        "payload": payload,
        "client": "Firebreak",
        "links": shown,
    })
}

/// What the webhook is told about `inc` at `event`.
pub fn webhook_body(
    inc: &Incident,
    event: Lifecycle,
    delivery_id: &str,
    at: DateTime<Utc>,
    region: &str,
) -> Value {
    let facts = PageFacts::of(inc, crate::model::page::PageEvent::Notice);
    let shown: Vec<Value> = links(&facts, region)
        .into_iter()
        .map(|l| json!({"href": l.url, "text": l.label}))
        .collect();
    let mut incident = details(inc);
    incident["links"] = json!(shown);
    json!({
        "type": event.webhook_type(),
        "id": delivery_id,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "incident": incident,
    })
}

fn details(inc: &Incident) -> Value {
    let times = crate::report::metrics::StageTimes::of(inc);
    json!({
        "id": inc.id.as_str(),
        "service": inc.service,
        "ecs_service": inc.ecs.as_ref().map(|e| format!("{}/{}", e.cluster, e.service)),
        "severity": inc.severity.as_str(),
        "status": status(inc.status),
        "title": inc.title,
        "alarms": inc.alarms.keys().collect::<Vec<_>>(),
        "cause": inc.cause,
        "runbook": inc.runbook,
        "cycle": inc.reopened,
        "detected_at": inc.detected_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "acknowledged_by": inc.acknowledged_by,
        "resolved_at": inc.resolved_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "time_to_resolve_s": times.time_to_resolve_s,
        "remediations": inc.remediations.iter().map(|r| json!({
            "action": r.action.to_string(),
            "mode": r.mode.to_string(),
            "outcome": r.outcome.to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn status(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Open => "open",
        IncidentStatus::Mitigated => "mitigated",
        IncidentStatus::Resolved => "resolved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::incident::{EcsService, IncidentId};
    use crate::model::severity::Severity;
    use chrono::TimeZone;

    fn incident() -> Incident {
        let at = Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap();
        let mut i = Incident::open(
            IncidentId("INC-20260314-143500-a1b2c3d4".into()),
            "prod/articles-api",
            Severity::Sev2,
            "articles-api-5xx-rate on prod/articles-api",
            at,
            at,
        );
        i.ecs = Some(EcsService::new("prod", "articles-api"));
        i
    }

    #[test]
    fn a_trigger_has_the_documented_fields() {
        let b = pagerduty_body(&incident(), "trigger", "R0UT1NGKEY", "us-east-1");
        assert_eq!(b["routing_key"], "R0UT1NGKEY");
        assert_eq!(b["event_action"], "trigger");
        assert_eq!(b["dedup_key"], "INC-20260314-143500-a1b2c3d4");
        let p = &b["payload"];
        assert_eq!(
            p["summary"],
            "[SEV2] prod/articles-api: articles-api-5xx-rate on prod/articles-api"
        );
        assert_eq!(p["source"], "prod/articles-api");
        assert_eq!(p["severity"], "error");
        assert_eq!(p["timestamp"], "2026-03-14T14:35:00Z");
        assert_eq!(p["component"], "articles-api");
        assert_eq!(p["group"], "prod");
        assert_eq!(p["custom_details"]["status"], "open");
        assert!(b["links"][0]["href"]
            .as_str()
            .unwrap()
            .starts_with("https://us-east-1.console.aws.amazon.com/ecs/"));
    }

    #[test]
    fn acknowledge_and_resolve_carry_only_the_key() {
        for a in ["acknowledge", "resolve"] {
            let b = pagerduty_body(&incident(), a, "K", "us-east-1");
            assert_eq!(
                b,
                json!({"routing_key": "K", "event_action": a, "dedup_key": "INC-20260314-143500-a1b2c3d4"})
            );
        }
    }

    #[test]
    fn the_summary_is_cut_to_pagerdutys_limit() {
        let mut i = incident();
        i.title = "x".repeat(3000);
        let b = pagerduty_body(&i, "trigger", "K", "us-east-1");
        assert_eq!(
            b["payload"]["summary"].as_str().unwrap().chars().count(),
            PAGERDUTY_SUMMARY_MAX_CHARS
        );
    }

    #[test]
    fn the_webhook_body_names_the_event_and_the_incident() {
        let at = Utc.with_ymd_and_hms(2026, 3, 14, 14, 36, 0).unwrap();
        let b = webhook_body(&incident(), Lifecycle::RemediationApplied, "d-1", at, "us-east-1");
        assert_eq!(b["type"], "incident.remediation_applied");
        assert_eq!(b["id"], "d-1");
        assert_eq!(b["timestamp"], "2026-03-14T14:36:00Z");
        assert_eq!(b["incident"]["id"], "INC-20260314-143500-a1b2c3d4");
        assert_eq!(b["incident"]["severity"], "SEV2");
        assert_eq!(b["incident"]["ecs_service"], "prod/articles-api");
    }
}
