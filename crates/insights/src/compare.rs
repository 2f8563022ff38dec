//! `logcompare`: the results over the window joined with those over the window shifted back.

use crate::eval::{QueryResults, ResultField};
use crate::plan::{Plan, Stage};

/// `logcompare`: each row of the window next to the row of the same `stats` key in the shifted
/// window, with `<column>_baseline` and `<column>_change` (the difference, for numbers).
pub(crate) fn compare_results(plan: &Plan, current: QueryResults, previous: QueryResults) -> QueryResults {
    let keys: Vec<String> = match plan.stages.get(plan.barrier) {
        Some(Stage::Stats(sp)) => plan
            .columns
            .iter()
            .take(sp.by.len())
            .map(|(n, _)| n.clone())
            .collect(),
        _ => Vec::new(),
    };
    let key_of = |row: &[ResultField]| -> Vec<Option<String>> {
        keys.iter()
            .map(|k| row.iter().find(|f| &f.field == k).map(|f| f.value.clone()))
            .collect()
    };
    let mut baseline: Vec<(Vec<Option<String>>, Vec<ResultField>, bool)> = previous
        .rows
        .into_iter()
        .map(|r| (key_of(&r), r, false))
        .collect();
    let mut out = Vec::new();
    let columns: Vec<&String> = plan
        .columns
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !keys.contains(n))
        .collect();
    let mut emit = |key_row: &[ResultField], cur: Option<&[ResultField]>, prev: Option<&[ResultField]>| {
        let mut row: Vec<ResultField> = key_row
            .iter()
            .filter(|f| keys.contains(&f.field))
            .cloned()
            .collect();
        for c in &columns {
            let a = cur
                .and_then(|r| r.iter().find(|f| &&f.field == c))
                .map(|f| f.value.clone());
            let b = prev
                .and_then(|r| r.iter().find(|f| &&f.field == c))
                .map(|f| f.value.clone());
            let num = |v: &Option<String>| v.as_deref().and_then(crate::value::parse_number);
            let change = match (num(&a), num(&b)) {
                (Some(x), Some(y)) => Some(x - y),
                (Some(x), None) if b.is_none() => Some(x),
                (None, Some(y)) if a.is_none() => Some(-y),
                _ => None,
            };
            if let Some(a) = a {
                row.push(ResultField {
                    field: (*c).clone(),
                    value: a,
                });
            }
            if let Some(b) = b {
                row.push(ResultField {
                    field: format!("{c}_baseline"),
                    value: b,
                });
            }
            if let Some(d) = change {
                row.push(ResultField {
                    field: format!("{c}_change"),
                    value: crate::value::format_number(d),
                });
            }
        }
        out.push(row);
    };
    for row in &current.rows {
        let k = key_of(row);
        let prev = baseline.iter_mut().find(|(bk, _, used)| !*used && *bk == k);
        match prev {
            Some(p) => {
                p.2 = true;
                emit(row, Some(row), Some(&p.1));
            }
            None => emit(row, Some(row), None),
        }
    }
    for (_, row, used) in &baseline {
        if !used {
            emit(row, None, Some(row));
        }
    }
    let mut statistics = current.statistics;
    statistics.add(&previous.statistics);
    QueryResults {
        rows: out,
        statistics,
    }
}
