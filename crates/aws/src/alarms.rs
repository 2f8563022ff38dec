//! [`CloudWatchAlarmStatus`]: the [`AlarmStatus`] port over DescribeAlarms (metric and composite
//! alarms, 100 names per request).

use crate::error::port_error;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use firebreak_core::model::signal::AlarmState;
use firebreak_core::ports::{AlarmStatus, PortError};
use std::collections::BTreeMap;

/// DescribeAlarms accepts at most 100 alarm names.
pub const MAX_NAMES_PER_REQUEST: usize = 100;

fn alarm_state(v: &StateValue) -> Option<AlarmState> {
    AlarmState::parse(v.as_str())
}

/// Reads alarm states from CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchAlarmStatus {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarmStatus {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> CloudWatchAlarmStatus {
        CloudWatchAlarmStatus { client }
    }
}

impl AlarmStatus for CloudWatchAlarmStatus {
    async fn states(&self, alarm_names: &[String]) -> Result<BTreeMap<String, AlarmState>, PortError> {
        const OP: &str = "CloudWatch DescribeAlarms";
        let mut names: Vec<String> = alarm_names.to_vec();
        names.sort();
        names.dedup();
        let mut out = BTreeMap::new();
        for batch in names.chunks(MAX_NAMES_PER_REQUEST) {
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .describe_alarms()
                    .set_alarm_names(Some(batch.to_vec()))
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .max_records(100)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| port_error(OP, &e))?;
                let metric = page
                    .metric_alarms()
                    .iter()
                    .map(|a| (a.alarm_name(), a.state_value()));
                let composite = page
                    .composite_alarms()
                    .iter()
                    .map(|a| (a.alarm_name(), a.state_value()));
                for (name, value) in metric.chain(composite) {
                    if let (Some(name), Some(state)) = (name, value.and_then(alarm_state)) {
                        out.insert(name.to_string(), state);
                    }
                }
                match page.next_token {
                    Some(t) if !t.is_empty() => token = Some(t),
                    _ => break,
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::describe_alarms::{DescribeAlarmsError, DescribeAlarmsOutput};
    use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm};
    use aws_sdk_cloudwatch::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn reads_metric_and_composite_alarms_and_leaves_out_missing_ones() {
        let rule = mock!(Client::describe_alarms)
            .match_requests(|r| {
                r.alarm_names() == ["api-5xx", "api-health", "gone"]
                    && r.alarm_types().contains(&AlarmType::MetricAlarm)
                    && r.alarm_types().contains(&AlarmType::CompositeAlarm)
            })
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("api-5xx")
                            .state_value(StateValue::Alarm)
                            .build(),
                    )
                    .composite_alarms(
                        CompositeAlarm::builder()
                            .alarm_name("api-health")
                            .state_value(StateValue::Ok)
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
        let names = vec![
            "api-health".to_string(),
            "api-5xx".into(),
            "gone".into(),
            "api-5xx".into(),
        ];
        let states = CloudWatchAlarmStatus::new(client).states(&names).await.unwrap();
        assert_eq!(
            states,
            BTreeMap::from([
                ("api-5xx".to_string(), AlarmState::Alarm),
                ("api-health".to_string(), AlarmState::Ok)
            ])
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn asks_in_batches_of_100_names_and_follows_next_token() {
        let first = mock!(Client::describe_alarms)
            .match_requests(|r| r.alarm_names().len() == 100 && r.next_token().is_none())
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("a000")
                            .state_value(StateValue::Alarm)
                            .build(),
                    )
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::describe_alarms)
            .match_requests(|r| r.alarm_names().len() == 100 && r.next_token() == Some("page-2"))
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("a099")
                            .state_value(StateValue::InsufficientData)
                            .build(),
                    )
                    .build()
            });
        let rest = mock!(Client::describe_alarms)
            .match_requests(|r| r.alarm_names().len() == 50)
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("a149")
                            .state_value(StateValue::Ok)
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second, &rest]);
        let names: Vec<String> = (0..150).map(|i| format!("a{i:03}")).collect();
        let states = CloudWatchAlarmStatus::new(client).states(&names).await.unwrap();
        assert_eq!(states.len(), 3);
        assert_eq!(states["a099"], AlarmState::InsufficientData);
        assert_eq!(states["a149"], AlarmState::Ok);
        assert_eq!(
            (first.num_calls(), second.num_calls(), rest.num_calls()),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn throttling_is_a_retryable_error_with_its_code() {
        let rule = mock!(Client::describe_alarms).then_error(|| {
            DescribeAlarmsError::generic(
                aws_sdk_cloudwatch::error::ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled()));
        let err = CloudWatchAlarmStatus::new(client)
            .states(&["x".to_string()])
            .await
            .unwrap_err();
        assert!(err.retryable);
        assert_eq!(err.code.as_deref(), Some("Throttling"));
        assert_eq!(err.message, "Rate exceeded");
    }
}
