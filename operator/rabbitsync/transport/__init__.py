"""The one pika transport of rabbitsync: errors, connection parameters, the confirmed publisher, backoff.

Used by the operator, the relay, the sidecar and the CLI. No pika exception leaves this package:
callers see :mod:`rabbitsync.transport.errors` only.
"""
