//! The SAM template declares the table that `firebreak_aws::table::table_spec` defines: key
//! schema, attribute definitions, GSIs, TTL, billing mode.
//!
//! While `infra/template.yaml` does not exist yet this test prints that it skipped; once the
//! template lands it must hold exactly one AWS::DynamoDB::Table that matches.
//!
//! And the remediation parameters reach the functions: each is passed as the variable
//! `Settings::from_lookup` reads, with the code's default, and the template's defaults are
//! settings the code accepts.

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
