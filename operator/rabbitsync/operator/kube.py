"""Reads the operator needs beyond the object a handler was given: the SyncBroker and its Secrets.

Kept apart from the handlers so that everything that can be missing is turned into one exception,
``MissingReference``, whose message names exactly what is missing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from rabbitsync.api.meta import GROUP, VERSION
from rabbitsync.api.syncbroker import RESOURCE as BROKER_RESOURCE
from rabbitsync.api.syncbroker import SyncBrokerSpec
from rabbitsync.transport.endpoint import BrokerEndpoint


class MissingReference(LookupError):
    """A SyncBroker, Secret or Secret key a subscription depends on does not exist (or may not be read).

    ``reason`` is the condition reason: ``<Kind>NotFound``, or ``<Kind>Forbidden`` when RBAC denies the
    read, which must be as visible in the status as a missing object, not a crash of the handler.
    """

    def __init__(self, kind: str, namespace: str, name: str, detail: str = "", *, forbidden: bool = False) -> None:
        self.kind, self.namespace, self.name = kind, namespace, name
        self.reason = f"{kind}Forbidden" if forbidden else f"{kind}NotFound"
        suffix = f": {detail}" if detail else ""
        what = "may not be read by the operator (RBAC)" if forbidden else "not found"
        super().__init__(f"{kind} {namespace}/{name} {what}{suffix}")


def _missing(e: ApiException, kind: str, namespace: str, name: str) -> MissingReference | None:
    if e.status == 404:
        return MissingReference(kind, namespace, name)
    if e.status == 403:
        return MissingReference(kind, namespace, name, forbidden=True)
    return None


@dataclass(frozen=True)
class ResolvedBroker:
    name: str
    exchange: str
    endpoint: BrokerEndpoint
    secret_name: str


def api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the KUBECONFIG (as kopf itself does)."""
    try:
        config.load_incluster_config()
        return client.ApiClient()
    except config.ConfigException:
        return config.new_client_from_config()


def _secret_data(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, str]:
    try:
        return core.read_namespaced_secret(name, namespace).data or {}
    except ApiException as e:
        if (missing := _missing(e, "Secret", namespace, name)) is not None:
            raise missing from e
        raise


def resolve_broker(api: client.ApiClient, namespace: str, name: str) -> ResolvedBroker:
    """The SyncBroker ``namespace/name`` with its connection details read from its Secret(s)."""
    try:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, BROKER_RESOURCE.plural, name
        )
    except ApiException as e:
        if (missing := _missing(e, "SyncBroker", namespace, name)) is not None:
            raise missing from e
        raise
    if obj["metadata"].get("deletionTimestamp"):
        # Its finalizer may keep it readable a moment longer; it must not be used for anything new.
        raise MissingReference("SyncBroker", namespace, name, "it is being deleted")
    spec = SyncBrokerSpec.model_validate(obj.get("spec", {}))
    core = client.CoreV1Api(api)
    data = _secret_data(core, namespace, spec.secret_ref.name)
    ca_pem = None
    if spec.tls is not None:
        ref = spec.tls.ca_secret_ref
        ca_data = _secret_data(core, namespace, ref.name)
        if ref.key not in ca_data:
            raise MissingReference("Secret", namespace, ref.name, f"no key {ref.key!r}")
        ca_pem = base64.b64decode(ca_data[ref.key]).decode()
    if "uri" not in data:
        raise MissingReference("Secret", namespace, spec.secret_ref.name, "no key 'uri'")
    return ResolvedBroker(
        name=name,
        exchange=spec.exchange,
        endpoint=BrokerEndpoint.from_secret_data(data, ca_pem=ca_pem),
        secret_name=spec.secret_ref.name,
    )
