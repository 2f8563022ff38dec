//! Expression evaluation over one record: fields (system, JSON message, assigned, paths into
//! structures), operators with Logs Insights' missing-value rules, functions, and `stats`
//! outputs over finished accumulators.

use crate::ast::{BinaryOp, UnaryOp};
use crate::eval::EvalOptions;
use crate::functions;
use crate::plan::{Base, CExpr, FieldRef, Sys};
use crate::row::{json_path, Rec};
use crate::value::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;

pub(crate) struct Evaluator<'o> {
    pub options: &'o EvalOptions,
    /// The values of each subquery, by `CExpr::InSet` index.
    pub sets: &'o [HashSet<String>],
}

pub(crate) fn ptr(ordinal: u64) -> String {
    format!("local/{ordinal:012x}")
}

impl Evaluator<'_> {
    pub(crate) fn eval_stats<'r>(
        &self,
        e: &'r CExpr,
        rec: &'r Rec<'_>,
        finals: &'r [Value<'static>],
    ) -> Value<'r> {
        match e {
            CExpr::Agg(i) => finals.get(*i).map_or(Value::Missing, Value::borrowed),
            CExpr::Unary(op, a) => unary(*op, self.eval_stats(a, rec, finals)),
            CExpr::Binary(op, a, b) => binary(
                *op,
                self.eval_stats(a, rec, finals),
                self.eval_stats(b, rec, finals),
            ),
            CExpr::Call { name, args, period } => {
                let args: Vec<Value<'r>> = args.iter().map(|a| self.eval_stats(a, rec, finals)).collect();
                functions::call(name, &args, *period)
            }
            other => self.eval(other, rec),
        }
    }

    pub(crate) fn field<'r>(&self, f: &FieldRef, rec: &'r Rec<'_>) -> Value<'r> {
        if let Some(slot) = f.slot {
            if let Some(v) = rec.slots.get(slot) {
                if !v.is_missing() {
                    return v.borrowed();
                }
            }
        }
        if let Some((slot, path)) = &f.path {
            if let Some(Value::Json(j)) = rec.slots.get(*slot) {
                return json_path(j, path).map_or(Value::Missing, Value::from_json);
            }
        }
        let Some(ev) = rec.event else {
            return Value::Missing;
        };
        match &f.base {
            None => Value::Missing,
            Some(Base::System(sys)) => match sys {
                Sys::Timestamp => Value::Time(ev.timestamp_ms),
                Sys::Message => Value::Str(Cow::Borrowed(ev.message)),
                Sys::LogStream => Value::Str(Cow::Borrowed(ev.log_stream)),
                Sys::Log => match &self.options.account_id {
                    Some(a) => Value::Str(Cow::Owned(format!("{a}:{}", ev.log_group))),
                    None => Value::Str(Cow::Borrowed(ev.log_group)),
                },
                Sys::IngestionTime => Value::Time(ev.ingestion_time_ms.unwrap_or(ev.timestamp_ms)),
                Sys::Ptr => Value::Str(Cow::Owned(ptr(rec.ordinal))),
            },
            Some(Base::Json(name)) => rec.json_field(name),
        }
    }

    pub(crate) fn eval<'r>(&self, e: &'r CExpr, rec: &'r Rec<'_>) -> Value<'r> {
        match e {
            CExpr::Lit(v) => v.borrowed(),
            CExpr::Field(f) => self.field(f, rec),
            CExpr::Unary(op, a) => unary(*op, self.eval(a, rec)),
            CExpr::Binary(BinaryOp::And, a, b) => {
                Value::Bool(self.eval(a, rec).truthy() && self.eval(b, rec).truthy())
            }
            CExpr::Binary(BinaryOp::Or, a, b) => {
                Value::Bool(self.eval(a, rec).truthy() || self.eval(b, rec).truthy())
            }
            CExpr::Binary(op, a, b) => binary(*op, self.eval(a, rec), self.eval(b, rec)),
            CExpr::Like {
                negated,
                expr,
                matcher,
            } => {
                let v = self.eval(expr, rec);
                match v.as_text() {
                    Some(t) => Value::Bool(matcher.is_match(&t) != *negated),
                    None => Value::Bool(false),
                }
            }
            CExpr::In { negated, expr, list } => {
                let v = self.eval(expr, rec);
                if v.is_missing() {
                    return Value::Bool(false);
                }
                let found = list
                    .iter()
                    .any(|x| v.compare(&self.eval(x, rec)) == Some(Ordering::Equal));
                Value::Bool(found != *negated)
            }
            CExpr::InSet { negated, expr, set } => {
                let v = self.eval(expr, rec);
                if v.is_missing() {
                    return Value::Bool(false);
                }
                let found = self
                    .sets
                    .get(*set)
                    .is_some_and(|s| s.contains(v.render().as_str()));
                Value::Bool(found != *negated)
            }
            CExpr::Bin(p) => match rec.event {
                Some(ev) => functions::floor_time(ev.timestamp_ms, *p).map_or(Value::Missing, Value::Time),
                None => Value::Missing,
            },
            CExpr::Call { name, args, period } => {
                let args: Vec<Value<'r>> = args.iter().map(|a| self.eval(a, rec)).collect();
                functions::call(name, &args, *period)
            }
            CExpr::Agg(_) => Value::Missing,
        }
    }
}

pub(crate) fn unary<'r>(op: UnaryOp, v: Value<'r>) -> Value<'r> {
    match op {
        UnaryOp::Not => Value::Bool(!v.truthy()),
        UnaryOp::Neg => v.as_number().map_or(Value::Missing, |n| Value::Num(-n)),
    }
}

pub(crate) fn binary<'r>(op: BinaryOp, a: Value<'r>, b: Value<'r>) -> Value<'r> {
    let cmp = |want: fn(Ordering) -> bool| Value::Bool(a.compare(&b).is_some_and(want));
    match op {
        BinaryOp::And => Value::Bool(a.truthy() && b.truthy()),
        BinaryOp::Or => Value::Bool(a.truthy() || b.truthy()),
        BinaryOp::Eq => cmp(|o| o == Ordering::Equal),
        BinaryOp::Ne => cmp(|o| o != Ordering::Equal),
        BinaryOp::Lt => cmp(|o| o == Ordering::Less),
        BinaryOp::Le => cmp(|o| o != Ordering::Greater),
        BinaryOp::Gt => cmp(|o| o == Ordering::Greater),
        BinaryOp::Ge => cmp(|o| o != Ordering::Less),
        _ => {
            let (Some(x), Some(y)) = (a.as_number(), b.as_number()) else {
                return Value::Missing;
            };
            let r = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div if y != 0.0 => x / y,
                BinaryOp::Mod if y != 0.0 => x % y,
                BinaryOp::Pow => x.powf(y),
                _ => return Value::Missing,
            };
            if !r.is_finite() {
                return Value::Missing;
            }
            // Time plus or minus a duration stays a time.
            match (op, &a, &b) {
                (BinaryOp::Add | BinaryOp::Sub, Value::Time(_), Value::Num(_)) => Value::Time(r as i64),
                _ => Value::Num(r),
            }
        }
    }
}
