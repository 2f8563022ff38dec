//! The function catalogue: every function the language knows, whether it is a scalar or an
//! aggregate and how many arguments it takes; and the commands only CloudWatch runs. Shared by
//! the parser (arity, placement) and the planner (which functions become accumulators).

use crate::ast::Expr;

/// What a function is and how many arguments it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FnKind {
    Scalar,
    Aggregate,
}

pub(crate) struct FnSpec {
    pub name: &'static str,
    pub kind: FnKind,
    pub min: usize,
    pub max: usize,
}

pub(crate) const MANY: usize = usize::MAX;

const fn f(name: &'static str, kind: FnKind, min: usize, max: usize) -> FnSpec {
    FnSpec { name, kind, min, max }
}

use FnKind::{Aggregate, Scalar};

/// Every function, by canonical spelling (lookup ignores case).
pub(crate) const FUNCTIONS: &[FnSpec] = &[
    f("count", Aggregate, 0, 1),
    f("count_distinct", Aggregate, 1, 1),
    f("sum", Aggregate, 1, 1),
    f("avg", Aggregate, 1, 1),
    f("min", Aggregate, 1, 1),
    f("max", Aggregate, 1, 1),
    f("pct", Aggregate, 2, 2),
    f("stddev", Aggregate, 1, 1),
    f("earliest", Aggregate, 1, 1),
    f("latest", Aggregate, 1, 1),
    f("bin", Scalar, 1, 1),
    f("ispresent", Scalar, 1, 1),
    f("coalesce", Scalar, 1, MANY),
    f("isempty", Scalar, 1, 1),
    f("isblank", Scalar, 1, 1),
    f("concat", Scalar, 1, MANY),
    f("strlen", Scalar, 1, 1),
    f("toupper", Scalar, 1, 1),
    f("tolower", Scalar, 1, 1),
    f("trim", Scalar, 1, 1),
    f("ltrim", Scalar, 1, 1),
    f("rtrim", Scalar, 1, 1),
    f("substr", Scalar, 2, 3),
    f("replace", Scalar, 3, 3),
    f("strcontains", Scalar, 2, 2),
    f("abs", Scalar, 1, 1),
    f("ceil", Scalar, 1, 1),
    f("floor", Scalar, 1, 1),
    f("greatest", Scalar, 1, MANY),
    f("least", Scalar, 1, MANY),
    f("log", Scalar, 1, 1),
    f("sqrt", Scalar, 1, 1),
    f("datefloor", Scalar, 2, 2),
    f("dateceil", Scalar, 2, 2),
    f("fromMillis", Scalar, 1, 1),
    f("toMillis", Scalar, 1, 1),
    f("jsonParse", Scalar, 1, 1),
    f("isValidIp", Scalar, 1, 1),
    f("isValidIpV4", Scalar, 1, 1),
    f("isValidIpV6", Scalar, 1, 1),
    f("isIpInSubnet", Scalar, 2, 2),
    f("isIpv4InSubnet", Scalar, 2, 2),
    f("isIpv6InSubnet", Scalar, 2, 2),
    f("sortsFirst", Scalar, 1, 1),
    f("sortsLast", Scalar, 1, 1),
];

pub(crate) fn function(name: &str) -> Option<&'static FnSpec> {
    FUNCTIONS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// Commands Logs Insights has that the local engine does not evaluate.
pub(crate) const UNSUPPORTED_COMMANDS: &[&str] = &[
    "pattern",
    "diff",
    "anomaly",
    "unmask",
    "SOURCE",
    "filterIndex",
    "lookup",
    "expand",
    "join",
];

/// Whether `e` calls an aggregate anywhere (outside a subquery).
pub(crate) fn contains_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Call { name, args } => {
            function(name).is_some_and(|f| f.kind == FnKind::Aggregate) || args.iter().any(contains_aggregate)
        }
        Expr::Unary(_, a) => contains_aggregate(a),
        Expr::Binary(_, a, b) => contains_aggregate(a) || contains_aggregate(b),
        _ => false,
    }
}
