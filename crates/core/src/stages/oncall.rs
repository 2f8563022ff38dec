//! The oncall use-case: tells PagerDuty and a signed webhook about an incident's lifecycle,
//! beside (never instead of, never before) the SNS pages the other stages send.
//!
//! It runs in its own function on the pipeline's events, so a slow or failing on-call tool
//! cannot delay or lose a page. What it sends comes from the stored incident, not from the
//! event: an "Incident Acknowledged" for an incident nobody acknowledged, or an "Incident
//! Resolved" for one still open, sends nothing.
//!
//! Each call is recorded on the timeline under an id naming the tool, the action and the cycle,
//! so a redelivery sends nothing already sent. A call that still fails after its retries (inside
//! the invocation's deadline) is recorded as a note with the error, and the stage reports it so
//! the function fails the invocation and Lambda retries it later, then the failure queue keeps it.

use crate::model::incident::{Incident, IncidentStatus};
use crate::model::oncall::{webhook_signature, Lifecycle, OnCallSettings};
use crate::model::pipeline::Event;
use crate::model::timeline::{detail, EntryKind, TimelineEntry};
use crate::ports::{Clock, HttpPost, HttpReply, HttpSender, IncidentStore};
use crate::report::oncall::{pagerduty_body, webhook_body};
use crate::Error;
use serde_json::Value;
use std::time::Duration;

/// Tries of one call, at most.
pub const MAX_ATTEMPTS: usize = 4;
/// One call's timeout.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The first pause between tries; it doubles.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// Kept before the invocation's deadline to record what happened.
const MARGIN: Duration = Duration::from_millis(1500);

/// Where each tool is and its secret (read once per cold start).
#[derive(Debug, Clone, Default)]
pub struct OnCallKeys {
    pub pagerduty_url: String,
    pub routing_key: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
}

/// One call made (or that would be made) to an on-call tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// `pagerduty` or `webhook`.
    pub kind: &'static str,
    pub body: Value,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `None` when it was accepted; else what went wrong.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnCallReport {
    pub sent: Vec<Sent>,
    /// Calls already recorded as sent (a redelivery).
    pub skipped: usize,
}

impl OnCallReport {
    pub fn failed(&self) -> usize {
        self.sent.iter().filter(|s| s.error.is_some()).count()
    }
}

pub struct OnCall<'a, S, K, H> {
    pub store: &'a S,
    pub clock: &'a K,
    pub http: &'a H,
    pub settings: &'a OnCallSettings,
    pub keys: &'a OnCallKeys,
    /// The region console links name.
    pub region: &'a str,
}

impl<S: IncidentStore, K: Clock, H: HttpSender> OnCall<'_, S, K, H> {
    /// Tells the configured tools what `event` means for its incident.
    ///
    /// # Errors
    /// Store errors (the delivery is retried; what was sent is recorded, so it is not resent).
    pub async fn handle(&self, event: &Event) -> Result<OnCallReport, Error> {
        let mut report = OnCallReport::default();
        if !self.settings.any() {
            return Ok(report);
        }
        let (id, life, discriminator) = match event {
            Event::Opened(r) => (&r.incident_id, Lifecycle::Opened, r.severity.to_string()),
            Event::Escalated(r) => (&r.incident_id, Lifecycle::Escalated, r.severity.to_string()),
            Event::Diagnosed(d) => (&d.incident_id, Lifecycle::Diagnosed, String::new()),
            Event::Applied(a) => (&a.incident_id, Lifecycle::RemediationApplied, a.action.clone()),
            Event::Acknowledged(a) => (&a.incident_id, Lifecycle::Acknowledged, String::new()),
            Event::Resolved(r) => (&r.incident_id, Lifecycle::Resolved, String::new()),
            Event::Recovered(_) | Event::Approved(_) => return Ok(report),
        };
        let Some(inc) = self.store.get(id).await? else {
            return Ok(report);
        };
        // the stored incident decides, not the event
        let true_now = match life {
            Lifecycle::Acknowledged => inc.acknowledged_at.is_some(),
            Lifecycle::Resolved => inc.status == IncidentStatus::Resolved,
            _ => inc.status != IncidentStatus::Resolved || life == Lifecycle::Diagnosed,
        };
        if !true_now {
            return Ok(report);
        }
        let timeline = self.store.timeline(id).await?;
        let recorded = |eid: &str| timeline.iter().any(|e| e.event_id == eid);
        let cycle = inc.reopened;
        let prefix = |kind: &str| format!("{}/oncall/{kind}/", id.as_str());
        let told_before = |kind: &str| {
            let p = format!("{}c{cycle}/", prefix(kind));
            timeline
                .iter()
                .any(|e| e.event_id.starts_with(&p) && !e.event_id.contains("/failed/"))
        };

        if let (Some(target), Some(action)) = (&self.settings.pagerduty, life.pagerduty_action()) {
            let wanted = match action {
                "trigger" => target.wants(inc.severity),
                // only what was triggered is acknowledged or resolved
                _ => told_before("pagerduty"),
            };
            let eid = format!(
                "{}c{cycle}/{action}{}",
                prefix("pagerduty"),
                suffix(&discriminator)
            );
            if wanted && recorded(&eid) {
                report.skipped += 1;
            } else if wanted {
                let key = self.keys.routing_key.as_deref().unwrap_or_default();
                let body = pagerduty_body(&inc, action, key, self.region);
                let sent = self.send("pagerduty", &self.keys.pagerduty_url, body, None).await;
                self.record(&inc, &eid, &format!("PagerDuty {action}"), &sent, &timeline)
                    .await?;
                report.sent.push(sent);
            }
        }
        if let Some(target) = &self.settings.webhook {
            let wanted = target.wants(inc.severity)
                || (matches!(life, Lifecycle::Acknowledged | Lifecycle::Resolved) && told_before("webhook"));
            let eid = format!(
                "{}c{cycle}/{}{}",
                prefix("webhook"),
                life.as_str(),
                suffix(&discriminator)
            );
            if wanted && recorded(&eid) {
                report.skipped += 1;
            } else if wanted {
                let Some(url) = self.keys.webhook_url.as_deref() else {
                    return Err(Error::invalid(
                        "WEBHOOK_URL",
                        "a webhook is configured but has no URL",
                    ));
                };
                // the delivery id is the entry id's digest: the same on every retry
                let delivery = format!("fb_{:016x}", crate::model::incident::fnv1a(eid.as_bytes()));
                let body = webhook_body(&inc, life, &delivery, self.clock.now(), self.region);
                let sent = self
                    .send(
                        "webhook",
                        url,
                        body,
                        Some((&delivery, self.keys.webhook_secret.as_deref().unwrap_or_default())),
                    )
                    .await;
                self.record(
                    &inc,
                    &eid,
                    &format!("webhook {}", life.webhook_type()),
                    &sent,
                    &timeline,
                )
                .await?;
                report.sent.push(sent);
            }
        }
        Ok(report)
    }

    /// Posts `body`, retrying transport errors, 429 and 5xx with doubling pauses while the
    /// invocation's deadline (or, without one, [`MAX_ATTEMPTS`]) allows.
    async fn send(&self, kind: &'static str, url: &str, body: Value, sign: Option<(&str, &str)>) -> Sent {
        let at = self.clock.now();
        let text = body.to_string();
        let mut attempt = 0;
        let error = loop {
            let mut headers = vec![
                ("content-type".to_string(), "application/json".to_string()),
                (
                    "user-agent".to_string(),
                    format!("firebreak/{}", env!("CARGO_PKG_VERSION")),
                ),
            ];
            if let Some((id, secret)) = sign {
                let ts = self.clock.now().timestamp();
                headers.push(("webhook-id".to_string(), id.to_string()));
                headers.push(("webhook-timestamp".to_string(), ts.to_string()));
                headers.push((
                    "webhook-signature".to_string(),
                    webhook_signature(secret, id, ts, &text),
                ));
            }
            let request = HttpPost {
                url: url.to_string(),
                headers,
                body: text.clone(),
            };
            let (retry, why) = match self.http.post(&request, call_timeout()).await {
                Ok(HttpReply { status, .. }) if (200..300).contains(&status) => break None,
                Ok(HttpReply { status, body }) => (
                    status == 429 || status >= 500,
                    format!("HTTP {status}: {}", crate::model::text::one_line(&body)),
                ),
                Err(e) => (e.retryable, e.to_string()),
            };
            attempt += 1;
            let pause = FIRST_PAUSE.saturating_mul(1 << (attempt - 1).min(4));
            if !retry || !may_try_again(attempt, pause) {
                break Some(format!(
                    "{why} (after {attempt} {})",
                    if attempt == 1 { "try" } else { "tries" }
                ));
            }
            tokio::time::sleep(pause).await;
        };
        Sent {
            kind,
            body,
            at,
            error,
        }
    }

    async fn record(
        &self,
        inc: &Incident,
        eid: &str,
        what: &str,
        sent: &Sent,
        timeline: &[TimelineEntry],
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let entry = match &sent.error {
            None => TimelineEntry::new(eid.to_string(), now, EntryKind::Note, format!("{what} sent")),
            Some(e) => {
                let n = timeline
                    .iter()
                    .filter(|t| t.event_id.starts_with(&format!("{eid}/failed/")))
                    .count();
                tracing::warn!(incident = %inc.id, what, error = %e, "on-call call failed");
                TimelineEntry::new(
                    format!("{eid}/failed/{n}"),
                    now,
                    EntryKind::Note,
                    format!(
                        "{what} failed: {e}; the SNS pages are not affected, and the call is tried again"
                    ),
                )
                .with_detail(detail::Note {
                    error: Some(detail::CallError {
                        operation: what.to_string(),
                        code: None,
                        message: e.clone(),
                        retryable: true,
                    }),
                    ..detail::Note::default()
                })
            }
        };
        self.store.append(&inc.id, &[entry]).await?;
        Ok(())
    }
}

fn suffix(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!("/{d}")
    }
}

/// One call's timeout, shortened to what the invocation has left.
fn call_timeout() -> Duration {
    match crate::ports::retry::deadline() {
        Some(d) => d
            .saturating_duration_since(tokio::time::Instant::now())
            .saturating_sub(MARGIN)
            .min(CALL_TIMEOUT)
            .max(Duration::from_millis(100)),
        None => CALL_TIMEOUT,
    }
}

/// At most [`MAX_ATTEMPTS`] tries, and inside an invocation only while the pause, a call and
/// the margin fit before its deadline.
fn may_try_again(attempts: usize, pause: Duration) -> bool {
    attempts < MAX_ATTEMPTS
        && crate::ports::retry::deadline()
            .is_none_or(|d| tokio::time::Instant::now() + pause + CALL_TIMEOUT + MARGIN < d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{InMemoryHttp, InMemoryIncidentStore, SimClock};
    use crate::model::incident::{EcsService, IncidentId};
    use crate::model::oncall::{verify_webhook, Target};
    use crate::model::pipeline::{IncidentAcknowledged, IncidentRaised, IncidentResolved};
    use crate::model::severity::Severity;
    use crate::ports::{HttpReply, PointerChange, PortError};
    use chrono::{TimeZone, Utc};

    const ID: &str = "INC-20260314-143500-a1b2c3d4";
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    struct World {
        store: InMemoryIncidentStore,
        clock: SimClock,
        http: InMemoryHttp,
        settings: OnCallSettings,
        keys: OnCallKeys,
    }

    impl World {
        async fn new(sev: Severity) -> World {
            let store = InMemoryIncidentStore::new();
            let at = Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap();
            let mut i = Incident::open(
                IncidentId(ID.into()),
                "prod/articles-api",
                sev,
                "articles-api-5xx",
                at,
                at,
            );
            i.ecs = Some(EcsService::new("prod", "articles-api"));
            store.open(&i, &[], Duration::from_secs(1800)).await.unwrap();
            World {
                store,
                clock: SimClock::new(at),
                http: InMemoryHttp::new(),
                settings: OnCallSettings {
                    pagerduty: Some(Target {
                        severities: vec![Severity::Sev1, Severity::Sev2],
                    }),
                    webhook: Some(Target {
                        severities: vec![Severity::Sev1, Severity::Sev2, Severity::Sev3],
                    }),
                },
                keys: OnCallKeys {
                    pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
                    routing_key: Some("R0UT1NGKEY".into()),
                    webhook_url: Some("https://hooks.example.com/fb".into()),
                    webhook_secret: Some(SECRET.into()),
                },
            }
        }
        fn stage(&self) -> OnCall<'_, InMemoryIncidentStore, SimClock, InMemoryHttp> {
            OnCall {
                store: &self.store,
                clock: &self.clock,
                http: &self.http,
                settings: &self.settings,
                keys: &self.keys,
                region: "us-east-1",
            }
        }
        async fn change(&self, f: impl FnOnce(&mut Incident)) {
            let id = IncidentId(ID.into());
            let mut i = self.store.get(&id).await.unwrap().unwrap();
            let v = i.version;
            f(&mut i);
            i.version = v + 1;
            self.store.save(&i, v, PointerChange::Keep, &[]).await.unwrap();
        }
    }

    fn opened(sev: Severity) -> Event {
        Event::Opened(IncidentRaised {
            incident_id: IncidentId(ID.into()),
            service: "prod/articles-api".into(),
            ecs: None,
            severity: sev,
            alarm_name: "articles-api-5xx".into(),
            alarm_at: Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap(),
            runbook_hint: None,
            namespace: None,
            metric_name: None,
            dimensions: Default::default(),
            composite_rule: None,
            tags: Default::default(),
            reopened: 0,
        })
    }

    fn resolved() -> Event {
        Event::Resolved(IncidentResolved {
            incident_id: IncidentId(ID.into()),
            service: "prod/articles-api".into(),
            severity: Severity::Sev2,
            time_to_resolve_s: Some(360),
        })
    }

    #[tokio::test]
    async fn an_opening_triggers_pagerduty_and_posts_a_signed_webhook_once() {
        let w = World::new(Severity::Sev2).await;
        let r = w.stage().handle(&opened(Severity::Sev2)).await.unwrap();
        assert_eq!(r.sent.len(), 2);
        assert_eq!(r.failed(), 0);
        let posts = w.http.posts();
        assert_eq!(posts[0].url, "https://events.pagerduty.com/v2/enqueue");
        let pd: Value = serde_json::from_str(&posts[0].body).unwrap();
        assert_eq!(pd["event_action"], "trigger");
        assert_eq!(pd["dedup_key"], ID);
        assert_eq!(pd["routing_key"], "R0UT1NGKEY");
        let hook = &posts[1];
        let h = |n: &str| {
            hook.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let ts: i64 = h("webhook-timestamp").parse().unwrap();
        assert!(verify_webhook(
            SECRET,
            &h("webhook-id"),
            ts,
            &hook.body,
            &h("webhook-signature"),
            ts,
            300
        ));
        let body: Value = serde_json::from_str(&hook.body).unwrap();
        assert_eq!(body["type"], "incident.opened");
        assert_eq!(body["id"], h("webhook-id"));
        // a redelivery sends nothing again
        let again = w.stage().handle(&opened(Severity::Sev2)).await.unwrap();
        assert_eq!((again.sent.len(), again.skipped), (0, 2));
        assert_eq!(w.http.posts().len(), 2);
        let notes = w.store.timeline(&IncidentId(ID.into())).await.unwrap();
        assert!(
            notes.iter().any(|e| e.summary == "PagerDuty trigger sent"),
            "{notes:?}"
        );
    }

    #[tokio::test]
    async fn severities_outside_the_settings_go_nowhere_and_are_not_resolved() {
        let w = World::new(Severity::Sev3).await;
        let r = w.stage().handle(&opened(Severity::Sev3)).await.unwrap();
        assert_eq!(
            r.sent.iter().map(|s| s.kind).collect::<Vec<_>>(),
            ["webhook"],
            "SEV3: webhook only"
        );
        w.change(|i| i.resolve(Utc.with_ymd_and_hms(2026, 3, 14, 15, 0, 0).unwrap()))
            .await;
        let r = w.stage().handle(&resolved()).await.unwrap();
        assert_eq!(
            r.sent.iter().map(|s| s.kind).collect::<Vec<_>>(),
            ["webhook"],
            "nothing to resolve in PagerDuty"
        );
    }

    #[tokio::test]
    async fn acknowledge_and_resolve_follow_the_stored_incident_not_the_event() {
        let w = World::new(Severity::Sev2).await;
        w.stage().handle(&opened(Severity::Sev2)).await.unwrap();
        let ack = Event::Acknowledged(IncidentAcknowledged {
            incident_id: IncidentId(ID.into()),
            by: "mallory".into(),
            cycle: 0,
        });
        // nobody acknowledged it: a forged event sends nothing
        assert!(w.stage().handle(&ack).await.unwrap().sent.is_empty());
        assert!(
            w.stage().handle(&resolved()).await.unwrap().sent.is_empty(),
            "still open"
        );
        w.change(|i| i.acknowledge("alice", Utc.with_ymd_and_hms(2026, 3, 14, 14, 37, 0).unwrap()))
            .await;
        let r = w.stage().handle(&ack).await.unwrap();
        let pd: Vec<_> = r.sent.iter().filter(|s| s.kind == "pagerduty").collect();
        assert_eq!(pd[0].body["event_action"], "acknowledge");
        w.change(|i| i.resolve(Utc.with_ymd_and_hms(2026, 3, 14, 15, 0, 0).unwrap()))
            .await;
        let r = w.stage().handle(&resolved()).await.unwrap();
        assert_eq!(r.sent[0].body["event_action"], "resolve");
        assert_eq!(r.sent[1].body["type"], "incident.resolved");
        assert_eq!(r.sent[1].body["incident"]["status"], "resolved");
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_and_server_errors_are_retried_a_bad_request_is_not() {
        let w = World::new(Severity::Sev2).await;
        w.http.reply(Ok(HttpReply {
            status: 429,
            body: "slow down".into(),
        }));
        w.http
            .reply(Err(PortError::new("HTTP POST", "connection reset", true)));
        w.http.reply(Ok(HttpReply {
            status: 503,
            body: String::new(),
        }));
        // the fourth try is accepted (the default reply); then the webhook gets a 400
        w.http.reply(Ok(HttpReply {
            status: 202,
            body: String::new(),
        }));
        w.http.reply(Ok(HttpReply {
            status: 400,
            body: "{\"status\":\"invalid event\"}".into(),
        }));
        let r = w.stage().handle(&opened(Severity::Sev2)).await.unwrap();
        assert_eq!(r.sent[0].error, None, "accepted on the fourth try");
        let e = r.sent[1].error.as_deref().unwrap();
        assert!(
            e.starts_with("HTTP 400: {\"status\":\"invalid event\"} (after 1 try)"),
            "{e}"
        );
        assert_eq!(w.http.posts().len(), 5);
        assert_eq!(r.failed(), 1);
        let tl = w.store.timeline(&IncidentId(ID.into())).await.unwrap();
        let failed: Vec<_> = tl.iter().filter(|e| e.event_id.contains("/failed/")).collect();
        assert_eq!(failed.len(), 1);
        assert!(
            failed[0].summary.contains("the SNS pages are not affected"),
            "{}",
            failed[0].summary
        );
        // the redelivery retries only what failed
        let again = w.stage().handle(&opened(Severity::Sev2)).await.unwrap();
        assert_eq!(again.sent.iter().map(|s| s.kind).collect::<Vec<_>>(), ["webhook"]);
        assert_eq!(again.failed(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_tool_that_stays_down_is_given_up_after_the_attempts() {
        let w = World::new(Severity::Sev1).await;
        for _ in 0..MAX_ATTEMPTS {
            w.http.reply(Ok(HttpReply {
                status: 502,
                body: String::new(),
            }));
        }
        let started = tokio::time::Instant::now();
        let r = w.stage().handle(&opened(Severity::Sev1)).await.unwrap();
        let e = r.sent[0].error.as_deref().unwrap();
        assert!(e.contains("HTTP 502") && e.contains("after 4 tries"), "{e}");
        // pauses of 0.5, 1 and 2 s between the four tries
        assert_eq!(started.elapsed(), Duration::from_millis(3500));
    }

    #[tokio::test(start_paused = true)]
    async fn inside_an_invocation_retries_stop_before_its_deadline() {
        let w = World::new(Severity::Sev1).await;
        for _ in 0..MAX_ATTEMPTS {
            w.http.reply(Ok(HttpReply {
                status: 503,
                body: String::new(),
            }));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
        let r = crate::ports::retry::until(deadline, w.stage().handle(&opened(Severity::Sev1)))
            .await
            .unwrap();
        assert!(
            r.sent[0].error.as_deref().unwrap().contains("after 1 try"),
            "0.5 s + a 5 s call + 1.5 s margin leave no room after the first"
        );
        assert!(tokio::time::Instant::now() < deadline);
    }

    #[tokio::test]
    async fn nothing_configured_sends_nothing() {
        let mut w = World::new(Severity::Sev1).await;
        w.settings = OnCallSettings::default();
        assert!(w
            .stage()
            .handle(&opened(Severity::Sev1))
            .await
            .unwrap()
            .sent
            .is_empty());
        assert!(w.http.posts().is_empty());
    }
}
