//! Loading runbooks: from a directory or the embedded copies, each parsed and the whole set
//! linted before it is used, and selecting the runbook for an alarm.

use super::lint;
use super::model::*;
use super::source::{parse_source, read_dir, Finding, Level, RunbookSource, POLICY_FILE};
use std::collections::BTreeMap;

/// The runbooks, validated: what the diagnose function loads at cold start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunbookSet {
    /// Sorted by id.
    runbooks: Vec<Runbook>,
    /// The file each runbook came from, by id.
    files: BTreeMap<String, String>,
    /// Lint warnings found while loading.
    warnings: Vec<Finding>,
}

impl RunbookSet {
    /// Every runbook, sorted by id.
    pub fn runbooks(&self) -> &[Runbook] {
        &self.runbooks
    }

    /// Loads and lints every runbook in `dir` (all `*.yaml` but `policy.yaml`).
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] when the directory cannot be read or lint finds errors; the
    /// reason lists each finding as `file: runbook: field: message`.
    pub fn load_dir(dir: impl AsRef<std::path::Path>) -> Result<RunbookSet, crate::Error> {
        let dir = dir.as_ref();
        let sources = read_dir(dir)?;
        RunbookSet::from_sources(&sources).map_err(|e| match e {
            crate::Error::Invalid { reason, .. } => {
                crate::Error::invalid(format!("runbooks in {}", dir.display()), reason)
            }
            other => other,
        })
    }

    /// Loads runbooks compiled into a binary: `(file name, yaml)` pairs.
    ///
    /// # Errors
    /// As [`RunbookSet::load_dir`].
    pub fn from_embedded(files: &[(&str, &str)]) -> Result<RunbookSet, crate::Error> {
        let sources: Vec<RunbookSource> = files
            .iter()
            .filter(|(name, _)| *name != POLICY_FILE)
            .map(|(name, text)| RunbookSource {
                file: (*name).to_string(),
                text: (*text).to_string(),
            })
            .collect();
        RunbookSet::from_sources(&sources)
    }

    /// The runbooks shipped in this binary, parsed but not linted: they are constants of the
    /// binary, so the lint (which renders every query template, parses each query and compiles
    /// every regex: 2.6 of the 3.0 ms a linted load takes, a quarter of a function's init budget)
    /// would give the same answer at every cold start. The test
    /// `the_shipped_runbooks_load_unlinted_as_the_linted_set` runs it instead, and fails when a
    /// shipped runbook has a lint error or loads differently unlinted.
    ///
    /// # Errors
    /// A shipped file that does not parse (which that test rules out).
    pub fn shipped() -> Result<RunbookSet, crate::Error> {
        let mut set = RunbookSet::default();
        for (file, text) in super::embedded::runbook_files() {
            let src = RunbookSource {
                file: file.to_string(),
                text: text.to_string(),
            };
            let rb =
                parse_source(&src).map_err(|f| crate::Error::invalid("shipped runbooks", f.to_string()))?;
            set.files.insert(rb.id.clone(), src.file.clone());
            set.runbooks.push(rb);
        }
        set.runbooks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(set)
    }

    /// Lints and loads parsed sources.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] listing every lint error.
    pub fn from_sources(sources: &[RunbookSource]) -> Result<RunbookSet, crate::Error> {
        let report = lint::lint_sources(sources);
        let errors: Vec<String> = report
            .iter()
            .filter(|f| f.level == Level::Error)
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            return Err(crate::Error::invalid("runbooks", errors.join("; ")));
        }
        let mut set = RunbookSet {
            warnings: report,
            ..RunbookSet::default()
        };
        for src in sources {
            // lint has parsed every source without error above
            if let Ok(rb) = parse_source(src) {
                set.files.insert(rb.id.clone(), src.file.clone());
                set.runbooks.push(rb);
            }
        }
        set.runbooks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(set)
    }

    /// Builds a set from runbooks already in memory (tests, drills). Not linted.
    pub fn from_runbooks(runbooks: Vec<Runbook>) -> RunbookSet {
        let mut set = RunbookSet {
            files: runbooks
                .iter()
                .map(|r| (r.id.clone(), format!("{}.yaml", r.id)))
                .collect(),
            runbooks,
            warnings: Vec::new(),
        };
        set.runbooks.sort_by(|a, b| a.id.cmp(&b.id));
        set
    }

    pub fn get(&self, id: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|r| r.id == id)
    }

    /// The file a runbook was loaded from.
    pub fn file_of(&self, id: &str) -> Option<&str> {
        self.files.get(id).map(String::as_str)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.runbooks.iter().map(|r| r.id.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Runbook> {
        self.runbooks.iter()
    }

    pub fn len(&self) -> usize {
        self.runbooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runbooks.is_empty()
    }

    /// Lint warnings found while loading.
    pub fn warnings(&self) -> &[Finding] {
        &self.warnings
    }

    /// The runbook for an alarm: the one its `runbook` tag names when that exists, else the
    /// highest-priority runbook whose trigger matches (ties, which lint reports, go to the
    /// smaller id).
    pub fn select<'f>(&self, facts: impl Into<AlarmFacts<'f>>) -> Option<&Runbook> {
        self.select_explained(facts).map(|(r, _)| r)
    }

    /// As [`RunbookSet::select`], with the reason.
    pub fn select_explained<'f>(&self, facts: impl Into<AlarmFacts<'f>>) -> Option<(&Runbook, TriggerMatch)> {
        let facts = facts.into();
        if let Some(rb) = facts.explicit_runbook().and_then(|id| self.get(id)) {
            return Some((rb, TriggerMatch::Explicit));
        }
        let mut best: Option<(&Runbook, TriggerMatch)> = None;
        for rb in &self.runbooks {
            if let Some(m) = rb.trigger.matches(&facts) {
                if best
                    .as_ref()
                    .is_none_or(|(b, _)| rb.trigger.priority > b.trigger.priority)
                {
                    best = Some((rb, m));
                }
            }
        }
        best
    }
}
