"""Desired topology and the diff that plans broker changes: pure, so every rule is checked here."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from rabbitsync.api import SyncSubscriptionSpec
from rabbitsync.api.syncbroker import DEFAULT_EXCHANGE as API_DEFAULT_EXCHANGE
from rabbitsync.topology import naming
from rabbitsync.topology import sidecar_contract as consumer
from rabbitsync.topology.delivery_limit import REDELIVERY_ALLOWANCE, delivery_limit_policy
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.diff import Plan, QueueDeletion, diff, teardown
from rabbitsync.topology.model import Binding, Observed, ObservedExchange, ObservedQueue, QueueRole, Topology

pytestmark = pytest.mark.unit

EX = "rabbitsync.events"
MAIN = "rabbitsync.east.shop.orders"
RETRIES = naming.retries_exchange("east")


def _spec(**overrides: object) -> SyncSubscriptionSpec:
    body = {"service": "orders", "events": ["restaurant.created", "menu.updated"]} | overrides
    return SyncSubscriptionSpec.model_validate(body)


def _desired(**overrides: object) -> Topology:
    return desired_topology(
        cluster="east", namespace="shop", subscription="orders", spec=_spec(**overrides), exchange=EX
    )


def _observe(topology: Topology, **messages: int) -> Observed:
    """What a broker holding exactly ``topology`` would report."""
    return Observed(
        exchange=ObservedExchange(EX, "topic", True),
        queues={q.name: ObservedQueue(q.name, dict(q.arguments), messages.get(q.name, 0)) for q in topology.queues},
        bindings=topology.bindings,
        exchanges={e.name: ObservedExchange(e.name, e.type, True, dict(e.arguments)) for e in topology.exchanges},
    )


def _own(topology: Topology) -> Observed:
    """What observing ``topology``'s subscription alone reports (as its teardown does): no shared object."""
    observed = _observe(topology)
    queues = {name: q for name, q in observed.queues.items() if not naming.shared_by_cluster(name)}
    return replace(observed, queues=queues, bindings=frozenset(b for b in topology.bindings if b.queue in queues))


def test_default_exchange_names_agree() -> None:
    assert consumer.SidecarConfig().exchange == API_DEFAULT_EXCHANGE


def test_main_queue_dead_letters_to_dlq_with_at_least_once_for_quorum() -> None:
    topo = _desired()
    main = topo.main_queue
    assert main.name == MAIN
    assert main.arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": f"{MAIN}.dlq",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-delivery-limit": 5 + 20,
    }
    assert topo.dead_letter_queue.arguments == {"x-queue-type": "quorum"}


def test_classic_queues_have_no_quorum_only_arguments() -> None:
    topo = _desired(queueType="classic")
    [orphaned] = [q for q in topo.queues if q.role is QueueRole.ORPHANED_RETRIES]
    for queue in topo.queues:
        if queue is orphaned:
            continue
        assert queue.arguments["x-queue-type"] == "classic"
        assert "x-dead-letter-strategy" not in queue.arguments
        assert "x-delivery-limit" not in queue.arguments
    assert orphaned.arguments == {"x-queue-type": "quorum"}, "the cluster's, whatever this subscription's type"


def test_one_shared_delay_queue_per_distinct_backoff_step_returning_to_main_by_its_name() -> None:
    topo = _desired(retry={"maxAttempts": 6, "initialBackoffMs": 1000, "maxBackoffMs": 4000})
    # delays 1000, 2000, 4000, 4000, 4000 -> three distinct steps
    names = [naming.delay_name("east", "quorum", d) for d in (1000, 2000, 4000)]
    assert [q.name for q in topo.retry_queues] == names
    for queue, ttl in zip(topo.retry_queues, (1000, 2000, 4000), strict=True):
        assert queue.arguments["x-message-ttl"] == ttl
        assert queue.arguments["x-dead-letter-exchange"] == RETRIES
        assert "x-dead-letter-routing-key" not in queue.arguments, "each retry keeps its own: the main queue's name"
    assert {b for b in topo.bindings if b.exchange in names} == {Binding(n, n, "#") for n in names}
    assert Binding(RETRIES, MAIN, MAIN) in topo.bindings
    assert not any(b.queue.startswith(f"{MAIN}.retry.") for b in topo.bindings)


def test_a_subscription_desires_its_clusters_retries_exchange_with_the_orphaned_retries_kept_apart() -> None:
    topo = _desired(retry={"maxAttempts": 2, "initialBackoffMs": 500})
    orphaned = naming.orphaned_retries_name("east")
    delay = naming.delay_name("east", "quorum", 500)
    assert {e.name: (e.type, dict(e.arguments)) for e in topo.exchanges} == {
        delay: ("topic", {}),
        RETRIES: ("direct", {"alternate-exchange": orphaned}),
        orphaned: ("fanout", {}),
    }
    assert {q.name for q in topo.shared_queues} == {delay, orphaned}
    assert Binding(orphaned, orphaned, "") in topo.bindings
    assert {q.name for q in topo.queues if not q.role.shared} == {MAIN, f"{MAIN}.dlq"}


def test_no_retry_means_no_delay_queue() -> None:
    assert _desired(retry={"maxAttempts": 1}).retry_queues == ()


def test_delay_queue_names_match_the_consumer_contract() -> None:
    spec = _spec(retry={"maxAttempts": 4, "initialBackoffMs": 500, "maxBackoffMs": 1000})
    contract = consumer.for_subscription(cluster="east", namespace="shop", subscription="orders", spec=spec)
    topo = _desired(retry={"maxAttempts": 4, "initialBackoffMs": 500, "maxBackoffMs": 1000})
    assert contract.queue == topo.main_queue.name
    assert contract.dead_letter_queue == topo.dead_letter_queue.name
    used = {contract.retry_queue(attempt) for attempt in range(1, contract.max_attempts)}
    assert used == {q.name for q in topo.retry_queues}


def test_one_binding_per_event_type_keyed_by_the_namespace_and_one_for_snapshots_to_this_queue() -> None:
    assert {b for b in _desired().bindings if b.exchange == EX} == {
        Binding(EX, MAIN, "shop.restaurant.created"),
        Binding(EX, MAIN, "shop.menu.updated"),
        Binding(EX, MAIN, f"shop.#.@backfill.{MAIN}"),
    }


def test_the_same_namespace_in_two_clusters_binds_the_same_keys_other_namespaces_do_not() -> None:
    def keys(cluster: str, namespace: str) -> set[str]:
        topo = desired_topology(cluster=cluster, namespace=namespace, subscription="orders", spec=_spec(), exchange=EX)
        # Snapshot bindings name the queue, hence the cluster: only the live keys are shared.
        return {b.routing_key for b in topo.bindings if b.exchange == EX and "@backfill" not in b.routing_key}

    assert keys("east", "shop") == keys("west", "shop")
    assert not keys("east", "shop") & keys("east", "staging")


def test_a_queue_bound_with_the_bare_types_of_an_older_release_is_rebound() -> None:
    topo = _desired()
    observed = _observe(topo)
    bare = frozenset({Binding(EX, MAIN, "restaurant.created"), Binding(EX, MAIN, "menu.updated")})
    events = frozenset(b for b in topo.bindings if b.exchange == EX)
    plan = diff(topo, replace(observed, bindings=bare | (topo.bindings - events)))
    assert set(plan.unbind) == bare
    assert set(plan.bind) == events
    assert not plan.declare_queues and not plan.delete_queues and not plan.conflicts


def test_clusters_get_distinct_queues() -> None:
    west = desired_topology(cluster="west", namespace="shop", subscription="orders", spec=_spec(), exchange=EX)
    assert not {q.name for q in west.queues} & {q.name for q in _desired().queues}


def test_empty_broker_declares_everything() -> None:
    topo = _desired()
    plan = diff(topo, Observed(exchange=None, queues={}, bindings=frozenset()))
    assert plan.declare_exchange == EX
    assert plan.declare_exchanges == topo.exchanges
    assert {q.name for q in plan.declare_queues} == {q.name for q in topo.queues}
    assert set(plan.bind) == topo.bindings
    assert not plan.unbind and not plan.delete_queues and not plan.conflicts


def test_in_sync_is_an_empty_plan() -> None:
    topo = _desired()
    plan = diff(topo, _observe(topo))
    assert plan.empty and plan == Plan()


def test_queue_and_binding_deleted_out_of_band_are_restored() -> None:
    topo = _desired()
    observed = _observe(topo)
    dlq = topo.dead_letter_queue.name
    broken = replace(
        observed,
        queues={k: v for k, v in observed.queues.items() if k != dlq},
        bindings=observed.bindings - {Binding(EX, MAIN, "shop.menu.updated")},
    )
    plan = diff(topo, broken)
    assert [q.name for q in plan.declare_queues] == [dlq]
    assert plan.bind == (Binding(EX, MAIN, "shop.menu.updated"),)
    assert plan.describe() == [
        f"declared queue {dlq}",
        f"bound binding {EX} -> {MAIN} (shop.menu.updated)",
    ]


def test_changing_events_binds_and_unbinds_exactly_the_difference() -> None:
    before = _desired(events=["a", "b", "c"])
    after = _desired(events=["b", "c", "d"])
    plan = diff(after, _observe(before))
    assert plan.bind == (Binding(EX, MAIN, "shop.d"),)
    assert plan.unbind == (Binding(EX, MAIN, "shop.a"),)
    assert not plan.declare_queues and not plan.delete_queues


def test_bindings_from_another_exchange_to_our_queue_are_removed() -> None:
    topo = _desired()
    observed = _observe(topo)
    stray = Binding("old.exchange", MAIN, "restaurant.created")
    plan = diff(topo, replace(observed, bindings=observed.bindings | {stray}))
    assert plan.unbind == (stray,)


def test_an_older_releases_own_delay_queues_are_retired_only_if_empty() -> None:
    """The migration: a subscription's ``<queue>.retry.<d>ms`` is desired no more, whatever its delay."""
    topo = _desired(retry={"maxAttempts": 3, "initialBackoffMs": 1000, "maxBackoffMs": 2000})
    observed = _observe(topo)
    names = {delay: naming.retry_queue_name(MAIN, delay) for delay in (1000, 2000)}
    # One still holding messages: the admin checks emptiness right before the delete.
    legacy = {
        name: ObservedQueue(name, {"x-queue-type": "quorum", "x-message-ttl": delay}, messages=delay // 1000 - 1)
        for delay, name in names.items()
    }
    plan = diff(topo, replace(observed, queues={**observed.queues, **legacy}))
    assert plan.delete_queues == tuple(QueueDeletion(name, if_empty=True) for name in sorted(legacy))
    assert not plan.declare_queues and not plan.declare_exchanges and not plan.repairs and not plan.conflicts


def test_a_schedule_change_declares_the_new_steps_and_deletes_no_shared_queue() -> None:
    old = _desired(retry={"maxAttempts": 3, "initialBackoffMs": 1000, "maxBackoffMs": 2000})
    new = _desired(retry={"maxAttempts": 3, "initialBackoffMs": 500, "maxBackoffMs": 1000})
    plan = diff(new, _observe(old))
    delay = naming.delay_name("east", "quorum", 500)
    assert [q.name for q in plan.declare_queues] == [delay]
    assert [e.name for e in plan.declare_exchanges] == [delay]
    assert plan.bind == (Binding(delay, delay, "#"),)
    assert not plan.delete_queues, "another subscription may still retry after 2000 ms"


def test_changed_arguments_are_a_conflict_not_a_redeclare() -> None:
    topo = _desired()
    observed = _observe(topo)
    own = (topo.main_queue.name, topo.dead_letter_queue.name)
    classic = {name: ObservedQueue(name, {"x-queue-type": "classic"}) for name in own}
    plan = diff(topo, replace(observed, queues={**observed.queues, **classic}))
    assert not plan.declare_queues
    assert {c.name for c in plan.conflicts} == {f"queue {name}" for name in own}
    assert plan.empty, "conflicts are reported, never acted on"


def test_missing_shared_exchanges_are_declared_before_anything_is_bound_to_them() -> None:
    topo = _desired(retry={"maxAttempts": 2, "initialBackoffMs": 500})
    observed = _observe(topo)
    delay = naming.delay_name("east", "quorum", 500)
    plan = diff(topo, replace(observed, exchanges={n: e for n, e in observed.exchanges.items() if n != delay}))
    assert [e.name for e in plan.declare_exchanges] == [delay] and plan.repairs
    assert plan.describe() == [f"declared exchange {delay}"]
    assert not plan.declare_queues and not plan.conflicts


@pytest.mark.parametrize(
    "found",
    [
        ObservedExchange(RETRIES, "topic", True, {"alternate-exchange": naming.orphaned_retries_name("east")}),
        ObservedExchange(RETRIES, "direct", True, {}),
        ObservedExchange(RETRIES, "direct", True, {"alternate-exchange": "elsewhere"}),
        ObservedExchange(RETRIES, "direct", False, {"alternate-exchange": naming.orphaned_retries_name("east")}),
    ],
    ids=["type", "no-alternate", "other-alternate", "transient"],
)
def test_a_shared_exchange_of_another_type_or_arguments_is_a_conflict_never_redeclared(
    found: ObservedExchange,
) -> None:
    topo = _desired()
    observed = _observe(topo)
    plan = diff(topo, replace(observed, exchanges={**observed.exchanges, RETRIES: found}))
    [conflict] = plan.conflicts
    assert conflict.name == f"exchange {RETRIES}"
    assert conflict.desired == {
        "type": "direct",
        "durable": True,
        "arguments": {"alternate-exchange": naming.orphaned_retries_name("east")},
    }
    assert conflict.observed == {"type": found.type, "durable": found.durable, "arguments": dict(found.arguments)}
    assert plan.empty and not plan.declare_exchanges


def test_exchange_of_the_wrong_type_is_a_conflict_and_never_deleted() -> None:
    topo = _desired()
    observed = _observe(topo)
    plan = diff(topo, Observed(ObservedExchange(EX, "fanout", True), observed.queues, observed.bindings))
    assert [c.name for c in plan.conflicts] == [f"exchange {EX}"]
    assert plan.declare_exchange is None


def test_teardown_deletes_our_queues_but_not_the_exchange() -> None:
    topo = _desired()
    plan = teardown(_own(topo))
    assert {d.name for d in plan.delete_queues} == {MAIN, f"{MAIN}.dlq"}
    assert all(not d.if_empty for d in plan.delete_queues)
    assert plan.declare_exchange is None and not plan.unbind


def test_teardown_never_deletes_a_shared_queue_even_when_observed_with_them() -> None:
    plan = teardown(_observe(_desired()))
    assert {d.name for d in plan.delete_queues} == {MAIN, f"{MAIN}.dlq"}


def _with(observed: Observed, limit: int | None = None, policy: int | None = None) -> Observed:
    """``observed`` with its main queue declared with delivery limit ``limit`` (``None``: an older release's
    queue, without the argument) and a delivery-limit policy of ``policy`` (``None``: none)."""
    arguments = {k: v for k, v in observed.queues[MAIN].arguments.items() if k != "x-delivery-limit"}
    if limit is not None:
        arguments["x-delivery-limit"] = limit
    queues = {**observed.queues, MAIN: ObservedQueue(MAIN, arguments)}
    policies = {MAIN: delivery_limit_policy(MAIN, policy)} if policy is not None else {}
    return replace(observed, queues=queues, policies=policies)


def test_a_quorum_main_queue_is_declared_with_its_delivery_limit_and_needs_no_policy() -> None:
    """Issue 11: an argument, not one policy per queue (every policy PUT re-matches the whole vhost)."""
    topo = _desired(retry={"maxAttempts": 7})
    assert topo.main_queue.arguments["x-delivery-limit"] == 7 + REDELIVERY_ALLOWANCE
    assert all("x-delivery-limit" not in q.arguments for q in (*topo.retry_queues, topo.dead_letter_queue))
    fresh = Observed(exchange=ObservedExchange(EX, "topic", True), queues={}, bindings=frozenset())
    assert not diff(topo, fresh).put_policies, "a queue declared now carries the argument"
    assert diff(topo, _observe(topo)).empty


def test_an_older_releases_queue_keeps_its_policy_and_teardown_removes_it() -> None:
    """A queue declared without the argument cannot get it: its policy stays, put again if it went missing."""
    topo = _desired(retry={"maxAttempts": 7})
    legacy = _with(_observe(topo), limit=None, policy=7 + REDELIVERY_ALLOWANCE)
    assert diff(topo, legacy).empty, "not a conflict, and its policy is still needed"
    plan = diff(topo, _with(legacy, limit=None, policy=None))
    [policy] = plan.put_policies
    assert policy.name == MAIN and policy.apply_to == "queues"
    assert policy.definition == {"delivery-limit": 7 + REDELIVERY_ALLOWANCE}
    matched = [q.name for q in topo.queues if re.fullmatch(policy.pattern, q.name)]
    assert matched == [MAIN], "only the main queue: the DLQ has nowhere to dead-letter to"
    assert not re.fullmatch(policy.pattern, MAIN.replace(".", "x"))
    assert not plan.conflicts and not plan.amqp_work
    assert teardown(legacy).delete_policies == (MAIN,)


def test_fewer_attempts_lower_the_declared_limit_by_policy_and_more_keep_it() -> None:
    declared = _observe(_desired(retry={"maxAttempts": 10}))
    lower = diff(_desired(retry={"maxAttempts": 2}), declared)
    assert [p.definition for p in lower.put_policies] == [{"delivery-limit": 2 + REDELIVERY_ALLOWANCE}]
    assert not lower.conflicts and MAIN not in {q.name for q in lower.declare_queues}
    higher = diff(_desired(retry={"maxAttempts": 20}), declared)
    assert not higher.put_policies and not higher.conflicts, "a policy cannot raise the limit: it stays"


def test_a_policy_no_longer_needed_is_deleted() -> None:
    """Back to at least the declared limit, or an older release's policy left on a queue declared anew."""
    topo = _desired(retry={"maxAttempts": 10})
    lowered_before = _with(_observe(topo), limit=10 + REDELIVERY_ALLOWANCE, policy=2 + REDELIVERY_ALLOWANCE)
    assert diff(topo, lowered_before).delete_policies == (MAIN,)
    queue_gone = replace(lowered_before, queues={}, bindings=frozenset())
    plan = diff(topo, queue_gone)
    assert plan.delete_policies == (MAIN,) and not plan.put_policies
    assert MAIN in {q.name for q in plan.declare_queues}


def test_a_main_queue_in_conflict_keeps_its_policy_untouched() -> None:
    classic = _with(_observe(_desired(queueType="classic")), limit=None, policy=25)
    plan = diff(_desired(), classic)
    assert f"queue {MAIN}" in {c.name for c in plan.conflicts}
    assert not plan.put_policies and not plan.delete_policies
