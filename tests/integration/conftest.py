"""Fixtures of the integration tests that more than one folder needs: a broker with a TLS listener.

The ``tls_broker`` is a node of the harness's own (ports, node name and epmd of its own, so it never
meets the shared broker on 5672), with amqps and https management listeners whose certificate a
throwaway CA signed (host names localhost and 127.0.0.1). ``RABBITSYNC_RABBITMQ`` picks its version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from harness import rabbitmq


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rabbitmq.Broker]:
    options = dataclasses.replace(rabbitmq.Options.from_env(), tls=True)
    broker = rabbitmq.start_own(tmp_path_factory.mktemp("rabbitmq-tls"), options)
    yield broker
    rabbitmq.stop(broker)
