"""SyncBroker: how the operator reaches the shared RabbitMQ, one per namespace and broker name.

Credentials stay in a Secret (never in the spec, unlike the seed's code that published passwords);
the spec only names it, so rotating a password is a Secret update, not a spec change.
"""

from __future__ import annotations

from pydantic import Field

from rabbitsync.api.conditions import Condition, ObservedStatus, conditions_field, ready_columns
from rabbitsync.api.meta import AGE_COLUMN, DNS1123_SUBDOMAIN, ApiModel, ApiObject, PrinterColumn, ResourceInfo
from rabbitsync.conventions import DEFAULT_EXCHANGE, SECRET_MANAGEMENT_URI_KEY, SECRET_URI_KEY

DEFAULT_CA_KEY = "ca.crt"


class SecretRef(ApiModel):
    """A Secret in the SyncBroker's namespace holding the broker URIs."""

    name: str = Field(
        description=(
            f"Name of a Secret in the same namespace. Key `{SECRET_URI_KEY}` holds the AMQP URI "
            f"(amqp://user:pass@host:5672/vhost or amqps://...); optional key `{SECRET_MANAGEMENT_URI_KEY}` "
            f"holds the management API URI (http(s)://user:pass@host:15672), otherwise derived from "
            f"`{SECRET_URI_KEY}`."
        ),
        min_length=1,
        max_length=253,
        pattern=DNS1123_SUBDOMAIN,
    )


class CASecretRef(ApiModel):
    """A Secret key holding PEM CA certificates."""

    name: str = Field(
        description="Name of a Secret in the same namespace holding the CA bundle.",
        min_length=1,
        max_length=253,
        pattern=DNS1123_SUBDOMAIN,
    )
    key: str = Field(
        default=DEFAULT_CA_KEY,
        description="Key in the Secret whose value is the PEM-encoded CA bundle.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class TLSSpec(ApiModel):
    """TLS settings for amqps:// and https:// connections."""

    ca_secret_ref: CASecretRef = Field(
        description="CA bundle used to verify the broker's certificate instead of the system trust store."
    )


class SyncBrokerSpec(ApiModel):
    """Where the shared broker is and which exchange carries the events."""

    secret_ref: SecretRef = Field(description="Secret holding the broker's connection URIs.")
    exchange: str = Field(
        default=DEFAULT_EXCHANGE,
        description=(
            "Durable topic exchange shared by all clusters; routing key = event type. "
            "Declared if missing, never deleted by the operator."
        ),
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_.:-]+$",
    )
    tls: TLSSpec | None = Field(default=None, description="Optional TLS settings (CA bundle).")


class SyncBrokerStatus(ObservedStatus):
    """What the operator last observed about the broker."""

    conditions: list[Condition] = conditions_field("Ready, BrokerReachable")


class SyncBroker(ApiObject[SyncBrokerSpec, SyncBrokerStatus]):
    """A SyncBroker object as read from the API server."""

    kind: str = Field(default="SyncBroker", description="SyncBroker")


RESOURCE = ResourceInfo(
    kind="SyncBroker",
    plural="syncbrokers",
    short_names=("sbroker", "sbrokers"),
    description=(
        "SyncBroker says how to reach the RabbitMQ broker shared by all clusters: a Secret with its URIs, "
        "the topic exchange carrying events, and an optional CA. SyncSubscriptions name it in spec.broker."
    ),
    printer_columns=(
        PrinterColumn("Exchange", "string", ".spec.exchange", "Topic exchange carrying the events."),
        PrinterColumn("Secret", "string", ".spec.secretRef.name", "Secret holding the broker URIs."),
        *ready_columns("Broker reachable."),
        AGE_COLUMN,
    ),
)
