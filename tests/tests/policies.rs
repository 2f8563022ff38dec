//! The trust boundary as `infra/template.yaml` writes it (issue #11, docs/security.md): what every
//! IAM role may do, the event bus policy's Denies, the intake topic's Denies, and the
//! `dynamodb:LeadingKeys` conditions on table grants.
//!
//! The template is read as plain YAML. CloudFormation short tags become strings a test can
//! compare: `!Ref X` is `${X}`, `!GetAtt X.Arn` is `${X.Arn}`, `!Sub s` is `s`; `!If [c, a, b]`
//! becomes `{"Fn::If": [c, a, b]}`, and a statement list keeps both branches of an `!If` (a role
//! may do what either branch allows).
//!
//! Each check returns an error naming what regressed; `every_check_fails_on_a_template_that_regresses`
//! feeds deliberately broken copies of the template to the checks, so none of them can pass
//! vacuously.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use anyhow::{bail, ensure, Context, Result};
use firebreak_core::model::pipeline::detail_types as dt;
use firebreak_integration::workspace_root;
use serde_norway::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};

// ------------------------------------------------------------------ what the code needs

/// The roles the template must declare, and for each the actions it may be allowed: the SDK calls
/// its function makes (crates/aws/src, called from crates/core/src/stages; see the permission
/// table in docs/security.md). A new SDK call needs a statement in the template and a line here.
fn expected_actions() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    const BASE: [&str; 5] = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:SendMessage",
    ];
    const PAGE: [&str; 3] = ["sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"];
    const TABLE: [&str; 4] = [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:Query",
    ];
    let role = |extra: &[&'static str]| -> BTreeSet<&'static str> {
        BASE.iter()
            .chain(TABLE.iter())
            .chain(extra.iter())
            .chain(std::iter::once(&"events:PutEvents"))
            .copied()
            .collect()
    };
    let with_page = |extra: &[&'static str]| -> BTreeSet<&'static str> {
        let mut s = role(extra);
        s.extend(PAGE);
        s
    };
    BTreeMap::from([
        ("TriageRole", with_page(&["dynamodb:UpdateItem"])),
        (
            "DiagnoseRole",
            with_page(&[
                "logs:StartQuery",
                "logs:GetQueryResults",
                "logs:StopQuery",
                "logs:FilterLogEvents",
                "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition",
                "ecs:ListTaskDefinitions",
                "cloudwatch:GetMetricData",
            ]),
        ),
        (
            "RemediateRole",
            with_page(&[
                "ecs:DescribeServices",
                "ecs:UpdateService",
                "ecs:ListTaskDefinitions",
                "cloudwatch:DescribeAlarms",
            ]),
        ),
        (
            "ResolveRole",
            // DescribeServices: shadow scoring reads what people changed on the service
            with_page(&[
                "dynamodb:UpdateItem",
                "cloudwatch:DescribeAlarms",
                "ecs:DescribeServices",
            ]),
        ),
        ("SweeperRole", with_page(&["cloudwatch:DescribeAlarms"])),
        // oncall puts nothing on the bus and pages nobody: it reads its two keys and the table
        (
            "OnCallRole",
            BASE.iter()
                .chain(TABLE.iter())
                .chain(["ssm:GetParameter", "secretsmanager:GetSecretValue"].iter())
                .copied()
                .collect(),
        ),
        // chat: the buttons; its queue is its trigger (no failure-queue send), it reads the
        // responder roles' ids, acknowledges, approves and answers in the thread
        (
            CHAT,
            BASE.iter()
                .filter(|a| **a != "sqs:SendMessage")
                .chain(TABLE.iter())
                .chain(PAGE.iter())
                .chain(
                    [
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:GetQueueAttributes",
                        "sqs:ChangeMessageVisibility",
                        "iam:GetRole",
                        "events:PutEvents",
                    ]
                    .iter(),
                )
                .copied()
                .collect(),
        ),
        // the chat channel's own role: every command runs under the user's role instead
        ("ChatChannelRole", BTreeSet::new()),
        (
            "FirebreakApproverRole",
            BTreeSet::from(["dynamodb:GetItem", "dynamodb:Query", "events:PutEvents"]),
        ),
    ])
}

const APPROVER: &str = "FirebreakApproverRole";
/// The chat buttons' function: the only role besides the approver that may put an approval,
/// and only as the responder SQS verified.
const CHAT: &str = "ChatRole";

/// The detail-types each role puts on the bus: what its stage publishes (`Event::…` in
/// crates/core/src/stages) and, for the approver, what `firebreak approve` puts.
fn expected_detail_types() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    BTreeMap::from([
        (
            "TriageRole",
            BTreeSet::from([dt::INCIDENT_OPENED, dt::INCIDENT_ESCALATED, dt::ALARM_RECOVERED]),
        ),
        ("DiagnoseRole", BTreeSet::from([dt::DIAGNOSIS_COMPLETED])),
        ("RemediateRole", BTreeSet::from([dt::REMEDIATION_APPLIED])),
        ("ResolveRole", BTreeSet::from([dt::INCIDENT_RESOLVED])),
        ("SweeperRole", BTreeSet::from([dt::INCIDENT_ESCALATED])),
        (
            APPROVER,
            BTreeSet::from([dt::REMEDIATION_APPROVED, dt::INCIDENT_ACKNOWLEDGED]),
        ),
        (
            CHAT,
            BTreeSet::from([dt::REMEDIATION_APPROVED, dt::INCIDENT_ACKNOWLEDGED]),
        ),
    ])
}

/// The partition-key prefixes (crates/aws/src/store.rs: `INC#<id>`, `OPEN#<service>`,
/// `LEASE#<key>`, `TRANSITION#<change>`, and the one partition `AUTONOMY` of the autonomy
/// records) each role's table action may touch, as `dynamodb:LeadingKeys` patterns.
fn expected_leading_keys() -> BTreeMap<(&'static str, &'static str), BTreeSet<&'static str>> {
    let inc = || BTreeSet::from(["INC#*"]);
    let mut m = BTreeMap::new();
    for role in [
        "TriageRole",
        "DiagnoseRole",
        "RemediateRole",
        "ResolveRole",
        "SweeperRole",
        "OnCallRole",
        CHAT,
        APPROVER,
    ] {
        m.insert((role, "dynamodb:GetItem"), inc());
        m.insert((role, "dynamodb:Query"), inc());
        if role != APPROVER {
            m.insert((role, "dynamodb:ConditionCheckItem"), inc());
            m.insert((role, "dynamodb:PutItem"), inc());
        }
    }
    // Triage opens incidents: the open pointer is read and written with the incident.
    // ... and claims each alarm state change for one of its copies (TRANSITION#).
    m.insert(
        ("TriageRole", "dynamodb:GetItem"),
        BTreeSet::from(["INC#*", "OPEN#*", "TRANSITION#*"]),
    );
    m.insert(
        ("TriageRole", "dynamodb:UpdateItem"),
        BTreeSet::from(["TRANSITION#*"]),
    );
    m.insert(
        ("TriageRole", "dynamodb:PutItem"),
        BTreeSet::from(["INC#*", "OPEN#*", "TRANSITION#*"]),
    );
    // Leases: remediation cooldowns and circuit-breaker slots, resolve's one-shot notify step.
    m.insert(
        ("RemediateRole", "dynamodb:PutItem"),
        BTreeSet::from(["INC#*", "LEASE#*"]),
    );
    m.insert(
        ("ResolveRole", "dynamodb:PutItem"),
        BTreeSet::from(["INC#*", "LEASE#*", "AUTONOMY"]),
    );
    // Autonomy records: the mode `earned` reads them (and an open circuit says who holds its
    // slot, LEASE#); resolve counts shadow verdicts and the sweeper verification outcomes.
    m.insert(
        ("RemediateRole", "dynamodb:GetItem"),
        BTreeSet::from(["INC#*", "LEASE#*", "AUTONOMY"]),
    );
    m.insert(
        ("ResolveRole", "dynamodb:GetItem"),
        BTreeSet::from(["INC#*", "AUTONOMY"]),
    );
    m.insert(
        ("SweeperRole", "dynamodb:GetItem"),
        BTreeSet::from(["INC#*", "AUTONOMY"]),
    );
    m.insert(
        ("SweeperRole", "dynamodb:PutItem"),
        BTreeSet::from(["INC#*", "AUTONOMY"]),
    );
    // Resolving releases the open pointer (SET resolved_at).
    m.insert(("ResolveRole", "dynamodb:UpdateItem"), BTreeSet::from(["OPEN#*"]));
    m
}

/// The roles that may query the active-incidents index (gsi1): the sweeper's sweep, the
/// approver's "the only open incident".
const ACTIVE_INDEX_READERS: [&str; 2] = ["SweeperRole", APPROVER];

// ------------------------------------------------------------------ reading the template

/// Short tags as comparable strings (see the module comment).
fn norm(v: &Value) -> Value {
    match v {
        Value::Tagged(t) => {
            let inner = norm(&t.value);
            let text = |v: &Value| -> String {
                match v {
                    Value::String(s) => s.clone(),
                    Value::Sequence(seq) => {
                        seq.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(".")
                    }
                    other => format!("{other:?}"),
                }
            };
            if t.tag == "Ref" || t.tag == "GetAtt" {
                Value::String(format!("${{{}}}", text(&inner)))
            } else if t.tag == "Sub" {
                match &inner {
                    Value::Sequence(seq) => seq.first().cloned().unwrap_or(Value::Null),
                    other => other.clone(),
                }
            } else {
                let mut m = Mapping::new();
                m.insert(
                    Value::String(format!("Fn::{}", t.tag.to_string().trim_start_matches('!'))),
                    inner,
                );
                Value::Mapping(m)
            }
        }
        Value::Sequence(seq) => Value::Sequence(seq.iter().map(norm).collect()),
        Value::Mapping(m) => Value::Mapping(m.iter().map(|(k, v)| (norm(k), norm(v))).collect()),
        other => other.clone(),
    }
}

/// A string or a list of strings, as IAM writes Action, Resource and condition values.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(seq)) => seq.iter().flat_map(|x| strings(Some(x))).collect(),
        Some(Value::Bool(b)) => vec![b.to_string()],
        _ => vec![],
    }
}

#[derive(Debug, Clone)]
struct Statement {
    sid: String,
    effect: String,
    principal: Value,
    actions: BTreeSet<String>,
    resources: Vec<String>,
    /// operator → key → values.
    condition: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Statement {
    fn cond(&self, op: &str, key: &str) -> Option<&BTreeSet<String>> {
        self.condition.get(op).and_then(|keys| keys.get(key))
    }

    fn is_deny_for_everyone(&self, action: &str) -> bool {
        let star = |v: &Value| v.as_str() == Some("*");
        let everyone = star(&self.principal) || self.principal.get("AWS").is_some_and(star);
        self.effect == "Deny" && everyone && self.actions.contains(action)
    }
}

/// The statements of a policy document, both branches of an `!If` statement, `AWS::NoValue` left out.
fn statements(doc: &Value) -> Result<Vec<Statement>> {
    let mut raw: Vec<Value> = Vec::new();
    let mut push = |v: &Value| match v.get("Fn::If").and_then(Value::as_sequence) {
        Some(branches) => raw.extend(branches.iter().skip(1).cloned()),
        None => raw.push(v.clone()),
    };
    match doc.get("Statement") {
        Some(Value::Sequence(seq)) => seq.iter().for_each(&mut push),
        Some(one @ Value::Mapping(_)) => push(one),
        _ => bail!("the policy document has no Statement"),
    }
    let mut out = Vec::new();
    for s in raw.iter().filter(|s| s.as_str() != Some("${AWS::NoValue}")) {
        // A condition under `!If` is one statement per branch (`AWS::NoValue`: no condition).
        let variants: Vec<Option<&Value>> = match s.get("Condition") {
            Some(c) => match c.get("Fn::If").and_then(Value::as_sequence) {
                Some(branches) => branches
                    .iter()
                    .skip(1)
                    .map(|b| (b.as_str() != Some("${AWS::NoValue}")).then_some(b))
                    .collect(),
                None => vec![Some(c)],
            },
            None => vec![None],
        };
        for c in variants {
            out.push(statement(s, c)?);
        }
    }
    Ok(out)
}

fn statement(s: &Value, cond: Option<&Value>) -> Result<Statement> {
    let mut condition = BTreeMap::new();
    if let Some(ops) = cond {
        let ops = ops.as_mapping().context("a Condition is not a mapping")?;
        for (op, keys) in ops {
            let op = op.as_str().context("a condition operator is not a string")?;
            let mut per_key = BTreeMap::new();
            for (k, v) in keys.as_mapping().context("condition keys are not a mapping")? {
                let k = k.as_str().context("a condition key is not a string")?;
                per_key.insert(k.to_string(), strings(Some(v)).into_iter().collect());
            }
            condition.insert(op.to_string(), per_key);
        }
    }
    Ok(Statement {
        sid: s.get("Sid").and_then(Value::as_str).unwrap_or("?").to_string(),
        effect: s
            .get("Effect")
            .and_then(Value::as_str)
            .context("a statement has no Effect")?
            .to_string(),
        principal: s.get("Principal").cloned().unwrap_or(Value::Null),
        actions: strings(s.get("Action")).into_iter().collect(),
        resources: strings(s.get("Resource")),
        condition,
    })
}

struct Template {
    resources: Mapping,
}

impl Template {
    fn parse(text: &str) -> Result<Template> {
        let doc: Value = serde_norway::from_str(text).context("parsing the template")?;
        let doc = norm(&doc);
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .context("template has no Resources")?
            .clone();
        Ok(Template { resources })
    }

    fn resource(&self, name: &str) -> Result<&Value> {
        self.resources
            .get(name)
            .with_context(|| format!("resource {name} is not declared"))
    }

    fn of_type(&self, kind: &str) -> Vec<(String, &Value)> {
        self.resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .filter_map(|(k, r)| Some((k.as_str()?.to_string(), r)))
            .collect()
    }

    /// Every IAM role's permission statements (all inline policies).
    fn roles(&self) -> Result<BTreeMap<String, Vec<Statement>>> {
        let mut out = BTreeMap::new();
        for (name, role) in self.of_type("AWS::IAM::Role") {
            let props = role.get("Properties").context("a role has no Properties")?;
            ensure!(
                props.get("ManagedPolicyArns").is_none(),
                "{name} attaches managed policies: write its statements out"
            );
            let mut all = Vec::new();
            for p in props
                .get("Policies")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let doc = p
                    .get("PolicyDocument")
                    .context("a policy has no PolicyDocument")?;
                all.extend(statements(doc).with_context(|| name.clone())?);
            }
            out.insert(name, all);
        }
        Ok(out)
    }

    /// `${Role.Arn}` for a role's logical id.
    fn arn(role: &str) -> String {
        format!("${{{role}.Arn}}")
    }
}

fn template() -> Template {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Template::parse(&text).unwrap()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------------ the checks

/// Every role is one the project knows, and is allowed exactly the actions its code uses: no
/// wildcard action, no action nobody calls.
fn check_role_actions(t: &Template) -> Result<()> {
    let roles = t.roles()?;
    let want = expected_actions();
    let declared: BTreeSet<&str> = roles.keys().map(String::as_str).collect();
    let known: BTreeSet<&str> = want.keys().copied().collect();
    ensure!(
        declared == known,
        "the template's roles are {declared:?}, want {known:?}"
    );
    for (name, stmts) in &roles {
        let allowed: BTreeSet<&str> = stmts
            .iter()
            .filter(|s| s.effect == "Allow")
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect();
        for a in &allowed {
            ensure!(!a.contains('*'), "{name} is allowed the wildcard action {a}");
        }
        ensure!(
            allowed == want[name.as_str()],
            "{name} is allowed {:?} more and {:?} fewer than its code needs",
            allowed.difference(&want[name.as_str()]).collect::<Vec<_>>(),
            want[name.as_str()].difference(&allowed).collect::<Vec<_>>()
        );
        for s in stmts.iter().filter(|s| s.effect == "Allow") {
            ensure!(
                s.actions.len() == 1,
                "{name} {}: one action per statement, found {:?}",
                s.sid,
                s.actions
            );
        }
    }
    Ok(())
}

/// ecs:UpdateService (the action that moves production) is granted to remediate alone.
fn check_only_remediate_updates_services(t: &Template) -> Result<()> {
    for (name, stmts) in t.roles()? {
        let grants = stmts.iter().any(|s| {
            s.effect == "Allow" && s.actions.iter().any(|a| a == "ecs:UpdateService" || a == "ecs:*")
        });
        ensure!(
            !grants || name == "RemediateRole",
            "{name} may ecs:UpdateService; only RemediateRole may"
        );
    }
    Ok(())
}

/// Every Allow of events:PutEvents is on Firebreak's bus with an `events:detail-type`
/// StringEquals condition listing exactly the role's detail-types (and `events:source`
/// firebreak); no function role's list has "Remediation Approved".
fn check_put_events(t: &Template) -> Result<()> {
    let want = expected_detail_types();
    let bus = bus_arn(t)?;
    for (name, stmts) in t.roles()? {
        for s in stmts
            .iter()
            .filter(|s| s.effect == "Allow" && s.actions.contains("events:PutEvents"))
        {
            let ctx = format!("{name} {}", s.sid);
            ensure!(
                s.resources == [bus.clone()],
                "{ctx}: PutEvents on {:?}, want only the bus {bus}",
                s.resources
            );
            let types = s.cond("StringEquals", "events:detail-type").with_context(|| {
                format!("{ctx}: events:PutEvents without a StringEquals events:detail-type condition")
            })?;
            ensure!(
                types.iter().all(|x| !x.contains('*') && !x.contains('?')),
                "{ctx}: detail-type patterns {types:?}"
            );
            let expected: BTreeSet<String> = want
                .get(name.as_str())
                .with_context(|| format!("{ctx}: this role may not put events at all"))?
                .iter()
                .map(|s| s.to_string())
                .collect();
            ensure!(
                *types == expected,
                "{ctx}: detail-types {types:?}, want {expected:?}"
            );
            if name != APPROVER && name != CHAT {
                ensure!(
                    !types.contains(dt::REMEDIATION_APPROVED),
                    "{ctx}: a function role may put {:?}",
                    dt::REMEDIATION_APPROVED
                );
            }
            ensure!(
                s.cond("StringEquals", "events:source") == Some(&set(&[dt::SOURCE])),
                "{ctx}: events:source is not limited to {}",
                dt::SOURCE
            );
        }
    }
    Ok(())
}

/// The custom bus's ARN as the roles must name it (the bus is named firebreak-<stack>).
fn bus_arn(t: &Template) -> Result<String> {
    let bus = bus(t)?;
    let name = bus
        .get("Properties")
        .and_then(|p| p.get("Name"))
        .and_then(Value::as_str)
        .context("the bus has no Name")?;
    Ok(format!(
        "arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:event-bus/{name}"
    ))
}

fn bus(t: &Template) -> Result<&Value> {
    let buses = t.of_type("AWS::Events::EventBus");
    let [(_, bus)] = buses.as_slice() else {
        bail!(
            "expected exactly one AWS::Events::EventBus, found {}",
            buses.len()
        );
    };
    Ok(bus)
}

/// The bus policy denies PutEvents to everyone but the roles, any source but firebreak, and
/// "Remediation Approved" to everyone but the approver; and each role every detail-type it
/// does not emit.
fn check_bus_policy(t: &Template) -> Result<()> {
    let policy = bus(t)?
        .get("Properties")
        .and_then(|p| p.get("Policy"))
        .context("the event bus has no Policy")?;
    ensure!(
        t.of_type("AWS::Events::EventBusPolicy").is_empty(),
        "AWS::Events::EventBusPolicy statements beside the bus's Policy: keep the policy in one place"
    );
    let stmts = statements(policy)?;
    let bus = bus_arn(t)?;
    let denies: Vec<&Statement> = stmts
        .iter()
        .filter(|s| s.is_deny_for_everyone("events:PutEvents") && s.resources == [bus.clone()])
        .collect();
    ensure!(
        stmts.iter().all(|s| s.effect == "Deny"),
        "the bus policy allows something; same-account roles need no Allow here"
    );

    let everyone: BTreeSet<String> = expected_detail_types().keys().map(|r| Template::arn(r)).collect();
    ensure!(
        denies.iter().any(|s| s.condition.len() == 2
            && s.cond("ArnNotEquals", "aws:PrincipalArn") == Some(&everyone)
            // oncall acts on the stored acknowledgement only: anyone may say there is one
            && s.cond("StringNotEquals", "events:detail-type") == Some(&set(&[dt::INCIDENT_ACKNOWLEDGED]))),
        "no Deny of PutEvents (but Incident Acknowledged) to every principal but {everyone:?}"
    );
    ensure!(
        denies.iter().any(|s| s.condition.len() == 1
            && s.cond("StringNotEquals", "events:source") == Some(&set(&[dt::SOURCE]))),
        "no Deny of PutEvents with a source other than {}",
        dt::SOURCE
    );
    let approver = set(&[&Template::arn(APPROVER), &Template::arn(CHAT)]);
    ensure!(
        denies.iter().any(|s| s.condition.len() == 2
            && s.cond("StringEquals", "events:detail-type") == Some(&set(&[dt::REMEDIATION_APPROVED]))
            && s.cond("ArnNotEquals", "aws:PrincipalArn") == Some(&approver)),
        "no Deny of {:?} to every principal but {APPROVER} and {CHAT}",
        dt::REMEDIATION_APPROVED
    );
    for (role, types) in expected_detail_types() {
        let types: BTreeSet<String> = types.iter().map(|s| s.to_string()).collect();
        ensure!(
            denies.iter().any(|s| s.condition.len() == 2
                && s.cond("ArnEquals", "aws:PrincipalArn") == Some(&set(&[&Template::arn(role)]))
                && s.cond("StringNotEquals", "events:detail-type") == Some(&types)),
            "no Deny of every detail-type but {types:?} to {role}"
        );
    }
    Ok(())
}

/// The topic triage's SNS event subscribes to: Allow for CloudWatch alarms of this account, and
/// explicit Denies of sns:Publish to every other principal.
fn check_intake_topic(t: &Template) -> Result<()> {
    let triage = t.resource("Triage")?;
    let topic = triage
        .get("Properties")
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .find(|(_, e)| e.get("Type").and_then(Value::as_str) == Some("SNS"))
        .and_then(|(_, e)| e.get("Properties")?.get("Topic")?.as_str())
        .context("triage has no SNS event with a Topic")?
        .to_string();
    let policies: Vec<(String, &Value)> = t
        .of_type("AWS::SNS::TopicPolicy")
        .into_iter()
        .filter(|(_, p)| {
            p.get("Properties")
                .and_then(|p| p.get("Topics"))
                .is_some_and(|ts| strings(Some(ts)).contains(&topic))
        })
        .collect();
    let [(name, policy)] = policies.as_slice() else {
        bail!(
            "expected one AWS::SNS::TopicPolicy for {topic}, found {}",
            policies.len()
        );
    };
    let stmts = statements(
        policy
            .get("Properties")
            .and_then(|p| p.get("PolicyDocument"))
            .context("the intake topic policy has no PolicyDocument")?,
    )?;
    let alarms = set(&["arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"]);
    let account = set(&["${AWS::AccountId}"]);
    ensure!(
        stmts.iter().any(|s| s.effect == "Allow"
            && s.principal.get("Service").and_then(Value::as_str) == Some("cloudwatch.amazonaws.com")
            && s.actions.contains("sns:Publish")
            && s.cond("StringEquals", "aws:SourceAccount") == Some(&account)),
        "{name}: CloudWatch alarms of this account are not allowed to publish"
    );
    let deny = |op: &str, key: &str, values: &BTreeSet<String>| {
        stmts.iter().any(|s| {
            s.is_deny_for_everyone("sns:Publish")
                && s.resources == [topic.clone()]
                && s.condition.len() == 1
                && s.cond(op, key) == Some(values)
        })
    };
    ensure!(
        deny(
            "StringNotEquals",
            "aws:PrincipalServiceName",
            &set(&["cloudwatch.amazonaws.com"])
        ),
        "{name}: no Deny of sns:Publish to principals other than cloudwatch.amazonaws.com"
    );
    ensure!(
        deny("StringNotEquals", "aws:SourceAccount", &account),
        "{name}: no Deny of sns:Publish from other accounts"
    );
    ensure!(
        deny("ArnNotLike", "aws:SourceArn", &alarms),
        "{name}: no Deny of sns:Publish from sources other than this account's alarms"
    );
    for s in stmts.iter().filter(|s| s.effect == "Deny") {
        ensure!(
            s.condition.keys().all(|op| !op.ends_with("IfExists")),
            "{name} {}: an IfExists Deny lets a request without the key through",
            s.sid
        );
    }
    Ok(())
}

/// The chat queue: only the chat function may receive, delete or hold its messages (a live
/// receipt handle is how it tells a press SQS delivered from a payload invoked directly), and
/// only the responder roles may send (SQS's SenderId then names who pressed).
fn check_chat_queue(t: &Template) -> Result<()> {
    let (_, policy) = t
        .of_type("AWS::SQS::QueuePolicy")
        .into_iter()
        .find(|(n, _)| n == "ChatActionQueuePolicy")
        .context("no ChatActionQueuePolicy")?;
    let stmts = statements(
        policy
            .get("Properties")
            .and_then(|p| p.get("PolicyDocument"))
            .context("ChatActionQueuePolicy has no PolicyDocument")?,
    )?;
    let chat = set(&[&Template::arn(CHAT)]);
    for a in [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    ] {
        ensure!(
            stmts.iter().any(|s| s.is_deny_for_everyone(a)
                && s.condition.len() == 1
                && s.cond("ArnNotEquals", "aws:PrincipalArn") == Some(&chat)),
            "no Deny of {a} on the chat queue to every principal but {CHAT}"
        );
    }
    ensure!(
        stmts.iter().any(|s| s.is_deny_for_everyone("sqs:SendMessage")
            && s.condition.len() == 1
            && s.condition.contains_key("ArnNotEquals")),
        "no Deny of sqs:SendMessage on the chat queue to principals other than the responder roles"
    );
    Ok(())
}

/// Table actions carry `ForAllValues:StringLike dynamodb:LeadingKeys` with exactly the prefixes
/// the role's code uses; index queries only on gsi1 and only by the roles that list active
/// incidents; nothing on `index/*` or on another table.
fn check_leading_keys(t: &Template) -> Result<()> {
    let want = expected_leading_keys();
    let table = "${Table.Arn}".to_string();
    let active = "${Table.Arn}/index/gsi1".to_string();
    let mut seen = BTreeSet::new();
    for (name, stmts) in t.roles()? {
        for s in stmts.iter().filter(|s| s.effect == "Allow") {
            for a in s.actions.iter().filter(|a| a.starts_with("dynamodb:")) {
                let ctx = format!("{name} {} {a}", s.sid);
                match s.resources.as_slice() {
                    [r] if *r == table => {
                        let keys = s
                            .cond("ForAllValues:StringLike", "dynamodb:LeadingKeys")
                            .with_context(|| {
                                format!("{ctx}: no ForAllValues:StringLike dynamodb:LeadingKeys")
                            })?;
                        let expected = want.get(&(name.as_str(), a.as_str())).with_context(|| {
                            format!("{ctx}: not an action this role's code uses on the table")
                        })?;
                        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
                        ensure!(
                            *keys == expected,
                            "{ctx}: LeadingKeys {keys:?}, want {expected:?}"
                        );
                        seen.insert((name.clone(), a.clone()));
                    }
                    [r] if *r == active => ensure!(
                        a == "dynamodb:Query" && ACTIVE_INDEX_READERS.contains(&name.as_str()),
                        "{ctx}: on the active-incidents index"
                    ),
                    other => bail!("{ctx}: on {other:?}, want the table (with LeadingKeys) or index/gsi1"),
                }
            }
        }
    }
    for (role, action) in want.keys() {
        ensure!(
            seen.contains(&(role.to_string(), action.to_string())),
            "{role} has no {action} on the table (with LeadingKeys)"
        );
    }
    Ok(())
}

/// The approver role: trusted by the configured principal, never by a function role; its ARN is
/// remediate's FIREBREAK_APPROVER_ROLE_ARN and a stack output.
fn check_approver(t: &Template, text: &str) -> Result<()> {
    let role = t.resource(APPROVER)?;
    let trust = statements(
        role.get("Properties")
            .and_then(|p| p.get("AssumeRolePolicyDocument"))
            .context("the approver role has no trust policy")?,
    )?;
    ensure!(
        trust
            .iter()
            .all(|s| s.effect != "Allow" || s.principal.get("Service").is_none()),
        "a service may assume the approver role"
    );
    // every function role, those that put nothing on the bus (oncall) too
    let functions: BTreeSet<String> = expected_actions()
        .keys()
        .filter(|r| **r != APPROVER && **r != "ChatChannelRole")
        .map(|r| Template::arn(r))
        .collect();
    ensure!(
        trust.iter().any(|s| s.is_deny_for_everyone("sts:AssumeRole")
            && s.cond("ArnEquals", "aws:PrincipalArn") == Some(&functions)),
        "the approver role's trust policy does not deny the function roles"
    );
    let env = t
        .resource("Remediate")?
        .get("Properties")
        .and_then(|p| p.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get("FIREBREAK_APPROVER_ROLE_ARN"))
        .and_then(Value::as_str);
    ensure!(
        env == Some(Template::arn(APPROVER).as_str()),
        "remediate's FIREBREAK_APPROVER_ROLE_ARN is {env:?}"
    );
    let doc = norm(&serde_norway::from_str::<Value>(text)?);
    let output = doc
        .get("Outputs")
        .and_then(|o| o.get("ApproverRoleArn"))
        .and_then(|o| o.get("Value"))
        .and_then(Value::as_str);
    ensure!(
        output == Some(Template::arn(APPROVER).as_str()),
        "output ApproverRoleArn is {output:?}"
    );
    Ok(())
}

fn check_all(text: &str) -> Result<()> {
    let t = Template::parse(text)?;
    check_role_actions(&t).context("role actions")?;
    check_only_remediate_updates_services(&t).context("ecs:UpdateService")?;
    check_put_events(&t).context("events:PutEvents grants")?;
    check_bus_policy(&t).context("bus policy")?;
    check_intake_topic(&t).context("intake topic policy")?;
    check_leading_keys(&t).context("table grants")?;
    check_approver(&t, text).context("approver role")?;
    check_chat_queue(&t).context("chat queue policy")?;
    Ok(())
}

// ------------------------------------------------------------------ tests

#[test]
fn every_role_is_allowed_exactly_the_actions_its_code_uses() -> Result<()> {
    check_role_actions(&template())
}

#[test]
fn only_the_remediate_role_may_update_ecs_services() -> Result<()> {
    check_only_remediate_updates_services(&template())
}

#[test]
fn every_put_events_grant_names_the_roles_detail_types_and_no_function_may_approve() -> Result<()> {
    check_put_events(&template())
}

#[test]
fn the_bus_policy_denies_everyone_but_the_roles_and_approvals_to_all_but_the_approver() -> Result<()> {
    check_bus_policy(&template())
}

#[test]
fn the_intake_topic_denies_publish_to_all_but_this_accounts_cloudwatch_alarms() -> Result<()> {
    check_intake_topic(&template())
}

#[test]
fn table_grants_carry_leading_keys_on_the_prefixes_each_role_uses() -> Result<()> {
    check_leading_keys(&template())
}

#[test]
fn the_approver_role_is_trusted_by_people_not_functions_and_remediate_knows_it() -> Result<()> {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path)?;
    check_approver(&template(), &text)
}

/// Each check fails on a template that regresses in the way it guards against. The broken
/// templates are edits of the real one; an edit that no longer applies fails the test, so it
/// is updated with the template rather than silently checking nothing.
#[test]
fn every_check_fails_on_a_template_that_regresses() -> Result<()> {
    let path = workspace_root().join("infra/template.yaml");
    let good = std::fs::read_to_string(&path)?;
    check_all(&good).context("the real template must pass")?;

    // (what breaks, text to find, replacement, which check must say so)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "triage may put approvals",
            "events:detail-type: [Incident Opened, Incident Escalated, Alarm Recovered]\n\n  Triage:",
            "events:detail-type: [Incident Opened, Incident Escalated, Alarm Recovered, Remediation Approved]\n\n  Triage:",
            "events:PutEvents grants",
        ),
        (
            "resolve's PutEvents has no detail-type condition",
            "                    events:detail-type: [Incident Resolved]\n\n  Resolve:",
            "\n  Resolve:",
            "events:PutEvents grants",
        ),
        (
            "diagnose may update services",
            "                Action: ecs:DescribeServices\n                Resource: !Sub arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/*\n              # What a deployment",
            "                Action: ecs:UpdateService\n                Resource: !Sub arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/*\n              # What a deployment",
            "role actions",
        ),
        (
            "anyone may take presses off the chat queue",
            "          - Sid: OnlyChatReceives\n            Effect: Deny",
            "          - Sid: OnlyChatReceives\n            Effect: Allow",
            "chat queue policy",
        ),
        (
            "the bus policy no longer denies approvals to others",
            "          - Sid: DenyApprovalsExceptApprover\n            Effect: Deny",
            "          - Sid: DenyApprovalsExceptApprover\n            Effect: Allow",
            "bus policy",
        ),
        (
            "the bus policy lets an extra principal put events",
            "                  - !GetAtt FirebreakApproverRole.Arn\n          - Sid: DenyOtherSources",
            "                  - !GetAtt FirebreakApproverRole.Arn\n                  - !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:root\n          - Sid: DenyOtherSources",
            "bus policy",
        ),
        (
            "the intake topic no longer denies non-CloudWatch principals",
            "              StringNotEquals:\n                aws:PrincipalServiceName: cloudwatch.amazonaws.com",
            "              StringNotEqualsIfExists:\n                aws:PrincipalServiceName: cloudwatch.amazonaws.com",
            "intake topic policy",
        ),
        (
            "a GetItem without LeadingKeys",
            "                Condition:\n                  ForAllValues:StringLike:\n                    dynamodb:LeadingKeys: [\"INC#*\", \"OPEN#*\", \"TRANSITION#*\"]\n              # PutItem",
            "\n              # PutItem",
            "table grants",
        ),
        (
            "queries on every index",
            "Resource: !Sub ${Table.Arn}/index/gsi1\n              - Sid: AlarmsDescribe",
            "Resource: !Sub ${Table.Arn}/index/*\n              - Sid: AlarmsDescribe",
            "table grants",
        ),
        (
            "the sweeper may write every partition's items",
            "                    dynamodb:LeadingKeys: [\"INC#*\", \"AUTONOMY\"]\n              # The ConditionCheck",
            "                    dynamodb:LeadingKeys: [\"*\"]\n              # The ConditionCheck",
            "table grants",
        ),
        (
            "resolve can no longer read what people changed on the service",
            "as diagnose.\n              - Sid: EcsDescribeServices\n                Effect: Allow",
            "as diagnose.\n              - Sid: EcsDescribeServices\n                Effect: Deny",
            "role actions",
        ),
        (
            "a function role may assume the approver role",
            "          - Sid: FunctionRolesNeverAssume\n            Effect: Deny",
            "          - Sid: FunctionRolesNeverAssume\n            Effect: Allow",
            "approver role",
        ),
    ];
    for (what, from, to, check) in cases {
        ensure!(
            good.matches(from).count() == 1,
            "{what}: the edit no longer applies to the template"
        );
        let broken = good.replacen(from, to, 1);
        let err = match check_all(&broken) {
            Ok(()) => bail!("{what}: the broken template passed"),
            Err(e) => e,
        };
        ensure!(
            err.to_string() == *check,
            "{what}: failed in {:?} ({err:#}), want {check:?}",
            err.to_string()
        );
    }

    // And a template that merely parses is no pass.
    ensure!(check_all("Resources: {}\n").is_err(), "an empty template passed");
    Ok(())
}
