"""The quorum queue's delivery limit: how often a message may go back to its queue unacknowledged.

RabbitMQ 3.x sets no limit, so a message that kills its consumer (one the client library cannot even
decode) is redelivered forever; 4.x sets 20 and dead-letters with reason ``delivery_limit``. We set
it explicitly, the same on every version.

How: as the main queue's ``x-delivery-limit`` argument, declared with the queue. An earlier release
set it as one policy per main queue, and that does not scale: every policy PUT makes RabbitMQ
re-match every queue of the vhost against every policy, so 200 subscriptions took ten minutes of
broker CPU to converge (``bench/broker_policies.py``). An argument costs nothing after the declare,
and it leaves the queue's one policy slot to the administrator (whose ``delivery-limit``, if any,
can only lower ours: the quorum queue takes the lower of argument and policy).

An argument cannot change on an existing queue (a redeclare fails with PRECONDITION_FAILED), so a
policy named after the queue still covers what the argument cannot (:func:`limit_policy`):
- a queue an older release declared without the argument keeps its policy (deleting it would leave
  the queue without a limit on 3.x);
- a subscription whose retry schedule now allows fewer attempts gets the lower limit by policy;
- the policy goes as soon as it is no longer needed. A schedule allowing *more* attempts keeps the
  declared, lower limit: a policy cannot raise it, and the difference only counts consumers killed by
  the same message, never ordinary retries (see below).

The number: the sidecar never hands back a delivery it handled (a failure is acked and republished
through a delay queue as a new message, whose count starts at zero), so the broker's count grows only
when a delivery goes back unacknowledged: its consumer died on it, the connection dropped with it in
flight (up to ``prefetch`` innocent messages each time), or consumption paused. So the limit is
:data:`REDELIVERY_ALLOWANCE` (RabbitMQ 4's own default: twenty lost consumers a message need not be to
blame for) plus one per attempt the subscription's retry schedule allows (a handler that kills the
process instead of raising has used an attempt). The policy's priority is high so that a broad
administrator policy cannot silently replace it on the queues that still need it.
"""

from __future__ import annotations

from typing import Any

from rabbitsync.topology.model import Policy

ARGUMENT = "x-delivery-limit"
REDELIVERY_ALLOWANCE = 20
PRIORITY = 100


def delivery_limit(max_attempts: int) -> int:
    """The ``delivery-limit`` of a main queue whose subscription allows ``max_attempts`` attempts."""
    return max_attempts + REDELIVERY_ALLOWANCE


def delivery_limit_policy(main_queue: str, limit: int) -> Policy:
    """The policy limiting deliveries on ``main_queue`` alone (named after it, so it is ours by name)."""
    return Policy(
        name=main_queue,
        pattern=f"^{main_queue.replace('.', '[.]')}$",
        definition={"delivery-limit": limit},
        priority=PRIORITY,
    )


def limit_policy(main_queue: str, wanted: Any, declared: Any) -> Policy | None:
    """The policy ``main_queue`` needs besides its arguments, if any.

    ``wanted``: the limit its desired arguments carry (``None``: its type has none, classic queues).
    ``declared``: the limit the existing queue was declared with (``None``: an older release's queue).
    """
    if not isinstance(wanted, int):
        return None
    if isinstance(declared, int) and declared <= wanted:
        return None
    return delivery_limit_policy(main_queue, wanted)
