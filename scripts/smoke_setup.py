"""Creates what the functions need on a local moto server, for scripts/smoke.sh and
scripts/bench-functions.sh: the table (from infra/template.yaml, so there is one definition of its
keys and indexes), the severity topics, the bus, the ECS service and log group of the sample alarm.

    python scripts/smoke_setup.py ENDPOINT_URL ENV_FILE

Writes the functions' environment (TABLE_NAME=..., one per line) to ENV_FILE. Also:

    python scripts/smoke_setup.py --incident-ids ENDPOINT_URL TABLE   prints open incident ids
"""
import os
import sys
import time
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


class _CfnLoader(yaml.SafeLoader):
    """Reads a CloudFormation template, keeping intrinsic functions as plain values."""


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def table_properties():
    template = yaml.load((ROOT / "infra" / "template.yaml").read_text(), Loader=_CfnLoader)
    return template["Resources"]["Table"]["Properties"]


def client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def setup(endpoint, env_file):
    suffix = str(int(time.time()))
    props = table_properties()
    ddb = client("dynamodb", endpoint)
    table = f"firebreak-smoke-{suffix}"
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        BillingMode=props["BillingMode"],
    )
    ttl = props["TimeToLiveSpecification"]
    ddb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
    )

    sns = client("sns", endpoint)
    topics = {f"TOPIC_SEV{n}_ARN": sns.create_topic(Name=f"firebreak-smoke-sev{n}")["TopicArn"] for n in range(1, 5)}

    events = client("events", endpoint)
    bus = f"firebreak-smoke-{suffix}"
    events.create_event_bus(Name=bus)

    # The sample alarm's service (events/pipeline/*.json: prod/articles-api), for diagnose and
    # remediate to describe.
    ecs = client("ecs", endpoint)
    ecs.create_cluster(clusterName="prod")
    for rev in (1, 2):
        ecs.register_task_definition(
            family="articles-api",
            containerDefinitions=[{"name": "app", "image": f"articles-api:{rev}", "memory": 512}],
        )
    ecs.create_service(
        cluster="prod",
        serviceName="articles-api",
        taskDefinition="articles-api:2",
        desiredCount=2,
        tags=[{"key": "firebreak:remediate", "value": "true"}],
    )

    logs = client("logs", endpoint)
    group = "/ecs/articles-api"
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName="app/1")
    # The seed incident's root cause, a few minutes before the sample alarm (2026-03-14T14:35Z),
    # inside the high-error-rate runbook's lookback.
    alarm_ms = 1773498900000
    logs.put_log_events(
        logGroupName=group,
        logStreamName="app/1",
        logEvents=[
            {
                "timestamp": alarm_ms - 300_000 + i * 1000,
                "message": "ERROR DatabaseError: connection pool exhausted, max_connections=10",
            }
            for i in range(5)
        ],
    )

    env = {
        "TABLE_NAME": table,
        "EVENT_BUS_NAME": bus,
        **topics,
        "REMEDIATION_MODE": os.environ.get("SMOKE_REMEDIATION_MODE", "dry-run"),
        "REMEDIATION_ALLOW": "prod/articles-api",
        "REMEDIATION_ALLOW_TAG": "firebreak:remediate",
        "REMEDIATION_COOLDOWN_S": "900",
        "REMEDIATION_MAX_ACTIONS": "3",
        "REOPEN_WINDOW_S": "1800",
        "DIAGNOSIS_BACKEND": "local",
        "DIAGNOSIS_DEADLINE_S": "20",
        "METRICS_NAMESPACE": "Firebreak",
    }
    Path(env_file).write_text("".join(f"{k}={v}\n" for k, v in env.items()))


def incident_ids(endpoint, table):
    ddb = client("dynamodb", endpoint)
    ids = set()
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            pk = item.get("pk", {}).get("S", "")
            if pk.startswith("INC#"):
                ids.add(pk[len("INC#"):])
    print("\n".join(sorted(ids)))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--incident-ids":
        incident_ids(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3:
        setup(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)
