"""The quorum queue's delivery limit: how often a message may go back to its queue unacknowledged.

RabbitMQ 3.x sets no limit, so a message that kills its consumer (one the client library cannot even
decode) is redelivered forever; 4.x sets 20 and dead-letters with reason ``delivery_limit``. We set
it explicitly, the same on every version, as a *policy*: a queue argument cannot change on an
existing queue (a redeclare fails with PRECONDITION_FAILED), a policy can, so queues created by
older releases get the limit on the next reconcile, without a migration.

The number: the sidecar never hands back a delivery it handled (a failure is acked and republished
through a delay queue as a new message, whose count starts at zero), so the broker's count grows only
when a delivery goes back unacknowledged: its consumer died on it, the connection dropped with it in
flight (up to ``prefetch`` innocent messages each time), or consumption paused. So the limit is
:data:`REDELIVERY_ALLOWANCE` (RabbitMQ 4's own default: twenty lost consumers a message need not be to
blame for) plus one per attempt the subscription's retry schedule allows (a handler that kills the
process instead of raising has used an attempt). The policy's priority is high so that a broad
administrator policy cannot silently replace it on our queues; keys an administrator wants on them
belong in an operator policy, which RabbitMQ merges with ours.
"""

from __future__ import annotations

from rabbitsync.topology.model import Policy

REDELIVERY_ALLOWANCE = 20
PRIORITY = 100


def delivery_limit(max_attempts: int) -> int:
    """The ``delivery-limit`` of a main queue whose subscription allows ``max_attempts`` attempts."""
    return max_attempts + REDELIVERY_ALLOWANCE


def delivery_limit_policy(main_queue: str, max_attempts: int) -> Policy:
    """The policy limiting deliveries on ``main_queue`` alone (named after it, so it is ours by name)."""
    return Policy(
        name=main_queue,
        pattern=f"^{main_queue.replace('.', '[.]')}$",
        definition={"delivery-limit": delivery_limit(max_attempts)},
        priority=PRIORITY,
    )
