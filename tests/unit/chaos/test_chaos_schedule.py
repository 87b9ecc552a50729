"""The fault plan: every kind once per round, spread over the stream, never two on one event, repeatable."""

from collections import Counter

from chaos.schedule import ALL_KINDS, ROUND_EVENTS, SHARED, Kind, plan


def test_a_ci_run_gets_every_kind_exactly_once():
    faults = plan(5_000)
    assert Counter(f.kind for f in faults) == Counter(ALL_KINDS)


def test_a_soak_repeats_every_kind_once_per_round():
    faults = plan(100_000)
    rounds = 100_000 // ROUND_EVENTS
    assert Counter(f.kind for f in faults) == Counter({kind: rounds for kind in ALL_KINDS})


def test_a_short_run_is_still_one_full_round():
    assert Counter(f.kind for f in plan(300)) == Counter(ALL_KINDS)


def test_faults_fall_inside_the_stream_on_distinct_events_and_in_order():
    faults = plan(5_000)
    positions = [f.at_event for f in faults]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert positions[0] > 0 and positions[-1] < 5_000


def test_the_first_and_last_stretch_of_a_round_are_fault_free():
    faults = plan(5_000)
    gap = 5_000 // (len(ALL_KINDS) + 1)
    assert faults[0].at_event >= gap - 1
    assert faults[-1].at_event <= 5_000 - gap + 1


def test_the_same_seed_gives_the_same_plan_and_another_seed_another_order():
    assert plan(5_000, seed=7) == plan(5_000, seed=7)
    assert [f.kind for f in plan(5_000, seed=1)] != [f.kind for f in plan(5_000, seed=2)]


def test_shared_faults_target_the_broker_and_the_others_alternate_clusters():
    faults = plan(20_000)
    for fault in faults:
        if fault.kind in (Kind.CONNECTIONS_CLOSED, Kind.BROKER_RESTART, Kind.NODE_LOST, Kind.POISON):
            assert fault.target == SHARED
        else:
            assert fault.target in ("east", "west")
    kills = {f.target for f in faults if f.kind is Kind.SIDECAR_KILLED}
    assert kills == {"east", "west"}


def test_a_pinned_kind_always_hits_its_target():
    faults = plan(20_000, pinned={Kind.DATABASE_OUTAGE: "west"})
    assert {f.target for f in faults if f.kind is Kind.DATABASE_OUTAGE} == {"west"}


def test_a_subset_of_kinds_and_an_empty_stream():
    assert {f.kind for f in plan(5_000, kinds=(Kind.POISON,))} == {Kind.POISON}
    assert plan(0) == []
    assert plan(5_000, kinds=()) == []
