//! The code map's invariants (docs/architecture.md), checked: core and insights know no AWS
//! crate, the folders of core depend on each other only in the documented direction, and only
//! `stages/` writes the timeline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// This machine's target triple (`rustc -vV`), so metadata resolves what builds here only.
fn host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_string()
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(host())
        .arg("--manifest-path")
        .arg(workspace().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every package a package pulls in as a normal (non-dev, non-build) dependency, transitively.
fn normal_closure(meta: &Value, root: &str) -> BTreeSet<String> {
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let start = names
        .iter()
        .find(|(_, n)| **n == root)
        .map(|(id, _)| *id)
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let pkg = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(names[pkg].to_string()) {
                stack.push(pkg);
            }
        }
    }
    seen
}

#[test]
fn core_and_insights_depend_on_no_aws_crate() {
    let meta = metadata();
    for krate in ["firebreak-core", "firebreak-insights"] {
        let deps = normal_closure(&meta, krate);
        assert!(
            deps.contains("serde"),
            "{krate}: the closure was not read: {deps:?}"
        );
        let aws: Vec<&String> = deps
            .iter()
            .filter(|d| d.starts_with("aws-") || d.starts_with("aws_") || d.starts_with("lambda"))
            .collect();
        assert!(aws.is_empty(), "{krate} depends on {aws:?}");
    }
}

/// The code of a file up to its first `#[cfg(test)]` (test modules may use anything).
fn non_test_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && p.file_name().is_some_and(|n| n != "tests.rs") {
            out.push(p);
        }
    }
}

#[test]
fn core_folders_depend_on_each_other_only_inward() {
    // What each folder may name besides itself (docs/architecture.md, "Code map").
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("model", &["error"][..]),
        ("intake", &["error", "model"][..]),
        ("policy", &["error", "intake", "model"][..]),
        ("ports", &["error", "model"][..]),
        ("runbook", &["error", "model", "ports"][..]),
        ("report", &["error", "model", "runbook"][..]),
        ("adapters", &["error", "model", "ports"][..]),
        (
            "stages",
            &["error", "model", "ports", "policy", "runbook", "report"][..],
        ),
    ]);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let re = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut bad = Vec::new();
    for (folder, ok) in &allowed {
        let mut files = Vec::new();
        rust_files(&src.join(folder), &mut files);
        assert!(!files.is_empty(), "{folder}: no files");
        for f in files {
            for c in re.captures_iter(&non_test_code(&f)) {
                let used = &c[1];
                if used != *folder && used != "Error" && used != "Result" && !ok.contains(&used) {
                    bad.push(format!(
                        "{} uses crate::{used}",
                        f.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
        }
    }
    bad.sort();
    bad.dedup();
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn only_stages_write_the_timeline() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let writers: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("stages")) && !f.starts_with(src.join("model/timeline")))
        .filter(|f| {
            let code = non_test_code(f);
            [
                "TimelineEntry::new(",
                "TimelineEntry::of(",
                "TimelineEntry {",
                ".with_detail(",
                ".with_json_detail(",
            ]
            .iter()
            .any(|w| code.contains(w))
        })
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert!(
        writers.is_empty(),
        "timeline entries made outside stages/: {writers:?}"
    );
}
