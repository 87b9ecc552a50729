"""The one pika transport of rabbitsync: errors, connection parameters, the confirmed publisher, sessions.

Used by the operator (``amqp``), the relay, the sidecar and the CLI. No pika, socket or TLS exception
leaves this package: callers see :mod:`rabbitsync.transport.errors` only. Nothing connects at import.
"""

from rabbitsync.transport.declarations import Declarations, declarations, open_declarations
from rabbitsync.transport.decoding import UndecodableValue, undecodable_headers
from rabbitsync.transport.endpoint import BrokerEndpoint, ManagementAPI, Timeouts
from rabbitsync.transport.errors import (
    AccessRefused,
    BrokerError,
    BrokerUnreachable,
    InvalidEndpoint,
    NotFound,
    PreconditionFailed,
    PublishRejected,
    Unroutable,
)
from rabbitsync.transport.parameters import connection_parameters, tls_context
from rabbitsync.transport.publisher import ConfirmedPublisher, OutgoingMessage, PublishHandle
from rabbitsync.transport.session import IncomingMessage, Session, connect, open_session
from rabbitsync.transport.stream import StreamEntry, read_stream
from rabbitsync.transport.translation import IO_ERRORS, translate, translated

__all__ = [
    "IO_ERRORS",
    "AccessRefused",
    "BrokerEndpoint",
    "BrokerError",
    "BrokerUnreachable",
    "ConfirmedPublisher",
    "Declarations",
    "IncomingMessage",
    "InvalidEndpoint",
    "ManagementAPI",
    "NotFound",
    "OutgoingMessage",
    "PreconditionFailed",
    "PublishHandle",
    "PublishRejected",
    "Session",
    "StreamEntry",
    "Timeouts",
    "UndecodableValue",
    "Unroutable",
    "connect",
    "connection_parameters",
    "declarations",
    "open_declarations",
    "open_session",
    "read_stream",
    "tls_context",
    "translate",
    "translated",
    "undecodable_headers",
]
