"""Who publishes and who consumes each event type, per cluster, and the parity problems: pure.

Built from SyncPublications, SyncSubscriptions and (when the management API is reachable) the queue
names on the broker. An event type belongs to a namespace: the same namespace name in two clusters
is one sync domain, so a type is "published" when any cluster publishes it in that namespace.

Parity problems found:

- ``one-cluster``: a service consumes (or publishes) a type in some of the clusters given, not all;
  with two clusters that share data, the other cluster's copy silently stops converging.
- ``not-published``: a type is consumed but no SyncPublication declares it (checked only when at
  least one cluster has the SyncPublication CRD: without it, publishers are unknown).
- ``not-consumed``: a type is published but nobody consumes it (same condition).
- ``unowned-queue``: a queue named ``rabbitsync.<cluster>.<namespace>.…`` for a cluster given that no
  SyncSubscription owns: left behind by ``deletionPolicy: retain``, a renamed cluster or a hand.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rabbitsync.cli.resources import PUBLICATION, SUBSCRIPTION, Resource
from rabbitsync.topology import naming

Role = Literal["publishes", "consumes"]


@dataclass(frozen=True, order=True)
class Edge:
    """``service`` in ``cluster`` publishes or consumes ``event_type`` of ``namespace``."""

    namespace: str
    event_type: str
    cluster: str
    service: str
    role: Role


@dataclass(frozen=True, order=True)
class Problem:
    kind: str
    namespace: str
    subject: str
    """The event type, service or queue the problem is about."""
    detail: str


@dataclass(frozen=True)
class Topology:
    clusters: tuple[str, ...]
    edges: tuple[Edge, ...]
    publications_known: bool
    unowned_queues: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = field(default=())

    def event_types(self) -> list[tuple[str, str]]:
        """(namespace, type) of every event type any edge mentions, sorted."""
        return sorted({(e.namespace, e.event_type) for e in self.edges})

    def services_in(self, cluster: str) -> list[tuple[str, str]]:
        """(namespace, service) of everything that publishes or consumes in ``cluster``."""
        return sorted({(e.namespace, e.service) for e in self.edges if e.cluster == cluster})

    def services(self, namespace: str, event_type: str, role: Role) -> list[tuple[str, str]]:
        """(cluster, service) publishing or consuming one type."""
        return sorted(
            {
                (e.cluster, e.service)
                for e in self.edges
                if (e.namespace, e.event_type, e.role) == (namespace, event_type, role)
            }
        )


def edges(resources: Iterable[Resource]) -> list[Edge]:
    role: dict[str, Role] = {SUBSCRIPTION: "consumes", PUBLICATION: "publishes"}
    return sorted(
        {
            Edge(r.namespace, t, r.cluster, r.service, role[r.kind])
            for r in resources
            if r.kind in role
            for t in r.events
        }
    )


def one_cluster(found: Sequence[Edge], clusters: Sequence[str]) -> list[Problem]:
    if len(clusters) < 2:
        return []
    where: dict[tuple[str, str, str, Role], set[str]] = defaultdict(set)
    for e in found:
        where[(e.namespace, e.service, e.event_type, e.role)].add(e.cluster)
    problems = []
    for (namespace, service, event_type, role), present in sorted(where.items()):
        missing = [c for c in clusters if c not in present]
        if missing:
            problems.append(
                Problem(
                    "one-cluster",
                    namespace,
                    service,
                    f"{service} {role} {event_type} in {', '.join(sorted(present))} but not in {', '.join(missing)}",
                )
            )
    return problems


def one_sided(found: Sequence[Edge]) -> list[Problem]:
    """Types consumed but published by nobody, and published but consumed by nobody."""
    roles: dict[tuple[str, str], set[Role]] = defaultdict(set)
    for e in found:
        roles[(e.namespace, e.event_type)].add(e.role)
    problems = []
    for (namespace, event_type), present in sorted(roles.items()):
        if present == {"consumes"}:
            problems.append(
                Problem("not-published", namespace, event_type, f"{event_type} is consumed, published by nobody")
            )
        elif present == {"publishes"}:
            problems.append(
                Problem("not-consumed", namespace, event_type, f"{event_type} is published, consumed by nobody")
            )
    return problems


def unowned_queues(
    queues: Iterable[str], subscriptions: Iterable[Resource], broker_clusters: Mapping[str, str], namespace: str | None
) -> list[str]:
    """Queues of the given clusters (by their broker-side names) that no subscription owns.

    A subscription owns its main queue, its DLQ, its backfill status queue and every delay queue of its
    main queue an older release declared (the operator removes those itself once empty). A service's
    backfill request queue and the queues a cluster's subscriptions share (delay queues, orphaned
    retries) are no subscription's, and not reported.
    """
    owned: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for s in subscriptions:
        cluster = broker_clusters.get(s.cluster, s.cluster)
        owned |= s.owned_queues(cluster)
        patterns.append(re.compile(naming.owned_queue_pattern(naming.queue_name(cluster, s.namespace, s.name))))
    prefixes = tuple(f"{naming.PREFIX}.{c}.{namespace + '.' if namespace else ''}" for c in broker_clusters.values())
    return sorted(
        q
        for q in queues
        if q.startswith(prefixes)
        and not q.endswith(naming.BACKFILL_REQUESTS_SUFFIX)
        and not naming.shared_by_cluster(q)
        and q not in owned
        and not any(p.match(q) for p in patterns)
    )


def broker_cluster_names(resources: Iterable[Resource], labels: Sequence[str]) -> dict[str, str]:
    """Each cluster label's name on the broker: read from a reconciled status, else the label itself."""
    names = {label: label for label in labels}
    for r in resources:
        if r.broker_cluster:
            names[r.cluster] = r.broker_cluster
    return names


def build(
    resources: Sequence[Resource],
    clusters: Sequence[str],
    *,
    publications_known: bool,
    queues: Sequence[str] | None = None,
    namespace: str | None = None,
) -> Topology:
    """The picture and its problems; ``queues`` is None when the broker could not be listed."""
    found = edges(resources)
    problems = one_cluster(found, clusters)
    if publications_known:
        problems += one_sided(found)
    unowned: list[str] = []
    if queues is not None:
        subscriptions = [r for r in resources if r.kind == SUBSCRIPTION]
        names = broker_cluster_names(resources, clusters)
        unowned = unowned_queues(queues, subscriptions, names, namespace)
        for q in unowned:
            problems.append(
                Problem("unowned-queue", _queue_namespace(q, names.values()), q, f"no SyncSubscription owns {q}")
            )
    return Topology(
        clusters=tuple(clusters),
        edges=tuple(found),
        publications_known=publications_known,
        unowned_queues=tuple(unowned),
        problems=tuple(sorted(problems)),
    )


def _queue_namespace(queue: str, broker_clusters: Iterable[str]) -> str:
    for cluster in broker_clusters:
        head = f"{naming.PREFIX}.{cluster}."
        if queue.startswith(head):
            return queue[len(head) :].split(".", 1)[0]
    return ""
