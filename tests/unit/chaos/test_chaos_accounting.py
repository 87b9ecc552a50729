"""The final accounting: lost, duplicated and phantom events, divergent copies, the outage and poison checks."""

from chaos.accounting import (
    Attempt,
    Committed,
    DeadLetter,
    attempted_during,
    divergence,
    refused_during,
    summary,
    tally,
    undead_poison,
)

SUBS = {"restaurant": frozenset({"R"}), "menu": frozenset({"R", "M"})}
PLACES = [(c, s) for c in ("east", "west") for s in ("restaurant", "menu")]


def _applied(**by_place: list[str]) -> dict[tuple[str, str], list[str]]:
    applied = {place: [] for place in PLACES}
    for key, ids in by_place.items():
        cluster, service = key.split("_")
        applied[(cluster, service)] = ids
    return applied


def test_an_event_is_due_everywhere_it_is_subscribed_except_at_its_origin():
    committed = [Committed("r1", "R", ("east", "restaurant"))]
    result = tally(committed, SUBS, _applied(west_restaurant=["r1"], east_menu=["r1"], west_menu=["r1"]))
    assert result.expected == 3
    assert (result.lost_count, result.duplicated_count, result.phantom_count) == (0, 0, 0)


def test_a_copy_that_missed_an_event_counts_it_lost_there():
    committed = [Committed("r1", "R", ("east", "restaurant")), Committed("m1", "M", ("west", "menu"))]
    result = tally(committed, SUBS, _applied(west_restaurant=["r1"], east_menu=["r1"], west_menu=["r1"]))
    assert result.lost == {("east", "menu"): ["m1"]}
    assert result.lost_count == 1


def test_unsubscribed_types_are_not_due():
    committed = [Committed("m1", "M", ("east", "menu"))]
    result = tally(committed, SUBS, _applied(west_menu=["m1"]))
    assert result.expected == 1 and not result.lost


def test_an_event_applied_twice_in_one_copy_is_a_duplicate():
    committed = [Committed("r1", "R", ("east", "restaurant"))]
    result = tally(committed, SUBS, _applied(west_restaurant=["r1", "r1"], east_menu=["r1"], west_menu=["r1"]))
    assert result.duplicated == {("west", "restaurant"): ["r1"]}


def test_an_applied_event_nobody_committed_is_a_phantom():
    result = tally([], SUBS, _applied(west_menu=["forged"]))
    assert result.phantom == {("west", "menu"): ["forged"]}


def test_identical_tables_do_not_diverge_whatever_the_row_order():
    tables = {"t": {"east": [("a", 1), ("b", 2)], "west": [("b", 2), ("a", 1)]}}
    assert divergence(tables) == {}


def test_a_missing_or_different_row_is_reported_with_both_sides():
    tables = {"t": {"east": [("a", 1), ("b", 2)], "west": [("a", 9)]}, "same": {"east": [], "west": []}}
    report = divergence(tables)
    assert list(report) == ["t"]
    assert report["t"] == ["a: east=('a', 1); west=('a', 9)", "b: east=('b', 2); west=None"]


def test_only_writes_refused_inside_an_outage_window_count():
    attempts = [
        Attempt(1.0, "east", "restaurant", 0),
        Attempt(5.0, "east", "restaurant", 503),
        Attempt(6.0, "west", "order", 201),
    ]
    assert refused_during(attempts, [(4.0, 7.0)]) == [attempts[1]]
    assert attempted_during(attempts, [(4.0, 7.0)]) == 2
    assert refused_during(attempts, []) == []


def test_poison_must_be_dead_lettered_with_a_reason():
    sent = {"p1": "invalid-json", "p2": "nan-header", "p3": "forged-version"}
    dead = [DeadLetter("q.dlq", "p1", "invalid"), DeadLetter("q.dlq", "p2", "")]
    assert undead_poison(sent, dead) == {"p2": "nan-header", "p3": "forged-version"}


def test_the_summary_line_has_the_documented_form():
    assert (
        summary(5000, 8, 0, 0, 4, 12.345) == "events=5000 faults=8 lost=0 duplicated=0 dead_lettered=4 converged_s=12.3"
    )
