"""The consumer sidecar: runs next to a Django service and feeds it the events it subscribed to.

It is a process of its own (``rabbitsync-sidecar`` or ``manage.py rabbitsync_sidecar``) sharing the
service's code and database: it consumes the subscription queues, applies each event through the
service's handlers inside the inbox transaction, routes failures through the retry and dead-letter
queues, and runs the outbox relay's sweep. Layering: it builds on ``rabbitsync.django``, never the
other way round.
"""
