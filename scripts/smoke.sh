#!/usr/bin/env bash
# Smoke test of the real function bins: moto's server on a free port of 127.0.0.1 stands in for
# AWS, `cargo lambda watch` serves the bins, and each function is invoked with its sample event:
#   triage    events/sns-metric-alarm.json
#   diagnose  events/pipeline/incident-opened.json
#   remediate events/pipeline/diagnosis-completed.json
#   resolve   events/pipeline/alarm-recovered.json
#   sweeper   events/pipeline/sweeper-schedule.json
#   oncall    events/pipeline/incident-opened.json, posting the signed webhook to a local
#             receiver (scripts/smoke_webhook.py) that verifies its signature; the secret is a
#             SecureString in moto's SSM
#   chat      an SQS event of an Acknowledge press (ack:<incident>:0) sent by a responder role
#             created in moto's IAM (its unique id in SenderId): acknowledges the incident
# An invocation passes when `cargo lambda invoke` exits 0 and its answer has no errorType.
# Remediation runs in dry-run (SMOKE_REMEDIATION_MODE). "Remediation Approved" is not invoked: an
# action awaits approval only after the guardrails pass, and they read the alarms' state with
# CloudWatch DescribeAlarms, whose CBOR protocol moto does not serve (DESIGN.md); remediate then
# refuses the plan (an answer, not an error) and an approval has nothing to approve. For the same
# reason resolve cannot verify the recovery: it closes an incident only when CloudWatch reports
# every alarm OK, so against moto its answer is the DescribeAlarms failure (checked as such: any
# other answer, success included, fails the smoke test).
# The pipeline events carry the id of the incident triage opened. Everything started here is
# stopped on exit. Runs offline.
#
# Env: SMOKE_BUILD_TIMEOUT_S (1800: the first debug build of the bins), SMOKE_INVOKE_TIMEOUT_S (300),
#      SMOKE_KEEP=1 keeps the work directory (logs) on success.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

venv=${VENV:-.venv}
venv_tools=${VENV_TOOLS:-.venv-tools}
build_timeout=${SMOKE_BUILD_TIMEOUT_S:-1800}
invoke_timeout=${SMOKE_INVOKE_TIMEOUT_S:-300}

work=$(mktemp -d "${TMPDIR:-/tmp}/firebreak-smoke.XXXXXX")
pids=()
status=1
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        # Each background job leads its own process group (setsid): stop the group, then wait.
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL -- "-$pid" 2>/dev/null || true
    done
    if [[ $status -ne 0 ]]; then
        echo "smoke: FAILED; logs in $work" >&2
        for log in "$work"/*.log; do
            [[ -f $log ]] || continue
            echo "---- tail $log" >&2
            # moto logs one line per request: its tail says little.
            if [[ $log == */moto.log ]]; then tail -n 5 "$log" >&2; else tail -n 40 "$log" >&2; fi
        done
    elif [[ ${SMOKE_KEEP:-0} == 1 ]]; then
        echo "smoke: logs in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "smoke: $*" >&2; exit 1; }
say() { echo "smoke: $*" >&2; }

# ---- tools
if [[ ! -x $venv/bin/moto_server ]]; then
    [[ -x scripts/venv.sh ]] || die "$venv/bin/moto_server missing and no scripts/venv.sh to create it"
    scripts/venv.sh
fi
[[ -x $venv/bin/moto_server ]] || die "$venv/bin/moto_server still missing after scripts/venv.sh"
scripts/venv-tools.sh
export PATH="$root/$venv_tools/bin:$PATH"
for f in events/sns-metric-alarm.json events/pipeline/{incident-opened,diagnosis-completed,alarm-recovered,sweeper-schedule}.json; do
    [[ -f $f ]] || die "missing sample event $f"
done

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # PORT PID SECONDS NAME
    local deadline=$((SECONDS + $3))
    until "$venv/bin/python" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$1" 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || die "$4 exited before listening on $1"
        ((SECONDS < deadline)) || die "$4 not listening on $1 after $3 s"
        sleep 0.2
    done
}

# ---- build first, so the watch below starts without a long compile
say "building the function bins (debug)"
timeout "$build_timeout" cargo build -q -p firebreak-functions --bins || die "cargo build -p firebreak-functions failed or timed out"

# ---- moto
moto_port=$(free_port)
setsid "$venv/bin/python" tests/moto/server.py -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
wait_port "$moto_port" "${pids[-1]}" 30 moto_server
endpoint=http://127.0.0.1:$moto_port
say "moto on $endpoint"

timeout 60 "$venv/bin/python" scripts/smoke_setup.py "$endpoint" "$work/functions.env"

# ---- the webhook receiver oncall posts to, and its secret in SSM
hook_port=$(free_port)
hook_secret=whsec_c21va2Utd2ViaG9vay1zZWNyZXQtMDEyMzQ1Njc4OQ==
setsid "$venv/bin/python" scripts/smoke_webhook.py "$hook_port" "$hook_secret" "$work/webhook.jsonl" >"$work/webhook.log" 2>&1 &
pids+=($!)
wait_port "$hook_port" "${pids[-1]}" 30 "webhook receiver"
"$venv/bin/python" - "$endpoint" "$hook_secret" <<'PY'
import sys, boto3
ssm = boto3.client("ssm", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
ssm.put_parameter(Name="/firebreak/smoke/webhook", Value=sys.argv[2], Type="SecureString", Overwrite=True)
PY
# ---- a chat responder role: the chat function maps SQS SenderIds to it by its unique id
read -r responder_arn responder_id < <("$venv/bin/python" - "$endpoint" <<'PY'
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"Service": "chatbot.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
r = iam.create_role(RoleName="firebreak-chat-smoke", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
print(r["Arn"], r["RoleId"])
PY
)
[[ -n $responder_id ]] || die "could not create the chat responder role in moto"
chat_queue_url=$("$venv/bin/python" - "$endpoint" <<'PY'
import sys, boto3
sqs = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
print(sqs.create_queue(QueueName="firebreak-chat-smoke")["QueueUrl"])
PY
)
cat >>"$work/functions.env" <<ENV
FIREBREAK_CHAT_RESPONDER_ROLE_ARNS=$responder_arn
FIREBREAK_APPROVER_ROLE_ARN=arn:aws:iam::123456789012:role/FirebreakApproverRole
CHAT_ACTIONS_QUEUE_URL=$chat_queue_url
ENV
cat >>"$work/functions.env" <<ENV
WEBHOOK_SEVERITIES=SEV1,SEV2,SEV3,SEV4
WEBHOOK_URL=http://127.0.0.1:$hook_port/hooks/firebreak
WEBHOOK_SECRET_PARAMETER=/firebreak/smoke/webhook
ENV
cat >>"$work/functions.env" <<ENV
AWS_ENDPOINT_URL=$endpoint
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
AWS_EC2_METADATA_DISABLED=true
AWS_LAMBDA_LOG_FORMAT=JSON
RUST_LOG=info
ENV
table=$(sed -n 's/^TABLE_NAME=//p' "$work/functions.env")

# ---- cargo lambda watch
watch_port=$(free_port)
setsid cargo lambda watch -p firebreak-functions --ignore-changes --invoke-address 127.0.0.1 \
    --invoke-port "$watch_port" --env-file "$work/functions.env" >"$work/watch.log" 2>&1 &
pids+=($!)
wait_port "$watch_port" "${pids[-1]}" 120 "cargo lambda watch"
say "cargo lambda watch on 127.0.0.1:$watch_port"

failures=0
passed=0
# FN EVENT_FILE [PATTERN]: passes when the invocation answers without an error, or, given PATTERN,
# when it fails with an error matching PATTERN.
invoke() {
    local fn=$1 event=$2 pattern=${3:-} out=$work/invoke-$1-$(basename "$2" .json).out rc=0 failed=0
    timeout "$invoke_timeout" cargo lambda invoke "$fn" --invoke-address 127.0.0.1 --invoke-port "$watch_port" \
        --data-file "$event" --output-format json >"$out" 2>&1 || rc=$?
    { [[ $rc -ne 0 ]] || grep -q '"errorType"' "$out"; } && failed=1
    if [[ -n $pattern ]]; then
        if ((failed)) && grep -q -- "$pattern" "$out"; then
            say "ok   $fn $(basename "$event") (failed as expected: $pattern)"
            passed=$((passed + 1))
        else
            say "FAIL $fn $(basename "$event"): expected a failure matching '$pattern': $(head -c 400 "$out")"
            failures=$((failures + 1))
        fi
    elif ((failed)); then
        say "FAIL $fn $(basename "$event"): exit $rc: $(head -c 400 "$out")"
        failures=$((failures + 1))
    else
        say "ok   $fn $(basename "$event")"
        passed=$((passed + 1))
    fi
}

invoke triage events/sns-metric-alarm.json

# The pipeline events name the incident triage just opened.
incident=$(timeout 30 "$venv/bin/python" scripts/smoke_setup.py --incident-ids "$endpoint" "$table" | head -n1)
mkdir -p "$work/events"
for f in events/pipeline/*.json; do
    if [[ -n $incident ]]; then
        "$venv/bin/python" - "$f" "$work/events/$(basename "$f")" "$incident" <<'PY'
import json, sys
src, dst, incident = sys.argv[1:]
ev = json.load(open(src))
if isinstance(ev.get("detail"), dict) and "incident_id" in ev["detail"]:
    ev["detail"]["incident_id"] = incident
json.dump(ev, open(dst, "w"))
PY
    else
        cp "$f" "$work/events/"
    fi
done
[[ -n $incident ]] && say "incident $incident" || say "triage opened no incident; pipeline events keep their sample id"

invoke diagnose "$work/events/incident-opened.json"
invoke remediate "$work/events/diagnosis-completed.json"
invoke resolve "$work/events/alarm-recovered.json" "CloudWatch DescribeAlarms"
invoke sweeper "$work/events/sweeper-schedule.json"
invoke oncall "$work/events/incident-opened.json"
if [[ -n $incident ]]; then
    # a press SQS really holds in flight (its receipt handle), with the SenderId SQS would write
    # for the responder role's session (moto writes a fixed one)
    "$venv/bin/python" - "$endpoint" "$chat_queue_url" "$incident" "$responder_id" "$work/events/chat-ack.json" <<'PY'
import json, sys, boto3
endpoint, url, incident, role_id, out = sys.argv[1:]
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
sqs.send_message(QueueUrl=url, MessageBody=f"ack:{incident}:0")
m = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=5)["Messages"][0]
json.dump({"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
           "eventSource": "aws:sqs", "attributes": {"SenderId": f"{role_id}:alice"}}]}, open(out, "w"))
PY
    # the same press invoked directly, with a receipt handle SQS never gave: refused
    printf '{"Records":[{"messageId":"forged","receiptHandle":"forged","eventSource":"aws:sqs","body":"ack:%s:0","attributes":{"SenderId":"%s:mallory"}}]}' \
        "$incident" "$responder_id" >"$work/events/chat-forged.json"
    invoke chat "$work/events/chat-forged.json"
    if grep -q 'not delivered by the chat queue' "$work/invoke-chat-chat-forged.out"; then
        say "ok   a press invoked directly (no live receipt handle) is refused"
        passed=$((passed + 1))
    else
        say "FAIL a forged press was not refused: $(head -c 400 "$work/invoke-chat-chat-forged.out")"
        failures=$((failures + 1))
    fi
    invoke chat "$work/events/chat-ack.json"
    if grep -q 'acknowledged by firebreak-chat-smoke/alice' "$work/invoke-chat-chat-ack.out"; then
        say "ok   the chat Acknowledge press acknowledged $incident as the responder role's session"
        passed=$((passed + 1))
    else
        say "FAIL the chat press did not acknowledge: $(head -c 400 "$work/invoke-chat-chat-ack.out")"
        failures=$((failures + 1))
    fi
fi
if grep -q '"verified": true, "type": "incident.opened"' "$work/webhook.jsonl" 2>/dev/null; then
    say "ok   the webhook receiver verified the signed incident.opened"
    passed=$((passed + 1))
else
    say "FAIL the webhook receiver got no verified incident.opened: $(cat "$work/webhook.jsonl" 2>/dev/null)"
    failures=$((failures + 1))
fi

echo "smoke: $passed passed, $failures failed"
((failures == 0)) || die "$failures invocation(s) failed"
[[ -n $incident ]] || die "triage answered but no incident is in the table"
status=0
