#!/usr/bin/env python3
"""Writes the drills' logs (events/scenarios/*/logs.jsonl) and alarm events, deterministically.

The logs reproduce the seed's reference incident (traffic doubles at 14:30, the database
connection pool of articles-api runs out at 14:32) and the other recorded drills. Run it after
changing the shapes below; the files are committed so drills need nothing but the repo.
"""
import hashlib
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "events" / "scenarios"
GROUP = "/ecs/articles-api"
TASKS = ["3f9c1a2b", "8d4e5f6a", "1b2c3d4e", "9e8f7a6b"]


def ts(t):
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write(name, events):
    events.sort(key=lambda e: e["timestamp"])
    path = ROOT / name / "logs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")
    print(f"{path}: {len(events)} events", file=sys.stderr)


def event(t, msg, task):
    return {"group": GROUP, "stream": f"ecs/articles-api/{task}", "timestamp": ts(t), "message": msg}


ALB = {"LoadBalancer": "app/prod-alb/50dc6c495c0c9188", "TargetGroup": "targetgroup/articles-api/73e2d6bc24d8a067"}
SVC = {"ClusterName": "prod", "ServiceName": "articles-api"}


def write_metrics(name, points):
    """One CloudWatch datapoint per line, as a drill's `metrics:` file holds them."""
    path = ROOT / name / "metrics.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for p in sorted(points, key=lambda p: (p["timestamp"], p["namespace"], p["name"])):
            f.write(json.dumps(p) + "\n")
    print(f"{path}: {len(points)} datapoints", file=sys.stderr)


def service_metrics(seed_, start, end, requests, cpu, tasks):
    """Per minute from start to end: the ALB's RequestCount (Sum), the service's CPU (Average)
    and running tasks (Container Insights); each argument a function of the minute."""
    rnd = random.Random(seed_)
    out = []
    t = start
    while t < end:
        stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append({"namespace": "AWS/ApplicationELB", "name": "RequestCount", "dimensions": ALB, "timestamp": stamp,
                    "value": round(requests(t) * rnd.uniform(0.97, 1.03))})
        out.append({"namespace": "AWS/ECS", "name": "CPUUtilization", "dimensions": SVC, "timestamp": stamp,
                    "value": round(cpu(t) + rnd.uniform(-1.5, 1.5), 1)})
        out.append({"namespace": "ECS/ContainerInsights", "name": "RunningTaskCount", "dimensions": SVC, "timestamp": stamp,
                    "value": tasks(t)})
        t += timedelta(minutes=1)
    return out


def seed_metrics():
    """The seed's step 3: CPU and task count normal, request rate doubled at 14:30; for the seed
    and the drills that replay its incident."""
    at = lambda h, m: datetime(2026, 3, 14, h, m, tzinfo=timezone.utc)
    points = service_metrics(
        1431, at(13, 20), at(15, 5),
        requests=lambda t: 2400 if t >= at(14, 30) else 1200,
        cpu=lambda t: 41 if t >= at(14, 30) else 39,
        tasks=lambda t: 4)
    for name in ["seed-connection-pool", "authenticated-approval", "forged-recovery", "reopen-cycle"]:
        write_metrics(name, points)


def pool_minute(rnd, t, doubled, exhausted, out):
    """One minute of articles-api's logs: 20 requests (40 when traffic doubled), each taking a
    database connection; once the pool is exhausted 15% of them fail with its error."""
    for i in range(40 if doubled else 20):
        at = t + timedelta(milliseconds=rnd.randrange(60000))
        task = TASKS[i % len(TASKS)]
        in_use = min(10, rnd.randrange(3, 8) + (4 if doubled else 0))
        out.append(event(at, f"INFO acquired database connection pool=articles in_use={in_use} max_connections=10", task))
        article = rnd.randrange(1, 5000)
        if exhausted and rnd.random() < 0.15:
            out.append(event(at + timedelta(milliseconds=30), "ERROR DatabaseError: connection pool exhausted, max_connections=10 path=/articles status=500", task))
            out.append(event(at + timedelta(milliseconds=31), f'{{"level":"error","method":"GET","path":"/articles/{article}","status":500,"latency_ms":{rnd.randrange(2900, 3100)}}}', task))
        else:
            latency = rnd.randrange(20, 90) + (rnd.randrange(100, 400) if doubled else 0)
            out.append(event(at + timedelta(milliseconds=latency), f'{{"level":"info","method":"GET","path":"/articles/{article}","status":200,"latency_ms":{latency}}}', task))


def pool_traffic(name, doubled_at, exhausted_at, start, end, seed_):
    """The seed's shape on another day: traffic doubles, then the pool runs out."""
    rnd = random.Random(seed_)
    out = []
    t = start
    while t < end:
        pool_minute(rnd, t, t >= doubled_at, t >= exhausted_at, out)
        t += timedelta(minutes=1)
    write(name, out)


def logs_begin_late():
    """The logs begin at 08:30, 45 minutes before the alarm; traffic doubles at 09:10."""
    at = lambda h, m: datetime(2027, 1, 12, h, m, tzinfo=timezone.utc)
    pool_traffic("logs-begin-late", at(9, 10), at(9, 12), at(8, 30), at(9, 16), 910)


def deploy_or_traffic():
    """A deployment at 14:15 and traffic doubling at 14:30 before the pool runs out: the logs
    cannot tell which, and no metric was read."""
    at = lambda h, m: datetime(2027, 2, 3, h, m, tzinfo=timezone.utc)
    pool_traffic("deploy-or-traffic", at(14, 30), at(14, 32), at(13, 30), at(14, 36), 1415)


def env_change():
    """articles-api:43, deployed at 11:20, sets DB_POOL_SIZE=2: the pool runs out from 11:21
    with no more traffic than usual."""
    rnd = random.Random(1120)
    out = []
    at = lambda h, m: datetime(2027, 3, 9, h, m, tzinfo=timezone.utc)
    start, end, deployed = at(10, 25), at(11, 31), at(11, 20)
    out.append(event(deployed, "INFO starting articles-api version=43 task_definition=articles-api:43 db_pool_size=2", TASKS[0]))
    t = start
    while t < end:
        for i in range(20):
            stamp = t + timedelta(milliseconds=rnd.randrange(60000))
            task = TASKS[i % len(TASKS)]
            small = t >= deployed + timedelta(minutes=1)
            out.append(event(stamp, f"INFO acquired database connection pool=articles in_use={rnd.randrange(1, 3) if small else rnd.randrange(2, 7)} max_connections={2 if small else 10}", task))
            article = rnd.randrange(1, 5000)
            if small and rnd.random() < 0.3:
                out.append(event(stamp + timedelta(milliseconds=30), "ERROR DatabaseError: connection pool exhausted, max_connections=2 path=/articles status=500", task))
                out.append(event(stamp + timedelta(milliseconds=31), f'{{"level":"error","method":"GET","path":"/articles/{article}","status":500,"latency_ms":{rnd.randrange(900, 1100)}}}', task))
            else:
                latency = rnd.randrange(20, 90)
                out.append(event(stamp + timedelta(milliseconds=latency), f'{{"level":"info","method":"GET","path":"/articles/{article}","status":200,"latency_ms":{latency}}}', task))
        t += timedelta(minutes=1)
    write("deployment-env-change", out)
    write_metrics("deployment-env-change", service_metrics(
        1121, at(10, 15), at(11, 50), requests=lambda t: 1200, cpu=lambda t: 38, tasks=lambda t: 4))


def seed():
    """Traffic doubles at 14:30; pool of 10 connections exhausted from 14:32."""
    at = lambda h, m: datetime(2026, 3, 14, h, m, tzinfo=timezone.utc)
    pool_traffic("seed-connection-pool", at(14, 30), at(14, 32), at(13, 30), at(14, 36), 1430)


def bad_deployment():
    """articles-api:42 deployed at 14:20 renders some articles with a TypeError from 14:22."""
    rnd = random.Random(1420)
    out = []
    start = datetime(2026, 3, 14, 13, 25, tzinfo=timezone.utc)
    end = datetime(2026, 3, 14, 14, 31, tzinfo=timezone.utc)
    deployed = datetime(2026, 3, 14, 14, 20, tzinfo=timezone.utc)
    broken = datetime(2026, 3, 14, 14, 22, tzinfo=timezone.utc)
    out.append(event(deployed, "INFO starting articles-api version=42 task_definition=articles-api:42", TASKS[0]))
    t = start
    while t < end:
        for i in range(20):
            at = t + timedelta(milliseconds=rnd.randrange(60000))
            task = TASKS[i % len(TASKS)]
            out.append(event(at, f"INFO acquired database connection pool=articles in_use={rnd.randrange(2, 7)} max_connections=10", task))
            article = rnd.randrange(1, 5000)
            if t >= broken and rnd.random() < 0.3:
                out.append(event(at + timedelta(milliseconds=5), f"ERROR TypeError: Cannot read properties of undefined (reading 'slug') at renderArticle (article.js:88) path=/articles/{article} status=500", task))
                out.append(event(at + timedelta(milliseconds=6), f'{{"level":"error","method":"GET","path":"/articles/{article}","status":500,"latency_ms":12}}', task))
            else:
                latency = rnd.randrange(20, 90)
                out.append(event(at + timedelta(milliseconds=latency), f'{{"level":"info","method":"GET","path":"/articles/{article}","status":200,"latency_ms":{latency}}}', task))
        t += timedelta(minutes=1)
    write("bad-deployment", out)


def health_checks():
    """Every task fails its health check from 09:58: the database host is unreachable."""
    rnd = random.Random(958)
    out = []
    start = datetime(2026, 4, 2, 8, 55, tzinfo=timezone.utc)
    end = datetime(2026, 4, 2, 10, 1, tzinfo=timezone.utc)
    down = datetime(2026, 4, 2, 9, 58, tzinfo=timezone.utc)
    t = start
    while t < end:
        for i in range(12):
            at = t + timedelta(milliseconds=rnd.randrange(60000))
            task = TASKS[i % len(TASKS)]
            if t >= down:
                out.append(event(at, "ERROR health check failed: GET /health returned 503 (database unreachable: connect ETIMEDOUT 10.0.3.12:5432)", task))
                out.append(event(at + timedelta(milliseconds=2), "ERROR Exception in request handler: ConnectionTimeoutError: connect ETIMEDOUT 10.0.3.12:5432", task))
            else:
                out.append(event(at, "INFO health check passed: GET /health 200", task))
        t += timedelta(minutes=1)
    write("all-health-checks-failing", out)


def cache():
    """The cache's hit rate falls; requests are slower but succeed."""
    rnd = random.Random(1100)
    out = []
    start = datetime(2026, 5, 6, 9, 55, tzinfo=timezone.utc)
    end = datetime(2026, 5, 6, 11, 6, tzinfo=timezone.utc)
    degraded = datetime(2026, 5, 6, 10, 58, tzinfo=timezone.utc)
    t = start
    while t < end:
        for i in range(10):
            at = t + timedelta(milliseconds=rnd.randrange(60000))
            task = TASKS[i % len(TASKS)]
            if t >= degraded and rnd.random() < 0.6:
                out.append(event(at, "WARN cache miss for article, falling back to database (redis latency 800ms)", task))
                latency = rnd.randrange(300, 900)
            else:
                latency = rnd.randrange(20, 80)
            out.append(event(at + timedelta(milliseconds=latency), f'{{"level":"info","method":"GET","path":"/articles/{rnd.randrange(1, 5000)}","status":200,"latency_ms":{latency}}}', task))
        t += timedelta(minutes=1)
    write("degraded-cache", out)


ACCOUNT = "123456789012"
REGION = "us-east-1"


def arn(name):
    return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"


def cw_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def reason(state, value, threshold, op="greater than"):
    if state == "ALARM":
        return f"Threshold Crossed: 1 out of the last 1 datapoints [{value}] was {op} the threshold ({threshold})."
    if state == "OK":
        return f"Threshold Crossed: 1 out of the last 1 datapoints [{value}] was not {op} the threshold ({threshold})."
    return "Insufficient Data: 1 datapoint was unknown."


def eventbridge(name, state, prev, t, namespace, metric, dims, tags=None, value=0, threshold=0, op="greater than"):
    detail = {
        "alarmName": name,
        "state": {"value": state, "reason": reason(state, value, threshold, op), "timestamp": cw_time(t)},
        "previousState": {"value": prev, "reason": "previous evaluation", "timestamp": cw_time(t - timedelta(minutes=30))},
        "configuration": {
            "description": f"{metric} on {name}",
            "metrics": [{"id": "m1", "metricStat": {"metric": {"namespace": namespace, "name": metric, "dimensions": dims}, "period": 60, "stat": "Sum"}, "returnData": True}],
        },
    }
    if tags is not None:
        detail["alarmTags"] = tags
        detail["alarmTagsStatus"] = "Succeeded"
    return {
        "version": "0",
        "id": hashlib.sha1(f"{name}|{state}|{t.isoformat()}".encode()).hexdigest()[:8] + "-0000-4000-8000-" + hashlib.sha1(f"{name}{state}".encode()).hexdigest()[:12],
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [arn(name)],
        "detail": detail,
    }


def sns(name, state, prev, t, namespace, metric, dims, value=0, threshold=0, op="greater than", comparison="GreaterThanThreshold"):
    message = {
        "AlarmName": name,
        "AlarmDescription": f"{metric} on {name}",
        "AWSAccountId": ACCOUNT,
        "NewStateValue": state,
        "NewStateReason": reason(state, value, threshold, op),
        "StateChangeTime": cw_time(t),
        "Region": "US East (N. Virginia)",
        "AlarmArn": arn(name),
        "OldStateValue": prev,
        "Trigger": {
            "MetricName": metric, "Namespace": namespace, "StatisticType": "Statistic", "Statistic": "MINIMUM",
            "Dimensions": [{"name": k, "value": v} for k, v in dims.items()], "Period": 86400, "EvaluationPeriods": 1,
            "ComparisonOperator": comparison, "Threshold": threshold, "TreatMissingData": "missing",
        },
    }
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                         "EventSubscriptionArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:firebreak-alarms:drill",
                         "Sns": {"Type": "Notification", "MessageId": f"drill-{name}-{state}-{t.strftime('%H%M')}",
                                 "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:firebreak-alarms",
                                 "Subject": f'{state}: "{name}" in US East (N. Virginia)',
                                 "Message": json.dumps(message), "Timestamp": ts(t + timedelta(seconds=1)),
                                 "MessageAttributes": {}}}]}


def direct(name, state, prev, t, namespace, metric, dims, value=0, threshold=0, op="less than"):
    return {
        "source": "aws.cloudwatch", "alarmArn": arn(name), "accountId": ACCOUNT, "time": ts(t), "region": REGION,
        "alarmData": {
            "alarmName": name,
            "state": {"value": state, "reason": reason(state, value, threshold, op), "timestamp": ts(t)},
            "previousState": {"value": prev, "reason": "previous evaluation", "timestamp": ts(t - timedelta(minutes=30))},
            "configuration": {"description": f"{metric} on {name}", "metrics": [
                {"id": "m1", "metricStat": {"metric": {"namespace": namespace, "name": metric, "dimensions": dims}, "period": 60, "stat": "Minimum"}, "returnData": True}]},
        },
    }


def put(scenario, file, obj):
    path = ROOT / scenario / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def events():
    d = lambda *a: datetime(*a, tzinfo=timezone.utc)
    ecs = {"ecs-cluster": "prod", "ecs-service": "articles-api"}
    alb = {"LoadBalancer": "app/prod-alb/50dc6c495c0c9188", "TargetGroup": "targetgroup/articles-api/73e2d6bc24d8a067"}
    # The seed: the 5xx alarm arrives by SNS (no tags there), recovers by EventBridge with tags.
    put("seed-connection-pool", "alarm.sns.json", sns("articles-api-5xx-rate", "ALARM", "OK", d(2026, 3, 14, 14, 35), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, 15.0, 5.0))
    put("seed-connection-pool", "ok.eventbridge.json", eventbridge("articles-api-5xx-rate", "OK", "ALARM", d(2026, 3, 14, 15, 0), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 0.4, 5.0))
    # A deploy at 14:20 breaks article rendering.
    put("bad-deployment", "alarm.eventbridge.json", eventbridge("articles-api-5xx-rate", "ALARM", "OK", d(2026, 3, 14, 14, 30), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 42.0, 5.0))
    put("bad-deployment", "ok.eventbridge.json", eventbridge("articles-api-5xx-rate", "OK", "ALARM", d(2026, 3, 14, 14, 45), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 0.0, 5.0))
    # No healthy host: the alarm invokes triage directly (no tags on that path).
    put("all-health-checks-failing", "alarm.lambda.json", direct("articles-api-all-unhealthy", "ALARM", "OK", d(2026, 4, 2, 10, 0), "AWS/ApplicationELB", "HealthyHostCount", alb, 0.0, 1.0))
    put("all-health-checks-failing", "ok.lambda.json", direct("articles-api-all-unhealthy", "OK", "ALARM", d(2026, 4, 2, 10, 14), "AWS/ApplicationELB", "HealthyHostCount", alb, 4.0, 1.0))
    # The cache degrades: slower, not broken.
    cache_tags = {"service": "articles-cache", "team": "content"}
    put("degraded-cache", "alarm.eventbridge.json", eventbridge("articles-cache-hit-rate", "ALARM", "OK", d(2026, 5, 6, 11, 0), "AWS/ElastiCache", "CacheHitRate", {"CacheClusterId": "articles-cache-001"}, cache_tags, 41.0, 80.0, "less than"))
    put("degraded-cache", "ok.eventbridge.json", eventbridge("articles-cache-hit-rate", "OK", "ALARM", d(2026, 5, 6, 11, 40), "AWS/ElastiCache", "CacheHitRate", {"CacheClusterId": "articles-cache-001"}, cache_tags, 93.0, 80.0, "less than"))
    # A certificate 30 days from expiry: a ticket, nobody woken.
    put("certificate-expiry", "alarm.sns.json", sns("articles-api-cert-expiring", "ALARM", "OK", d(2026, 6, 1, 9, 0), "AWS/CertificateManager", "DaysToExpiry", {"CertificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/5e1f0b7a-articles"}, 30.0, 30.0, "less than or equal to", "LessThanOrEqualToThreshold"))
    # A latency alarm that flaps: ALARM, OK, ALARM again 4 minutes later, OK.
    lat = {"ecs-cluster": "prod", "ecs-service": "articles-api"}
    for i, (state, prev, t) in enumerate([("ALARM", "OK", d(2026, 7, 9, 16, 0)), ("OK", "ALARM", d(2026, 7, 9, 16, 5)),
                                          ("ALARM", "OK", d(2026, 7, 9, 16, 9)), ("OK", "ALARM", d(2026, 7, 9, 16, 20))]):
        put("flapping-alarm", f"{i + 1}-{state.lower()}.eventbridge.json", eventbridge("articles-api-p99-latency", state, prev, t, "AWS/ApplicationELB", "TargetResponseTime", alb, lat, 2.4 if state == "ALARM" else 0.3, 1.5))
    # An alarm storm: everything about one service fires within a minute; one of them is an outage.
    storm = [
        ("articles-api-5xx-rate", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
        ("articles-api-p99-latency", "AWS/ApplicationELB", "TargetResponseTime"),
        ("articles-api-cpu-high", "AWS/ECS", "CPUUtilization"),
        ("articles-api-memory-high", "AWS/ECS", "MemoryUtilization"),
        ("articles-api-4xx-rate", "AWS/ApplicationELB", "HTTPCode_Target_4XX_Count"),
        ("articles-api-db-connections", "AWS/RDS", "DatabaseConnections"),
        ("articles-api-request-count", "AWS/ApplicationELB", "RequestCount"),
        ("articles-api-all-unhealthy", "AWS/ApplicationELB", "HealthyHostCount"),
        ("articles-api-queue-depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("articles-api-error-logs", "Firebreak/Logs", "ErrorCount"),
    ]
    for i, (name, ns, metric) in enumerate(storm):
        dims = {"ClusterName": "prod", "ServiceName": "articles-api"} if ns == "AWS/ECS" else alb
        put("alarm-storm", f"alarm-{i + 1:02d}.eventbridge.json", eventbridge(name, "ALARM", "OK", d(2026, 8, 20, 3, 0, 5 * i), ns, metric, dims, ecs, 99.0, 1.0))
        put("alarm-storm", f"ok-{i + 1:02d}.eventbridge.json", eventbridge(name, "OK", "ALARM", d(2026, 8, 20, 3, 40), ns, metric, dims, ecs, 0.0, 1.0))

    # One state change, two channels: the SNS copy (no tags) and the EventBridge copy (tags,
    # naming the service its own way, and a severity) of the same 5xx ALARM, then both copies
    # of its OK. On its own each copy would be another incident.
    both = {"service": "articles", "severity": "SEV1", "team": "articles"}
    t0, t1 = d(2026, 9, 3, 10, 0), d(2026, 9, 3, 10, 30)
    put("two-channel-copies", "alarm.sns.json", sns("articles-api-5xx-rate", "ALARM", "OK", t0, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, 15.0, 5.0))
    put("two-channel-copies", "alarm.eventbridge.json", eventbridge("articles-api-5xx-rate", "ALARM", "OK", t0, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, both, 15.0, 5.0))
    put("two-channel-copies", "ok.eventbridge.json", eventbridge("articles-api-5xx-rate", "OK", "ALARM", t1, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, both, 0.4, 5.0))
    put("two-channel-copies", "ok.sns.json", sns("articles-api-5xx-rate", "OK", "ALARM", t1, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, 0.4, 5.0))

    # An alarm that will not settle: ALARM and OK every minute for half an hour, then quiet.
    # (Each step gives its event the step's time; these two are the templates.)
    put("flapping-held", "alarm.eventbridge.json", eventbridge("articles-api-p99-latency", "ALARM", "OK", d(2026, 10, 6, 2, 0), "AWS/ApplicationELB", "TargetResponseTime", alb, lat, 2.4, 1.5))
    put("flapping-held", "ok.eventbridge.json", eventbridge("articles-api-p99-latency", "OK", "ALARM", d(2026, 10, 6, 2, 1), "AWS/ApplicationELB", "TargetResponseTime", alb, lat, 0.3, 1.5))

    # A late alarm: the latency alarm's ALARM (14:36) reaches Firebreak only at 14:52, after the
    # 5xx alarm's OK resolved the incident. It is news, not a stale copy: reopened and paged.
    t = lambda h, m: d(2026, 11, 4, h, m)
    put("late-alarm", "5xx-alarm.eventbridge.json", eventbridge("articles-api-5xx-rate", "ALARM", "OK", t(14, 35), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 15.0, 5.0))
    put("late-alarm", "5xx-ok.eventbridge.json", eventbridge("articles-api-5xx-rate", "OK", "ALARM", t(14, 45), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 0.4, 5.0))
    put("late-alarm", "latency-alarm.eventbridge.json", eventbridge("articles-api-p99-latency", "ALARM", "OK", t(14, 36), "AWS/ApplicationELB", "TargetResponseTime", alb, ecs, 2.4, 1.5))
    put("late-alarm", "latency-ok.eventbridge.json", eventbridge("articles-api-p99-latency", "OK", "ALARM", t(15, 5), "AWS/ApplicationELB", "TargetResponseTime", alb, ecs, 0.3, 1.5))

    # Two services whose alarms, in the same second, derive the same first incident id (the id
    # shows 32 bits of a hash): the event ids below are found by search (colliding_ids).
    t0 = d(2026, 12, 1, 9, 15)
    checkout = {"ecs-cluster": "prod", "ecs-service": "checkout-api"}
    ida, idb = colliding_ids(t0, "prod/articles-api", "prod/checkout-api")
    a = eventbridge("articles-api-5xx-rate", "ALARM", "OK", t0, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 15.0, 5.0)
    a["id"] = ida
    b = eventbridge("checkout-api-5xx-rate", "ALARM", "OK", t0, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", {"LoadBalancer": "app/prod-alb/50dc6c495c0c9188", "TargetGroup": "targetgroup/checkout-api/0a1b2c3d4e5f6789"}, checkout, 22.0, 5.0)
    b["id"] = idb
    put("colliding-ids", "articles-alarm.eventbridge.json", a)
    put("colliding-ids", "checkout-alarm.eventbridge.json", b)

    # Diagnosis evidence: the logs begin 45 minutes before the alarm; a deployment that changed
    # an environment variable; a deployment and a traffic rise the logs cannot tell apart.
    put("logs-begin-late", "alarm.eventbridge.json", eventbridge("articles-api-5xx-rate", "ALARM", "OK", d(2027, 1, 12, 9, 15), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 15.0, 5.0))
    put("logs-begin-late", "ok.eventbridge.json", eventbridge("articles-api-5xx-rate", "OK", "ALARM", d(2027, 1, 12, 9, 40), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 0.4, 5.0))
    put("deployment-env-change", "alarm.eventbridge.json", eventbridge("articles-api-5xx-rate", "ALARM", "OK", d(2027, 3, 9, 11, 30), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 38.0, 5.0))
    put("deployment-env-change", "ok.eventbridge.json", eventbridge("articles-api-5xx-rate", "OK", "ALARM", d(2027, 3, 9, 11, 45), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 0.0, 5.0))
    pool = {"ClusterName": "prod", "ServiceName": "articles-api"}
    put("deploy-or-traffic", "alarm.eventbridge.json", eventbridge("articles-api-db-pool-exhausted", "ALARM", "OK", d(2027, 2, 3, 14, 35), "Articles", "PoolExhaustedCount", pool, ecs, 12.0, 3.0))
    put("deploy-or-traffic", "ok.eventbridge.json", eventbridge("articles-api-db-pool-exhausted", "OK", "ALARM", d(2027, 2, 3, 15, 5), "Articles", "PoolExhaustedCount", pool, ecs, 0.0, 3.0))

    # Closed loop: the same 5xx alarm, fired and recovered once per episode (each step gives the
    # event its time; these are the templates).
    put("circuit-breaker", "alarm.eventbridge.json", eventbridge("articles-api-5xx-rate", "ALARM", "OK", d(2027, 4, 6, 9, 10), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 15.0, 5.0))
    put("circuit-breaker", "ok.eventbridge.json", eventbridge("articles-api-5xx-rate", "OK", "ALARM", d(2027, 4, 6, 9, 20), "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, ecs, 0.4, 5.0))


def episodes(name, alarms, start, end, seed_):
    """The seed's shape again and again on one day: for each alarm time, traffic doubles 5
    minutes before it and the pool runs out 3 minutes before it, for 10 minutes; quiet between.
    The logs and the request rate (the circuit-breaker and earned-autonomy drills)."""
    rnd = random.Random(seed_)
    hot = lambda t, lead: any(a - timedelta(minutes=lead) <= t < a + timedelta(minutes=6) for a in alarms)
    out = []
    t = start
    while t < end:
        pool_minute(rnd, t, hot(t, 5), hot(t, 3), out)
        t += timedelta(minutes=1)
    write(name, out)
    write_metrics(name, service_metrics(
        seed_ + 1, start, end,
        requests=lambda t: 2400 if hot(t, 5) else 1200,
        cpu=lambda t: 41 if hot(t, 5) else 39,
        tasks=lambda t: 4))


def repeated_episodes():
    """Four episodes 90 minutes apart on 2027-04-06 (09:10, 10:40, 12:10, 13:40)."""
    at = lambda h, m: datetime(2027, 4, 6, h, m, tzinfo=timezone.utc)
    episodes("circuit-breaker", [at(9, 10), at(10, 40), at(12, 10), at(13, 40)], at(8, 0), at(13, 50), 406)


def fnv1a(data):
    h = 0xcbf29ce484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def colliding_ids(t, service_a, service_b):
    """Event ids for a drill's step 0 (service_a) and step 1 (service_b), at the same time, whose
    first candidate incident ids (IncidentId::derive over "<id>#step<n>", 0, the service) are
    equal: a birthday search over the low 32 bits the id shows."""
    seen = {}
    for i in range(1 << 20):
        ea = f"7f1c0a00-0000-4000-8000-{i:012x}"
        seen[fnv1a(f"{ea}#step0".encode() + b"\0" + service_a.encode()) & 0xFFFFFFFF] = ea
        eb = f"9e2d0b00-0000-4000-8000-{i:012x}"
        hb = fnv1a(f"{eb}#step1".encode() + b"\0" + service_b.encode()) & 0xFFFFFFFF
        if hb in seen:
            return seen[hb], eb
    raise SystemExit("no colliding pair")


if __name__ == "__main__":
    events()
    seed()
    seed_metrics()
    logs_begin_late()
    deploy_or_traffic()
    env_change()
    bad_deployment()
    health_checks()
    cache()
    repeated_episodes()
