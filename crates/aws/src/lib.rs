//! Adapters: the ports of firebreak-core over aws-sdk-rust, the SDK configuration they share, and
//! the single definition of the DynamoDB table.
//!
//! A function's `main` loads the SDK config once ([`config::load`]), then builds only the clients
//! and adapters it needs with [`config::Clients`].

pub mod alarms;
pub mod bus;
pub mod chat;
pub mod config;
pub mod ecs;
pub mod environment;
pub mod error;
pub mod identity;
pub mod logs;
pub mod metrics;
pub mod notify;
pub mod oncall;
pub mod record;
pub mod store;
pub mod table;

pub use alarms::CloudWatchAlarmStatus;
pub use bus::EventBridgeBus;
pub use config::{Clients, Settings};
pub use ecs::EcsServiceControl;
pub use environment::Environment;
pub use error::ConfigError;
pub use identity::StsCallerIdentity;
pub use logs::{
    FetchError, FetchedEvent, FetchingLogQueries, FilterLogEventsFetcher, InsightsLogQueries, PollSchedule,
};
pub use metrics::CloudWatchMetrics;
pub use notify::{SnsNotifier, Topics};
pub use oncall::HyperSender;
pub use store::DynamoIncidentStore;
pub use table::{create_table, table_spec, TableSpec};
