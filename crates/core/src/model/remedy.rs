//! Remediation actions as a runbook names them, parsed and validated: what to do, with which
//! bounds. Carrying them out (guardrails, modes, ECS calls) is `remediate`'s job.

use crate::model::duration::Span;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One remediation step as written in a runbook: an action name and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationStep {
    pub action: String,
    #[serde(flatten)]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// The actions Firebreak knows.
pub const KNOWN_ACTIONS: [&str; 3] = ["ecs-rollback", "ecs-scale-out", "ecs-restart"];

/// The name of a remediation action as recorded: one of the known actions, or the name a runbook
/// gave that Firebreak does not know (recorded so the refusal says what was asked). Serialised as
/// the plain kebab-case name (`ecs-rollback`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionName {
    EcsRollback,
    EcsScaleOut,
    EcsRestart,
    /// Not an action Firebreak knows (nothing was done).
    Unknown(String),
}

impl ActionName {
    /// Total: a name Firebreak does not know is [`ActionName::Unknown`].
    pub fn from_name(name: &str) -> ActionName {
        match name {
            "ecs-rollback" => ActionName::EcsRollback,
            "ecs-scale-out" => ActionName::EcsScaleOut,
            "ecs-restart" => ActionName::EcsRestart,
            other => ActionName::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ActionName::EcsRollback => "ecs-rollback",
            ActionName::EcsScaleOut => "ecs-scale-out",
            ActionName::EcsRestart => "ecs-restart",
            ActionName::Unknown(s) => s,
        }
    }
}

impl From<&str> for ActionName {
    fn from(name: &str) -> ActionName {
        ActionName::from_name(name)
    }
}

impl fmt::Display for ActionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ActionName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ActionName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ActionName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActionName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ActionName, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ActionName::from_name(&s))
    }
}

/// A validated action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Update the service to the task definition it ran before the current one, only when the
    /// current one was deployed within `window` before the incident started.
    EcsRollback { window: Span },
    /// Raise desiredCount by `step` tasks or by `factor`, whichever the runbook gives (the larger
    /// when both), never above `max` tasks nor above `max_factor` times the current count.
    EcsScaleOut {
        step: Option<i32>,
        factor: Option<f64>,
        max: i32,
        max_factor: f64,
    },
    /// Force a new deployment (replace every task).
    EcsRestart,
}

impl Action {
    /// The recorded name of this action.
    pub fn action_name(&self) -> ActionName {
        ActionName::from_name(self.name())
    }

    pub fn name(&self) -> &'static str {
        match self {
            Action::EcsRollback { .. } => "ecs-rollback",
            Action::EcsScaleOut { .. } => "ecs-scale-out",
            Action::EcsRestart => "ecs-restart",
        }
    }

    /// Validates a runbook step. Errors name the action and the parameter.
    pub fn parse(step: &RemediationStep) -> Result<Action, crate::Error> {
        let what = format!("remediation {}", step.action);
        let allowed: &[&str] = match step.action.as_str() {
            "ecs-rollback" => &["window"],
            "ecs-scale-out" => &["step", "factor", "max", "max_factor"],
            "ecs-restart" => &[],
            other => {
                return Err(crate::Error::invalid(
                    "remediation action",
                    format!("{other:?} is not one of {}", KNOWN_ACTIONS.join(", ")),
                ))
            }
        };
        if let Some(k) = step.params.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(crate::Error::invalid(
                what,
                format!(
                    "unknown parameter {k:?} (allowed: {})",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
            ));
        }
        let int = |k: &str| -> Result<Option<i32>, crate::Error> {
            match step.params.get(k) {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| {
                        crate::Error::invalid(
                            format!("{what}.{k}"),
                            format!("{v} is not a positive whole number"),
                        )
                    }),
            }
        };
        let float = |k: &str| -> Result<Option<f64>, crate::Error> {
            match step.params.get(k) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .filter(|f| f.is_finite() && *f > 1.0)
                    .map(Some)
                    .ok_or_else(|| {
                        crate::Error::invalid(
                            format!("{what}.{k}"),
                            format!("{v} is not a number greater than 1"),
                        )
                    }),
            }
        };
        match step.action.as_str() {
            "ecs-rollback" => {
                let window = match step.params.get("window") {
                    None => Span::minutes(60),
                    Some(v) => {
                        let s = match v {
                            serde_json::Value::String(s) => Span::parse(s),
                            serde_json::Value::Number(n) => {
                                n.as_i64().filter(|n| *n > 0).map(Span::seconds).ok_or_else(|| {
                                    crate::Error::invalid("duration", format!("{n} is not positive"))
                                })
                            }
                            other => Err(crate::Error::invalid(
                                "duration",
                                format!("{other} is not a duration"),
                            )),
                        };
                        s.map_err(|e| crate::Error::invalid(format!("{what}.window"), e.to_string()))?
                    }
                };
                Ok(Action::EcsRollback { window })
            }
            "ecs-scale-out" => {
                let step_n = int("step")?;
                let factor = float("factor")?;
                if step_n.is_none() && factor.is_none() {
                    return Err(crate::Error::invalid(
                        what,
                        "needs `step` (tasks to add) or `factor` (multiplier)",
                    ));
                }
                let max = int("max")?.ok_or_else(|| {
                    crate::Error::invalid(
                        format!("{what}.max"),
                        "is required: the absolute maximum of tasks",
                    )
                })?;
                let max_factor = float("max_factor")?.unwrap_or(2.0);
                Ok(Action::EcsScaleOut {
                    step: step_n,
                    factor,
                    max,
                    max_factor,
                })
            }
            _ => Ok(Action::EcsRestart),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::EcsRollback { window } => {
                write!(f, "ecs-rollback (deployed within {window} before the start)")
            }
            Action::EcsScaleOut {
                step,
                factor,
                max,
                max_factor,
            } => {
                write!(f, "ecs-scale-out (")?;
                if let Some(s) = step {
                    write!(f, "+{s} tasks")?;
                }
                if let Some(x) = factor {
                    write!(f, "{}x{x}", if step.is_some() { ", " } else { "" })?;
                }
                write!(f, ", at most {max} tasks and {max_factor}x current)")
            }
            Action::EcsRestart => write!(f, "ecs-restart (force a new deployment)"),
        }
    }
}

/// A change to a service. Fields left `None`/false are untouched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceUpdate {
    pub task_definition: Option<String>,
    pub desired: Option<i32>,
    pub force_new_deployment: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(v: serde_json::Value) -> RemediationStep {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_each_known_action() {
        assert_eq!(
            Action::parse(&step(json!({"action": "ecs-rollback", "window": "30m"}))).unwrap(),
            Action::EcsRollback {
                window: Span::minutes(30)
            }
        );
        assert_eq!(
            Action::parse(&step(json!({"action": "ecs-scale-out", "step": 2, "max": 20}))).unwrap(),
            Action::EcsScaleOut {
                step: Some(2),
                factor: None,
                max: 20,
                max_factor: 2.0
            }
        );
        assert_eq!(
            Action::parse(&step(json!({"action": "ecs-restart"}))).unwrap(),
            Action::EcsRestart
        );
    }

    #[test]
    fn rejects_what_would_be_unsafe_or_misspelt() {
        for (v, needle) in [
            (json!({"action": "ecs-delete"}), "ecs-delete"),
            (json!({"action": "ecs-scale-out", "step": 2}), "max"),
            (json!({"action": "ecs-scale-out", "max": 9}), "step"),
            (json!({"action": "ecs-scale-out", "step": -1, "max": 9}), "step"),
            (
                json!({"action": "ecs-scale-out", "factor": 0.5, "max": 9}),
                "factor",
            ),
            (json!({"action": "ecs-restart", "force": true}), "force"),
            (json!({"action": "ecs-rollback", "window": "soon"}), "window"),
        ] {
            let e = Action::parse(&step(v.clone())).unwrap_err().to_string();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }
}
