//! The stages of a plan applied to one record (before the barrier) and to materialized rows
//! (after it): assignments, filters, `parse`, `unnest`, `sort`, `limit`, `dedup`, `stats`.

use crate::aggregate::Groups;
use crate::budget::Budget;
use crate::eval::sort_rows;
use crate::expr::Evaluator;
use crate::plan::Stage;
use crate::row::{Rec, Row};
use crate::value::{KeyValue, Value};
use std::borrow::Cow;
use std::collections::HashSet;

/// The elements `unnest` makes of a value: a list's items, or the value itself.
pub(crate) fn unnest_items(v: Value<'_>) -> Vec<Value<'static>> {
    match v {
        Value::Missing => Vec::new(),
        Value::Json(j) => match j.as_ref() {
            serde_json::Value::Array(items) => items.iter().map(Value::from_json).collect(),
            _ => vec![Value::Json(j)],
        },
        other => vec![other.into_owned()],
    }
}

/// Applies a one-row stage; false when the row is filtered out.
pub(crate) fn apply(ev: &Evaluator<'_>, stage: &Stage, rec: &mut Rec<'_>) -> bool {
    match stage {
        Stage::Assign(list) => {
            let values: Vec<(usize, Value<'static>)> = list
                .iter()
                .map(|(e, slot)| (*slot, ev.eval(e, rec).into_owned()))
                .collect();
            for (slot, v) in values {
                if let Some(s) = rec.slots.get_mut(slot) {
                    *s = v;
                }
            }
            true
        }
        Stage::Filter(e) => ev.eval(e, rec).truthy(),
        Stage::Parse {
            source,
            regex,
            outputs,
        } => {
            let captured: Vec<(usize, Value<'static>)> = {
                let v = ev.eval(source, rec);
                match v.as_text() {
                    Some(text) => match regex.captures(&text) {
                        Some(caps) => outputs
                            .iter()
                            .filter_map(|(g, slot)| {
                                caps.get(*g)
                                    .map(|m| (*slot, Value::Str(Cow::Owned(m.as_str().to_string()))))
                            })
                            .collect(),
                        None => Vec::new(),
                    },
                    None => Vec::new(),
                }
            };
            for (slot, v) in captured {
                if let Some(s) = rec.slots.get_mut(slot) {
                    *s = v;
                }
            }
            true
        }
        Stage::Unnest { .. } | Stage::Sort(_) | Stage::Limit(_) | Stage::Dedup(_) | Stage::Stats(_) => true,
    }
}

/// Applies any stage to materialized rows.
pub(crate) fn apply_rows(
    ev: &Evaluator<'_>,
    stage: &Stage,
    rows: Vec<Row>,
    n_slots: usize,
    budget: &Budget,
) -> Result<Vec<Row>, String> {
    Ok(match stage {
        Stage::Sort(keys) => {
            let mut rows: Vec<Row> = rows
                .into_iter()
                .map(|mut r| {
                    let key: Vec<Value<'static>> = {
                        let rec = r.rec();
                        keys.iter().map(|k| ev.eval(&k.expr, &rec).into_owned()).collect()
                    };
                    r.key = key;
                    r
                })
                .collect();
            sort_rows(keys, &mut rows);
            rows
        }
        Stage::Limit(n) => {
            let mut rows = rows;
            rows.truncate(*n);
            rows
        }
        Stage::Dedup(keys) => {
            let mut seen = HashSet::new();
            let mut charged = 0;
            let mut out = Vec::new();
            for r in rows {
                let values: Vec<KeyValue> = {
                    let rec = r.rec();
                    let values: Vec<Value<'_>> = keys.iter().map(|k| ev.eval(k, &rec)).collect();
                    // Rows missing a dedup field are never duplicates.
                    if values.iter().any(Value::is_missing) {
                        Vec::new()
                    } else {
                        values.iter().map(KeyValue::from_value).collect()
                    }
                };
                if values.is_empty() {
                    out.push(r);
                    continue;
                }
                let size = 64 + values.iter().map(KeyValue::heap_size).sum::<usize>();
                if seen.contains(&values) {
                    continue;
                }
                if !budget.charge(size) {
                    budget.release(charged);
                    return Err(budget.exceeded(&format!("the {} distinct values dedup keeps", seen.len())));
                }
                charged += size;
                seen.insert(values);
                out.push(r);
            }
            budget.release(charged);
            out
        }
        Stage::Stats(plan) => {
            let mut groups = Groups::default();
            for r in &rows {
                ev.accumulate(plan, &mut groups, &r.rec(), budget)?;
            }
            ev.group_rows(plan, groups, n_slots)
        }
        Stage::Unnest { source, slot } => {
            let mut out = Vec::new();
            for r in rows {
                let items = {
                    let rec = r.rec();
                    unnest_items(ev.eval(source, &rec))
                };
                for item in items {
                    let mut row = r.clone();
                    if let Some(s) = row.slots.get_mut(*slot) {
                        *s = item;
                    }
                    out.push(row);
                }
            }
            out
        }
        one_row => rows
            .into_iter()
            .filter_map(|r| {
                let slots = {
                    let mut rec = r.rec();
                    if !apply(ev, one_row, &mut rec) {
                        return None;
                    }
                    rec.slots.iter().map(|v| v.clone().into_owned()).collect()
                };
                Some(Row { slots, ..r })
            })
            .collect(),
    })
}
