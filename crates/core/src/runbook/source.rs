//! A runbook file as read (from a directory or embedded), parsed into the model, and what is
//! said about it when it is wrong (a [`Finding`] names the file, runbook and field).

use super::model::Runbook;
use serde::Serialize;
use std::fmt;

/// How bad a finding is: errors fail lint and loading; warnings are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// One thing lint found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// The file (`high-error-rate.yaml`).
    pub file: String,
    /// The runbook id, once the file parsed.
    pub runbook: Option<String>,
    /// Where in the runbook (`investigation[errors].query`, `causes[bad-deployment].remediation[0]`).
    pub field: String,
    pub message: String,
}

impl Finding {
    pub fn error(
        file: impl Into<String>,
        runbook: Option<&str>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            level: Level::Error,
            file: file.into(),
            runbook: runbook.map(str::to_string),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn warning(
        file: impl Into<String>,
        runbook: Option<&str>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            level: Level::Warning,
            ..Finding::error(file, runbook, field, message)
        }
    }
}

impl fmt::Display for Finding {
    /// `file: runbook: field: message`, with `warning: ` in front of warnings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.level == Level::Warning {
            write!(f, "warning: ")?;
        }
        write!(
            f,
            "{}: {}: {}: {}",
            self.file,
            self.runbook.as_deref().unwrap_or("-"),
            self.field,
            self.message
        )
    }
}

/// True when any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.level == Level::Error)
}

/// A runbook file's name and text, as read from disk or embedded in a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookSource {
    /// The file name (`high-error-rate.yaml`).
    pub file: String,
    pub text: String,
}

/// The severity policy lives next to the runbooks and is not one.
pub const POLICY_FILE: &str = "policy.yaml";

/// Reads every `*.yaml`/`*.yml` in `dir` except [`POLICY_FILE`], sorted by name.
///
/// # Errors
/// [`crate::Error::Invalid`] naming the directory or file that cannot be read.
pub fn read_dir(dir: &std::path::Path) -> Result<Vec<RunbookSource>, crate::Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| crate::Error::invalid(format!("runbook directory {}", dir.display()), e.to_string()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            crate::Error::invalid(format!("runbook directory {}", dir.display()), e.to_string())
        })?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if !is_yaml || name == POLICY_FILE || name == "policy.yml" || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| crate::Error::invalid(format!("runbook file {}", path.display()), e.to_string()))?;
        out.push(RunbookSource { file: name, text });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

/// How deep flow collections (`[...]`, `{...}`) may nest in a runbook file. Real runbooks nest
/// three or four levels; the YAML parser takes time quadratic in the depth before its own
/// recursion limit stops it (2 s at 20,000 levels), so deeper text is refused before parsing.
pub const MAX_FLOW_DEPTH: usize = 64;

/// The line and column (1-based) where flow nesting first passes [`MAX_FLOW_DEPTH`], outside
/// quotes and comments.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut prev = '\n';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        col += 1;
        if c == '\n' {
            line += 1;
            col = 0;
            comment = false;
            prev = c;
            continue;
        }
        if comment {
            continue;
        }
        match quote {
            Some('\'') if c == '\'' => {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    col += 1;
                } else {
                    quote = None;
                }
            }
            Some('"') if c == '\\' => {
                chars.next();
                col += 1;
            }
            Some('"') if c == '"' => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '#' if prev.is_whitespace() => comment = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Some((line, col));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = c;
    }
    None
}

/// Parses one runbook file. Errors name the file and, where serde can tell, the field.
pub fn parse_source(src: &RunbookSource) -> Result<Runbook, Finding> {
    if let Some((line, column)) = too_deep(&src.text) {
        return Err(Finding::error(
            &src.file,
            None,
            "yaml",
            format!("collections nest more than {MAX_FLOW_DEPTH} levels deep at line {line} column {column}"),
        ));
    }
    serde_norway::from_str::<Runbook>(&src.text).map_err(|e| {
        let msg = e.to_string();
        // serde_norway prefixes the path (`trigger.alarms[0]: ...`) when the error is inside a field
        let (field, message) = match msg.split_once(": ") {
            Some((path, rest))
                if !path.contains(' ')
                    && path
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-')) =>
            {
                (path.to_string(), rest.to_string())
            }
            _ => ("yaml".to_string(), msg.clone()),
        };
        Finding::error(&src.file, None, field, message)
    })
}
