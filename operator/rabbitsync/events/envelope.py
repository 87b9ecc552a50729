"""The CloudEvent model, restricted to what rabbitsync produces and accepts.

Attributes beyond the CloudEvents core:

- ``rabbitsyncversion`` (extension attribute, integer): the last-writer-wins ordering key, see
  :mod:`rabbitsync.events.clock`. Ties between clusters are broken on ``source`` so every replica
  makes the same choice.
- The origin (cluster, namespace, service) is not a separate attribute: it is ``source`` itself,
  ``/clusters/<cluster>/namespaces/<ns>/services/<svc>``, parsed by :attr:`CloudEvent.origin`.
  One attribute cannot disagree with itself, which two would.

Any other attribute is a CloudEvents *extension attribute* (``traceparent`` of the distributed-tracing
extension, which Dapr adds, say): it is accepted when the spec allows it (a name of 1 to 20 lowercase
letters or digits; a string, integer or boolean value) and kept, so it travels on through retries,
dead letters and replays. One that breaks those rules is refused like any malformed attribute. A
``null`` attribute is absent, as the JSON format says. :attr:`CloudEvent.extensions` reads them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from rabbitsync.conventions import EventType
from rabbitsync.events.clock import VersionClock, default_clock
from rabbitsync.events.errors import InvalidEvent

ExtensionValue = StrictBool | StrictInt | StrictStr
"""The JSON forms of the CloudEvents attribute types (String, Integer, Boolean; URI and Timestamp are strings)."""

_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_EXTENSION_VALUE: TypeAdapter[ExtensionValue] = TypeAdapter(ExtensionValue)
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

    model_config = ConfigDict(frozen=True, extra="allow")

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

    @model_validator(mode="before")
    @classmethod
    def _extensions(cls, value: Any) -> Any:
        """Drop null attributes; refuse an extension the spec would not allow (name or value type)."""
        if not isinstance(value, dict):
            return value
        extensions = {k: v for k, v in value.items() if k not in cls.model_fields}
        for name, item in extensions.items():
            if not _EXTENSION_NAME.match(str(name)):
                raise ValueError(f"extension attribute {str(name)[:40]!r}: not 1-20 lowercase letters or digits")
            if item is not None:
                _EXTENSION_VALUE.validate_python(item)
        return {k: v for k, v in value.items() if k in cls.model_fields or v is not None}

    @property
    def extensions(self) -> dict[str, ExtensionValue]:
        """The extension attributes beyond the core and ``rabbitsyncversion`` (``traceparent``...)."""
        return dict(self.__pydantic_extra__ or {})

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context of the distributed-tracing extension, if the event carries one."""
        value = self.extensions.get("traceparent")
        return value if isinstance(value, str) else None

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
    extensions: Mapping[str, ExtensionValue] | None = None,
    clock: VersionClock = default_clock,
) -> CloudEvent:
    """A fresh event with a random id, the current time and, unless given, a fresh version.

    Raises :class:`InvalidEvent` when an attribute is malformed or ``data`` is not plain JSON.
    """
    clash = sorted(set(extensions or {}) & set(CloudEvent.model_fields))
    if clash:
        raise InvalidEvent(f"extension attributes must not be core attributes: {', '.join(clash)}")
    try:
        return CloudEvent.model_validate(
            {
                **(extensions or {}),
                "id": uuid.uuid4().hex,
                "type": type,
                "source": origin.source,
                "subject": subject,
                "time": datetime.now(UTC),
                "data": data,
                "rabbitsyncversion": clock.tick() if version is None else version,
            }
        )
    except ValidationError as e:
        raise InvalidEvent(str(e)) from e
