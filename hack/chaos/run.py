"""One fault run from start to verdict: lab up, seed, stream plus faults, settle, check, lab down.

Each check prints ``PASS``/``FAIL`` with its evidence; the last line is the summary
``events=N faults=F lost=L duplicated=D dead_lettered=X converged_s=T``, and the exit code is 1 when
any check failed (loss, duplication, divergence among them).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from chaos import accounting, faults, lab, load, readback, schedule
from chaos.accounting import Committed, DeadLetter, Place, Row, Tally

log = logging.getLogger(__name__)

CI_EVENTS = 5_000
SOAK_EVENTS = 100_000
CI_MAX_MINUTES = 60.0
SOAK_MAX_MINUTES = 360.0
PROGRESS_S = 60.0
SUBSCRIPTIONS = {
    "restaurant": frozenset({"RESTAURANT_CREATED", "RESTAURANT_UPDATED", "RESTAURANT_DELETED"}),
    "restaurant-menu": frozenset(
        {"RESTAURANT_CREATED", "RESTAURANT_UPDATED", "RESTAURANT_DELETED"}
        | {"MENU_ITEM_CREATED", "MENU_ITEM_UPDATED", "MENU_ITEM_DELETED"}
    ),
    "order": frozenset(
        {"RESTAURANT_CREATED", "RESTAURANT_UPDATED", "RESTAURANT_DELETED"}
        | {"MENU_ITEM_CREATED", "MENU_ITEM_UPDATED", "MENU_ITEM_DELETED", "ORDER_CREATED"}
    ),
}
"""What manifests/services/subscriptions.yaml subscribes each service to."""


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__)
    parser.add_argument("--events", type=int, default=CI_EVENTS, help=f"writes to commit (default {CI_EVENTS})")
    parser.add_argument(
        "--soak", action="store_true", help=f"a soak run: {SOAK_EVENTS} events unless --events says more"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault order and the write mix")
    parser.add_argument(
        "--faults",
        default=",".join(k.value for k in schedule.ALL_KINDS),
        help="comma-separated fault kinds (default: all): " + ", ".join(k.value for k in schedule.ALL_KINDS),
    )
    parser.add_argument(
        "--settle", type=float, default=SETTLE_S, help=f"seconds to wait for convergence (default {SETTLE_S:.0f})"
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        help=f"stop writing after this long, whatever the count (default {CI_MAX_MINUTES:.0f}; "
        f"{SOAK_MAX_MINUTES:.0f} for a soak)",
    )
    parser.add_argument(
        "--writers",
        type=int,
        default=load.WRITERS_PER_CLUSTER,
        help=f"concurrent writers per cluster (default {load.WRITERS_PER_CLUSTER})",
    )
    parser.add_argument("--keep", action="store_true", help="leave the lab running (make dev-down stops it)")
    args = parser.parse_args(argv)
    if args.soak:
        args.events = max(args.events, SOAK_EVENTS)
    if args.max_minutes is None:
        args.max_minutes = SOAK_MAX_MINUTES if args.soak else CI_MAX_MINUTES
    return args


@dataclass
class Snapshot:
    """One read-back of every service database."""

    committed: list[Committed] = field(default_factory=list)
    tally: Tally = field(default_factory=lambda: Tally(expected=0))
    diverged: dict[str, list[str]] = field(default_factory=dict)
    unsent: int = 0

    @property
    def settled(self) -> bool:
        return not self.tally.lost and not self.diverged and not self.unsent


def read(the_lab: lab.Lab, excluded: set[str]) -> Snapshot:
    """Committed and applied events and the entity tables of every (cluster, service); ``excluded`` ids left out."""
    places: list[Place] = [(c, s) for c in the_lab.kubeconfigs for s in readback.SERVICES]
    snap = Snapshot()
    applied: dict[Place, list[str]] = {}
    tables: dict[str, dict[str, list[Row]]] = {}
    for place in places:
        db = readback.database(the_lab, place)
        snap.committed += readback.committed(db)
        snap.unsent += readback.unsent(db)
        applied[place] = readback.applied(db)
        for table in readback.ENTITY_TABLES[place[1]]:
            rows = [r for r in readback.entity_rows(db, table) if str(r[0]) not in excluded]
            tables.setdefault(table, {})[place[0]] = rows
    snap.tally = accounting.tally(snap.committed, SUBSCRIPTIONS, applied)
    snap.diverged = accounting.divergence(tables)
    return snap


STALL_S = 60.0
"""Settling gives up early once nothing has changed for this long: a wedged consumer never catches up."""
SETTLE_S = 420.0
"""Settling's cap. Longer than two of the broker's dead-letter confirm timeouts (RabbitMQ's
``dead_letter_worker_publisher_confirm_timeout``, 180 s by default): after a node is lost, a retry
queue's at-least-once dead-lettering can hold a batch of retries unconfirmed and send it again only
when that timeout fires (measured: 1,923 retries held for 3 to 6 minutes, every one delivered then)."""


def stalled(unchanged_s: float, dead_lettering: int) -> bool:
    """Whether settling may stop before its cap: nothing moved for ``STALL_S``, and nothing waits in the
    broker's dead-lettering, which sends on by itself however long nothing else moves."""
    return unchanged_s >= STALL_S and not dead_lettering


def settle(the_lab: lab.Lab, excluded: set[str], timeout: float) -> tuple[Snapshot, float, bool]:
    """Poll until every copy has everything due and the clusters agree; (last snapshot, seconds, settled)."""
    began = time.monotonic()
    progress, last_change = None, began
    while True:
        try:
            snap = read(the_lab, excluded)
        except (OSError, RuntimeError) as e:
            log.warning("read-back failed (retrying): %s", e)
            snap = Snapshot(tally=Tally(expected=0, lost={("?", "?"): ["read-back failed"]}))
        waited = time.monotonic() - began
        state = (snap.tally.lost_count, snap.unsent, sum(len(p) for p in snap.diverged.values()))
        if state != progress:
            progress, last_change = state, time.monotonic()
        if snap.settled or waited >= timeout:
            return snap, waited, snap.settled
        dead_lettering = _dead_lettering(the_lab)
        if stalled(time.monotonic() - last_change, dead_lettering):
            return snap, waited, False
        log.info(
            "settling: %d lost, %d tables differ, %d unsent, %d in the broker's dead-lettering (%.0fs)",
            snap.tally.lost_count,
            len(snap.diverged),
            snap.unsent,
            dead_lettering,
            waited,
        )
        time.sleep(5)


def _dead_lettering(the_lab: lab.Lab) -> int:
    try:
        return sum(q.dead_lettering for q in readback.queue_states(the_lab))
    except OSError as e:  # a broker that does not answer is no reason to wait out the cap
        log.warning("reading the queues failed: %s", e)
        return 0


def _holding(the_lab: lab.Lab) -> list[str]:
    """Where missing events wait: unconsumed, held by a consumer, or in the broker's dead-lettering."""
    try:
        return [q.describe() for q in readback.queue_states(the_lab) if q.holding] or ["none"]
    except OSError as e:
        return [f"(the queues could not be read: {e})"]


def _report_progress(stream: load.Stream, every: float) -> None:
    """A line per ``every`` seconds while the stream runs: a soak takes hours, and its log must show it moving."""
    began, last = time.monotonic(), 0
    while not stream.wait_stopped(every):
        now = stream.accepted
        log.info(
            "stream: %d of %d writes accepted (%.1f/s over the last %.0fs)",
            now,
            stream.target,
            (now - last) / every,
            every,
        )
        last = now
    log.info("stream: stopped after %.0fs", time.monotonic() - began)


def drive(the_lab: lab.Lab, plan: list[schedule.Fault], args: argparse.Namespace) -> tuple[load.Stream, faults.Record]:
    """The write stream with the faults of ``plan`` injected at their event counts, one at a time."""
    events, max_minutes = args.events, args.max_minutes
    seeds = load.seed(the_lab.urls)
    stream = load.Stream(the_lab.urls, seeds, events, seed=args.seed, writers=args.writers)
    record = faults.Record()
    stream.hold_at(plan[0].at_event if plan else events)
    deadline = threading.Timer(max_minutes * 60, stream.stop)
    deadline.daemon = True
    deadline.start()
    stream.start()
    threading.Thread(target=_report_progress, args=(stream, PROGRESS_S), name="progress", daemon=True).start()
    try:
        for index, fault in enumerate(plan):
            stream.wait_for(fault.at_event)
            stream.hold_at(plan[index + 1].at_event if index + 1 < len(plan) else events)
            try:
                faults.inject(the_lab, fault, record)
            except Exception as e:  # one failed injection is reported, and the run goes on
                log.error("fault %s on %s could not be injected: %s", fault.kind.value, fault.target, e)
                record.done.append((time.monotonic(), fault, f"INJECTION FAILED: {e}"))
    finally:
        stream.hold_at(events)
        stream.join()
        deadline.cancel()
    return stream, record


@dataclass
class Verdict:
    lines: list[str] = field(default_factory=list)
    failed: bool = False

    def check(self, name: str, ok: bool, evidence: str = "") -> None:
        self.lines.append(f"{'PASS' if ok else 'FAIL'} {name}{': ' + evidence if evidence else ''}")
        self.failed = self.failed or not ok


def _sample(by_place: dict[Place, list[str]], limit: int = 3) -> str:
    return "; ".join(f"{c}/{s} {len(ids)} (e.g. {', '.join(ids[:limit])})" for (c, s), ids in by_place.items())


def judge(
    snap: Snapshot,
    stream: load.Stream,
    record: faults.Record,
    dead: list[DeadLetter],
    stuck: list[str],
) -> Verdict:
    verdict = Verdict()
    verdict.check(
        "every committed event applied in every subscribed copy", not snap.tally.lost, _sample(snap.tally.lost)
    )
    verdict.check("no event applied twice", not snap.tally.duplicated, _sample(snap.tally.duplicated))
    verdict.check("nothing applied that no service committed", not snap.tally.phantom, _sample(snap.tally.phantom))
    verdict.check(
        "both clusters' databases identical",
        not snap.diverged,
        "; ".join(f"{t}: {len(p)} rows differ, e.g. {p[0]}" for t, p in snap.diverged.items()),
    )
    verdict.check("every outbox row sent", not snap.unsent, f"{snap.unsent} unsent")
    sent = {message_id: p.what for message_id, p in record.poison.items() if message_id not in record.refused}
    missing = accounting.undead_poison(sent, dead)
    verdict.check(
        "every poison message dead-lettered with its reason",
        not missing,
        ", ".join(f"{what} ({message_id}) not in any DLQ" for message_id, what in missing.items()),
    )
    refused = accounting.refused_during(stream.attempts, record.broker_outages)
    tried = accounting.attempted_during(stream.attempts, record.broker_outages)
    verdict.check(
        "REST APIs accepted writes throughout the broker outage",
        bool(record.broker_outages) and tried > 0 and not refused,
        f"{tried} writes during {len(record.broker_outages)} outage(s), {len(refused)} refused"
        + (f" (statuses {dict(Counter(a.status for a in refused))})" if refused else ""),
    )
    verdict.check(
        "service pods stayed Ready (by their own readiness probes) through the broker outage",
        bool(record.broker_outages) and not record.not_ready,
        "; ".join(f"{key} NotReady in {samples:.0f} samples" for key, samples in sorted(record.not_ready.items())),
    )
    verdict.check("no finalizer stuck", not stuck, "; ".join(stuck))
    failed = [note for _, _, note in record.done if note.startswith("INJECTION FAILED")]
    verdict.check("every fault injected", not failed, "; ".join(failed))
    other = Counter(
        d.reason or f"(none; broker: {d.broker_reason or '?'})" for d in dead if d.message_id not in record.poison
    )
    verdict.lines.append(f"INFO dead letters other than the poison: {dict(other) or 'none'}")
    return verdict


def run(args: argparse.Namespace) -> int:
    kinds = tuple(schedule.Kind(k) for k in args.faults.split(",") if k)
    plan = schedule.plan(args.events, kinds, args.seed, pinned={schedule.Kind.DATABASE_OUTAGE: lab.POSTGRES_PLACE[0]})
    began = time.monotonic()
    the_lab = None
    summary = ""
    try:
        the_lab = lab.up()
        log.info("lab up in %.0fs; %d faults planned over %d events", time.monotonic() - began, len(plan), args.events)
        stream, record = drive(the_lab, plan, args)
        wrote = time.monotonic()
        log.info(
            "stream done: %d writes accepted of %d attempts in %.0fs",
            stream.accepted,
            len(stream.attempts),
            wrote - began,
        )
        # Rows are keyed by the normalised id (a UUID's hex), the poison by its subject.
        excluded = {uuid.UUID(p.subject).hex for p in record.poison.values()}
        snap, converged_s, _ = settle(the_lab, excluded, args.settle)
        dead = [d for q in readback.dead_letter_queues(the_lab) for d in readback.dead_letters(the_lab, q)]
        verdict = judge(snap, stream, record, dead, readback.stuck_finalizers(the_lab))
        for _, fault, note in record.done:
            print(f"FAULT at event {fault.at_event}: {fault.kind.value} {fault.target}: {note}", flush=True)
        print("\n".join(verdict.lines), flush=True)
        if verdict.failed:
            for line in _holding(the_lab):
                print(f"INFO queue still holding messages: {line}", flush=True)
        print(f"took {time.monotonic() - began:.0f}s (settling {converged_s:.0f}s)", flush=True)
        summary = accounting.summary(
            events=len(snap.committed),
            faults=len(record.done),
            lost=snap.tally.lost_count,
            duplicated=snap.tally.duplicated_count,
            dead_lettered=len(dead),
            converged_s=converged_s,
        )
        return 1 if verdict.failed else 0
    finally:
        if not args.keep:
            lab.down(the_lab)
        if summary:
            print(summary, flush=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # pika narrates every connection at INFO; its warnings are enough here.
    logging.getLogger("pika").setLevel(logging.WARNING)
    return run(parse(argv))
