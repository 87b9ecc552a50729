"""A service's own broker identity: its RabbitMQ user and the Secret ``rabbitsync-<service>`` holding it.

One identity per (cluster, namespace, service), shared by all the service's SyncSubscriptions and
SyncPublications: each of their reconciles recomputes it from all of them, as the sidecar is, so the
rights always match the live declarations, and the last one to go removes user and Secret.

The Secret is the source of truth for the password: it is created first (a concurrent reconcile of a
sibling then loses the create with a Conflict and retries) and the broker user is then set from it,
which also restores a user deleted out of band. A rotation is asked for with the annotation
``rabbitsync.io/rotate-credentials`` on the service's Deployment (any new value): a new password goes
into the Secret, then to the broker, and the pod template's credentials checksum changes so the pods
roll onto it; events written meanwhile wait in the outbox. No password is ever formatted into a
message: messages name the user and the Secret only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from rabbitsync.amqp.identity import BrokerUser, UserLimits, rights_for
from rabbitsync.api.conditions import CREDENTIALS_READY
from rabbitsync.api.meta import API_VERSION
from rabbitsync.conventions import SECRET_URI_KEY, broker_username, service_secret_name
from rabbitsync.operator.kube import Cluster, KubeError, NotFound, ObjectRef, SecretWrite, StoredSecret
from rabbitsync.operator.references import BrokerFactory, ResolvedBroker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.status import Observation
from rabbitsync.topology.sidecar_contract import CA_KEY
from rabbitsync.transport.errors import BrokerError

REMOVED = "Removed"
USER_LEFT_BEHIND = "UserLeftBehind"
ROTATE_ANNOTATION = "rabbitsync.io/rotate-credentials"
"""On the service's Deployment: a value not yet seen makes a new password."""
ROTATED_FOR = "rabbitsync.io/rotated-for"
"""On the Secret: the rotation value its password was made for."""
_OWNERS = "rabbitsync.io/declared-by"
"""On the Secret: the declarations it was written for; a new or gone one rewrites its ownerReferences."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "rabbitsync-operator"}
PASSWORD_BYTES = 32
USERNAME_KEY, PASSWORD_KEY = "username", "password"


@dataclass(frozen=True)
class Declarations:
    """What a service declares: its live subscriptions' names and its publications' event types."""

    subscriptions: tuple[str, ...]
    published: tuple[str, ...]
    owners: tuple[ObjectRef, ...]

    @property
    def empty(self) -> bool:
        return not self.subscriptions and not self.published


@dataclass(frozen=True)
class CredentialsResult:
    observation: Observation
    """The CredentialsReady condition."""
    failure: KubeError | BrokerError | None = None
    removed: bool = False
    """The service's last declaration went, and a user or Secret of it was there to remove."""


def declarations(cluster: Cluster, namespace: str, service: str) -> Declarations:
    """The service's live declarations. Raises ``KubeError``."""
    subs = cluster.live_subscriptions(namespace, service)
    pubs = cluster.live_publications(namespace, service)
    owners = [ObjectRef(API_VERSION, "SyncSubscription", namespace, s.name, s.uid) for s in subs]
    owners += [ObjectRef(API_VERSION, "SyncPublication", namespace, p.name, p.uid) for p in pubs]
    return Declarations(
        subscriptions=tuple(s.name for s in subs),
        published=tuple(sorted({t for p in pubs for t in p.spec.events})),
        owners=tuple(owners),
    )


def sync_credentials(
    cluster: Cluster,
    settings: OperatorSettings,
    namespace: str,
    service: str,
    broker: ResolvedBroker | None,
    brokers: BrokerFactory,
) -> CredentialsResult:
    """Make the service's user and Secret match its declarations (or remove both when there are none)."""
    username = broker_username(settings.cluster, namespace, service)
    name = service_secret_name(service)
    try:
        declared = declarations(cluster, namespace, service)
        if declared.empty:
            return _retire(cluster, namespace, name, username, broker, brokers)
        if broker is None:
            return CredentialsResult(
                Observation(CREDENTIALS_READY, "Unknown", "BrokerNotResolved", "the broker or its Secret is missing")
            )
        stored = cluster.stored_secret(namespace, name)
        if stored is not None and not _ours(stored):
            message = f"Secret {namespace}/{name} exists and is not managed by rabbitsync-operator: not overwritten"
            return CredentialsResult(Observation(CREDENTIALS_READY, "False", "SecretNotManaged", message))
        password = _password(stored, _rotation(cluster, namespace, service))
        data = _data(broker, username, password.value)
        if stored is None or password.new or dict(stored.data) != data or _owners_changed(stored, declared):
            cluster.write_secret(
                namespace,
                SecretWrite(
                    name=name,
                    data=data,
                    labels=MANAGED_BY,
                    annotations={ROTATED_FOR: password.rotation, _OWNERS: _owner_names(declared.owners)},
                    owners=declared.owners,
                    resource_version=stored.resource_version if stored else None,
                ),
            )
        brokers(broker).put_user(_user(settings, broker, namespace, service, username, password.value, declared))
    except (KubeError, BrokerError) as e:
        return CredentialsResult(Observation(CREDENTIALS_READY, "False", e.reason, str(e)), failure=e)
    message = f"user {username}, Secret {name}" + (" (password rotated)" if password.rotated else "")
    return CredentialsResult(Observation(CREDENTIALS_READY, "True", "CredentialsReady", message))


@dataclass(frozen=True)
class _Password:
    value: str
    rotation: str
    new: bool
    rotated: bool


def _password(stored: StoredSecret | None, rotation: str) -> _Password:
    current = stored.data.get(PASSWORD_KEY, b"").decode(errors="replace") if stored else ""
    previous = stored.annotations.get(ROTATED_FOR, "") if stored else ""
    if current and previous == rotation:
        return _Password(current, rotation, new=False, rotated=False)
    # token_urlsafe: 32 random bytes as 43 URI-safe characters, so the URI needs no quoting to be read.
    return _Password(secrets.token_urlsafe(PASSWORD_BYTES), rotation, new=True, rotated=bool(current))


def _rotation(cluster: Cluster, namespace: str, service: str) -> str:
    try:
        deployment = cluster.deployment(namespace, service)
    except NotFound:
        return ""
    return str((deployment["metadata"].get("annotations") or {}).get(ROTATE_ANNOTATION, ""))


def _ours(stored: StoredSecret) -> bool:
    return all(stored.labels.get(k) == v for k, v in MANAGED_BY.items())


def _owners_changed(stored: StoredSecret, declared: Declarations) -> bool:
    return stored.annotations.get(_OWNERS, "") != _owner_names(declared.owners)


def _owner_names(owners: Sequence[ObjectRef]) -> str:
    return ",".join(f"{o.kind}/{o.name}" for o in owners)


def service_uri(broker: ResolvedBroker, username: str, password: str) -> str:
    """The broker's AMQP URI (scheme, host, port, vhost, query) with the service's own credentials."""
    parts = urlsplit(broker.endpoint.amqp_uri.strip())
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"))


def _data(broker: ResolvedBroker, username: str, password: str) -> dict[str, bytes]:
    return {
        SECRET_URI_KEY: service_uri(broker, username, password).encode(),
        USERNAME_KEY: username.encode(),
        PASSWORD_KEY: password.encode(),
        # Always present (empty without TLS), so the pods can read it without an optional reference.
        CA_KEY: (broker.endpoint.ca_pem or "").encode(),
    }


def current_checksum(cluster: Cluster, namespace: str, service: str) -> str | None:
    """The checksum of the service's Secret as it is now (None without one). Raises ``KubeError``."""
    stored = cluster.stored_secret(namespace, service_secret_name(service))
    return _checksum(stored.data) if stored is not None and _ours(stored) else None


def _checksum(data: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(key.encode() + b"\0" + data[key] + b"\0")
    return digest.hexdigest()[:16]


def _user(
    settings: OperatorSettings,
    broker: ResolvedBroker,
    namespace: str,
    service: str,
    username: str,
    password: str,
    declared: Declarations,
) -> BrokerUser:
    permissions, topic = rights_for(
        cluster=settings.cluster,
        namespace=namespace,
        service=service,
        exchange=broker.exchange,
        subscriptions=declared.subscriptions,
        published=declared.published,
    )
    return BrokerUser(
        username=username,
        password=password,
        permissions=permissions,
        topic=topic,
        limits=UserLimits(settings.service_max_connections, settings.service_max_channels),
    )


def _retire(
    cluster: Cluster,
    namespace: str,
    name: str,
    username: str,
    broker: ResolvedBroker | None,
    brokers: BrokerFactory,
) -> CredentialsResult:
    """No declaration left: the user goes first (the credential stops working), then the Secret."""
    removed = brokers(broker).delete_user(username) if broker is not None else False
    stored = cluster.stored_secret(namespace, name)
    if stored is not None and _ours(stored):
        cluster.delete_secret(namespace, name)
        removed = True
    if broker is None:
        message = f"Secret {name} removed; user {username} left on the broker (no broker to reach)"
        return CredentialsResult(Observation(CREDENTIALS_READY, "False", USER_LEFT_BEHIND, message), removed=removed)
    message = f"user {username} and Secret {name} removed"
    return CredentialsResult(Observation(CREDENTIALS_READY, "False", REMOVED, message), removed=removed)
