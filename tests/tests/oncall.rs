//! The on-call integrations over the real HTTPS client ([`HyperSender`]) against a local HTTP
//! server that checks every request as PagerDuty's Events API v2 and a Standard Webhooks
//! receiver would: the documented fields and enums, the limits, the signature and its
//! timestamp. And the secrets read from SSM on moto: a SecureString and a Secrets Manager secret
//! through `/aws/reference/secretsmanager/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use anyhow::Result;
use chrono::{TimeZone, Utc};
use firebreak_aws::oncall::{read_secret, HyperSender};
use firebreak_core::adapters::memory::{InMemoryIncidentStore, SimClock};
use firebreak_core::model::incident::{EcsService, Incident, IncidentId};
use firebreak_core::model::oncall::{verify_webhook, OnCallSettings, Target};
use firebreak_core::model::pipeline::{Event, IncidentRaised, IncidentResolved};
use firebreak_core::model::severity::Severity;
use firebreak_core::ports::{IncidentStore, PointerChange};
use firebreak_core::stages::oncall::{OnCall, OnCallKeys};
use firebreak_integration::moto;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ID: &str = "INC-20260314-143500-a1b2c3d4";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ROUTING_KEY: &str = "0123456789abcdef0123456789abcdef";

/// One request as the server read it, and what it found wrong with it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    body: Value,
    problems: Vec<String>,
}

/// A local server on 127.0.0.1: answers each request with the next of `statuses` (202 when
/// none is left) after checking it.
struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn server(statuses: Vec<u16>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(std::collections::VecDeque::from(statuses)));
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let s = s.clone();
            let statuses = statuses.clone();
            tokio::spawn(async move {
                // one request per connection is enough for the checks (keep-alive reuses the
                // connection, so read requests until the client closes it)
                let mut buf = Vec::new();
                loop {
                    let Some((head, body)) = read_request(&mut sock, &mut buf).await else {
                        return;
                    };
                    let seen = check(&head, &body);
                    s.lock().unwrap().push(seen);
                    let status = statuses.lock().unwrap().pop_front().unwrap_or(202);
                    let reply = r#"{"status":"success","message":"Event processed"}"#;
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Server { url, seen }
}

async fn read_request(sock: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<(String, String)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
            buf.drain(..end + 4 + len);
            return Some((head, body));
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// What PagerDuty's Events API v2 and a Standard Webhooks receiver would refuse.
fn check(head: &str, body: &str) -> Seen {
    let mut p = Vec::new();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    if !head.starts_with("POST ") {
        p.push("not a POST".to_string());
    }
    if header(head, "content-type") != Some("application/json") {
        p.push("content-type is not application/json".to_string());
    }
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| {
        p.push(format!("body is not JSON: {e}"));
        Value::Null
    });
    if path == "/v2/enqueue" {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        if s("routing_key").is_none_or(|k| k.len() != 32) {
            p.push("routing_key is not a 32-character integration key".into());
        }
        let action = s("event_action").unwrap_or("");
        if !["trigger", "acknowledge", "resolve"].contains(&action) {
            p.push(format!("event_action {action:?}"));
        }
        if s("dedup_key").is_none_or(|k| k.is_empty() || k.len() > 255) {
            p.push("dedup_key missing or over 255".into());
        }
        if action == "trigger" {
            let pl = &v["payload"];
            let ps = |k: &str| pl.get(k).and_then(Value::as_str);
            if ps("summary").is_none_or(|x| x.is_empty() || x.chars().count() > 1024) {
                p.push("payload.summary missing or over 1024".into());
            }
            if ps("source").is_none_or(str::is_empty) {
                p.push("payload.source missing".into());
            }
            if !["critical", "error", "warning", "info"].contains(&ps("severity").unwrap_or("")) {
                p.push(format!("payload.severity {:?}", pl.get("severity")));
            }
            if let Some(t) = ps("timestamp") {
                if chrono::DateTime::parse_from_rfc3339(t).is_err() {
                    p.push("payload.timestamp is not ISO 8601".into());
                }
            }
            if pl.get("custom_details").is_some_and(|d| !d.is_object()) {
                p.push("custom_details is not an object".into());
            }
            for l in v
                .get("links")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                if l.get("href")
                    .and_then(Value::as_str)
                    .is_none_or(|h| !h.starts_with("https://"))
                {
                    p.push("a link without an https href".into());
                }
            }
        } else if v.get("payload").is_some() {
            p.push(format!("{action} carries a payload"));
        }
    } else {
        let (Some(id), Some(ts), Some(sig)) = (
            header(head, "webhook-id"),
            header(head, "webhook-timestamp"),
            header(head, "webhook-signature"),
        ) else {
            p.push("a webhook header is missing".into());
            return Seen {
                path,
                body: v,
                problems: p,
            };
        };
        let ts: i64 = ts.parse().unwrap_or(0);
        // the receiver's clock is the test's simulated one; tolerance 5 minutes
        let now = Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap().timestamp();
        if !verify_webhook(SECRET, id, ts, body, sig, now, 300) {
            p.push("the signature does not verify".into());
        }
        if v.get("id").and_then(Value::as_str) != Some(id) {
            p.push("body id is not webhook-id".into());
        }
        if v.get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| !t.starts_with("incident."))
        {
            p.push("type".into());
        }
    }
    Seen {
        path,
        body: v,
        problems: p,
    }
}

async fn world(sev: Severity) -> (InMemoryIncidentStore, SimClock) {
    let store = InMemoryIncidentStore::new();
    let at = Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap();
    let mut i = Incident::open(
        IncidentId(ID.into()),
        "prod/articles-api",
        sev,
        "articles-api-5xx on prod/articles-api",
        at,
        at,
    );
    i.ecs = Some(EcsService::new("prod", "articles-api"));
    store.open(&i, &[], Duration::from_secs(1800)).await.unwrap();
    (store, SimClock::new(at))
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

fn settings() -> OnCallSettings {
    OnCallSettings {
        pagerduty: Some(Target {
            severities: vec![Severity::Sev1, Severity::Sev2],
        }),
        webhook: Some(Target {
            severities: vec![Severity::Sev1, Severity::Sev2],
        }),
    }
}

fn keys(url: &str) -> OnCallKeys {
    OnCallKeys {
        pagerduty_url: format!("{url}/v2/enqueue"),
        routing_key: Some(ROUTING_KEY.into()),
        webhook_url: Some(format!("{url}/hooks/firebreak")),
        webhook_secret: Some(SECRET.into()),
    }
}

#[tokio::test]
async fn a_whole_incident_reaches_both_tools_in_their_documented_shape() -> Result<()> {
    let srv = server(vec![]).await;
    let (store, clock) = world(Severity::Sev2).await;
    let http = HyperSender::new()?;
    let (settings, keys) = (settings(), keys(&srv.url));
    let stage = OnCall {
        store: &store,
        clock: &clock,
        http: &http,
        settings: &settings,
        keys: &keys,
        region: "eu-west-1",
    };
    let r = stage.handle(&opened(Severity::Sev2)).await?;
    assert_eq!(r.failed(), 0, "{r:?}");
    // resolved
    let id = IncidentId(ID.into());
    let mut inc = store.get(&id).await?.unwrap();
    let v = inc.version;
    inc.resolve(Utc.with_ymd_and_hms(2026, 3, 14, 14, 41, 0).unwrap());
    inc.version = v + 1;
    store.save(&inc, v, PointerChange::Keep, &[]).await?;
    let r = stage
        .handle(&Event::Resolved(IncidentResolved {
            incident_id: id.clone(),
            service: "prod/articles-api".into(),
            severity: Severity::Sev2,
            time_to_resolve_s: Some(360),
        }))
        .await?;
    assert_eq!(r.failed(), 0, "{r:?}");
    let seen = srv.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for s in &seen {
        assert!(s.problems.is_empty(), "{} {:?}: {:?}", s.path, s.body, s.problems);
    }
    let actions: Vec<_> = seen
        .iter()
        .filter(|s| s.path == "/v2/enqueue")
        .map(|s| s.body["event_action"].clone())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    let types: Vec<_> = seen
        .iter()
        .filter(|s| s.path == "/hooks/firebreak")
        .map(|s| s.body["type"].clone())
        .collect();
    assert_eq!(types, ["incident.opened", "incident.resolved"]);
    assert_eq!(seen[0].body["payload"]["severity"], "error");
    assert!(seen[0].body["links"][0]["href"]
        .as_str()
        .unwrap()
        .starts_with("https://eu-west-1.console.aws.amazon.com/"));
    Ok(())
}

#[tokio::test]
async fn a_server_error_is_retried_and_a_refusal_is_on_the_timeline() -> Result<()> {
    // PagerDuty: 500 then accepted; webhook: 401 (a wrong secret on the receiver's side)
    let srv = server(vec![500, 202, 401]).await;
    let (store, clock) = world(Severity::Sev1).await;
    let http = HyperSender::new()?;
    let (settings, keys) = (settings(), keys(&srv.url));
    let stage = OnCall {
        store: &store,
        clock: &clock,
        http: &http,
        settings: &settings,
        keys: &keys,
        region: "us-east-1",
    };
    let r = stage.handle(&opened(Severity::Sev1)).await?;
    assert_eq!(r.sent[0].error, None, "{r:?}");
    assert!(
        r.sent[1].error.as_deref().unwrap().starts_with("HTTP 401"),
        "{r:?}"
    );
    assert_eq!(srv.seen.lock().unwrap().len(), 3);
    let tl = store.timeline(&IncidentId(ID.into())).await?;
    assert!(
        tl.iter()
            .any(|e| e.summary.starts_with("webhook incident.opened failed: HTTP 401")),
        "{tl:?}"
    );
    Ok(())
}

#[tokio::test]
async fn secrets_come_from_ssm_securestrings_and_secrets_manager_references() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&cfg);
    let name = format!("/firebreak/{}/pagerduty", firebreak_integration::unique("oncall"));
    ssm.put_parameter()
        .name(&name)
        .value(ROUTING_KEY)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await?;
    assert_eq!(read_secret(&ssm, &name).await?, ROUTING_KEY);
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let secret = format!("firebreak/{}/webhook", firebreak_integration::unique("oncall"));
    sm.create_secret()
        .name(&secret)
        .secret_string(SECRET)
        .send()
        .await?;
    assert_eq!(
        read_secret(&ssm, &format!("/aws/reference/secretsmanager/{secret}")).await?,
        SECRET
    );
    let e = read_secret(&ssm, "/firebreak/none").await.unwrap_err();
    assert!(e.to_string().contains("/firebreak/none"), "{e}");
    Ok(())
}
