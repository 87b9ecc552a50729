"""The outbox rows' states in the database: claimed under a lease, sent, set back, parked.

Kept apart from the relay's thread so each step is one short statement a test can call alone. A row
is claimable when it is unsent, unparked, its own backoff is over (``next_attempt_at``) and nobody
holds a live lease on it. Every update after the claim is conditioned on the lease token, so a relay
whose lease expired (and whose rows another relay took) never overwrites the newer owner's state.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from rabbitsync.django.models import OutboxMessage
from rabbitsync.django.setbacks import Setback


def _unsent() -> QuerySet[OutboxMessage]:
    return OutboxMessage.objects.filter(sent_at__isnull=True, parked_at__isnull=True)


def born_leased(owner: str, lease: float) -> dict[str, object]:
    """The lease fields of a row inserted already claimed by relay ``owner`` (``publish()``'s fast path)."""
    return {"lease_owner": owner, "lease_until": timezone.now() + timedelta(seconds=lease)}


def claim(batch: int, lease: float, ids: set[int] | None = None, *, mine: str = "") -> list[OutboxMessage]:
    """Lease up to ``batch`` claimable rows (all, or among ``ids``) for ``lease`` seconds, oldest first.

    Rows already leased to ``mine`` (the caller's own token) are claimable too: a relay takes back
    the rows born leased to it that it could not send on the fast path.
    """
    if ids is not None and not ids:
        return []
    now = timezone.now()
    token = uuid.uuid4().hex
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    claimable = (
        _unsent()
        .filter(free | Q(lease_owner=mine) if mine else free)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    )
    if ids is not None:
        claimable = claimable.filter(pk__in=sorted(ids)[:batch])
    with transaction.atomic():
        pks = list(claimable.order_by("pk").values_list("pk", flat=True)[:batch])
        if not pks:
            return []
        # The conditions are repeated in the UPDATE so a concurrent relay cannot claim them too.
        claimable.filter(pk__in=pks).update(lease_owner=token, lease_until=now + timedelta(seconds=lease))
    # By primary key: lease_owner has no index, and sent rows stay in the table until purged.
    return list(OutboxMessage.objects.filter(pk__in=pks, lease_owner=token).order_by("pk"))


def _held(rows: Sequence[OutboxMessage]) -> QuerySet[OutboxMessage]:
    return OutboxMessage.objects.filter(pk__in=[r.pk for r in rows], lease_owner=rows[0].lease_owner)


def renew(rows: Sequence[OutboxMessage], lease: float) -> None:
    """Extend the lease before another publish of the same rows, so it still outlasts that publish."""
    if rows:
        _held(rows).update(lease_until=timezone.now() + timedelta(seconds=lease))


def release(rows: Sequence[OutboxMessage]) -> None:
    """Give the rows back unsent, at no cost to them (the broker was away, or we are stopping)."""
    if rows:
        _held(rows).update(lease_owner="", lease_until=None)


def mark_sent(rows: Sequence[OutboxMessage]) -> None:
    """Only after the confirms: a crash before this line means a resend, never a loss."""
    if rows:
        _held(rows).update(sent_at=timezone.now(), lease_owner="", lease_until=None)


def set_back(row: OutboxMessage, setback: Setback, *, attempt: bool = True) -> None:
    """Record a refusal of ``row``: back off on its own, or park it, with the reason."""
    now = timezone.now()
    changes: dict[str, object] = {"lease_owner": "", "lease_until": None, "park_reason": setback.reason}
    if attempt:
        changes["publish_attempts"] = F("publish_attempts") + 1
    if setback.park:
        changes["parked_at"] = now
    else:
        changes["next_attempt_at"] = now + timedelta(seconds=setback.delay)
    _held([row]).update(**changes)


def backlog() -> int:
    """Outbox rows still to be sent (parked rows are not: nothing will send them)."""
    return _unsent().count()


def parked() -> int:
    """Outbox rows parked, each with its ``park_reason``: a person must look at them."""
    return OutboxMessage.objects.filter(sent_at__isnull=True, parked_at__isnull=False).count()
