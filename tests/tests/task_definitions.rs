//! `EcsServiceControl::task_definition` against moto's ECS: two revisions registered with
//! RegisterTaskDefinition are read back through DescribeTaskDefinition and mapped (images,
//! environment, secret names but never their `valueFrom`, CPU and memory, command), and a name
//! ECS does not know is `Ok(None)`.

use anyhow::{Context, Result};
use aws_sdk_ecs::types::{ContainerDefinition as SdkContainer, KeyValuePair, Secret};
use firebreak_aws::EcsServiceControl;
use firebreak_core::ports::{ContainerDefinition, ServiceControl, TaskDefinition};
use firebreak_integration::{moto, unique, ACCOUNT, REGION};
use std::collections::BTreeMap;

fn secret_arn(name: &str) -> String {
    format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/{name}-AbCdEf")
}

fn param_arn(name: &str) -> String {
    format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/prod/{name}")
}

/// Registers `family` revision `pool` (the pool size differs between revisions, as a change
/// that a deployment would carry).
async fn register(ecs: &aws_sdk_ecs::Client, family: &str, image_tag: &str, pool: &str) -> Result<String> {
    let app = SdkContainer::builder()
        .name("app")
        .image(format!("example/articles-api:{image_tag}"))
        .cpu(256)
        .memory(512)
        .environment(KeyValuePair::builder().name("POOL_SIZE").value(pool).build())
        .environment(KeyValuePair::builder().name("LOG_LEVEL").value("info").build())
        .secrets(
            Secret::builder()
                .name("DB_PASSWORD")
                .value_from(secret_arn("db-password"))
                .build()?,
        )
        .secrets(
            Secret::builder()
                .name("API_KEY")
                .value_from(param_arn("api-key"))
                .build()?,
        )
        .command("serve")
        .command("--port=8080")
        .entry_point("/bin/app")
        .build();
    let sidecar = SdkContainer::builder()
        .name("log-router")
        .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
        .memory(64)
        .build();
    let out = ecs
        .register_task_definition()
        .family(family)
        .cpu("512")
        .memory("1024")
        .container_definitions(app)
        .container_definitions(sidecar)
        .send()
        .await?;
    out.task_definition()
        .and_then(|td| td.task_definition_arn())
        .map(str::to_string)
        .context("RegisterTaskDefinition returned no ARN")
}

fn expected(family: &str, revision: u32, image_tag: &str, pool: &str) -> TaskDefinition {
    TaskDefinition {
        name: format!("{family}:{revision}"),
        cpu: Some("512".into()),
        memory: Some("1024".into()),
        containers: vec![
            ContainerDefinition {
                name: "app".into(),
                image: format!("example/articles-api:{image_tag}"),
                environment: BTreeMap::from([
                    ("LOG_LEVEL".to_string(), "info".to_string()),
                    ("POOL_SIZE".to_string(), pool.to_string()),
                ]),
                secrets: vec!["DB_PASSWORD".into(), "API_KEY".into()],
                command: vec!["serve".into(), "--port=8080".into()],
                entry_point: vec!["/bin/app".into()],
                cpu: Some(256),
                memory: Some(512),
            },
            ContainerDefinition {
                name: "log-router".into(),
                image: "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable".into(),
                // moto, as ECS, reports an unset container cpu as 0: not set
                cpu: None,
                memory: Some(64),
                ..ContainerDefinition::default()
            },
        ],
    }
}

#[tokio::test]
async fn two_registered_revisions_are_read_back_and_mapped() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let sdk = aws_sdk_ecs::Client::new(&cfg);
    let family = unique("td");
    let arn1 = register(&sdk, &family, "1.4.1", "10").await?;
    let arn2 = register(&sdk, &family, "1.4.2", "40").await?;
    let ecs = EcsServiceControl::new(sdk);

    let first = ecs
        .task_definition(&format!("{family}:1"))
        .await?
        .context("revision 1 is not found")?;
    assert_eq!(first, expected(&family, 1, "1.4.1", "10"));
    let second = ecs
        .task_definition(&format!("{family}:2"))
        .await?
        .context("revision 2 is not found")?;
    assert_eq!(second, expected(&family, 2, "1.4.2", "40"));

    // by ARN: the same revision, named family:revision
    assert_eq!(ecs.task_definition(&arn1).await?.as_ref(), Some(&first));
    assert_eq!(ecs.task_definition(&arn2).await?.as_ref(), Some(&second));
    // by family alone: the latest revision
    assert_eq!(ecs.task_definition(&family).await?.as_ref(), Some(&second));

    // what a diagnosis stores holds the secrets' names, never where their values are
    for td in [&first, &second] {
        let json = serde_json::to_string(td)?;
        assert!(!json.contains(&secret_arn("db-password")), "{json}");
        assert!(!json.contains(&param_arn("api-key")), "{json}");
        assert!(!json.contains("arn:aws:"), "{json}");
    }
    Ok(())
}

#[tokio::test]
async fn a_task_definition_ecs_does_not_know_is_none() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let sdk = aws_sdk_ecs::Client::new(&cfg);
    let family = unique("td-known");
    register(&sdk, &family, "1.0.0", "10").await?;
    let ecs = EcsServiceControl::new(sdk);

    let never = unique("td-never");
    assert_eq!(ecs.task_definition(&format!("{never}:1")).await?, None);
    assert_eq!(ecs.task_definition(&never).await?, None);
    assert_eq!(
        ecs.task_definition(&format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{never}:3"
        ))
        .await?,
        None
    );
    // a revision never registered of a family that exists
    assert_eq!(ecs.task_definition(&format!("{family}:7")).await?, None);
    // and the family's one revision is still there; deregistered (INACTIVE), ECS still
    // describes it, so it is still known
    assert!(ecs.task_definition(&format!("{family}:1")).await?.is_some());
    aws_sdk_ecs::Client::new(&cfg)
        .deregister_task_definition()
        .task_definition(format!("{family}:1"))
        .send()
        .await?;
    let inactive = ecs
        .task_definition(&format!("{family}:1"))
        .await?
        .context("a deregistered revision is no longer described")?;
    assert_eq!(inactive.name, format!("{family}:1"));
    Ok(())
}
