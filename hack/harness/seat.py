"""Who runs operators against a test session's clusters: one party at a time (:class:`OperatorSeat`)."""

from __future__ import annotations

from collections.abc import Callable


class OperatorSeat:
    """Who runs operators against the session's clusters: one party at a time.

    The operator integration tests run a fleet of local operator processes, cluster-wide, for the
    whole session; the e2e deployment runs the operators in the clusters. Both at once would each
    reconcile every object: in CI's whole run the fleet put the foodapp sidecars' resources back
    behind the e2e suite's patches (one Deployment flipping between two templates every few
    seconds). Taking the seat stops whoever had it.
    """

    def __init__(self) -> None:
        self._holder = ""
        self._release: Callable[[], None] = lambda: None

    def take(self, holder: str, release: Callable[[], None]) -> None:
        """``holder`` runs operators from now on; ``release`` stops them when another takes the seat."""
        if self._holder and self._holder != holder:
            self._release()
        self._holder, self._release = holder, release

    def held_by(self, holder: str) -> bool:
        return self._holder == holder

    @property
    def holder(self) -> str:
        return self._holder
