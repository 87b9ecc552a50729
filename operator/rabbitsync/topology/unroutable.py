"""Where the shared exchange keeps the events no subscription takes: pure description, no I/O.

An event published before its first subscriber is bound, or of a type nobody consumes yet, would be
dropped by a topic exchange. Instead the exchange gets an *alternate exchange* (a fanout exchange
bound to one durable quorum queue, both named by :func:`~rabbitsync.topology.naming.unroutable_name`)
and keeps them there until ``rabbitsync unroutable replay`` sends them on.

The alternate exchange is set by a *policy*, as RabbitMQ recommends: an exchange's arguments cannot
change once it exists (the shared exchange does), a policy can be added, changed and removed at any
time. Both clusters' operators apply the very same policy, exchange and queue, so whichever comes
second changes nothing. Policies do not merge: one with a higher priority that matches the exchange
wins, which is why the operator reads back the policy in effect and says so when it is not ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rabbitsync.topology.model import Policy
from rabbitsync.topology.naming import unroutable_name

ALTERNATE_EXCHANGE_TYPE = "fanout"
"""Every unroutable message, whatever its routing key (kept as it was, for the replay)."""
POLICY_PRIORITY = 10
"""Above the default 0 of a broad catch-all policy an administrator may have, so ours applies to the
one exchange it names; an administrator who wants it otherwise can still outrank it."""


@dataclass(frozen=True)
class UnroutableTopology:
    """The objects keeping ``exchange``'s unroutable events, and the policy pointing it at them."""

    exchange: str
    alternate_exchange: str
    queue: str
    policy: str
    queue_arguments: dict[str, Any] = field(default_factory=lambda: {"x-queue-type": "quorum"})

    def as_policy(self) -> Policy:
        """The policy pointing the shared exchange, and only it, at the alternate exchange."""
        return Policy(
            name=self.policy,
            pattern=f"^{re.escape(self.exchange)}$",
            definition={"alternate-exchange": self.alternate_exchange},
            priority=POLICY_PRIORITY,
            apply_to="exchanges",
        )


def unroutable_for(exchange: str) -> UnroutableTopology:
    name = unroutable_name(exchange)
    return UnroutableTopology(exchange=exchange, alternate_exchange=name, queue=name, policy=name)
