"""The broker away never takes a service's API away (issue 10, point 1).

While the broker is stopped, every service pod stays Ready as the kubelet computes it (the pod runner
probes like one: each app container's and native sidecar's readinessProbe), so a Service keeps routing
to it, and its REST API keeps accepting writes into the outbox; once the broker is back, those writes
reach the other cluster. Before native sidecars, the sidecar's readinessProbe was "consuming", and a
stopped broker made every pod NotReady.
"""

from __future__ import annotations

import time

import pytest
from e2e_support import Deployment, eventually, pods_ready
from test_two_clusters import converged, create_restaurant, restaurant


@pytest.mark.usefixtures("broker")
def test_services_stay_ready_and_accept_writes_while_the_broker_is_stopped(deployment: Deployment, broker):
    if not deployment.local or deployment.nodes:
        pytest.skip("stops the broker of a local deployment run by the pod runner")
    eventually(lambda: all(pods_ready(deployment, "east").values()), 60, "east pods ready before the outage")
    broker.stop()
    try:
        # Several probe periods of the pod runner (1 s) with the broker gone; create_restaurant raises
        # unless the API answers 201.
        created = []
        for i in range(5):
            rid = create_restaurant(deployment, "east", f"During outage {i}")
            created.append(rid)
            assert restaurant(deployment, "east", "restaurant", rid) is not None
            time.sleep(2)
        ready = pods_ready(deployment, "east")
        assert all(ready.values()), f"pods NotReady while the broker is away: {ready}"
    finally:
        broker.start()
    for rid in created:
        eventually(lambda r=rid: converged(deployment, r), 120, f"{rid} everywhere after the outage")
