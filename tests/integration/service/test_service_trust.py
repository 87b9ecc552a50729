"""The shared broker as a trust boundary, through a real sidecar, a real broker and a real database.

Each service logs in as its own broker user (``conftest``); RabbitMQ vouches for the ``user_id`` of
every message. What must hold: a forged ``source`` or an event nobody vouches for is dead-lettered
with the reason and never applied; so is anything pushed straight into the queue (default exchange),
or routed into it through the cluster's shared delay queues, by anyone but the sidecar's own user;
two namespaces on one broker never receive each other's events; and no broker password reaches a
log line.
"""

from __future__ import annotations

import pytest
from conftest import CLUSTER, NAMESPACE, PUBLISHING, make_spec, publish, user_url, wait_until

from rabbitsync.conventions import broker_username, routing_key
from rabbitsync.events import Origin, encode, new_event
from rabbitsync.events.headers import PUBLISHER
from rabbitsync.sidecar import routing, trust
from rabbitsync.topology import naming

pytestmark = pytest.mark.integration

MENU = Origin("c2", NAMESPACE, "menu")
ATTACKER = Origin("c2", NAMESPACE, "attacker")


def effects(event_id: str) -> int:
    from svcapp.models import Effect

    return Effect.objects.filter(event_id=event_id).count()


def dead_letters(service, spec) -> dict[str, dict[str, object]]:
    """The dead-letter queue's messages (taken off it) by message id: their headers."""
    return {props.message_id: props.headers for props, _body in service.take(spec.dead_letter_queue)}


def test_a_forged_source_and_an_unvouched_event_are_dead_lettered_not_applied(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec).wait_ready()
    forged = new_event(type="svc.effect", origin=MENU, data={}, subject="forged")
    unvouched = new_event(type="svc.effect", origin=MENU, data={}, subject="no user_id")
    genuine = new_event(type="svc.effect", origin=MENU, data={}, subject="genuine")
    # The attacker's own credentials, menu's source; the broker accepts it, the sidecar must not.
    service.send_event(forged, sender=ATTACKER)
    publish(
        user_url(service.identities, MENU),
        service.exchange,
        routing_key(NAMESPACE, "svc.effect"),
        encode(unvouched),
        unvouched.id,
        None,
    )
    service.send_event(genuine)

    wait_until(lambda: effects(genuine.id) == 1, 10, "the genuine event behind the refused ones")
    wait_until(lambda: service.depth(spec.dead_letter_queue) == 2, 10, "both refused events dead-lettered")
    dead = dead_letters(service, spec)
    assert dead[forged.id][routing.REASON] == trust.FORGED_SOURCE
    assert dead[forged.id][PUBLISHER] == broker_username(*ATTACKER)
    assert broker_username(*ATTACKER) in str(dead[forged.id][routing.EXCEPTION_MESSAGE])
    assert dead[unvouched.id][routing.REASON] == trust.UNAUTHENTICATED
    assert PUBLISHER not in dead[unvouched.id]
    assert all(headers[routing.ATTEMPTS] == 1 for headers in dead.values()), "never retried"
    assert effects(forged.id) == effects(unvouched.id) == 0
    assert sidecar.metric("rabbitsync_retried_total") == 0
    wait_until(lambda: sidecar.metric("rabbitsync_dead_lettered_total") == 2, 5, "the acks of the refused")
    assert '"reason": "forged-source"' in sidecar.logs()


@pytest.mark.parametrize("event_type", ["svc.effect", "svc.broken"])
def test_a_genuine_event_pushed_straight_into_the_queue_is_dead_lettered(service, uid, sidecars, event_type):
    """Publishing to the default exchange is one permission for every queue: a service holding it (they
    all do, for their retries) could skip the bindings and its topic permissions. Listed type or not,
    genuine source or not, only our own user may come in that way."""
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec).wait_ready()
    pushed = new_event(type=event_type, origin=MENU, data={}, subject="pushed into the queue")
    publish(user_url(service.identities, MENU), "", spec.queue, encode(pushed), pushed.id, broker_username(*MENU))
    routed = new_event(type="svc.effect", origin=MENU, data={}, subject="through the exchange")
    service.send_event(routed)
    wait_until(lambda: effects(routed.id) == 1, 10, "the same publisher's event through the exchange applied")
    wait_until(lambda: service.depth(spec.dead_letter_queue) == 1, 10, "the pushed event dead-lettered")
    [headers] = dead_letters(service, spec).values()
    assert headers[routing.REASON] == trust.DEFAULT_EXCHANGE
    assert headers[routing.ATTEMPTS] == 1
    assert sidecar.metric("rabbitsync_retried_total") == 0
    assert effects(pushed.id) == 0


@pytest.mark.parametrize("event_type", ["svc.effect", "svc.broken"])
def test_a_genuine_event_routed_through_a_shared_delay_queue_is_dead_lettered(service, uid, sidecars, event_type):
    """Every consuming service may publish into its cluster's delay exchanges (its retries go there),
    with any routing key: one could name our queue and have the broker dead-letter its event into it,
    past the bindings and its topic permissions. It comes back through the retries exchange with the
    publisher's user, not ours: refused, whatever its type."""
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec).wait_ready()
    pushed = new_event(type=event_type, origin=MENU, data={}, subject="through a delay queue")
    delay = naming.delay_name(CLUSTER, "quorum", spec.retry_delays_ms[0])
    publish(user_url(service.identities, MENU), delay, spec.queue, encode(pushed), pushed.id, broker_username(*MENU))
    routed = new_event(type="svc.effect", origin=MENU, data={}, subject="through the exchange")
    service.send_event(routed)
    wait_until(lambda: effects(routed.id) == 1, 10, "the same publisher's event through the exchange applied")
    wait_until(lambda: service.depth(spec.dead_letter_queue) == 1, 10, "the event from the delay queue dead-lettered")
    [headers] = dead_letters(service, spec).values()
    assert headers[routing.REASON] == trust.FOREIGN_RETRY
    assert headers[routing.ATTEMPTS] == 1
    assert sidecar.metric("rabbitsync_retried_total") == 0
    assert effects(pushed.id) == 0


def test_two_namespaces_with_the_same_types_on_one_broker_never_see_each_others_events(service, uid, sidecars):
    other = f"{NAMESPACE}-other"
    here = service.declare(make_spec(uid, ["svc.effect"], name="here"))
    there = service.declare(make_spec(uid, ["svc.effect"], name="there", namespace=other), namespace=other)
    sidecar_here = sidecars(here).wait_ready()
    sidecar_there = sidecars(
        there,
        RABBITSYNC_NAMESPACE=other,
        RABBITSYNC_AMQP_URL=user_url(service.identities, Origin(CLUSTER, other, "publisher")),
    ).wait_ready()
    mine = new_event(type="svc.effect", origin=MENU, data={}, subject="here")
    theirs = new_event(type="svc.effect", origin=Origin("c2", other, "menu"), data={}, subject="there")
    service.send_event(mine)
    service.send_event(theirs)

    wait_until(lambda: effects(mine.id) == 1 and effects(theirs.id) == 1, 10, "each namespace's event")
    assert sidecar_here.metric("rabbitsync_applied_total") == sidecar_there.metric("rabbitsync_applied_total") == 1
    assert sidecar_here.metric("rabbitsync_consumed_total") == sidecar_there.metric("rabbitsync_consumed_total") == 1
    assert service.depth(here.dead_letter_queue) == service.depth(there.dead_letter_queue) == 0


def test_the_relay_publishes_in_its_namespace_only(service, uid):
    from django.db import transaction

    from rabbitsync.django import publish as publish_event

    here = service.declare(make_spec(uid, ["svc.effect"], name="here"))
    there = service.declare(make_spec(uid, ["svc.effect"], name="there", namespace="elsewhere"), namespace="elsewhere")
    with transaction.atomic():
        event = publish_event("svc.effect", {}, subject="namespaced")
    wait_until(lambda: service.depth(here.queue) == 1, 10, "the event in its namespace's queue")
    [(props, _body)] = service.take(here.queue)
    assert (props.message_id, props.type, props.user_id) == (event.id, "svc.effect", broker_username(*PUBLISHING))
    assert service.depth(there.queue) == 0


def test_retries_and_replays_by_the_service_keep_the_publisher_a_strangers_replay_does_not(service, uid, sidecars):
    """The sidecar's own copies (retry, dead letter) carry the publisher it verified; a replay with the
    service's own credentials keeps it believable, one with anyone else's credentials does not, and
    the entry then names the stranger for good."""
    # The replay is the CLI's, an extra of its own: absent where only rabbitsync[django] is (make test-django42).
    cli = pytest.importorskip("rabbitsync.cli", reason="rabbitsync[cli] is not installed")
    spec = service.declare(make_spec(uid, ["svc.flaky"], max_attempts=2, initial_backoff_ms=100, max_backoff_ms=100))
    sidecar = sidecars(spec).wait_ready()
    own, stranger = user_url(service.identities, PUBLISHING), user_url(service.identities, ATTACKER)

    def replay(url: str, dead_lettered: int, what: str) -> None:
        assert cli.main(["--amqp-url", url, "dead-letters", "replay", spec.dead_letter_queue]) == 0
        wait_until(lambda: sidecar.metric("rabbitsync_dead_lettered_total") == dead_lettered, 15, what)

    lucky = new_event(type="svc.flaky", origin=MENU, data={"fail_times": 2}, subject="third time lucky")
    service.send_event(lucky)
    wait_until(lambda: sidecar.metric("rabbitsync_dead_lettered_total") == 1, 15, "a retry, then the DLQ")
    assert sidecar.metric("rabbitsync_retried_total") == 1  # the retry came back believed
    assert cli.main(["--amqp-url", own, "dead-letters", "replay", spec.dead_letter_queue]) == 0
    wait_until(lambda: effects(lucky.id) == 1, 10, "the service's own replay applied")

    doomed = new_event(type="svc.flaky", origin=MENU, data={"fail_times": 99}, subject="always failing")
    service.send_event(doomed)
    wait_until(lambda: sidecar.metric("rabbitsync_dead_lettered_total") == 2, 15, "the second event in the DLQ")
    replay(stranger, 3, "the stranger's replay refused")
    replay(own, 4, "the laundered entry refused again")
    [headers] = dead_letters(service, spec).values()
    assert headers[routing.REASON] == trust.FORGED_SOURCE
    assert headers[PUBLISHER] == broker_username(*ATTACKER)
    assert effects(doomed.id) == 0


@pytest.mark.parametrize("password", ["S3cr3t/x", "Hj7#Kl9@Mn:Op%Qr"])
def test_a_sidecar_with_an_unusable_broker_uri_exits_without_logging_the_password(service, sidecars, password):
    sidecar = sidecars(RABBITSYNC_AMQP_URL=f"amqp://svc:{password}@127.0.0.1:5672/")
    assert sidecar.process is not None and sidecar.process.wait(30) == 2
    logs = sidecar.logs()
    assert "sidecar misconfigured" in logs and "percent-encode" in logs
    for piece in ("S3cr3t", "Hj7", "Kl9", "Mn", "Op", "Qr"):
        assert piece not in logs


def test_the_broker_refuses_a_user_id_that_is_not_the_connections_user(service, uid):
    """What the whole check rests on: RabbitMQ itself refuses a claimed user_id (PRECONDITION_FAILED)."""
    import pika.exceptions

    spec = service.declare(make_spec(uid, ["svc.effect"]))
    event = new_event(type="svc.effect", origin=MENU, data={}, subject="impersonation")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        publish(user_url(service.identities, ATTACKER), "", spec.queue, encode(event), event.id, broker_username(*MENU))
    assert caught.value.reply_code == 406
    assert service.depth(spec.queue) == 0
