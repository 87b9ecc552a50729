"""The trace stream: where relays and sidecars record what became of each event. Pure description.

``rabbitsync trace EVENT_ID`` answers "where did my event go" from small outcome records (published,
applied, retried, dead-lettered...) that relays and sidecars append, best effort, to one RabbitMQ
stream per shared exchange. A stream, because it is an append-only log that many readers can read
from any offset without consuming it, and because it forgets by itself: the retention limits below
bound it by size and age, whatever the traffic. An exchange of its own (topic, like every exchange
the operator declares; not the default exchange) routes to it, so a service's broker user can be
allowed to write records there (:mod:`rabbitsync.amqp.identity`) without being allowed to write into
any queue by name.

Both clusters' operators declare the same exchange, stream and binding with the same arguments, so
whichever comes second changes nothing. A stream's arguments cannot change once it exists; an
administrator who wants other limits sets them with a policy (``max-age``, ``max-length-bytes``).
"""

from __future__ import annotations

from rabbitsync.conventions import trace_name
from rabbitsync.topology.diff import Plan
from rabbitsync.topology.model import Binding, Queue, QueueRole

MAX_LENGTH_BYTES = 200_000_000
"""The stream's size bound: about a million records of ~200 bytes. Older segments go first."""
MAX_AGE = "7D"
"""Records older than a week go, whatever the size: a trace is for debugging recent events."""
SEGMENT_BYTES = 20_000_000
"""Retention drops whole segments, so a segment must be well under the size bound (default 500 MB)."""
ROUTING_KEY = "record"
"""The one key records are published and bound with."""


def trace_plan(exchange: str) -> Plan:
    """Declare the trace exchange and stream of ``exchange`` and bind them (idempotent)."""
    name = trace_name(exchange)
    stream = Queue(
        name=name,
        role=QueueRole.MAIN,
        arguments={
            "x-queue-type": "stream",
            "x-max-length-bytes": MAX_LENGTH_BYTES,
            "x-max-age": MAX_AGE,
            "x-stream-max-segment-size-bytes": SEGMENT_BYTES,
        },
    )
    return Plan(declare_exchange=name, declare_queues=(stream,), bind=(Binding(name, name, ROUTING_KEY),))
