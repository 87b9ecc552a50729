"""The wrapper go.mod is derived from the upstream one, not hard-coded."""

from harness.binaries import staging_modules, wrapper_go_mod

UPSTREAM = """module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/other/thing => github.com/fork/thing v1.0.0
)
"""


def test_staging_modules_are_read_from_upstream():
    assert staging_modules(UPSTREAM) == ["k8s.io/api", "k8s.io/client-go"]


def test_wrapper_pins_staging_modules_to_matching_v0_release():
    mod = wrapper_go_mod(UPSTREAM, "v1.35.4")
    assert "require k8s.io/kubernetes v1.35.4" in mod
    assert "\tk8s.io/api => k8s.io/api v0.35.4" in mod
    assert "\tk8s.io/client-go => k8s.io/client-go v0.35.4" in mod
    assert "github.com/fork" not in mod
    assert "go 1.25\n" in mod and "godebug default=go1.25" in mod
