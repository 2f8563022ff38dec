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

Usage: the same arguments as `moto_server` (`-H 127.0.0.1 -p PORT`).
"""
import functools
import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_LOCK = threading.RLock()
_call_action = DynamoHandler.call_action


@functools.wraps(_call_action)
def _serialised_call_action(self, *args, **kwargs):
    with _LOCK:
        return _call_action(self, *args, **kwargs)


DynamoHandler.call_action = _serialised_call_action

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
