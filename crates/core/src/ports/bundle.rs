//! The ports each use-case reaches the world through, as one bundle: a use-case is generic over
//! one `P` (for example `Remediate<'_, P: RemediatePorts>`), not over five or six port types.
//!
//! [`Wired`] is the bundle every composition root builds (the Lambda mains, the drill, the CLI,
//! tests): references to the adapters it has, [`Absent`] for the ports that use-case does not
//! need. A port is reachable only when its slot holds an implementation, so a use-case that
//! needs ECS cannot be built from a bundle without one; that is checked at compile time.

use super::{
    AlarmStatus, Clock, EventBus, IncidentStore, LogQueries, MetricQueries, Notifier, ServiceControl,
};

/// The slot of a port a use-case does not use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Absent;

static ABSENT: Absent = Absent;

/// References to the adapters of one composition root. Build with [`Wired::new`] and the
/// `store`, `notifier`, … methods, each of which fills one slot.
#[derive(Debug)]
pub struct Wired<
    'a,
    S = Absent,
    N = Absent,
    B = Absent,
    K = Absent,
    E = Absent,
    A = Absent,
    L = Absent,
    M = Absent,
> {
    pub store: &'a S,
    pub notifier: &'a N,
    pub bus: &'a B,
    pub clock: &'a K,
    pub ecs: &'a E,
    pub alarms: &'a A,
    pub logs: &'a L,
    pub metrics: &'a M,
}

impl<S, N, B, K, E, A, L, M> Clone for Wired<'_, S, N, B, K, E, A, L, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S, N, B, K, E, A, L, M> Copy for Wired<'_, S, N, B, K, E, A, L, M> {}

impl Wired<'static> {
    /// A bundle with every slot empty.
    pub fn new() -> Wired<'static> {
        Wired {
            store: &ABSENT,
            notifier: &ABSENT,
            bus: &ABSENT,
            clock: &ABSENT,
            ecs: &ABSENT,
            alarms: &ABSENT,
            logs: &ABSENT,
            metrics: &ABSENT,
        }
    }
}

impl Default for Wired<'static> {
    fn default() -> Self {
        Wired::new()
    }
}

impl<'a, S, N, B, K, E, A, L, M> Wired<'a, S, N, B, K, E, A, L, M> {
    pub fn store<'b, X: IncidentStore>(self, store: &'b X) -> Wired<'b, X, N, B, K, E, A, L, M>
    where
        'a: 'b,
    {
        Wired {
            store,
            notifier: self.notifier,
            bus: self.bus,
            clock: self.clock,
            ecs: self.ecs,
            alarms: self.alarms,
            logs: self.logs,
            metrics: self.metrics,
        }
    }

    pub fn notifier<'b, X: Notifier>(self, notifier: &'b X) -> Wired<'b, S, X, B, K, E, A, L, M>
    where
        'a: 'b,
    {
        Wired {
            store: self.store,
            notifier,
            bus: self.bus,
            clock: self.clock,
            ecs: self.ecs,
            alarms: self.alarms,
            logs: self.logs,
            metrics: self.metrics,
        }
    }

    pub fn bus<'b, X: EventBus>(self, bus: &'b X) -> Wired<'b, S, N, X, K, E, A, L, M>
    where
        'a: 'b,
    {
        Wired {
            store: self.store,
            notifier: self.notifier,
            bus,
            clock: self.clock,
            ecs: self.ecs,
            alarms: self.alarms,
            logs: self.logs,
            metrics: self.metrics,
        }
    }

    pub fn clock<'b, X: Clock>(self, clock: &'b X) -> Wired<'b, S, N, B, X, E, A, L, M>
    where
        'a: 'b,
    {
        Wired {
            store: self.store,
            notifier: self.notifier,
            bus: self.bus,
            clock,
            ecs: self.ecs,
            alarms: self.alarms,
            logs: self.logs,
            metrics: self.metrics,
        }
    }

    pub fn ecs<'b, X: ServiceControl>(self, ecs: &'b X) -> Wired<'b, S, N, B, K, X, A, L, M>
    where
        'a: 'b,
    {
        Wired {
            store: self.store,
            notifier: self.notifier,
            bus: self.bus,
            clock: self.clock,
            ecs,
            alarms: self.alarms,
            logs: self.logs,
            metrics: self.metrics,
        }
    }

    pub fn alarms<'b, X: AlarmStatus>(self, alarms: &'b X) -> Wired<'b, S, N, B, K, E, X, L, M>
    where
        'a: 'b,
    {
        Wired {
            store: self.store,
            notifier: self.notifier,
            bus: self.bus,
            clock: self.clock,
            ecs: self.ecs,
            alarms,
            logs: self.logs,
            metrics: self.metrics,
        }
    }

    pub fn logs<'b, X: LogQueries>(self, logs: &'b X) -> Wired<'b, S, N, B, K, E, A, X, M>
    where
        'a: 'b,
    {
        Wired {
            store: self.store,
            notifier: self.notifier,
            bus: self.bus,
            clock: self.clock,
            ecs: self.ecs,
            alarms: self.alarms,
            logs,
            metrics: self.metrics,
        }
    }

    pub fn metrics<'b, X: MetricQueries>(self, metrics: &'b X) -> Wired<'b, S, N, B, K, E, A, L, X>
    where
        'a: 'b,
    {
        Wired {
            store: self.store,
            notifier: self.notifier,
            bus: self.bus,
            clock: self.clock,
            ecs: self.ecs,
            alarms: self.alarms,
            logs: self.logs,
            metrics,
        }
    }
}

macro_rules! slot {
    ($has:ident, $assoc:ident, $bound:ident, $get:ident) => {
        /// A bundle with this port.
        pub trait $has: Send + Sync {
            type $assoc: $bound;
            fn $get(&self) -> &Self::$assoc;
        }
    };
}

slot!(HasStore, Store, IncidentStore, store);
slot!(HasNotifier, Notifier, Notifier, notifier);
slot!(HasBus, Bus, EventBus, bus);
slot!(HasClock, Clock, Clock, clock);
slot!(HasEcs, Ecs, ServiceControl, ecs);
slot!(HasAlarms, Alarms, AlarmStatus, alarms);
slot!(HasLogs, Logs, LogQueries, logs);
slot!(HasMetrics, Metrics, MetricQueries, metrics);

/// `Wired` has a port when that port's slot holds an implementation of it.
macro_rules! has {
    ($has:ident, $assoc:ident, $get:ident, $param:ident: $bound:ident) => {
        impl<S: Sync, N: Sync, B: Sync, K: Sync, E: Sync, A: Sync, L: Sync, M: Sync> $has
            for Wired<'_, S, N, B, K, E, A, L, M>
        where
            $param: $bound,
        {
            type $assoc = $param;
            fn $get(&self) -> &$param {
                self.$get
            }
        }
    };
}

has!(HasStore, Store, store, S: IncidentStore);
has!(HasNotifier, Notifier, notifier, N: Notifier);
has!(HasBus, Bus, bus, B: EventBus);
has!(HasClock, Clock, clock, K: Clock);
has!(HasEcs, Ecs, ecs, E: ServiceControl);
has!(HasAlarms, Alarms, alarms, A: AlarmStatus);
has!(HasLogs, Logs, logs, L: LogQueries);
has!(HasMetrics, Metrics, metrics, M: MetricQueries);

macro_rules! use_case_ports {
    ($(#[$doc:meta])* $name:ident: $($has:ident),+) => {
        $(#[$doc])*
        pub trait $name: $($has +)+ {}
        impl<T: $($has +)+> $name for T {}
    };
}

use_case_ports!(
    /// Triage: the store, the pages, the bus, the time.
    TriagePorts: HasStore, HasNotifier, HasBus, HasClock
);
use_case_ports!(
    /// Diagnose: the store, the logs, the metrics, ECS (recent changes), the diagnosis page, the
    /// bus, the time.
    DiagnosePorts: HasStore, HasLogs, HasMetrics, HasEcs, HasNotifier, HasBus, HasClock
);
use_case_ports!(
    /// Remediate: the store, ECS, live alarm states, the pages, the bus, the time.
    RemediatePorts: HasStore, HasEcs, HasAlarms, HasNotifier, HasBus, HasClock
);
use_case_ports!(
    /// Resolve: the store, the pages, the bus, the time (closing on a recovery also reads
    /// CloudWatch and ECS: `on_recovered` asks for `HasAlarms` and `HasEcs`).
    ResolvePorts: HasStore, HasNotifier, HasBus, HasClock
);
use_case_ports!(
    /// The sweeper: the store, live alarm states, the pages, the bus, the time.
    SweeperPorts: HasStore, HasAlarms, HasNotifier, HasBus, HasClock
);
