//! One page, in the form each SNS protocol wants (published with `MessageStructure=json`):
//!
//! - `email`: readable text: the stage's message, then the next steps and console links;
//! - `sms`: one line of at most [`SMS_MAX_CHARS`] characters;
//! - `default` (what every other protocol gets: `https`, which the chat service subscribes
//!   with, `lambda`, `sqs`): the custom-notification JSON of Amazon Q Developer in chat
//!   applications (formerly AWS Chatbot): `version`, `source: custom`, Markdown `content` (title,
//!   description, next steps, keywords) and `metadata` whose `threadId` is the incident id, so
//!   every follow-up threads under the first page.
//!
//! The whole message stays under SNS's 256 KB: the email is cut at [`EMAIL_MAX_CHARS`], the
//! links and related resources are bounded, and a message still too large is rendered again
//! with the short limits of [`shrunk`].
//!
//! Text from outside (alarm names and reasons, service names, log lines) reaches these forms
//! already made plain by the stage; here it is escaped once more for Markdown in the chat form,
//! and console links are built by percent-encoding, so nothing from an alarm becomes a link, a
//! mention or markup.

use crate::model::page::{LogQueryLink, Notification, PageFacts};
use crate::model::text::{markdown, markdown_line, mentions, one_line, plain, plain_line};
use serde_json::{json, Map, Value};

/// SMS: one line, at most this many characters.
pub const SMS_MAX_CHARS: usize = 140;
/// The email form, at most this many characters.
pub const EMAIL_MAX_CHARS: usize = 16_000;
/// Alarms linked or named as related resources, at most.
pub const MAX_ALARMS_SHOWN: usize = 10;
/// SNS's limit on a message, in bytes, less room for the subject and attributes.
pub const SNS_MESSAGE_MAX_BYTES: usize = 250_000;
/// The chat form's limits (Amazon Q Developer custom notifications): longer text is cut on a
/// character boundary, marked with `…`.
pub const CHAT_TITLE_MAX_CHARS: usize = 250;
pub const CHAT_DESCRIPTION_MAX_CHARS: usize = 8000;
pub const CHAT_NEXT_STEP_MAX_CHARS: usize = 300;
pub const CHAT_NEXT_STEPS_MAX: usize = 20;
pub const CHAT_KEYWORD_MAX_CHARS: usize = 75;
/// The custom-notification schema version Firebreak writes.
pub const CHAT_VERSION: &str = "1.0";

/// A page in every form.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub email: String,
    pub sms: String,
    /// The custom-notification object.
    pub chat: Value,
}

/// Renders `n` for the console of `region` (links name it).
pub fn render(n: &Notification, region: &str) -> Page {
    let links = links(&n.facts, region);
    Page {
        email: email(n, &links),
        sms: sms(n),
        chat: chat(n, &links),
    }
}

/// The `Message` of an SNS Publish with `MessageStructure=json`: `email`, `sms`, and
/// `default` (the chat form) for every other protocol.
pub fn sns_message(p: &Page) -> String {
    let mut m = Map::new();
    m.insert("default".to_string(), Value::String(p.chat.to_string()));
    m.insert("email".to_string(), Value::String(p.email.clone()));
    m.insert("sms".to_string(), Value::String(p.sms.clone()));
    Value::Object(m).to_string()
}

/// [`sns_message`] of [`render`], within [`SNS_MESSAGE_MAX_BYTES`]: a page whose forms are too
/// large (long reasons and log lines in every form) is rendered again with [`shrunk`]'s limits.
/// `queue`, the chat buttons' queue, goes into the chat form's
/// `metadata.additionalContext.queue` before the size is measured.
pub fn sns_message_of(n: &Notification, region: &str, queue: Option<&str>) -> (Page, String) {
    let build = |n: &Notification| {
        let mut p = render(n, region);
        if let (Some(q), Some(ctx)) = (
            queue,
            p.chat
                .pointer_mut("/metadata/additionalContext")
                .and_then(Value::as_object_mut),
        ) {
            ctx.insert("queue".to_string(), Value::String(q.to_string()));
        }
        let m = sns_message(&p);
        (p, m)
    };
    let (p, m) = build(n);
    if m.len() <= SNS_MESSAGE_MAX_BYTES {
        return (p, m);
    }
    build(&shrunk(n))
}

/// `n` with a body of at most 2,000 characters, at most 5 next steps of 200: what a page too
/// large for SNS is sent as (the full text stays on the timeline).
pub fn shrunk(n: &Notification) -> Notification {
    let mut s = n.clone();
    s.body = cut(&n.body, 2000);
    s.facts.next_steps = n.facts.next_steps.iter().take(5).map(|x| cut(x, 200)).collect();
    s.facts.alarms.truncate(3);
    s.facts.alarm_arns.truncate(3);
    s
}

/// A console link, named for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// Console links for the alarms, the ECS service and the first log query.
pub fn links(f: &PageFacts, region: &str) -> Vec<Link> {
    let r = enc(region);
    let cw = format!("https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}");
    let mut out: Vec<Link> = f
        .alarms
        .iter()
        .take(MAX_ALARMS_SHOWN)
        .map(|a| Link {
            label: format!("Alarm {}", one_line(a)),
            url: format!("{cw}#alarmsV2:alarm/{}", enc(a)),
        })
        .collect();
    if let Some(ecs) = &f.ecs {
        out.push(Link {
            label: format!(
                "ECS service {}/{}",
                one_line(&ecs.cluster),
                one_line(&ecs.service)
            ),
            url: format!(
                "https://{r}.console.aws.amazon.com/ecs/v2/clusters/{}/services/{}/health?region={r}",
                enc(&ecs.cluster),
                enc(&ecs.service)
            ),
        });
    }
    if let Some(q) = &f.log_query {
        out.push(Link {
            label: "Logs Insights query".to_string(),
            url: format!("{cw}#logsV2:logs-insights{}", insights_fragment(q)),
        });
    }
    out
}

fn email(n: &Notification, links: &[Link]) -> String {
    let f = &n.facts;
    let mut out = String::new();
    if let Some(sev) = f.severity {
        out.push_str(&format!("{sev}: {} ({})\n", sev.label(), sev.response()));
    }
    if let Some(s) = &f.service {
        out.push_str(&format!("Service: {}\n", one_line(&mentions(s))));
    }
    if let Some(id) = &f.incident {
        out.push_str(&format!("Incident: {id}\n"));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    // the stages made the body plain already; again here costs nothing and holds for any page
    out.push_str(plain(&n.body).trim_end());
    out.push('\n');
    if !f.next_steps.is_empty() {
        out.push_str("\nNext steps:\n");
        for s in &f.next_steps {
            out.push_str(&format!("- {}\n", plain_line(s)));
        }
    }
    if !links.is_empty() {
        out.push_str("\nLinks:\n");
        for l in links {
            out.push_str(&format!("- {}: {}\n", mentions(&l.label), l.url));
        }
    }
    cut(&out, EMAIL_MAX_CHARS)
}

/// ASCII where Firebreak chooses the characters (GSM-7 keeps 160 characters a segment; one
/// non-GSM character makes it 70). SMS has no mentions, so no word joiners either.
fn sms(n: &Notification) -> String {
    let mut line = one_line(&n.subject);
    if let Some(id) = &n.facts.incident {
        if !line.contains(id.as_str()) {
            line = format!("{line} - {id}");
        }
    }
    if line.chars().count() <= SMS_MAX_CHARS {
        return line;
    }
    let mut out: String = line.chars().take(SMS_MAX_CHARS - 3).collect();
    out.push_str("...");
    out
}

fn chat(n: &Notification, links: &[Link]) -> Value {
    let f = &n.facts;
    let mut description = markdown(&mentions(n.body.trim_end()));
    if !links.is_empty() {
        description.push_str("\n\n");
        let shown: Vec<String> = links
            .iter()
            .map(|l| format!("<{}|{}>", l.url, markdown_line(&l.label)))
            .collect();
        description.push_str(&shown.join(" · "));
    }
    let next: Vec<Value> = f
        .next_steps
        .iter()
        .take(CHAT_NEXT_STEPS_MAX)
        .map(|s| Value::String(cut(&markdown_line(s), CHAT_NEXT_STEP_MAX_CHARS)))
        .collect();
    let mut keywords = Vec::new();
    if let Some(sev) = f.severity {
        keywords.push(sev.to_string());
    }
    if let Some(s) = &f.service {
        keywords.push(cut(&one_line(&mentions(s)), CHAT_KEYWORD_MAX_CHARS));
    }
    keywords.push(f.event.as_str().to_string());
    let mut context = Map::new();
    if let Some(id) = &f.incident {
        context.insert("incident".to_string(), json!(id));
    }
    context.insert("cycle".to_string(), json!(f.cycle.to_string()));
    if let Some(sev) = f.severity {
        context.insert("severity".to_string(), json!(sev.as_str()));
    }
    if let Some(a) = &f.action {
        context.insert("action".to_string(), json!(a));
    }
    context.insert("event".to_string(), json!(f.event.as_str()));
    let mut metadata = Map::new();
    if let Some(id) = &f.incident {
        metadata.insert("threadId".to_string(), json!(id));
    }
    metadata.insert(
        "summary".to_string(),
        json!(cut(&one_line(&n.subject), CHAT_TITLE_MAX_CHARS)),
    );
    metadata.insert("eventType".to_string(), json!(f.event.event_type()));
    let mut related: Vec<String> = f.alarm_arns.iter().take(MAX_ALARMS_SHOWN).cloned().collect();
    if related.is_empty() {
        related.extend(f.alarms.iter().take(MAX_ALARMS_SHOWN).map(|a| one_line(a)));
    }
    if let Some(ecs) = &f.ecs {
        related.push(format!("{}/{}", one_line(&ecs.cluster), one_line(&ecs.service)));
    }
    metadata.insert("relatedResources".to_string(), json!(related));
    metadata.insert("additionalContext".to_string(), Value::Object(context));
    metadata.insert("enableCustomActions".to_string(), json!(f.incident.is_some()));
    json!({
        "version": CHAT_VERSION,
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": cut(&markdown_line(&n.subject), CHAT_TITLE_MAX_CHARS),
            "description": cut(&description, CHAT_DESCRIPTION_MAX_CHARS),
            "nextSteps": next,
            "keywords": keywords,
        },
        "metadata": Value::Object(metadata),
    })
}

/// `s` cut to `max` characters on a character boundary, `…` marking the cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The console's Logs Insights fragment for a query over the groups and window: the query
/// detail in the console's own encoding (`~(…)` objects, `'` before strings, percent-encoded
/// values with `%` written `*`, and `?`/`=` of the fragment written `$3F`/`$3D`).
fn insights_fragment(q: &LogQueryLink) -> String {
    let s = |v: &str| format!("'{}", enc(v).replace('%', "*"));
    let sources: String = q.log_groups.iter().map(|g| format!("~{}", s(g))).collect();
    let detail = format!(
        "~(end~{}~start~{}~timeType~'ABSOLUTE~tz~'UTC~editorString~{}~source~({}))",
        s(&q.end.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        s(&q.start.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        s(&q.query),
        sources
    );
    format!("$3FqueryDetail$3D{detail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::incident::EcsService;
    use crate::model::page::PageEvent;
    use crate::model::severity::Severity;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    fn note(subject: &str, body: &str) -> Notification {
        Notification {
            subject: subject.to_string(),
            body: body.to_string(),
            attributes: BTreeMap::new(),
            facts: PageFacts {
                event: PageEvent::Opened,
                incident: Some("inc-20260314-1435-ab12cd34".to_string()),
                cycle: 0,
                severity: Some(Severity::Sev2),
                service: Some("prod/articles-api".to_string()),
                ecs: Some(EcsService::new("prod", "articles-api")),
                alarms: vec!["articles-api-5xx-rate".to_string()],
                alarm_arns: Vec::new(),
                next_steps: vec!["Acknowledge: firebreak ack inc-20260314-1435-ab12cd34".to_string()],
                log_query: Some(LogQueryLink {
                    log_groups: vec!["/ecs/articles-api".to_string()],
                    query: "fields @message | filter level = \"ERROR\"".to_string(),
                    start: chrono::Utc.with_ymd_and_hms(2026, 3, 14, 14, 20, 0).unwrap(),
                    end: chrono::Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap(),
                }),
                action: None,
            },
        }
    }

    #[test]
    fn email_has_severity_meaning_service_body_next_steps_and_links() {
        let p = render(
            &note(
                "[SEV2] prod/articles-api opened: articles-api-5xx-rate",
                "the body",
            ),
            "eu-west-1",
        );
        assert!(
            p.email
                .starts_with("SEV2: major (notify the on-call engineer; response within 1 hour)\n"),
            "{}",
            p.email
        );
        assert!(p.email.contains("Service: prod/articles-api\n"));
        assert!(p.email.contains("\nthe body\n"));
        assert!(p
            .email
            .contains("Next steps:\n- Acknowledge: firebreak ack inc-20260314-1435-ab12cd34\n"));
        assert!(p.email.contains(
            "- Alarm articles-api-5xx-rate: https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/articles-api-5xx-rate\n"
        ), "{}", p.email);
        assert!(p.email.contains(
            "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/articles-api/health?region=eu-west-1"
        ));
        assert!(
            p.email.contains(
                "#logsV2:logs-insights$3FqueryDetail$3D~(end~'2026-03-14T14*3a35*3a00.000Z"
                    .replace("*3a", "*3A")
                    .as_str()
            ),
            "{}",
            p.email
        );
        assert!(
            p.email.contains("~source~(~'*2Fecs*2Farticles-api))"),
            "{}",
            p.email
        );
    }

    #[test]
    fn sms_is_one_line_of_at_most_140_characters_with_the_incident() {
        let p = render(&note("[SEV2] prod/articles-api opened:\nx", "b"), "us-east-1");
        assert_eq!(
            p.sms,
            "[SEV2] prod/articles-api opened: x - inc-20260314-1435-ab12cd34"
        );
        let long = render(&note(&"é".repeat(500), "b"), "us-east-1");
        assert_eq!(long.sms.chars().count(), SMS_MAX_CHARS);
        assert!(long.sms.ends_with("..."));
        let at = render(&note("@channel down", "b"), "us-east-1");
        assert!(!at.sms.contains('\u{2060}'), "no joiners in SMS: {}", at.sms);
        assert!(!long.sms.contains('\n'));
    }

    #[test]
    fn chat_is_a_custom_notification_threaded_on_the_incident() {
        let p = render(
            &note("[SEV2] prod/articles-api opened: a", "line one\nline two"),
            "us-east-1",
        );
        let c = &p.chat;
        assert_eq!(c["version"], "1.0");
        assert_eq!(c["source"], "custom");
        assert_eq!(c["content"]["textType"], "client-markdown");
        assert_eq!(c["content"]["title"], "\\[SEV2\\] prod/articles-api opened: a");
        assert!(c["content"]["description"]
            .as_str()
            .unwrap()
            .starts_with("line one\nline two\n\n<https://"));
        assert_eq!(
            c["content"]["nextSteps"][0],
            "Acknowledge: firebreak ack inc-20260314-1435-ab12cd34"
        );
        assert_eq!(
            c["content"]["keywords"],
            json!(["SEV2", "prod/articles-api", "opened"])
        );
        assert_eq!(c["metadata"]["threadId"], "inc-20260314-1435-ab12cd34");
        assert_eq!(c["metadata"]["eventType"], "firebreak.incident.opened");
        assert_eq!(
            c["metadata"]["additionalContext"]["incident"],
            "inc-20260314-1435-ab12cd34"
        );
        assert_eq!(c["metadata"]["additionalContext"]["cycle"], "0");
        assert_eq!(
            c["metadata"]["relatedResources"],
            json!(["articles-api-5xx-rate", "prod/articles-api"])
        );
    }

    #[test]
    fn text_from_alarms_stays_inert_in_every_form() {
        let mut n = note(
            "[SEV2] x opened: <!here> *bold* [x](http://evil)",
            "reason: @channel <@U1> `code` ## h",
        );
        n.facts.alarms = vec!["a b/<script>".to_string()];
        n.facts.next_steps = vec!["see [link](http://evil) @here".to_string()];
        let p = render(&n, "us-east-1");
        let title = p.chat["content"]["title"].as_str().unwrap();
        assert!(
            !title.contains("<!here>") && title.contains("\\*bold\\*") && title.contains("\\[x\\]"),
            "{title}"
        );
        let d = p.chat["content"]["description"].as_str().unwrap();
        assert!(
            !d.contains("@channel") && !d.contains("<@U1>") && d.contains("\\`code\\`"),
            "{d}"
        );
        assert!(
            d.contains("#alarmsV2:alarm/a%20b%2F%3Cscript%3E|Alarm a b/&lt;script&gt;>"),
            "{d}"
        );
        let step = p.chat["content"]["nextSteps"][0].as_str().unwrap();
        assert!(step.contains("\\[link\\]") && !step.contains("@here"), "{step}");
        assert!(!p.email.contains("@channel") && !p.email.contains("@here"));
        assert!(p.email.contains("alarm/a%20b%2F%3Cscript%3E"));
        // SMS renders nothing and pings nobody: one line, no control characters, ASCII joiners
        assert!(!p.sms.contains('\n') && !p.sms.chars().any(char::is_control));
    }

    #[test]
    fn the_sns_message_has_a_form_for_each_protocol_and_a_default() {
        let p = render(&note("s", "b"), "us-east-1");
        let m: Value = serde_json::from_str(&sns_message(&p)).unwrap();
        for k in ["default", "email", "sms"] {
            assert!(m[k].is_string(), "{k}");
        }
        assert_eq!(
            m.as_object().unwrap().len(),
            3,
            "https, lambda and sqs get default"
        );
        let chat: Value = serde_json::from_str(m["default"].as_str().unwrap()).unwrap();
        assert_eq!(chat, p.chat);
        assert_eq!(m["email"], p.email.as_str());
    }

    #[test]
    fn a_huge_page_still_fits_in_an_sns_message() {
        // 4-byte characters and quotes (escaped in JSON, then again inside the outer JSON)
        let mut n = note("s", &"\"𝄞\\".repeat(70_000));
        n.facts.alarms = (0..500)
            .map(|i| format!("alarm-{i}-{}", "𝄞".repeat(200)))
            .collect();
        n.facts.alarm_arns = n.facts.alarms.clone();
        n.facts.next_steps = (0..100).map(|_| "𝄞".repeat(1000)).collect();
        let (p, m) = sns_message_of(&n, "us-east-1", None);
        assert!(m.len() <= SNS_MESSAGE_MAX_BYTES, "{} bytes", m.len());
        assert!(p.email.chars().count() <= EMAIL_MAX_CHARS);
        assert!(p.chat["metadata"]["relatedResources"].as_array().unwrap().len() <= MAX_ALARMS_SHOWN + 1);
        let small = note("s", "b");
        assert_eq!(
            sns_message_of(&small, "us-east-1", None).1,
            sns_message(&render(&small, "us-east-1")),
            "small pages are unchanged"
        );
    }

    #[test]
    fn long_text_is_cut_to_the_chat_limits() {
        let mut n = note(&"t".repeat(400), &"d".repeat(9000));
        n.facts.next_steps = (0..30).map(|i| format!("{i} {}", "s".repeat(400))).collect();
        let p = render(&n, "us-east-1");
        let c = &p.chat["content"];
        assert_eq!(c["title"].as_str().unwrap().chars().count(), CHAT_TITLE_MAX_CHARS);
        assert_eq!(
            c["description"].as_str().unwrap().chars().count(),
            CHAT_DESCRIPTION_MAX_CHARS
        );
        assert_eq!(c["nextSteps"].as_array().unwrap().len(), CHAT_NEXT_STEPS_MAX);
        assert!(c["nextSteps"][0].as_str().unwrap().chars().count() <= CHAT_NEXT_STEP_MAX_CHARS);
    }

    #[test]
    fn a_page_without_facts_still_renders() {
        let n = Notification {
            subject: "s".into(),
            body: "b".into(),
            attributes: BTreeMap::new(),
            facts: PageFacts::default(),
        };
        let p = render(&n, "us-east-1");
        assert_eq!(p.email, "b\n");
        assert_eq!(p.sms, "s");
        assert!(p.chat["metadata"].get("threadId").is_none());
        assert_eq!(p.chat["metadata"]["enableCustomActions"], false);
    }
}
