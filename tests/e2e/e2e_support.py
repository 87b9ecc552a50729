"""What the e2e tests share: the deployment handle and a polling assertion."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import demo


@dataclass
class Deployment:
    directory: Path
    kubeconfigs: dict[str, Path]
    urls: dict[str, dict[str, str]]
    local: bool
    vhost: str = "/"
    """The broker vhost the deployment's SyncBrokers point at."""

    def url(self, cluster: str, service: str, path: str) -> str:
        return self.urls[cluster][service] + path

    def kubectl(self, cluster: str, *args: str) -> str:
        return demo.operators.kubectl(self.kubeconfigs[cluster], *args)


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; return that, or fail saying what never happened."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as e:  # a service restarting: try again
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached within {timeout:.0f}s (last: {last!r})")
