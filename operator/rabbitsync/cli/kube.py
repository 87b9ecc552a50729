"""The clusters named on the command line, and what the CLI reads from them: the one Kubernetes client user.

``--kubeconfig`` and ``--context`` are repeatable and pair up into clusters (:func:`targets`). Each
cluster is read with the caller's own credentials: SyncSubscriptions and SyncPublications in every
namespace, a SyncBroker or ClusterSyncBroker and its Secrets when the broker is needed (a
ClusterSyncBroker's are in the operator's namespace: ``RABBITSYNC_OPERATOR_NAMESPACE``, else
rabbitsync-system). A failure of the client comes out as :class:`~rabbitsync.cli.failures.InCluster`
(worded by ``failures``, with the cluster's name), except
the "not found" answers this module turns into ``None``.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rabbitsync.api import GROUP, VERSION
from rabbitsync.api.clustersyncbroker import DEFAULT_OPERATOR_NAMESPACE
from rabbitsync.api.clustersyncbroker import RESOURCE as CLUSTER_BROKERS
from rabbitsync.api.syncbroker import DEFAULT_CA_KEY
from rabbitsync.api.syncbroker import RESOURCE as BROKERS
from rabbitsync.api.syncpublication import RESOURCE as PUBLICATIONS
from rabbitsync.api.syncsubscription import RESOURCE as SUBSCRIPTIONS
from rabbitsync.cli.failures import CliError, InCluster, UsageError, explain
from rabbitsync.cli.resources import PUBLICATION, SUBSCRIPTION, Resource, parse
from rabbitsync.conventions import SECRET_MANAGEMENT_URI_KEY, SECRET_URI_KEY, service_secret_name
from rabbitsync.transport import BrokerEndpoint

_T = TypeVar("_T")

PLURALS = {SUBSCRIPTION: SUBSCRIPTIONS.plural, PUBLICATION: PUBLICATIONS.plural}
"""SyncPublication (short name ``spub``) is newer than some clusters: its absence is not an error."""


@dataclass(frozen=True)
class Target:
    """One cluster as named on the command line: a kubeconfig file (None: the default) and a context."""

    kubeconfig: str | None
    context: str | None


def targets(kubeconfigs: Sequence[str], contexts: Sequence[str]) -> list[Target]:
    """Pair the repeated flags: equal counts zip; one of a kind goes with each of the other."""
    files, names = list(kubeconfigs), list(contexts)
    if not files and not names:
        return [Target(None, None)]
    if not names:
        return [Target(f, None) for f in files]
    if not files:
        return [Target(None, n) for n in names]
    if len(files) == len(names):
        return [Target(f, n) for f, n in zip(files, names, strict=True)]
    if len(files) == 1:
        return [Target(files[0], n) for n in names]
    raise UsageError(
        f"{len(files)} --kubeconfig and {len(names)} --context: give one of each per cluster, "
        "or one kubeconfig with several contexts"
    )


class Cluster(Protocol):
    """What the subcommands read from one cluster (:class:`KubeCluster`; a fake in tests)."""

    label: str

    def resources(self, kind: str) -> list[Resource] | None:
        """Every object of ``kind`` in every namespace; ``None`` when the cluster lacks its CRD."""
        ...

    def subscription(self, namespace: str, name: str) -> Resource | None: ...

    def brokers(self) -> list[tuple[str, str]]:
        """(namespace, name) of every SyncBroker, then ("", name) of every ClusterSyncBroker."""
        ...

    def broker_endpoint(self, namespace: str, broker: str) -> BrokerEndpoint:
        """Where the SyncBroker (namespace "": ClusterSyncBroker) ``broker`` says the broker is, with its Secrets."""
        ...

    def service_endpoint(self, namespace: str, service: str) -> BrokerEndpoint | None:
        """The service's own broker identity (its ``rabbitsync-<service>`` Secret), if the operator made one."""
        ...

    def annotate_subscription(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Set ``annotations`` on a SyncSubscription (a merge patch: others stay)."""
        ...


class KubeCluster:
    def __init__(self, label: str, api: client.ApiClient, operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE) -> None:
        self.label = label
        self.operator_namespace = operator_namespace
        """Where ClusterSyncBrokers' Secrets are (the operator's namespace)."""
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)

    def resources(self, kind: str) -> list[Resource] | None:
        found = self._unless_absent(lambda: self._list(PLURALS[kind]))
        return None if found is None else [parse(kind, self.label, obj) for obj in found.get("items", [])]

    def subscription(self, namespace: str, name: str) -> Resource | None:
        obj = self._get(namespace, SUBSCRIPTIONS.plural, name)
        return parse(SUBSCRIPTION, self.label, obj) if obj is not None else None

    def brokers(self) -> list[tuple[str, str]]:
        found = self._list(BROKERS.plural)
        namespaced = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in found.get("items", [])]
        # None: a cluster whose CRDs predate ClusterSyncBroker.
        shared = self._unless_absent(lambda: self._list(CLUSTER_BROKERS.plural)) or {}
        return namespaced + [("", o["metadata"]["name"]) for o in shared.get("items", [])]

    def broker_endpoint(self, namespace: str, broker: str) -> BrokerEndpoint:
        obj = self._get(namespace, BROKERS.plural if namespace else CLUSTER_BROKERS.plural, broker)
        secrets_in = namespace or self.operator_namespace
        what = f"SyncBroker {namespace}/{broker}" if namespace else f"ClusterSyncBroker {broker}"
        if obj is None:
            raise UsageError(f"{self.label}: {what} not found (or pass --amqp-url)")
        spec = obj.get("spec") or {}
        secret = self._secret(secrets_in, spec["secretRef"]["name"])
        if SECRET_URI_KEY not in secret:
            raise UsageError(
                f"{self.label}: Secret {secrets_in}/{spec['secretRef']['name']} has no key {SECRET_URI_KEY}"
            )
        ca_ref = ((spec.get("tls") or {}).get("caSecretRef")) or None
        ca = self._secret(secrets_in, ca_ref["name"]).get(ca_ref.get("key", "ca.crt")) if ca_ref else None
        return BrokerEndpoint(secret[SECRET_URI_KEY], secret.get(SECRET_MANAGEMENT_URI_KEY), ca)

    def service_endpoint(self, namespace: str, service: str) -> BrokerEndpoint | None:
        secret = self._unless_absent(lambda: self._secret(namespace, service_secret_name(service)))
        if secret is None or SECRET_URI_KEY not in secret:
            return None
        return BrokerEndpoint(secret[SECRET_URI_KEY], None, secret.get(DEFAULT_CA_KEY) or None)

    def annotate_subscription(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        with self._talking():
            self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, SUBSCRIPTIONS.plural, name, {"metadata": {"annotations": annotations}}
            )

    @contextmanager
    def _talking(self) -> Iterator[None]:
        """Name this cluster in any failure of the calls in the block."""
        try:
            yield
        except (ApiException, HTTPError) as e:
            raise InCluster(self.label, e) from e

    def _list(self, plural: str) -> dict[str, Any]:
        with self._talking():
            return cast(dict[str, Any], self._custom.list_cluster_custom_object(GROUP, VERSION, plural))

    def _get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        """The object, or None if absent; ``namespace`` "" for a cluster-scoped kind."""

        def get() -> dict[str, Any]:
            if namespace:
                return cast(
                    dict[str, Any], self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
                )
            return cast(dict[str, Any], self._custom.get_cluster_custom_object(GROUP, VERSION, plural, name))

        return self._unless_absent(get)

    def _unless_absent(self, call: Callable[[], _T]) -> _T | None:
        """``call``'s answer, or None for the API server's 404 (no such object, or no such CRD)."""
        try:
            with self._talking():
                return call()
        except InCluster as e:
            if _not_found(e):
                return None
            raise

    def _secret(self, namespace: str, name: str) -> dict[str, str]:
        with self._talking():
            data = self._core.read_namespaced_secret(name, namespace).data or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}


def syncbroker_endpoints(
    clusters: Sequence[Cluster], identity: Callable[[BrokerEndpoint], Hashable]
) -> list[BrokerEndpoint]:
    """Every (Cluster)SyncBroker's endpoint in ``clusters``, one per ``identity`` (two clusters share one broker).

    One whose resource or Secrets cannot be read (e.g. no right to read the operator's namespace) is
    left out with a note on stderr rather than failing the command: it must not hide the others.
    """
    found: dict[Hashable, BrokerEndpoint] = {}
    for cluster in clusters:
        for namespace, name in cluster.brokers():
            try:
                endpoint = cluster.broker_endpoint(namespace, name)
            except CliError as e:
                what = f"SyncBroker {namespace}/{name}" if namespace else f"ClusterSyncBroker {name}"
                print(f"rabbitsync: note: {what} left out: {explain(e)[0]}", file=sys.stderr)
                continue
            found.setdefault(identity(endpoint), endpoint)
    return list(found.values())


def _not_found(error: InCluster) -> bool:
    return isinstance(error.__cause__, ApiException) and error.__cause__.status == 404


def connect(chosen: Sequence[Target]) -> list[Cluster]:
    """A client per target, labelled by its context; nothing is contacted yet."""
    clusters: list[Cluster] = []
    for target in chosen:
        if target.kubeconfig and not Path(target.kubeconfig).is_file():
            raise UsageError(f"--kubeconfig {target.kubeconfig}: no such file")
    labels = [_label(t) for t in chosen]
    for target, label in zip(chosen, labels, strict=True):
        if labels.count(label) > 1 and target.kubeconfig:
            label = f"{label}@{Path(target.kubeconfig).stem}"
        api = cast(
            client.ApiClient,
            config.new_client_from_config(config_file=target.kubeconfig, context=target.context),  # type: ignore[no-untyped-call]
        )
        clusters.append(
            KubeCluster(label, api, os.environ.get("RABBITSYNC_OPERATOR_NAMESPACE") or DEFAULT_OPERATOR_NAMESPACE)
        )
    return clusters


def _label(target: Target) -> str:
    if target.context:
        return target.context
    _contexts, active = config.list_kube_config_contexts(config_file=target.kubeconfig)  # type: ignore[no-untyped-call]
    return str(active["name"])
