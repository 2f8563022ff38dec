//! [`EcsServiceControl`]: the [`ServiceControl`] port over DescribeServices,
//! ListTaskDefinitions, DescribeTaskDefinition and UpdateService.

use crate::error::port_error;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_ecs::types::{ServiceField, TaskDefinitionStatus};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use firebreak_core::model::incident::EcsService;
use firebreak_core::ports::{
    ContainerDefinition, Deployment, PortError, ServiceControl, ServiceEvent, ServiceState, ServiceUpdate,
    TaskDefinition,
};

/// `arn:aws:ecs:r:a:task-definition/family:3` (or `family:3`) → `family:3`.
pub fn family_revision(task_definition: &str) -> &str {
    task_definition.rsplit('/').next().unwrap_or(task_definition)
}

fn family_of(task_definition: &str) -> &str {
    let fr = family_revision(task_definition);
    fr.split_once(':').map_or(fr, |(f, _)| f)
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

fn state(service: &EcsService, s: &aws_sdk_ecs::types::Service) -> ServiceState {
    let mut deployments: Vec<Deployment> = s
        .deployments()
        .iter()
        .map(|d| Deployment {
            id: d.id().unwrap_or_default().to_string(),
            status: d.status().unwrap_or_default().to_string(),
            task_definition: family_revision(d.task_definition().unwrap_or_default()).to_string(),
            desired: d.desired_count(),
            running: d.running_count(),
            rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
            created_at: time(d.created_at()),
            updated_at: time(d.updated_at()),
        })
        .collect();
    // Newest first (ECS already answers so; make it a guarantee).
    deployments.sort_by_key(|d| std::cmp::Reverse(d.created_at));
    let mut events: Vec<ServiceEvent> = s
        .events()
        .iter()
        .filter_map(|e| {
            Some(ServiceEvent {
                at: time(e.created_at())?,
                message: e.message()?.to_string(),
            })
        })
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.at));
    ServiceState {
        service: service.clone(),
        status: s.status().unwrap_or_default().to_string(),
        task_definition: family_revision(s.task_definition().unwrap_or_default()).to_string(),
        desired: s.desired_count(),
        running: s.running_count(),
        pending: s.pending_count(),
        deployments,
        events,
        tags: s
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect(),
    }
}

/// What a diagnosis compares of a task definition. Secrets keep their names only: `valueFrom` (the
/// ARN of the secret or parameter) is not copied. A container's `cpu` of 0 is ECS's "not set"
/// (the field has no null), so it becomes `None`.
fn task_definition_of(td: &aws_sdk_ecs::types::TaskDefinition, asked: &str) -> TaskDefinition {
    let name = match (td.task_definition_arn(), td.family()) {
        (Some(arn), _) if !arn.is_empty() => family_revision(arn).to_string(),
        (_, Some(family)) if td.revision() > 0 => format!("{family}:{}", td.revision()),
        _ => family_revision(asked).to_string(),
    };
    TaskDefinition {
        name,
        cpu: td.cpu().map(str::to_string),
        memory: td.memory().map(str::to_string),
        containers: td.container_definitions().iter().map(container_of).collect(),
    }
}

fn container_of(c: &aws_sdk_ecs::types::ContainerDefinition) -> ContainerDefinition {
    ContainerDefinition {
        name: c.name().unwrap_or_default().to_string(),
        image: c.image().unwrap_or_default().to_string(),
        environment: c
            .environment()
            .iter()
            .filter_map(|kv| Some((kv.name()?.to_string(), kv.value().unwrap_or_default().to_string())))
            .collect(),
        secrets: c.secrets().iter().map(|s| s.name().to_string()).collect(),
        command: c.command().to_vec(),
        entry_point: c.entry_point().to_vec(),
        cpu: Some(c.cpu()).filter(|&n| n != 0),
        memory: c.memory(),
    }
}

/// ECS answers a task definition it does not know with a ClientException ("Unable to describe
/// task definition."), not with a dedicated error.
fn is_unknown_task_definition<R>(err: &SdkError<DescribeTaskDefinitionError, R>) -> bool {
    let Some(e) = err.as_service_error() else {
        return false;
    };
    let client_error =
        matches!(e, DescribeTaskDefinitionError::ClientException(_)) || e.code() == Some("ClientException");
    let message = e.message().unwrap_or_default().to_ascii_lowercase();
    client_error
        && [
            "unable to describe task definition",
            "not found",
            "does not exist",
        ]
        .iter()
        .any(|m| message.contains(m))
}

fn not_found(op: &str, service: &EcsService, reason: &str) -> PortError {
    PortError::new(op, format!("service {service}: {reason}"), false).with_code("ServiceNotFoundException")
}

/// Reads and changes ECS services.
#[derive(Debug, Clone)]
pub struct EcsServiceControl {
    client: aws_sdk_ecs::Client,
}

impl EcsServiceControl {
    pub fn new(client: aws_sdk_ecs::Client) -> EcsServiceControl {
        EcsServiceControl { client }
    }
}

impl ServiceControl for EcsServiceControl {
    async fn describe(&self, service: &EcsService) -> Result<ServiceState, PortError> {
        const OP: &str = "ECS DescribeServices";
        let out = self
            .client
            .describe_services()
            .cluster(&service.cluster)
            .services(&service.service)
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(|e| port_error(OP, &e))?;
        // ECS reports an unknown service as a failure, not an error; a deleted one as INACTIVE.
        if let Some(f) = out.failures().first() {
            return Err(not_found(OP, service, f.reason().unwrap_or("MISSING")));
        }
        match out.services().first() {
            Some(s) if s.status() != Some("INACTIVE") => Ok(state(service, s)),
            Some(_) => Err(not_found(OP, service, "INACTIVE")),
            None => Err(not_found(OP, service, "MISSING")),
        }
    }

    async fn task_definitions(&self, family: &str) -> Result<Vec<String>, PortError> {
        const OP: &str = "ECS ListTaskDefinitions";
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_task_definitions()
                .family_prefix(family)
                .status(TaskDefinitionStatus::Active)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| port_error(OP, &e))?;
            // The prefix also matches longer families (`api` matches `api-worker`).
            out.extend(
                page.task_definition_arns()
                    .iter()
                    .filter(|arn| family_of(arn) == family)
                    .map(|arn| family_revision(arn).to_string()),
            );
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// `Ok(None)` for a name ECS does not know (never registered, or deleted); an INACTIVE
    /// (deregistered) revision is still known and returned.
    async fn task_definition(&self, name: &str) -> Result<Option<TaskDefinition>, PortError> {
        const OP: &str = "ECS DescribeTaskDefinition";
        if name.trim().is_empty() {
            return Err(PortError::new(OP, "the task definition name is empty", false)
                .with_code("InvalidParameterException"));
        }
        // ECS numbers revisions from 1; anything else after the family's `:` is a malformed
        // name, not an unknown one (and moto answers it with a 500).
        if let Some((_, rev)) = family_revision(name).split_once(':') {
            if rev.parse::<u32>().map_or(true, |r| r == 0) {
                return Err(PortError::new(
                    OP,
                    format!(
                        "the task definition {name:?} has no valid revision ({rev:?} is not a number from 1)"
                    ),
                    false,
                )
                .with_code("InvalidParameterException"));
            }
        }
        match self
            .client
            .describe_task_definition()
            .task_definition(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.task_definition().map(|td| task_definition_of(td, name))),
            Err(e) if is_unknown_task_definition(&e) => Ok(None),
            Err(e) => Err(port_error(OP, &e)),
        }
    }

    /// The returned state is UpdateService's answer: it carries no tags (ECS returns them only
    /// to DescribeServices with `include`).
    async fn update(&self, service: &EcsService, change: &ServiceUpdate) -> Result<ServiceState, PortError> {
        const OP: &str = "ECS UpdateService";
        let mut req = self
            .client
            .update_service()
            .cluster(&service.cluster)
            .service(&service.service)
            .set_task_definition(change.task_definition.clone())
            .set_desired_count(change.desired);
        if change.force_new_deployment {
            req = req.force_new_deployment(true);
        }
        let out = req.send().await.map_err(|e| port_error(OP, &e))?;
        out.service()
            .map(|s| state(service, s))
            .ok_or_else(|| not_found(OP, service, "UpdateService returned no service"))
    }
}

#[cfg(test)]
mod tests;
