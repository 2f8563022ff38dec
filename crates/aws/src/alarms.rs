//! [`CloudWatchAlarmStatus`]: the [`AlarmStatus`] port over DescribeAlarms (metric and composite
//! alarms, 100 names per request).

use crate::error::port_error;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use firebreak_core::drill::coverage::AlarmToPlace;
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

    /// Every alarm of the account and region (DescribeAlarms, all pages, metric and composite),
    /// each with its tags (ListTagsForResource, one call per alarm): what `firebreak drill
    /// coverage --from-cloudwatch` places on runbooks.
    ///
    /// # Errors
    /// The first call that fails, as a [`PortError`] naming the operation.
    pub async fn all_alarms(&self) -> Result<Vec<AlarmToPlace>, PortError> {
        let mut found: Vec<(AlarmToPlace, Option<String>)> = Vec::new();
        for page in self.pages(None).await? {
            for a in page.metric_alarms() {
                let Some(name) = a.alarm_name() else { continue };
                // metric math: the first query with a MetricStat names the metric
                let stat = a
                    .metrics()
                    .iter()
                    .find_map(|q| q.metric_stat().and_then(|s| s.metric()));
                found.push((
                    AlarmToPlace {
                        name: name.to_string(),
                        namespace: a
                            .namespace()
                            .or_else(|| stat.and_then(|m| m.namespace()))
                            .map(str::to_string),
                        metric: a
                            .metric_name()
                            .or_else(|| stat.and_then(|m| m.metric_name()))
                            .map(str::to_string),
                        tags: BTreeMap::new(),
                    },
                    a.alarm_arn().map(str::to_string),
                ));
            }
            for a in page.composite_alarms() {
                let Some(name) = a.alarm_name() else { continue };
                found.push((
                    AlarmToPlace {
                        name: name.to_string(),
                        namespace: None,
                        metric: None,
                        tags: BTreeMap::new(),
                    },
                    a.alarm_arn().map(str::to_string),
                ));
            }
        }
        let mut out = Vec::with_capacity(found.len());
        for (mut alarm, arn) in found {
            if let Some(arn) = arn {
                let tags = self
                    .client
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| port_error("CloudWatch ListTagsForResource", &e))?;
                alarm.tags = tags
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect();
            }
            out.push(alarm);
        }
        Ok(out)
    }
}

impl CloudWatchAlarmStatus {
    /// Every page DescribeAlarms answers, metric and composite alarms, for these names (at most
    /// [`MAX_NAMES_PER_REQUEST`]) or, with `None`, for every alarm.
    async fn pages(
        &self,
        names: Option<&[String]>,
    ) -> Result<Vec<aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput>, PortError> {
        const OP: &str = "CloudWatch DescribeAlarms";
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_alarms()
                .set_alarm_names(names.map(<[String]>::to_vec))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| port_error(OP, &e))?;
            token = page.next_token.clone().filter(|t| !t.is_empty());
            pages.push(page);
            if token.is_none() {
                return Ok(pages);
            }
        }
    }
}

impl AlarmStatus for CloudWatchAlarmStatus {
    async fn states(&self, alarm_names: &[String]) -> Result<BTreeMap<String, AlarmState>, PortError> {
        let mut names: Vec<String> = alarm_names.to_vec();
        names.sort();
        names.dedup();
        let mut out = BTreeMap::new();
        for batch in names.chunks(MAX_NAMES_PER_REQUEST) {
            for page in self.pages(Some(batch)).await? {
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

    #[tokio::test]
    async fn lists_every_alarm_over_pages_with_its_metric_and_tags() {
        use aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceOutput;
        use aws_sdk_cloudwatch::types::{Metric, MetricDataQuery, MetricStat, Tag};
        let first = mock!(Client::describe_alarms)
            .match_requests(|r| r.alarm_names().is_empty() && r.next_token().is_none())
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("orders-5xx")
                            .alarm_arn("arn:aws:cloudwatch:us-east-1:1:alarm:orders-5xx")
                            .namespace("AWS/ApplicationELB")
                            .metric_name("HTTPCode_Target_5XX_Count")
                            .build(),
                    )
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::describe_alarms)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(
                        MetricAlarm::builder()
                            .alarm_name("orders-error-rate")
                            .metrics(MetricDataQuery::builder().id("e").expression("m*100").build())
                            .metrics(
                                MetricDataQuery::builder()
                                    .id("m")
                                    .metric_stat(
                                        MetricStat::builder()
                                            .metric(
                                                Metric::builder()
                                                    .namespace("AWS/ECS")
                                                    .metric_name("CPUUtilization")
                                                    .build(),
                                            )
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .composite_alarms(CompositeAlarm::builder().alarm_name("orders-down").build())
                    .build()
            });
        let tags = mock!(Client::list_tags_for_resource)
            .match_requests(|r| r.resource_arn() == Some("arn:aws:cloudwatch:us-east-1:1:alarm:orders-5xx"))
            .then_output(|| {
                ListTagsForResourceOutput::builder()
                    .tags(Tag::builder().key("runbook").value("high-error-rate").build())
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second, &tags]);
        let all = CloudWatchAlarmStatus::new(client).all_alarms().await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].tags["runbook"], "high-error-rate");
        assert_eq!(all[1].metric.as_deref(), Some("CPUUtilization"));
        assert_eq!(all[1].namespace.as_deref(), Some("AWS/ECS"));
        assert!(all[1].tags.is_empty(), "no ARN: no tags asked");
        assert_eq!(all[2].name, "orders-down");
        assert_eq!(
            (first.num_calls(), second.num_calls(), tags.num_calls()),
            (1, 1, 1)
        );
    }
}
