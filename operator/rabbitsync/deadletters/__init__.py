"""Dead letters on the broker: describe them, and replay or purge them without ever losing one.

The sidecar writes them (``rabbitsync.sidecar.routing``), the broker adds its own (``x-death``);
``rabbitsync dlq`` reads and settles them through :class:`DeadLetterQueue`. Broker failures are
:mod:`rabbitsync.transport.errors`.
"""

from rabbitsync.deadletters.letters import DeadLetter, describe, origin_queue, plain
from rabbitsync.deadletters.queue import DeadLetterQueue, PassResult, run_pass

__all__ = ["DeadLetter", "DeadLetterQueue", "PassResult", "describe", "origin_queue", "plain", "run_pass"]
