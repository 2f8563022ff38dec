//! The memory budget of an evaluation: every structure that grows with the data (`stats`
//! groups, `count_distinct` sets, exact percentiles, `sort` and `dedup` buffers, subquery
//! buffers) charges its estimated size here, and the evaluation stops with an error naming the
//! budget instead of growing past it. Estimates include allocator and hash-table overhead, so
//! they stay above what the allocations really take.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The default budget: 256 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

static DEFAULT_BUDGET: AtomicUsize = AtomicUsize::new(DEFAULT_MEMORY_BUDGET);

/// Sets the budget that evaluations use when none is given ([`Query::evaluate`], the
/// `LocalLogQueries` port): for a Lambda function, a share of its memory size. Process-wide.
///
/// [`Query::evaluate`]: crate::Query::evaluate
pub fn set_default_memory_budget(bytes: usize) {
    DEFAULT_BUDGET.store(bytes.max(1 << 20), Ordering::Relaxed);
}

/// The budget evaluations use when none is given.
pub fn default_memory_budget() -> usize {
    DEFAULT_BUDGET.load(Ordering::Relaxed)
}

/// A share of a budget, cloned into each worker of a parallel scan (all draw on one total).
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    limit: usize,
    used: Arc<AtomicUsize>,
}

/// Bytes a heap allocation of `n` bytes costs with the allocator's bookkeeping.
pub(crate) fn heap(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 16 + 15) & !15
    }
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes; false (and nothing taken) when that would pass the limit.
    pub(crate) fn charge(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(n);
            if next > self.limit {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    pub(crate) fn release(&self, n: usize) {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_sub(n);
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The error for a structure that would not fit.
    pub(crate) fn exceeded(&self, what: &str) -> String {
        format!(
            "the query needs more than its memory budget of {} MB for {what}; narrow the time range or the filter, add a limit, or raise the budget (firebreak query --max-memory MB)",
            self.limit >> 20
        )
    }
}
