"""The broker side of a backfill the operator runs: who may publish a type, requests out, reports in.

The operator asks publishers for snapshots through their request queues and hears back from the
subscribing sidecar through a status queue of the subscription (``naming.backfill_status_queue``).
Reading that queue leaves the reports in it: the status the operator derives from them may never be
written (an API server away) or be overwritten by a reconcile that started from an older status, and
then the next read must find them again. Only the ones the caller calls worthless are removed; the
rest leave with the subscription (its cleanup deletes the status queue with its other queues).
Who publishes a type is read from the broker, not from the Kubernetes API: every service's topic
write permission on the events exchange is what its SyncPublication declared, in whichever cluster
it lives, so the broker shared by the clusters is the one place where the other cluster's publishers
are visible.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from rabbitsync.amqp.fake import FakeBroker, FakeQueue
from rabbitsync.amqp.management import ManagementClient
from rabbitsync.events.backfill import REQUEST_TYPE, BackfillRequest, encode
from rabbitsync.events.codec import MessageProperties
from rabbitsync.transport import (
    BrokerEndpoint,
    BrokerUnreachable,
    ConfirmedPublisher,
    NotFound,
    OutgoingMessage,
    PreconditionFailed,
    Timeouts,
    declarations,
    open_session,
)

log = logging.getLogger(__name__)

CONNECTION_NAME = "rabbitsync-operator-backfill"
REQUEST_QUEUE_ARGUMENTS: Mapping[str, object] = {"x-queue-type": "quorum"}
"""Request queues: durable quorum queues, so a broker restart loses none (the broker's delivery limit
stays: a request that kills every sidecar taking it must not come back forever)."""
STATUS_READS = 1_000_000
"""Reads a report survives. Each read hands it back to its quorum queue, which counts that as a failed
delivery, and RabbitMQ 4 drops a message after 20 by default (seen: gone after the 21st read), while a
long backfill reads its early reports once per step."""
STATUS_QUEUE_ARGUMENTS: Mapping[str, object] = {"x-queue-type": "quorum", "x-delivery-limit": STATUS_READS}


@dataclass(frozen=True)
class Report:
    """A message from a status queue: its body, and the user the broker says published it."""

    user_id: str | None
    body: bytes
    timestamp: int | None = None
    """When the sidecar sent it (seconds since the epoch), if it said."""


class BackfillBroker(Protocol):
    def topic_writers(self, exchange: str) -> dict[str, str]:
        """User -> regex of the routing keys it may publish to ``exchange``. Raises a ``BrokerError``."""
        ...

    def consumers(self, queue: str) -> int | None:
        """Consumers on ``queue``; None if it does not exist. Raises a ``BrokerError``."""
        ...

    def send_request(self, queue: str, request: BackfillRequest) -> None:
        """Declare the request ``queue`` if missing and put ``request`` in it, confirmed. Raises a ``BrokerError``."""
        ...

    def open_reports(self, queue: str) -> None:
        """Declare the status ``queue`` if missing. Raises a ``BrokerError``."""
        ...

    def read_reports(self, queue: str, worthless: Callable[[Report], bool]) -> list[Report] | None:
        """Every report waiting in ``queue``, left in it but for the ``worthless`` ones, which are removed
        (and not returned); None if the queue does not exist. Raises a ``BrokerError``."""
        ...


class RabbitBackfill:
    """``BackfillBroker`` for one RabbitMQ endpoint; a short connection per call (a backfill is rare)."""

    def __init__(self, endpoint: BrokerEndpoint, timeouts: Timeouts | None = None) -> None:
        self._endpoint = endpoint
        self._timeouts = timeouts or Timeouts()
        self._management = ManagementClient(endpoint, self._timeouts)

    def topic_writers(self, exchange: str) -> dict[str, str]:
        return self._management.topic_writers(exchange)

    def consumers(self, queue: str) -> int | None:
        found = self._management.queues_matching(f"^{re.escape(queue)}$")
        return found[0].consumers if found else None

    def send_request(self, queue: str, request: BackfillRequest) -> None:
        self._declare(queue, REQUEST_QUEUE_ARGUMENTS)
        publisher = ConfirmedPublisher(self._endpoint, name=CONNECTION_NAME, timeouts=self._timeouts).start()
        try:
            properties = MessageProperties(
                message_id=request.id, type="backfill-request", timestamp=int(time.time()), content_type=REQUEST_TYPE
            )
            message = OutgoingMessage("", queue, encode(request), properties, mandatory=True)
            publisher.publish([message], timeout=self._timeouts.operation_s)
        finally:
            publisher.close()

    def open_reports(self, queue: str) -> None:
        try:
            self._declare(queue, STATUS_QUEUE_ARGUMENTS)
        except PreconditionFailed:
            # Declared by a release before STATUS_READS: it exists, which is all a report needs. Deleting
            # it could lose the reports of a backfill under way; it goes with its subscription.
            log.warning("status queue %s has no delivery limit of its own: reports may drop after 20 reads", queue)

    def _declare(self, queue: str, arguments: Mapping[str, object]) -> None:
        with declarations(self._endpoint, name=CONNECTION_NAME, timeouts=self._timeouts) as broker:
            broker.queue_declare(queue, durable=True, arguments=dict(arguments))

    def read_reports(self, queue: str, worthless: Callable[[Report], bool]) -> list[Report] | None:
        reports: list[Report] = []
        try:
            # Closing the session hands every report not acked back to the queue.
            with open_session(self._endpoint, name=CONNECTION_NAME, timeouts=self._timeouts) as session:
                while (message := session.get(queue)) is not None:
                    report = Report(message.user_id, message.body, message.timestamp)
                    if worthless(report):
                        session.ack(message.tag)
                    else:
                        reports.append(report)
        except NotFound:
            return None
        return reports


@dataclass
class FakeBackfill:
    """``BackfillBroker`` in memory over a :class:`FakeBroker` (its users' topic rights, its queues)."""

    broker: FakeBroker
    requests: dict[str, list[BackfillRequest]] = field(default_factory=dict)
    """Request queue -> the requests put in it, in order."""
    reports: dict[str, list[Report]] = field(default_factory=dict)
    """Status queue -> reports waiting (a test puts the sidecar's here)."""

    def topic_writers(self, exchange: str) -> dict[str, str]:
        self._check()
        return {u.username: u.topic.write for u in self.broker.users.values() if u.topic.exchange == exchange}

    def consumers(self, queue: str) -> int | None:
        self._check()
        found = self.broker.queues.get(queue)
        return None if found is None else found.consumers

    def send_request(self, queue: str, request: BackfillRequest) -> None:
        self._declare(queue, REQUEST_QUEUE_ARGUMENTS)
        self.requests.setdefault(queue, []).append(request)

    def open_reports(self, queue: str) -> None:
        self._declare(queue, STATUS_QUEUE_ARGUMENTS)
        self.reports.setdefault(queue, [])

    def read_reports(self, queue: str, worthless: Callable[[Report], bool]) -> list[Report] | None:
        self._check()
        if queue not in self.broker.queues:
            self.reports.pop(queue, None)  # a deleted queue's messages go with it
            return None
        self.reports[queue] = [r for r in self.reports.get(queue, []) if not worthless(r)]
        return list(self.reports[queue])

    def _declare(self, queue: str, arguments: Mapping[str, object]) -> None:
        self._check()
        self.broker.queues.setdefault(queue, FakeQueue(dict(arguments)))

    def _check(self) -> None:
        if not self.broker.reachable:
            raise BrokerUnreachable("fake broker is down")
