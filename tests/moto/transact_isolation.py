#!/usr/bin/env python3
"""Minimal reproduction: does a DynamoDB endpoint isolate concurrent TransactWriteItems?

Every worker repeats: read a counter item (consistent read), then one transaction that puts the
counter at version v+1 on condition `version = v` and puts a log item of its own on condition
`attribute_not_exists(pk)`. Cancelled transactions are retried. DynamoDB guarantees that the
transactions are serializable, so afterwards the counter's version equals the number of
transactions that succeeded and every successful transaction's log item exists.

Usage: transact_isolation.py ENDPOINT [--workers N] [--rounds N] [--expect isolated|any]
Prints one line of counts; with --expect isolated, exits 1 when any guarantee was broken.
"""
import argparse
import sys
import threading
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint):
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=64),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--workers", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--expect", choices=["isolated", "any"], default="any")
    a = ap.parse_args()

    table = f"isolation-{uuid.uuid4().hex[:8]}"
    ddb = client(a.endpoint)
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    counter = {"pk": {"S": "COUNTER"}, "sk": {"S": "META"}}
    ddb.put_item(TableName=table, Item={**counter, "version": {"N": "0"}})

    committed = []
    errors = []
    lock = threading.Lock()

    def worker(w):
        c = client(a.endpoint)
        for r in range(a.rounds):
            while True:
                got = c.get_item(TableName=table, Key=counter, ConsistentRead=True)["Item"]
                v = int(got["version"]["N"])
                log = f"w{w}-r{r}"
                try:
                    c.transact_write_items(TransactItems=[
                        {"Put": {"TableName": table, "Item": {**counter, "version": {"N": str(v + 1)}},
                                 "ConditionExpression": "#v = :v",
                                 "ExpressionAttributeNames": {"#v": "version"},
                                 "ExpressionAttributeValues": {":v": {"N": str(v)}}}},
                        {"Put": {"TableName": table, "Item": {"pk": {"S": "LOG"}, "sk": {"S": log}, "v": {"N": str(v + 1)}},
                                 "ConditionExpression": "attribute_not_exists(pk)"}},
                    ])
                except ClientError as e:
                    if e.response["Error"]["Code"] == "TransactionCanceledException":
                        continue
                    # DynamoDB answers a transaction with its outcome; a 5xx here is the
                    # endpoint failing under concurrency. Whether it committed is unknown.
                    with lock:
                        errors.append(f"{log}: {e.response['Error']['Code']}")
                    return
                with lock:
                    committed.append(log)
                break

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(a.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    final = int(ddb.get_item(TableName=table, Key=counter, ConsistentRead=True)["Item"]["version"]["N"])
    logs = set()
    kwargs = {"TableName": table, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "LOG"}}}
    while True:
        page = ddb.query(**kwargs)
        logs.update(i["sk"]["S"] for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    lost = [l for l in committed if l not in logs]
    broken = final != len(committed) or lost or errors
    print(f"committed {len(committed)} transactions; counter version {final}; "
          f"log items {len(logs)}; committed but lost {len(lost)}; server errors {len(errors)}: "
          + ("NOT isolated" if broken else "isolated"))
    return 1 if broken and a.expect == "isolated" else 0


if __name__ == "__main__":
    sys.exit(main())
