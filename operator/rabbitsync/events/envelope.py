"""The CloudEvent model, restricted to what rabbitsync produces and accepts.

Attributes beyond the CloudEvents core:

- ``rabbitsyncversion`` (extension attribute, integer): the last-writer-wins ordering key, see
  :mod:`rabbitsync.events.clock`. Ties between clusters are broken on ``source`` so every replica
  makes the same choice.
- The origin (cluster, namespace, service) is not a separate attribute: it is ``source`` itself,
  ``/clusters/<cluster>/namespaces/<ns>/services/<svc>``, parsed by :attr:`CloudEvent.origin`.
  One attribute cannot disagree with itself, which two would.

Unknown attributes are refused (``extra="forbid"``): a producer we do not know is a bug to surface,
not something to half-understand.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, StrictInt, ValidationError

from rabbitsync.conventions import EventType
from rabbitsync.events.clock import VersionClock, default_clock
from rabbitsync.events.errors import InvalidEvent

_SOURCE = re.compile(r"^/clusters/(?P<cluster>[^/]+)/namespaces/(?P<namespace>[^/]+)/services/(?P<service>[^/]+)$")


class Origin(NamedTuple):
    """Who published an event: the service in one namespace of one cluster."""

    cluster: str
    namespace: str
    service: str

    @property
    def source(self) -> str:
        return f"/clusters/{self.cluster}/namespaces/{self.namespace}/services/{self.service}"


class CloudEvent(BaseModel):
    """One event, as serialised in structured mode (``application/cloudevents+json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128, description="dedup key of the inbox")
    # The grammar a SyncSubscription accepts, so every type that can be published can be subscribed to.
    type: EventType = Field(description="also the routing key")
    source: str = Field(pattern=_SOURCE.pattern)
    subject: str | None = Field(default=None, max_length=255, description="entity key")
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    data: JsonValue = None
    rabbitsyncversion: StrictInt = Field(ge=0)

    @property
    def origin(self) -> Origin:
        match = _SOURCE.match(self.source)
        assert match is not None  # guaranteed by the field's pattern
        return Origin(match["cluster"], match["namespace"], match["service"])

    @property
    def version(self) -> int:
        return self.rabbitsyncversion


def new_event(
    *,
    type: str,
    origin: Origin,
    data: JsonValue,
    subject: str | None = None,
    version: int | None = None,
    clock: VersionClock = default_clock,
) -> CloudEvent:
    """A fresh event with a random id, the current time and, unless given, a fresh version.

    Raises :class:`InvalidEvent` when an attribute is malformed or ``data`` is not plain JSON.
    """
    try:
        return CloudEvent(
            id=uuid.uuid4().hex,
            type=type,
            source=origin.source,
            subject=subject,
            time=datetime.now(UTC),
            data=data,
            rabbitsyncversion=clock.tick() if version is None else version,
        )
    except ValidationError as e:
        raise InvalidEvent(str(e)) from e
