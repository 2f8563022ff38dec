//! The SAM template declares the table that `firebreak_aws::table::table_spec` defines: key
//! schema, attribute definitions, GSIs, TTL, billing mode.
//!
//! While `infra/template.yaml` does not exist yet this test prints that it skipped; once the
//! template lands it must hold exactly one AWS::DynamoDB::Table that matches.
//!
//! And the remediation parameters reach the functions: each is passed as the variable
//! `Settings::from_lookup` reads, with the code's default, and the template's defaults are
//! settings the code accepts.
//!
//! And the dashboard shows what the code writes: the EMF metrics by the names and dimension sets
//! the functions emit, and every function's errors and throttles and the failure queue's depth.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use anyhow::{bail, ensure, Context, Result};
use firebreak_aws::table::{table_spec, KeyAttr};
use firebreak_core::model::settings::{env, RemediationMode, Settings};
use firebreak_integration::workspace_root;
use serde_norway::Value;
use std::collections::BTreeSet;

fn str_at<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("{key} is missing or not a plain string"))
}

fn seq_at<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    v.get(key)
        .and_then(Value::as_sequence)
        .with_context(|| format!("{key} is missing or not a list"))
}

/// `[(name, HASH|RANGE)]` of a KeySchema.
fn key_schema(v: &Value) -> Result<Vec<(String, String)>> {
    seq_at(v, "KeySchema")?
        .iter()
        .map(|k| {
            Ok((
                str_at(k, "AttributeName")?.to_string(),
                str_at(k, "KeyType")?.to_string(),
            ))
        })
        .collect()
}

fn expected_keys(pk: KeyAttr, sk: KeyAttr) -> Vec<(String, String)> {
    vec![
        (pk.name.to_string(), "HASH".to_string()),
        (sk.name.to_string(), "RANGE".to_string()),
    ]
}

/// Checks that `text` (a CloudFormation/SAM template) declares exactly one table equal to
/// `table_spec()`.
fn check_template(text: &str) -> Result<()> {
    let doc: Value = serde_norway::from_str(text).context("parsing the template")?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .context("template has no Resources")?;
    let tables: Vec<&Value> = resources
        .values()
        .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
        .collect();
    let [table] = tables.as_slice() else {
        bail!(
            "expected exactly one AWS::DynamoDB::Table, found {}",
            tables.len()
        );
    };
    let props = table.get("Properties").context("the table has no Properties")?;
    let spec = table_spec();

    let keys = key_schema(props)?;
    ensure!(
        keys == expected_keys(spec.partition_key, spec.sort_key),
        "KeySchema is {keys:?}"
    );
    let billing = str_at(props, "BillingMode")?;
    ensure!(billing == spec.billing_mode, "BillingMode is {billing}");

    let declared: BTreeSet<(String, String)> = seq_at(props, "AttributeDefinitions")?
        .iter()
        .map(|a| {
            Ok((
                str_at(a, "AttributeName")?.to_string(),
                str_at(a, "AttributeType")?.to_string(),
            ))
        })
        .collect::<Result<_>>()?;
    let wanted: BTreeSet<(String, String)> = spec
        .attribute_definitions()
        .iter()
        .map(|a| (a.name.to_string(), a.kind.as_str().to_string()))
        .collect();
    ensure!(
        declared == wanted,
        "AttributeDefinitions are {declared:?}, want {wanted:?}"
    );

    let gsis = seq_at(props, "GlobalSecondaryIndexes")?;
    ensure!(
        gsis.len() == spec.indexes.len(),
        "{} GlobalSecondaryIndexes, want {}",
        gsis.len(),
        spec.indexes.len()
    );
    for want in &spec.indexes {
        let got = gsis
            .iter()
            .find(|g| g.get("IndexName").and_then(Value::as_str) == Some(want.name))
            .with_context(|| format!("GSI {} is not declared", want.name))?;
        let keys = key_schema(got)?;
        ensure!(
            keys == expected_keys(want.partition_key, want.sort_key),
            "{} KeySchema is {keys:?}",
            want.name
        );
        let projection = got.get("Projection").context("GSI has no Projection")?;
        let p = str_at(projection, "ProjectionType")?;
        ensure!(
            p == want.projection.as_str(),
            "{} ProjectionType is {p}",
            want.name
        );
    }

    let ttl = props
        .get("TimeToLiveSpecification")
        .context("TimeToLiveSpecification is missing")?;
    let attr = str_at(ttl, "AttributeName")?;
    ensure!(attr == spec.ttl_attribute, "TTL attribute is {attr}");
    ensure!(
        ttl.get("Enabled").and_then(Value::as_bool) == Some(true),
        "TTL is not enabled"
    );
    Ok(())
}

#[test]
fn sam_template_declares_the_table_of_table_spec() -> Result<()> {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    check_template(&text).with_context(|| format!("{} does not declare table_spec()'s table", path.display()))
}

/// The checker itself works: a template written from table_spec passes, and one with a wrong
/// GSI key fails. (Guards against a check that cannot fail while the real template is absent.)
#[test]
fn the_template_checker_accepts_the_spec_and_rejects_a_drift() -> Result<()> {
    const GOOD: &str = r#"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-incidents"
      BillingMode: PAY_PER_REQUEST
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: gsi1pk, AttributeType: S}
        - {AttributeName: gsi1sk, AttributeType: S}
        - {AttributeName: gsi2pk, AttributeType: S}
        - {AttributeName: gsi2sk, AttributeType: S}
      GlobalSecondaryIndexes:
        - IndexName: gsi1
          KeySchema: [{AttributeName: gsi1pk, KeyType: HASH}, {AttributeName: gsi1sk, KeyType: RANGE}]
          Projection: {ProjectionType: ALL}
        - IndexName: gsi2
          KeySchema: [{AttributeName: gsi2pk, KeyType: HASH}, {AttributeName: gsi2sk, KeyType: RANGE}]
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
"#;
    check_template(GOOD)?;
    let drifted = GOOD.replace(
        "{AttributeName: gsi2sk, KeyType: RANGE}",
        "{AttributeName: opened, KeyType: RANGE}",
    );
    assert!(check_template(&drifted).is_err(), "a drifted GSI key passed");
    let no_ttl = GOOD.replace("Enabled: true", "Enabled: false");
    assert!(check_template(&no_ttl).is_err(), "disabled TTL passed");
    let extra_attr = GOOD.replace(
        "        - {AttributeName: gsi2sk, AttributeType: S}",
        "        - {AttributeName: gsi2sk, AttributeType: S}\n        - {AttributeName: status, AttributeType: S}",
    );
    assert!(
        check_template(&extra_attr).is_err(),
        "an extra attribute definition passed"
    );
    Ok(())
}

/// `(parameter, variable, the code's default)` of the remediation settings the template exposes
/// (the circuit breakers and the mode `earned`).
fn remediation_parameters() -> Vec<(&'static str, &'static str, String)> {
    let d = Settings::default().remediation;
    vec![
        (
            "CircuitPerService",
            env::CIRCUIT_PER_SERVICE,
            d.circuit.per_service.to_string(),
        ),
        (
            "CircuitServiceWindowSeconds",
            env::CIRCUIT_SERVICE_WINDOW_S,
            d.circuit.service_window_s.to_string(),
        ),
        ("CircuitGlobal", env::CIRCUIT_GLOBAL, d.circuit.global.to_string()),
        (
            "CircuitGlobalWindowSeconds",
            env::CIRCUIT_GLOBAL_WINDOW_S,
            d.circuit.global_window_s.to_string(),
        ),
        (
            "EarnedApproveAfter",
            env::EARNED_APPROVE_AFTER,
            d.earned.approve_after.to_string(),
        ),
        (
            "EarnedAutoAfter",
            env::EARNED_AUTO_AFTER,
            d.earned.auto_after.to_string(),
        ),
        ("EarnedWindow", env::EARNED_WINDOW, d.earned.window.to_string()),
        (
            "EarnedCeiling",
            env::EARNED_CEILING,
            d.earned.ceiling.as_str().to_string(),
        ),
    ]
}

/// A scalar as the text CloudFormation passes on (numbers and strings alike).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn check_settings(text: &str) -> Result<()> {
    let doc: Value = serde_norway::from_str(text).context("parsing the template")?;
    let params = doc.get("Parameters").context("template has no Parameters")?;
    let vars = doc
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
        .context("Globals.Function.Environment.Variables is missing")?;
    let default_of = |name: &str| -> Option<String> { params.get(name)?.get("Default").and_then(scalar) };
    for (param, var, want) in remediation_parameters() {
        let default = default_of(param).with_context(|| format!("parameter {param} has no Default"))?;
        ensure!(
            default == want,
            "{param} defaults to {default:?}, the code to {want:?}"
        );
        let passed = match vars.get(var) {
            Some(Value::Tagged(t)) if t.tag == "Ref" => t.value.as_str().map(str::to_string),
            _ => None,
        };
        ensure!(
            passed.as_deref() == Some(param),
            "{var} is {:?} in the functions' environment, want !Ref {param}",
            vars.get(var)
        );
    }
    let allowed = |name: &str| -> Result<Vec<String>> {
        Ok(params
            .get(name)
            .and_then(|p| p.get("AllowedValues"))
            .and_then(Value::as_sequence)
            .with_context(|| format!("{name} has no AllowedValues"))?
            .iter()
            .filter_map(scalar)
            .collect())
    };
    let modes = allowed("RemediationMode")?;
    for m in ["off", "dry-run", "approve", "auto", "earned"] {
        ensure!(modes.iter().any(|v| v == m), "RemediationMode does not allow {m}");
    }
    for v in &modes {
        v.parse::<RemediationMode>()
            .with_context(|| format!("RemediationMode allows {v:?}"))?;
    }
    let ceilings = allowed("EarnedCeiling")?;
    ensure!(
        ceilings == ["dry-run", "approve", "auto"],
        "EarnedCeiling allows {ceilings:?}"
    );

    // Every variable set from a parameter, at the parameter's default: settings the code accepts.
    let mut resolved = std::collections::BTreeMap::new();
    for (k, v) in vars {
        let Some(k) = k.as_str() else { continue };
        let value = match v {
            Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().and_then(default_of),
            other => scalar(other),
        };
        if let Some(value) = value {
            resolved.insert(k.to_string(), value);
        }
    }
    let s = Settings::from_lookup(|n| resolved.get(n).cloned())
        .context("the template's defaults are not settings the code accepts")?;
    let d = Settings::default().remediation;
    ensure!(
        (s.remediation.circuit, s.remediation.earned) == (d.circuit, d.earned),
        "the template's circuit and earned settings differ from the code's defaults"
    );
    Ok(())
}

#[test]
fn remediation_parameters_reach_the_functions_with_the_codes_defaults() -> Result<()> {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    check_settings(&text)?;
    // and the check can fail: a default that drifted, a variable not passed, a mode not allowed
    for (from, to) in [
        (
            "  EarnedCeiling:\n    Type: String\n    Default: approve",
            "  EarnedCeiling:\n    Type: String\n    Default: auto",
        ),
        ("        CIRCUIT_GLOBAL: !Ref CircuitGlobal\n", ""),
        ("approve, auto, earned]", "approve, auto]"),
    ] {
        ensure!(
            text.matches(from).count() == 1,
            "the edit {from:?} no longer applies"
        );
        ensure!(
            check_settings(&text.replacen(from, to, 1)).is_err(),
            "a template with {from:?} replaced by {to:?} passed"
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ dashboard

/// Pseudo parameters a `!Sub` may name.
const PSEUDO_PARAMETERS: [&str; 8] = [
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

/// `(metric, dimension names)` of every metric Firebreak writes in EMF, one entry per dimension
/// set: a widget on another set would graph a metric that does not exist (CloudWatch keys a metric
/// by its exact dimensions).
const EMF_METRICS: &[(&str, &[&str])] = &[
    ("TimeToDetect", &["Severity"]),
    ("TimeToDetect", &["Service"]),
    ("TimeToDetect", &["Service", "Severity"]),
    ("TimeToDiagnose", &["Severity"]),
    ("TimeToDiagnose", &["Service"]),
    ("TimeToDiagnose", &["Service", "Severity"]),
    ("TimeToMitigate", &["Severity"]),
    ("TimeToMitigate", &["Service"]),
    ("TimeToMitigate", &["Service", "Severity"]),
    ("TimeToResolve", &["Severity"]),
    ("TimeToResolve", &["Service"]),
    ("TimeToResolve", &["Service", "Severity"]),
    ("IncidentsResolved", &["Severity"]),
    ("IncidentsResolved", &["Service"]),
    ("IncidentsResolved", &["Service", "Severity"]),
    ("IncidentsOpened", &["Severity"]),
    ("Remediations", &["Outcome"]),
    ("Remediations", &["Action", "Outcome"]),
    ("Pages", &["Severity"]),
    ("Pages", &["Kind"]),
    ("PagesFailed", &["Severity"]),
    ("OutboundFailed", &["Kind"]),
];

/// The metrics the dashboard must show from the functions' namespace.
const DASHBOARD_METRICS: [&str; 7] = [
    "IncidentsOpened",
    "IncidentsResolved",
    "TimeToResolve",
    "Remediations",
    "Pages",
    "PagesFailed",
    "OutboundFailed",
];

/// What a `${X}` / `${X.Y}` of the dashboard body becomes before it is read as JSON.
fn placeholder(name: &str) -> String {
    format!("<{name}>")
}

/// The body with every `${X}` / `${X.Y}` replaced by `placeholder(X)` (a literal `${!X}` becomes
/// `${X}`, as CloudFormation renders it), and the names it substituted.
fn substitute(body: &str) -> Result<(String, BTreeSet<String>)> {
    let mut out = String::with_capacity(body.len());
    let mut names = BTreeSet::new();
    let mut rest = body;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .with_context(|| format!("an unclosed ${{ at {:?}", &rest[at..]))?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else {
            ensure!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '.'),
                "${{{name}}} is not a name"
            );
            out.push_str(&placeholder(name));
            names.insert(name.to_string());
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, names))
}

/// One line of a metric widget: `[namespace, name, dim, value, ..., {options}]`.
#[derive(Debug)]
struct DashboardMetric {
    namespace: String,
    name: String,
    dimensions: Vec<(String, String)>,
    stat: Option<String>,
}

impl DashboardMetric {
    fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The metric lines of one widget's `metrics`; a `"."` repeats the previous line's element at
/// that position. Expressions (`[{"expression": …}]`) are left out.
fn widget_metrics(widget: &serde_json::Value) -> Result<Vec<DashboardMetric>> {
    let props = &widget["properties"];
    let rows = props["metrics"]
        .as_array()
        .context("a metric widget has no metrics list")?;
    let mut out = Vec::new();
    let mut previous: Vec<String> = Vec::new();
    for row in rows {
        let row = row.as_array().context("a metrics entry is not a list")?;
        if row.first().is_some_and(serde_json::Value::is_object) {
            continue;
        }
        let options = row.last().filter(|v| v.is_object());
        let mut parts = Vec::new();
        for (i, v) in row
            .iter()
            .take(row.len() - usize::from(options.is_some()))
            .enumerate()
        {
            let s = v
                .as_str()
                .with_context(|| format!("{v} in a metric line is not a string"))?;
            ensure!(
                s != "...",
                "write metric lines out (\"...\" is not supported here)"
            );
            let s = if s == "." {
                previous
                    .get(i)
                    .with_context(|| format!("\".\" at {i} has nothing above it"))?
                    .clone()
            } else {
                s.to_string()
            };
            parts.push(s);
        }
        ensure!(
            parts.len() >= 2 && parts.len() % 2 == 0,
            "the metric line {row:?} is not [namespace, name, dimension, value, …]"
        );
        let stat = options
            .and_then(|o| o.get("stat"))
            .or_else(|| props.get("stat"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        out.push(DashboardMetric {
            namespace: parts[0].clone(),
            name: parts[1].clone(),
            dimensions: parts[2..]
                .chunks(2)
                .map(|c| (c[0].clone(), c[1].clone()))
                .collect(),
            stat,
        });
        previous = parts;
    }
    Ok(out)
}

/// Checks the template's one dashboard: its body is JSON once substituted and names only
/// resources and pseudo parameters; every metric widget has a title and the stack's region; every
/// function's errors and throttles, the failure queue's depth, and `DASHBOARD_METRICS` under the
/// functions' METRICS_NAMESPACE are shown, each on a dimension set the code writes.
fn check_dashboard(text: &str) -> Result<()> {
    let doc: Value = serde_norway::from_str(text).context("parsing the template")?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .context("template has no Resources")?;
    let of_type = |kind: &str| -> Vec<(String, &Value)> {
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .filter_map(|(k, r)| Some((k.as_str()?.to_string(), r)))
            .collect()
    };
    let dashboards = of_type("AWS::CloudWatch::Dashboard");
    let [(_, dashboard)] = dashboards.as_slice() else {
        bail!(
            "expected exactly one AWS::CloudWatch::Dashboard, found {}",
            dashboards.len()
        );
    };
    let body = match dashboard.get("Properties").and_then(|p| p.get("DashboardBody")) {
        Some(Value::Tagged(t)) if t.tag == "Sub" => t
            .value
            .as_str()
            .context("DashboardBody is a !Sub of something other than a string")?,
        other => bail!("DashboardBody is {other:?}, want a !Sub string"),
    };
    let (json, names) = substitute(body)?;
    for name in &names {
        let resource = name.split_once('.').map_or(name.as_str(), |(r, _)| r);
        ensure!(
            PSEUDO_PARAMETERS.contains(&name.as_str()) || resources.contains_key(resource),
            "the dashboard names ${{{name}}}, neither a resource nor a pseudo parameter"
        );
    }
    let body: serde_json::Value = serde_json::from_str(&json).context("DashboardBody is not JSON")?;
    let widgets = body["widgets"]
        .as_array()
        .context("the dashboard has no widgets list")?;

    let region = placeholder("AWS::Region");
    let mut metrics = Vec::new();
    for w in widgets {
        if w["type"] != "metric" {
            continue;
        }
        let title = w["properties"]["title"].as_str().unwrap_or_default();
        ensure!(!title.trim().is_empty(), "a metric widget has no title: {w}");
        ensure!(
            w["properties"]["region"].as_str() == Some(region.as_str()),
            "widget {title:?} does not set region to ${{AWS::Region}}"
        );
        metrics.extend(widget_metrics(w).with_context(|| format!("widget {title:?}"))?);
    }
    let shows = |namespace: &str, name: &str, dimension: &str, value: &str| {
        metrics
            .iter()
            .any(|m| m.namespace == namespace && m.name == name && m.dimension(dimension) == Some(value))
    };

    // Firebreak's health: every function, and the queue their failed invocations go to.
    let functions = of_type("AWS::Serverless::Function");
    ensure!(!functions.is_empty(), "the template has no functions");
    for (function, _) in &functions {
        for metric in ["Errors", "Throttles"] {
            ensure!(
                shows("AWS/Lambda", metric, "FunctionName", &placeholder(function)),
                "the dashboard does not show {metric} of {function}"
            );
        }
    }
    let globals = doc.get("Globals").and_then(|g| g.get("Function"));
    let queue = match globals
        .and_then(|f| f.get("EventInvokeConfig"))
        .and_then(|e| e.get("DestinationConfig"))
        .and_then(|d| d.get("OnFailure"))
        .and_then(|o| o.get("Destination"))
    {
        Some(Value::Tagged(t)) if t.tag == "GetAtt" => t
            .value
            .as_str()
            .and_then(|s| s.strip_suffix(".Arn"))
            .map(str::to_string),
        _ => None,
    }
    .context("the functions' on-failure destination is not !GetAtt <queue>.Arn")?;
    ensure!(
        shows(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            &placeholder(&format!("{queue}.QueueName"))
        ),
        "the dashboard does not show the depth of {queue}"
    );

    // The EMF metrics, in the namespace the functions write to.
    let namespace = globals
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get("METRICS_NAMESPACE"))
        .and_then(Value::as_str)
        .context("Globals sets no plain METRICS_NAMESPACE")?;
    for name in DASHBOARD_METRICS {
        ensure!(
            metrics.iter().any(|m| m.namespace == namespace && m.name == name),
            "the dashboard does not show {namespace}/{name}"
        );
    }
    for m in metrics.iter().filter(|m| m.namespace == namespace) {
        let mut dims: Vec<&str> = m.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        dims.sort_unstable();
        ensure!(
            EMF_METRICS
                .iter()
                .any(|(n, d)| *n == m.name && *d == dims.as_slice()),
            "{namespace}/{} on dimensions {dims:?} is not a metric Firebreak writes",
            m.name
        );
        ensure!(m.stat.is_some(), "{namespace}/{} has no stat", m.name);
    }
    for sev in ["SEV1", "SEV2", "SEV3", "SEV4"] {
        ensure!(
            shows(namespace, "IncidentsOpened", "Severity", sev),
            "incidents opened at {sev} are not shown"
        );
    }
    for outcome in ["applied", "dry-run", "awaiting-approval", "refused", "failed"] {
        ensure!(
            metrics.iter().any(|m| m.namespace == namespace
                && m.name == "Remediations"
                && m.dimensions == [("Outcome".to_string(), outcome.to_string())]),
            "remediations with outcome {outcome} are not shown"
        );
    }
    Ok(())
}

#[test]
fn the_dashboard_shows_the_emf_metrics_and_every_functions_health() -> Result<()> {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    check_dashboard(&text)?;
    let doc: Value = serde_norway::from_str(&text)?;
    let output = doc
        .get("Outputs")
        .and_then(|o| o.get("DashboardName"))
        .and_then(|o| o.get("Value"));
    let named = match output {
        Some(Value::Tagged(t)) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    };
    ensure!(
        named == Some("Dashboard"),
        "output DashboardName is {output:?}, want !Ref Dashboard"
    );
    // and the check can fail: a function missing from a health widget, a new function nobody added,
    // no failure-queue depth, an unknown name, a wrong dimension set, broken JSON, a fixed region,
    // no dashboard
    let janitor = "  Janitor:\n    Type: AWS::Serverless::Function\n    Properties: {}\n\n";
    let sweeper = "  Sweeper:\n    Type: AWS::Serverless::Function\n";
    let new_function = format!("{janitor}{sweeper}");
    for (from, to) in [
        (
            r#"["AWS/Lambda", "Errors", "FunctionName", "${Sweeper}""#,
            r#"["AWS/Lambda", "Errors", "FunctionName", "${Resolve}""#,
        ),
        (sweeper, new_function.as_str()),
        (
            r#""ApproximateNumberOfMessagesVisible", "QueueName""#,
            r#""NumberOfMessagesSent", "QueueName""#,
        ),
        (
            r#"["AWS/Lambda", "Duration", "FunctionName", "${Triage}""#,
            r#"["AWS/Lambda", "Duration", "FunctionName", "${Triagee}""#,
        ),
        (
            r#"["Firebreak", "PagesFailed", "Severity", "SEV1","#,
            r#"["Firebreak", "PagesFailed", "Kind", "SEV1","#,
        ),
        (
            r#""label": "oldest message age"}]"#,
            r#""label": "oldest message age"}"#,
        ),
        (
            r#""region": "${AWS::Region}", "view": "singleValue""#,
            r#""region": "us-east-1", "view": "singleValue""#,
        ),
        (
            "    Type: AWS::CloudWatch::Dashboard\n",
            "    Type: AWS::CloudWatch::Nothing\n",
        ),
    ] {
        ensure!(
            text.matches(from).count() == 1,
            "the edit {from:?} no longer applies"
        );
        ensure!(
            check_dashboard(&text.replacen(from, to, 1)).is_err(),
            "a template with {from:?} replaced by {to:?} passed"
        );
    }
    Ok(())
}

#[test]
fn substitute_replaces_names_and_keeps_literals() -> Result<()> {
    let (out, names) = substitute(
        r#"{"a": "${Triage}", "b": "${FailureQueue.QueueName}/${AWS::Region}", "c": "${!Literal}"}"#,
    )?;
    ensure!(
        out == r#"{"a": "<Triage>", "b": "<FailureQueue.QueueName>/<AWS::Region>", "c": "${Literal}"}"#,
        "{out}"
    );
    ensure!(
        names.into_iter().collect::<Vec<_>>() == ["AWS::Region", "FailureQueue.QueueName", "Triage"],
        "names"
    );
    ensure!(substitute("${Open").is_err(), "an unclosed ${{ passed");
    ensure!(substitute("${a b}").is_err(), "a name with a space passed");
    Ok(())
}
