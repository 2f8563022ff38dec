//! Harness for integration tests: starts moto's server on a free loopback port, builds SDK config
//! that can only reach it (dummy credentials, explicit region and endpoint), and makes the
//! resources the adapters need, each under a unique name so tests run in parallel on one server.
//!
//! One server serves every test of a process that overlaps with another; the last test to drop
//! its [`Moto`] handle stops it (nextest runs each test in its own process, so each test has its
//! own server there). The server is started through a small shell watchdog that stops it when our
//! end of its stdin closes, so it dies with the test process even when that process is killed.

use anyhow::{bail, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, Utc};
use firebreak_core::model::incident::{Incident, IncidentId};
use firebreak_core::model::severity::Severity;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A running moto server. Dropping the last handle stops it.
pub struct Moto {
    endpoint: String,
    child: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
}

impl std::fmt::Debug for Moto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moto").field("endpoint", &self.endpoint).finish()
    }
}

static SERVER: Mutex<Weak<Moto>> = Mutex::new(Weak::new());

/// The process's moto server, started on first use.
///
/// # Errors
/// When `.venv` is missing (run `make venv`) or the server does not answer.
pub fn moto() -> Result<Arc<Moto>> {
    let mut slot = SERVER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(m) = slot.upgrade() {
        return Ok(m);
    }
    let m = Arc::new(Moto::start()?);
    *slot = Arc::downgrade(&m);
    Ok(m)
}

impl Moto {
    fn start() -> Result<Moto> {
        // moto's server through tests/moto/server.py, which makes each DynamoDB request atomic
        // as DynamoDB is (plain moto races concurrent transactions: see that file), unless
        // FIREBREAK_MOTO_SERVER names another server binary to run instead.
        let (bin, launcher) = match std::env::var_os("FIREBREAK_MOTO_SERVER") {
            Some(bin) => (PathBuf::from(bin), None),
            None => (
                workspace_root().join(".venv/bin/python"),
                Some(workspace_root().join("tests/moto/server.py")),
            ),
        };
        if !bin.exists() {
            bail!(
                "{} is missing: run `make venv` (scripts/venv.sh) to create the Python venv with moto's server",
                bin.display()
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // The watchdog: run moto, wait for our end of stdin to close (drop, or this process
        // dying), then stop moto.
        let script = r#""$0" "$@" >/dev/null 2>&1 & pid=$!; trap 'kill $pid 2>/dev/null; exit 0' TERM; cat >/dev/null; kill $pid 2>/dev/null; wait $pid"#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&bin)
            .args(launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdin = child.stdin.take();
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
        };
        moto.wait_ready(port)?;
        Ok(moto)
    }

    fn wait_ready(&self, port: u16) -> Result<()> {
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.lock_child().try_wait()? {
                bail!("moto_server exited with {status} before answering on port {port}");
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let req = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
                let mut buf = [0u8; 12];
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && buf.starts_with(b"HTTP/1.")
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("moto_server did not answer on port {port} within 30s")
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK config that reaches only this server: dummy static credentials, explicit region.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "firebreak-tests",
            ))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Closing stdin lets the watchdog stop moto and exit.
        drop(
            self.stdin
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let mut child = self.lock_child();
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A name no other test (or earlier run on the same server) uses: `fb-<test>-<nanos>-<n>`.
pub fn unique(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() % 1_000_000_000_000;
    let t: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(30)
        .collect();
    format!("fb-{t}-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Counts the HTTP requests a client sends (retries included), by `service.operation`.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<Vec<String>>>);

impl CallCounter {
    pub fn calls(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn reset(&self) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg.load::<Metadata>().map_or_else(
            || "unknown".to_string(),
            |m| format!("{}.{}", m.service(), m.name()),
        );
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(op);
        Ok(())
    }
}

/// A fresh table made from `firebreak_aws::table::table_spec`.
pub async fn table(cfg: &SdkConfig, test: &str) -> Result<(aws_sdk_dynamodb::Client, String)> {
    let client = aws_sdk_dynamodb::Client::new(cfg);
    let name = unique(test);
    firebreak_aws::table::create_table(&client, &name).await?;
    Ok((client, name))
}

/// An SQS queue that tests read deliveries from.
#[derive(Debug, Clone)]
pub struct Queue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    pub arn: String,
}

impl Queue {
    pub async fn create(cfg: &SdkConfig, test: &str) -> Result<Queue> {
        let client = aws_sdk_sqs::Client::new(cfg);
        let url = client
            .create_queue()
            .queue_name(unique(test))
            .send()
            .await?
            .queue_url
            .context("CreateQueue returned no QueueUrl")?;
        let attrs = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .context("queue has no QueueArn")?;
        Ok(Queue { client, url, arn })
    }

    /// Message bodies, waiting up to `timeout` for `n` of them.
    pub async fn receive(&self, n: usize, timeout: Duration) -> Result<Vec<String>> {
        let began = Instant::now();
        let mut out = Vec::new();
        while out.len() < n && began.elapsed() < timeout {
            let got = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            for m in got.messages() {
                out.push(m.body().unwrap_or_default().to_string());
                if let Some(h) = m.receipt_handle() {
                    self.client
                        .delete_message()
                        .queue_url(&self.url)
                        .receipt_handle(h)
                        .send()
                        .await?;
                }
            }
        }
        Ok(out)
    }
}

/// An SNS topic with an SQS subscription (raw message delivery off: bodies are SNS envelopes).
pub async fn topic_to_queue(cfg: &SdkConfig, test: &str) -> Result<(String, Queue)> {
    let queue = Queue::create(cfg, test).await?;
    let sns = aws_sdk_sns::Client::new(cfg);
    let topic = sns
        .create_topic()
        .name(unique(test))
        .send()
        .await?
        .topic_arn
        .context("CreateTopic returned no TopicArn")?;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue.arn)
        .attributes("RawMessageDelivery", "false")
        .send()
        .await?;
    Ok((topic, queue))
}

/// A custom event bus with a rule sending every `firebreak` event to an SQS queue.
pub async fn bus_to_queue(cfg: &SdkConfig, test: &str) -> Result<(String, Queue)> {
    let queue = Queue::create(cfg, test).await?;
    let eb = aws_sdk_eventbridge::Client::new(cfg);
    let bus = unique(test);
    eb.create_event_bus().name(&bus).send().await?;
    let rule = unique(test);
    eb.put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["firebreak"]}"#)
        .send()
        .await?;
    eb.put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue.arn)
                .build()?,
        )
        .send()
        .await?;
    Ok((bus, queue))
}

/// An ECS cluster with a service running revision `revisions` of a family that has that many.
#[derive(Debug, Clone)]
pub struct EcsFixture {
    pub cluster: String,
    pub service: String,
    pub family: String,
}

pub async fn ecs_service(cfg: &SdkConfig, test: &str, revisions: u32, desired: i32) -> Result<EcsFixture> {
    let ecs = aws_sdk_ecs::Client::new(cfg);
    let cluster = unique(test);
    let family = unique(test);
    let service = unique(test);
    ecs.create_cluster().cluster_name(&cluster).send().await?;
    for r in 1..=revisions {
        ecs.register_task_definition()
            .family(&family)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("app")
                    .image(format!("example/app:{r}"))
                    .memory(256)
                    .build(),
            )
            .send()
            .await?;
    }
    ecs.create_service()
        .cluster(&cluster)
        .service_name(&service)
        .task_definition(format!("{family}:{revisions}"))
        .desired_count(desired)
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("team")
                .value("web")
                .build(),
        )
        .send()
        .await?;
    Ok(EcsFixture {
        cluster,
        service,
        family,
    })
}

/// A log group with one stream holding `events` (epoch ms, message); returns the group name.
pub async fn log_group(cfg: &SdkConfig, test: &str, events: &[(i64, &str)]) -> Result<String> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(cfg);
    let group = format!("/firebreak/{}", unique(test));
    logs.create_log_group().log_group_name(&group).send().await?;
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("app/1")
        .send()
        .await?;
    let mut req = logs
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name("app/1");
    for (ts, msg) in events {
        req = req.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(*ts)
                .message(*msg)
                .build()?,
        );
    }
    req.send().await?;
    Ok(group)
}

/// A plain open incident of `service` opened at `opened_at`.
pub fn incident(id: &str, service: &str, opened_at: DateTime<Utc>) -> Incident {
    Incident::open(
        IncidentId(id.into()),
        service,
        Severity::Sev2,
        format!("{service} is failing"),
        opened_at,
        opened_at,
    )
}
