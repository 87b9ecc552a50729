"""The example services' own tests (``services/<svc>/tests``, written with ``rabbitsync.django.testing``)
pass: each runs as ``python manage.py test tests`` in a process of its own, as a service's CI would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).parents[3] / "services"


@pytest.mark.parametrize("service", ["restaurant", "restaurant-menu", "order"])
def test_the_service_own_tests_pass(service: str, tmp_path: Path) -> None:
    # Nothing of this session's rabbitsync or database settings: the service's defaults, no broker.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITSYNC_", "DJANGO_", "DATABASE_URL"))}
    env.update(DJANGO_DEBUG="true", SQLITE_PATH=str(tmp_path / f"{service}.sqlite3"))
    done = subprocess.run(
        [sys.executable, "manage.py", "test", "tests", "-v", "2", "--noinput"],
        cwd=SERVICES / service,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert " ok\n" in done.stderr and "Ran " in done.stderr
