"""A subscription's or publication's broker reference resolved through the port: the broker, its Secret, its CA.

``spec.broker`` names a SyncBroker in the object's namespace if there is one (its Secret there too),
else the ClusterSyncBroker of that name, whose Secrets live in the operator's namespace and which must
list the object's namespace in ``allowedNamespaces``. Whatever a reference can lack (the broker, a
Secret, a key, the right to read it) becomes one exception, ``MissingReference``, whose message names
exactly what; it is temporary, since the missing piece is usually on its way (applied in another
order, RBAC being fixed). A namespace the ClusterSyncBroker does not allow is ``NotAllowed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from rabbitsync.amqp.port import Broker
from rabbitsync.api.clustersyncbroker import DEFAULT_OPERATOR_NAMESPACE, allows
from rabbitsync.api.syncbroker import SyncBrokerSpec, TLSSpec
from rabbitsync.conventions import SECRET_MANAGEMENT_URI_KEY, SECRET_URI_KEY
from rabbitsync.operator.kube import Cluster, Forbidden, Invalid, KubeError, NotFound
from rabbitsync.transport import BrokerEndpoint, InvalidEndpoint


class MissingReference(LookupError):
    """A SyncBroker, Secret or Secret key the object depends on does not exist or may not be read."""

    permanent: ClassVar[bool] = False

    def __init__(self, cause: KubeError) -> None:
        self.reason = cause.reason
        """``<Kind>NotFound`` or ``<Kind>Forbidden``."""
        super().__init__(str(cause))


class NotAllowed(MissingReference):
    """The ClusterSyncBroker exists but does not list the namespace: an administrator must add it."""

    permanent: ClassVar[bool] = True

    def __init__(self, broker: str, namespace: str) -> None:
        self.reason = "NamespaceNotAllowed"
        LookupError.__init__(
            self, f"ClusterSyncBroker {broker} does not allow namespace {namespace} (spec.allowedNamespaces)"
        )


@dataclass(frozen=True)
class ResolvedBroker:
    name: str
    exchange: str
    endpoint: BrokerEndpoint
    secret_name: str


BrokerFactory = Callable[[ResolvedBroker], Broker]
"""The broker port: a client for a resolved broker (``RabbitBroker`` in production, a fake in tests)."""


def resolve_broker(
    cluster: Cluster,
    namespace: str,
    name: str,
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE,
    *,
    cluster_fallback: bool = True,
) -> ResolvedBroker:
    """The broker ``name`` as ``namespace`` sees it, with its connection details read from its Secret(s).

    ``cluster_fallback=False`` resolves the SyncBroker only (its own reconcile). Raises
    ``MissingReference`` (``NotAllowed`` among them), another ``KubeError`` (unreadable data, API server
    down), or ``InvalidEndpoint`` (a URI that cannot be used).
    """
    try:
        spec: SyncBrokerSpec = cluster.sync_broker(namespace, name)
        secrets_in = namespace
    except NotFound as e:
        if not cluster_fallback:
            raise MissingReference(e) from e
        try:
            cluster_spec = cluster.cluster_sync_broker(name)
        except NotFound:
            # Neither exists: name the namespaced one, the kind a reader of that namespace can create.
            raise MissingReference(e) from e
        except Forbidden as f:
            raise MissingReference(f) from f
        if not allows(cluster_spec, namespace):
            raise NotAllowed(name, namespace) from None
        spec, secrets_in = cluster_spec, operator_namespace
    except Forbidden as e:
        raise MissingReference(e) from e
    return _resolved(cluster, secrets_in, name, spec)


def resolve_cluster_broker(cluster: Cluster, name: str, operator_namespace: str) -> ResolvedBroker:
    """The ClusterSyncBroker ``name`` itself (its own reconcile), Secrets from the operator's namespace."""
    try:
        spec = cluster.cluster_sync_broker(name)
    except (NotFound, Forbidden) as e:
        raise MissingReference(e) from e
    return _resolved(cluster, operator_namespace, name, spec)


def _resolved(cluster: Cluster, namespace: str, name: str, spec: SyncBrokerSpec) -> ResolvedBroker:
    try:
        secret = spec.secret_ref.name
        data = cluster.secret(namespace, secret)
        ca_pem = _ca_pem(cluster, namespace, spec.tls) if spec.tls is not None else None
        uri = _text(data, namespace, secret, SECRET_URI_KEY)
    except (NotFound, Forbidden) as e:
        raise MissingReference(e) from e
    management = (
        _text(data, namespace, secret, SECRET_MANAGEMENT_URI_KEY) if SECRET_MANAGEMENT_URI_KEY in data else None
    )
    try:
        endpoint = BrokerEndpoint(
            amqp_uri=uri.strip(), management_uri=management.strip() if management else None, ca_pem=ca_pem
        )
    except InvalidEndpoint:
        # The parser's own words may quote part of the URI, i.e. of the password: not one of them goes
        # into a condition or an Event, and the cause is not chained into any traceback.
        raise InvalidEndpoint(
            f"Secret {namespace}/{secret}: {SECRET_URI_KEY!r} or {SECRET_MANAGEMENT_URI_KEY!r} is not a usable "
            "amqp(s):// or http(s):// URI (is a reserved character of the password not percent-encoded?)"
        ) from None
    return ResolvedBroker(name=name, exchange=spec.exchange, endpoint=endpoint, secret_name=secret)


def _ca_pem(cluster: Cluster, namespace: str, tls: TLSSpec) -> str:
    ref = tls.ca_secret_ref
    return _text(cluster.secret(namespace, ref.name), namespace, ref.name, ref.key)


def _text(data: Mapping[str, bytes], namespace: str, secret: str, key: str) -> str:
    if key not in data:
        raise NotFound("Secret", namespace, secret, f"no key {key!r}")
    try:
        return data[key].decode()
    except UnicodeDecodeError as e:
        raise Invalid("Secret", namespace, secret, f"key {key!r} is not UTF-8 text") from e
