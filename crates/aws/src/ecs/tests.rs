//! Exact requests and error paths of the ECS adapter, against mocked responses.

use super::*;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::ErrorMetadata;
use aws_sdk_ecs::operation::describe_services::{DescribeServicesError, DescribeServicesOutput};
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput;
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::types::error::{ClientException, ClusterNotFoundException};
use aws_sdk_ecs::types::{DeploymentRolloutState, Failure, KeyValuePair, Secret, Service, Tag};
use aws_sdk_ecs::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};

const TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/articles-api";

fn svc() -> EcsService {
    EcsService::new("prod", "articles-api")
}

fn service(td_rev: u32, desired: i32) -> Service {
    Service::builder()
        .service_name("articles-api")
        .status("ACTIVE")
        .task_definition(format!("{TD}:{td_rev}"))
        .desired_count(desired)
        .running_count(desired)
        .pending_count(0)
        .deployments(
            aws_sdk_ecs::types::Deployment::builder()
                .id("ecs-svc/2")
                .status("PRIMARY")
                .task_definition(format!("{TD}:{td_rev}"))
                .desired_count(desired)
                .running_count(desired)
                .rollout_state(DeploymentRolloutState::Completed)
                .created_at(aws_smithy_types::DateTime::from_secs(1_773_497_100))
                .build(),
        )
        .events(
            aws_sdk_ecs::types::ServiceEvent::builder()
                .id("e1")
                .created_at(aws_smithy_types::DateTime::from_secs(1_773_498_000))
                .message("(service articles-api) has reached a steady state.")
                .build(),
        )
        .tags(Tag::builder().key("team").value("web").build())
        .build()
}

fn client(rules: &[&aws_smithy_mocks::Rule]) -> Client {
    mock_client!(aws_sdk_ecs, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

#[tokio::test]
async fn describe_asks_for_tags_and_maps_deployments_events_and_tags() {
    let rule = mock!(Client::describe_services)
        .match_requests(|r| {
            r.cluster() == Some("prod")
                && r.services() == ["articles-api"]
                && r.include() == [ServiceField::Tags]
        })
        .then_output(|| DescribeServicesOutput::builder().services(service(42, 4)).build());
    let st = EcsServiceControl::new(client(&[&rule]))
        .describe(&svc())
        .await
        .unwrap();
    assert_eq!(st.task_definition, "articles-api:42");
    assert_eq!((st.desired, st.running, st.pending), (4, 4, 0));
    assert_eq!(st.deployments.len(), 1);
    assert_eq!(st.deployments[0].task_definition, "articles-api:42");
    assert_eq!(st.deployments[0].rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!(
        st.deployments[0].created_at.map(|t| t.timestamp()),
        Some(1_773_497_100)
    );
    assert_eq!(
        st.events[0].message,
        "(service articles-api) has reached a steady state."
    );
    assert_eq!(st.tags.get("team").map(String::as_str), Some("web"));
    assert!(!st.deployment_in_progress());
}

#[tokio::test]
async fn describe_of_an_unknown_service_is_service_not_found_and_not_retryable() {
    let rule = mock!(Client::describe_services).then_output(|| {
        DescribeServicesOutput::builder()
            .failures(
                Failure::builder()
                    .arn("arn:...:service/prod/nope")
                    .reason("MISSING")
                    .build(),
            )
            .build()
    });
    let err = EcsServiceControl::new(client(&[&rule]))
        .describe(&svc())
        .await
        .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("ServiceNotFoundException"));
    assert!(!err.retryable);
}

#[tokio::test]
async fn describe_in_an_unknown_cluster_is_cluster_not_found_and_not_retryable() {
    let rule = mock!(Client::describe_services).then_error(|| {
        DescribeServicesError::ClusterNotFoundException(
            ClusterNotFoundException::builder()
                .message("Cluster not found.")
                .meta(
                    ErrorMetadata::builder()
                        .code("ClusterNotFoundException")
                        .message("Cluster not found.")
                        .build(),
                )
                .build(),
        )
    });
    let err = EcsServiceControl::new(client(&[&rule]))
        .describe(&svc())
        .await
        .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("ClusterNotFoundException"));
    assert_eq!(err.message, "Cluster not found.");
    assert!(!err.retryable);
}

#[tokio::test]
async fn describe_server_error_is_retryable() {
    let rule = mock!(Client::describe_services).then_error(|| {
        DescribeServicesError::generic(
            ErrorMetadata::builder()
                .code("ServerException")
                .message("boom")
                .build(),
        )
    });
    let err = EcsServiceControl::new(client(&[&rule]))
        .describe(&svc())
        .await
        .unwrap_err();
    assert!(err.retryable);
}

#[tokio::test]
async fn task_definitions_follow_pages_and_keep_only_the_exact_family() {
    let first = mock!(Client::list_task_definitions)
        .match_requests(|r| {
            r.family_prefix() == Some("articles-api")
                && r.status() == Some(&TaskDefinitionStatus::Active)
                && r.next_token().is_none()
        })
        .then_output(|| {
            ListTaskDefinitionsOutput::builder()
                .task_definition_arns(format!("{TD}:41"))
                .task_definition_arns(format!("{TD}-worker:7"))
                .next_token("p2")
                .build()
        });
    let second = mock!(Client::list_task_definitions)
        .match_requests(|r| r.next_token() == Some("p2"))
        .then_output(|| {
            ListTaskDefinitionsOutput::builder()
                .task_definition_arns(format!("{TD}:42"))
                .build()
        });
    let tds = EcsServiceControl::new(client(&[&first, &second]))
        .task_definitions("articles-api")
        .await
        .unwrap();
    assert_eq!(tds, vec!["articles-api:41".to_string(), "articles-api:42".into()]);
}

#[tokio::test]
async fn update_sends_only_the_fields_that_are_set() {
    let rule = mock!(Client::update_service)
        .match_requests(|r| {
            r.cluster() == Some("prod")
                && r.service() == Some("articles-api")
                && r.desired_count() == Some(8)
                && r.task_definition().is_none()
                && r.force_new_deployment().is_none()
        })
        .then_output(|| UpdateServiceOutput::builder().service(service(42, 8)).build());
    let change = ServiceUpdate {
        desired: Some(8),
        ..ServiceUpdate::default()
    };
    let st = EcsServiceControl::new(client(&[&rule]))
        .update(&svc(), &change)
        .await
        .unwrap();
    assert_eq!(st.desired, 8);
    assert_eq!(rule.num_calls(), 1);
}

const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-password-AbCdEf";
const PARAM_ARN: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/prod/api-key";

fn full_task_definition() -> aws_sdk_ecs::types::TaskDefinition {
    let app = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name("app")
        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/articles-api:1.4.2")
        .cpu(256)
        .memory(512)
        .environment(KeyValuePair::builder().name("POOL_SIZE").value("20").build())
        .environment(KeyValuePair::builder().name("LOG_LEVEL").value("info").build())
        .secrets(
            Secret::builder()
                .name("DB_PASSWORD")
                .value_from(SECRET_ARN)
                .build()
                .unwrap(),
        )
        .secrets(
            Secret::builder()
                .name("API_KEY")
                .value_from(PARAM_ARN)
                .build()
                .unwrap(),
        )
        .command("serve")
        .command("--port=8080")
        .entry_point("/bin/app")
        .build();
    let sidecar = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name("log-router")
        .image("public.ecr.aws/aws-observability/aws-for-fluent-bit@sha256:0123abcd")
        .build();
    aws_sdk_ecs::types::TaskDefinition::builder()
        .task_definition_arn(format!("{TD}:42"))
        .family("articles-api")
        .revision(42)
        .cpu("1 vCPU")
        .memory("2048")
        .container_definitions(app)
        .container_definitions(sidecar)
        .build()
}

#[tokio::test]
async fn task_definition_maps_containers_and_keeps_only_secret_names() {
    let rule = mock!(Client::describe_task_definition)
        .match_requests(|r| r.task_definition() == Some("articles-api:42"))
        .then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(full_task_definition())
                .build()
        });
    let td = EcsServiceControl::new(client(&[&rule]))
        .task_definition("articles-api:42")
        .await
        .unwrap()
        .expect("a registered task definition is found");
    let expected = TaskDefinition {
        name: "articles-api:42".into(),
        cpu: Some("1 vCPU".into()),
        memory: Some("2048".into()),
        containers: vec![
            ContainerDefinition {
                name: "app".into(),
                image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/articles-api:1.4.2".into(),
                environment: [("LOG_LEVEL", "info"), ("POOL_SIZE", "20")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                secrets: vec!["DB_PASSWORD".into(), "API_KEY".into()],
                command: vec!["serve".into(), "--port=8080".into()],
                entry_point: vec!["/bin/app".into()],
                cpu: Some(256),
                memory: Some(512),
            },
            ContainerDefinition {
                name: "log-router".into(),
                image: "public.ecr.aws/aws-observability/aws-for-fluent-bit@sha256:0123abcd".into(),
                ..ContainerDefinition::default()
            },
        ],
    };
    assert_eq!(td, expected);
    let json = serde_json::to_string(&td).unwrap();
    assert!(!json.contains(SECRET_ARN), "{json}");
    assert!(!json.contains(PARAM_ARN), "{json}");
    assert!(
        !json.contains("secretsmanager") && !json.contains("arn:aws:ssm"),
        "{json}"
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn task_definition_asked_by_arn_is_named_family_revision() {
    let rule = mock!(Client::describe_task_definition)
        .match_requests(|r| r.task_definition() == Some(&format!("{TD}:42")))
        .then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(full_task_definition())
                .build()
        });
    let td = EcsServiceControl::new(client(&[&rule]))
        .task_definition(&format!("{TD}:42"))
        .await
        .unwrap()
        .expect("found");
    assert_eq!(td.name, "articles-api:42");
}

#[tokio::test]
async fn unknown_task_definition_is_none() {
    let rule = mock!(Client::describe_task_definition).then_error(|| {
        DescribeTaskDefinitionError::ClientException(
            ClientException::builder()
                .message("Unable to describe task definition.")
                .meta(
                    ErrorMetadata::builder()
                        .code("ClientException")
                        .message("Unable to describe task definition.")
                        .build(),
                )
                .build(),
        )
    });
    let td = EcsServiceControl::new(client(&[&rule]))
        .task_definition("articles-api:999")
        .await
        .unwrap();
    assert_eq!(td, None);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn other_client_exceptions_of_task_definition_are_errors_not_none() {
    let rule = mock!(Client::describe_task_definition).then_error(|| {
        DescribeTaskDefinitionError::ClientException(
            ClientException::builder()
                .message("User is not authorized to perform ecs:DescribeTaskDefinition")
                .meta(
                    ErrorMetadata::builder()
                        .code("ClientException")
                        .message("User is not authorized to perform ecs:DescribeTaskDefinition")
                        .build(),
                )
                .build(),
        )
    });
    let err = EcsServiceControl::new(client(&[&rule]))
        .task_definition("articles-api:42")
        .await
        .unwrap_err();
    assert_eq!(err.operation, "ECS DescribeTaskDefinition");
    assert_eq!(err.code.as_deref(), Some("ClientException"));
    assert!(!err.retryable);
}

#[tokio::test]
async fn task_definition_throttling_is_retryable() {
    let rule = mock!(Client::describe_task_definition).then_error(|| {
        DescribeTaskDefinitionError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        )
    });
    let err = EcsServiceControl::new(client(&[&rule]))
        .task_definition("articles-api:42")
        .await
        .unwrap_err();
    assert_eq!(err.operation, "ECS DescribeTaskDefinition");
    assert_eq!(err.code.as_deref(), Some("ThrottlingException"));
    assert_eq!(err.message, "Rate exceeded");
    assert!(err.retryable);
}

#[tokio::test]
async fn empty_task_definition_name_is_refused_without_a_call() {
    let rule = mock!(Client::describe_task_definition)
        .then_output(|| DescribeTaskDefinitionOutput::builder().build());
    let err = EcsServiceControl::new(client(&[&rule]))
        .task_definition(" ")
        .await
        .unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.contains("empty"), "{err:?}");
    assert_eq!(rule.num_calls(), 0);
}

#[tokio::test]
async fn a_malformed_revision_is_refused_without_a_call() {
    let rule = mock!(Client::describe_task_definition)
        .then_output(|| DescribeTaskDefinitionOutput::builder().build());
    let ecs = EcsServiceControl::new(client(&[&rule]));
    for name in [
        "articles-api:latest",
        "articles-api:0",
        "articles-api:",
        &format!("{TD}:x"),
    ] {
        let err = ecs.task_definition(name).await.unwrap_err();
        assert!(!err.retryable, "{err:?}");
        assert!(err.message.contains("no valid revision"), "{err:?}");
    }
    assert_eq!(rule.num_calls(), 0);
}

#[test]
fn task_definition_arns_become_family_revision() {
    assert_eq!(family_revision(&format!("{TD}:42")), "articles-api:42");
    assert_eq!(family_revision("articles-api:42"), "articles-api:42");
    assert_eq!(family_of(&format!("{TD}-worker:7")), "articles-api-worker");
}
