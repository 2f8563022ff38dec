#!/usr/bin/env python3
"""moto's server with DynamoDB requests made atomic, as DynamoDB itself guarantees.

moto 5.2.5 serves each HTTP request on its own thread and takes no lock in its DynamoDB backend.
`TransactWriteItems` checks and writes item by item, and when any condition fails it restores a
copy of the whole table taken when the transaction started. Under concurrent requests that
breaks what DynamoDB promises (transactions are serializable; a conditional write is atomic):
a cancelled transaction erases writes other requests committed while it ran, and two
transactions conditioned on the same version can both succeed. `transact_isolation.py` beside
this file reproduces it against plain `moto_server`.

This launcher runs the same server with one lock around every DynamoDB request, so each
request, a transaction included, is applied as one step. That is stricter than DynamoDB (which
also serialises only conflicting work) but allows no outcome DynamoDB would not, and it lets
the integration tests check Firebreak against DynamoDB's guarantees rather than moto's races.
Other services are left as moto serves them.

Under that lock a transaction needs no copy of the table to roll back: `_transact_write_items`
checks every item's condition first, against the state before the transaction (its items
have distinct keys), and writes only when all hold. moto deep-copies the whole table once per
transaction item instead, which makes a table of thousands of items slow (seconds per
transaction) and its memory grow without bound under a storm of concurrent transactions.

Usage: the same arguments as `moto_server` (`-H 127.0.0.1 -p PORT`).
"""
import functools
import sys
import threading

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_LOCK = threading.RLock()
_call_action = DynamoHandler.call_action


@functools.wraps(_call_action)
def _serialised_call_action(self, *args, **kwargs):
    with _LOCK:
        return _call_action(self, *args, **kwargs)


DynamoHandler.call_action = _serialised_call_action


def _transact_write_items(self, transact_items):
    """moto's TransactWriteItems with the same checks, errors and writes, all conditions checked
    before anything is written (so nothing needs rolling back), and no table copy."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    targets = set()
    plan = []
    errors = []
    for item in transact_items:
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        table_name = op["TableName"]
        if op_type == "Put":
            attrs = op["Item"]
            table = self.get_table(table_name)
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        target = (str(table_name), str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        original_item = None
        try:
            condition = op.get("ConditionExpression")
            if condition is not None:
                current = self.get_item(table_name, key)
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if not get_filter_expression(condition, names, values).expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            errors.append((None, None, None))
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # as moto: any other failure is this item's reason
            errors.append((type(e).__name__, str(e), original_item))
        plan.append((op_type, op, table_name, key))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    for op_type, op, table_name, key in plan:
        names = op.get("ExpressionAttributeNames")
        values = op.get("ExpressionAttributeValues")
        if op_type == "Put":
            self.put_item(table_name, op["Item"], expression_attribute_names=names,
                          expression_attribute_values=values)
        elif op_type == "Delete":
            self.delete_item(table_name, key, expression_attribute_names=names,
                             expression_attribute_values=values)
        elif op_type == "Update":
            self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                             expression_attribute_names=names, expression_attribute_values=values)


DynamoDBBackend.transact_write_items = _transact_write_items

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
