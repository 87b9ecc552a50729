"""The pod runner's kubelet semantics that need no cluster: $(VAR) expansion and pod identity."""

import pytest

from harness.podrunner import expand, template_hash
from harness.polling import eventually


def test_expand_replaces_known_variables_and_keeps_unknown_ones():
    env = {"POD_IP": "127.0.3.11"}
    assert expand("$(POD_IP):8000", env) == "127.0.3.11:8000"
    assert expand("$(MISSING)/x", env) == "$(MISSING)/x"
    assert expand("no refs", env) == "no refs"


def test_template_hash_ignores_key_order_but_not_content():
    a = {"spec": {"containers": [{"name": "app", "image": "x"}]}, "metadata": {"labels": {"a": "1"}}}
    b = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"image": "x", "name": "app"}]}}
    assert template_hash(a) == template_hash(b)
    b["spec"]["containers"].append({"name": "rabbitsync-sidecar", "image": "x"})
    assert template_hash(a) != template_hash(b)


def test_eventually_returns_the_value_tolerates_listed_errors_and_names_what_failed():
    calls = iter([OSError("restarting"), 0, "done"])

    def check():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert eventually(check, 5, "x", interval=0.01, tolerate=(OSError,)) == "done"
    with pytest.raises(AssertionError, match="the thing: not within 0s; last seen: False"):
        eventually(lambda: False, 0.05, "the thing", interval=0.01)
