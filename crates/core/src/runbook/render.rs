//! A runbook as Markdown for a person at 3am: when it applies, what users feel, the exact queries
//! to paste into Logs Insights, the causes with how to recognise them and what to do, and the
//! long-term fixes.

use crate::model::remedy::Action;
use crate::runbook::{Runbook, STATUS_CHECKS};
use std::fmt::Write;

/// Renders `rb` as Markdown.
pub fn render_markdown(rb: &Runbook) -> String {
    let mut md = String::new();
    // writing to a String cannot fail
    let _ = write_runbook(&mut md, rb);
    md
}

fn fence(query: &str) -> String {
    // a fence longer than any backtick run inside the query
    let mut longest = 0;
    let mut run = 0;
    for c in query.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

fn inline(s: &str) -> String {
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

fn write_runbook(md: &mut String, rb: &Runbook) -> std::fmt::Result {
    writeln!(md, "# {}", rb.title.trim())?;
    writeln!(md)?;
    writeln!(md, "Runbook `{}`.", rb.id)?;
    writeln!(md)?;

    writeln!(md, "## Trigger")?;
    writeln!(md)?;
    writeln!(
        md,
        "Selected for an alarm whose `runbook` tag is `{}`, or otherwise (priority {}, the highest matching runbook wins) when:",
        rb.id, rb.trigger.priority
    )?;
    writeln!(md)?;
    if rb.trigger.is_empty() {
        writeln!(md, "- nothing else: only the `runbook` tag selects it")?;
    }
    for g in &rb.trigger.alarms {
        writeln!(md, "- the alarm name matches {}", inline(g))?;
    }
    for m in &rb.trigger.metrics {
        let what: Vec<String> = [
            m.namespace.as_ref().map(|n| format!("namespace {}", inline(n))),
            m.name.as_ref().map(|n| format!("metric {}", inline(n))),
        ]
        .into_iter()
        .flatten()
        .collect();
        writeln!(md, "- the alarm watches {}", what.join(", "))?;
    }
    if !rb.trigger.tags.is_empty() {
        let tags: Vec<String> = rb
            .trigger
            .tags
            .iter()
            .map(|(k, v)| inline(&format!("{k}={v}")))
            .collect();
        writeln!(md, "- the alarm has the tags {}", tags.join(", "))?;
    }
    writeln!(md)?;

    writeln!(md, "## Impact")?;
    writeln!(md)?;
    writeln!(md, "{}", rb.impact.trim())?;
    writeln!(md)?;

    writeln!(md, "## Investigation")?;
    writeln!(md)?;
    writeln!(
        md,
        "Run each query in CloudWatch Logs Insights over the {} before the alarm. Replace `{{service_name}}` and \
         the other placeholders with the incident's values (Firebreak does this, escaped, when it runs them).",
        rb.lookback
    )?;
    writeln!(md)?;
    for (i, q) in rb.investigation.iter().enumerate() {
        writeln!(md, "### {}. `{}`", i + 1, q.name)?;
        writeln!(md)?;
        if !q.description.trim().is_empty() {
            writeln!(md, "{}", q.description.trim())?;
            writeln!(md)?;
        }
        let groups: Vec<String> = rb.log_groups_for(q).into_iter().map(inline).collect();
        writeln!(md, "Log groups: {}", groups.join(", "))?;
        writeln!(md)?;
        let f = fence(&q.query);
        writeln!(md, "{f}")?;
        writeln!(md, "{}", q.query.trim_end())?;
        writeln!(md, "{f}")?;
        writeln!(md)?;
    }
    if !rb.metrics.is_empty() {
        writeln!(md, "### Metrics")?;
        writeln!(md)?;
        writeln!(
            md,
            "Compare each metric in the incident window with the baseline before it (Firebreak reads them with \
             GetMetricData and says which changed)."
        )?;
        writeln!(md)?;
        for m in &rb.metrics {
            let dims = match &m.metric.dimensions {
                super::model::Dimensions::From(super::model::DimensionSource::Alarm) => {
                    "the alarm's own dimensions".to_string()
                }
                super::model::Dimensions::From(super::model::DimensionSource::EcsService) => {
                    "`ClusterName={cluster}`, `ServiceName={service_name}`".to_string()
                }
                super::model::Dimensions::Fixed(d) if d.is_empty() => "no dimensions".to_string(),
                super::model::Dimensions::Fixed(d) => d
                    .iter()
                    .map(|(k, v)| inline(&format!("{k}={v}")))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            writeln!(
                md,
                "- `{}`: {} `{}` {} per {}, {dims}; the {} before the alarm against the {} before that.{}",
                m.name,
                inline(&m.metric.namespace),
                m.metric.name,
                m.metric.stat,
                m.period,
                m.window,
                m.baseline,
                if m.description.trim().is_empty() {
                    String::new()
                } else {
                    format!(" {}", m.description.trim())
                }
            )?;
        }
        writeln!(md)?;
    }
    if !rb.status_checks.is_empty() {
        writeln!(md, "### Status checks")?;
        writeln!(md)?;
        for c in &rb.status_checks {
            let what = STATUS_CHECKS.iter().find(|(k, _)| k == c).map_or("", |(_, d)| *d);
            let cli = match c.as_str() {
                "ecs-service" | "ecs-deployments" => Some(
                    "aws ecs describe-services --cluster {cluster} --services {service_name} \
                     --query 'services[0].{desired:desiredCount,running:runningCount,pending:pendingCount,deployments:deployments}'",
                ),
                "ecs-events" => Some(
                    "aws ecs describe-services --cluster {cluster} --services {service_name} --query 'services[0].events[:20]'",
                ),
                _ => None,
            };
            writeln!(md, "- `{c}`: {what}")?;
            if let Some(cli) = cli {
                writeln!(md)?;
                writeln!(md, "  ```sh")?;
                writeln!(md, "  {cli}")?;
                writeln!(md, "  ```")?;
            }
        }
        writeln!(md)?;
    }

    writeln!(md, "## Common causes")?;
    writeln!(md)?;
    if rb.causes.is_empty() {
        writeln!(md, "None recorded yet.")?;
        writeln!(md)?;
    } else {
        writeln!(
            md,
            "Firebreak checks them in this order and reports the first that matches."
        )?;
        writeln!(md)?;
    }
    for (i, c) in rb.causes.iter().enumerate() {
        writeln!(md, "### {}. `{}`", i + 1, c.id)?;
        writeln!(md)?;
        writeln!(md, "{}", c.description.trim())?;
        writeln!(md)?;
        writeln!(
            md,
            "Recognised by{}:",
            if c.signatures.len() > 1 { " all of" } else { "" }
        )?;
        writeln!(md)?;
        for s in &c.signatures {
            writeln!(md, "- {}", s.describe())?;
        }
        writeln!(md)?;
        if c.remediation.is_empty() {
            writeln!(md, "Remediation: none automated; see Resolution.")?;
        } else {
            writeln!(md, "Remediation (the first one the guardrails allow):")?;
            writeln!(md)?;
            for (j, step) in c.remediation.iter().enumerate() {
                match Action::parse(step) {
                    Ok(a) => writeln!(md, "{}. {a}", j + 1)?,
                    Err(e) => writeln!(md, "{}. `{}` (invalid: {e})", j + 1, step.action)?,
                }
            }
        }
        writeln!(md)?;
    }

    writeln!(md, "## Resolution")?;
    writeln!(md)?;
    if rb.resolution.is_empty() {
        writeln!(
            md,
            "Apply the remediation of the matched cause, then watch the alarm recover."
        )?;
    }
    for (i, r) in rb.resolution.iter().enumerate() {
        writeln!(md, "{}. {}", i + 1, r.trim())?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "Each applied action is verified {} after it: every alarm OK verifies it; an alarm still in ALARM makes it ineffective, escalates the incident one level and stops further automatic actions on it.",
        rb.verify_window
    )?;
    writeln!(md)?;

    writeln!(md, "## Prevention")?;
    writeln!(md)?;
    if rb.prevention.is_empty() {
        writeln!(md, "None recorded yet.")?;
    }
    for p in &rb.prevention {
        writeln!(md, "- [ ] {}", p.trim())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::{parse_source, RunbookSource};

    fn shipped(id: &str) -> Runbook {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../runbooks/{id}.yaml"));
        parse_source(&RunbookSource {
            file: format!("{id}.yaml"),
            text: std::fs::read_to_string(path).unwrap(),
        })
        .unwrap()
    }

    #[test]
    fn renders_every_section_with_the_exact_queries() {
        let rb = shipped("high-error-rate");
        let md = render_markdown(&rb);
        for heading in [
            "# High 5xx error rate",
            "## Trigger",
            "## Impact",
            "## Investigation",
            "## Common causes",
            "## Resolution",
            "## Prevention",
        ] {
            assert!(md.contains(heading), "missing {heading}:\n{md}");
        }
        for q in &rb.investigation {
            assert!(
                md.contains(&format!("```\n{}\n```", q.query.trim_end())),
                "query {} not verbatim",
                q.name
            );
        }
        assert!(md.contains("- the alarm name matches `*5xx*`"));
        assert!(md.contains("### 1. `db-connection-pool-exhausted`"));
        assert!(
            md.contains("ecs-scale-out (+2 tasks, at most 20 tasks and 2x current)"),
            "{md}"
        );
        assert!(md.contains("- [ ] Size the database connection pool for peak traffic"));
        assert!(md.contains("Log groups: `/ecs/{service_name}`"));
        assert!(md.contains("### Metrics"), "{md}");
        assert!(
            md.contains(
                "- `request-rate`: `AWS/ApplicationELB` `RequestCount` Sum per 1m, the alarm's own dimensions; \
                 the 15m before the alarm against the 1h before that."
            ),
            "{md}"
        );
        assert!(
            md.contains("`ClusterName={cluster}`, `ServiceName={service_name}`"),
            "{md}"
        );
    }

    #[test]
    fn a_query_with_backticks_gets_a_longer_fence() {
        let mut rb = shipped("high-cpu");
        rb.investigation[0].query = "fields `a```b`".into();
        let md = render_markdown(&rb);
        assert!(md.contains("````\nfields `a```b`\n````"), "{md}");
    }
}
