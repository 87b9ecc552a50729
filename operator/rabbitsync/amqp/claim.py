"""Who holds a cluster name on a broker: the claim each operator records before it trusts its queue names.

The cluster name is part of every queue and user name (``rabbitsync.<cluster>.<namespace>.<name>``), so
two clusters given the same name would share queues, and each event would reach only one of them, with
nothing to show for it. Each operator therefore records on the broker a claim naming the cluster, the
vhost and its install id (a RabbitMQ global runtime parameter, which survives restarts and is visible
with ``rabbitmqctl list_global_parameters``), and compares it on every broker reconcile: another install
id under its name is a conflict to report, never one to overwrite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rabbitsync.transport.errors import BrokerError

PARAMETER_PREFIX = "rabbitsync.cluster."


@dataclass(frozen=True)
class ClusterClaim:
    """One cluster name on one vhost, held by one install."""

    cluster: str
    vhost: str
    install_id: str

    @property
    def parameter_name(self) -> str:
        """The global parameter holding the claim (the vhost is in it: queue names are per vhost)."""
        return f"{PARAMETER_PREFIX}{self.cluster}@{self.vhost}"

    def to_value(self) -> dict[str, str]:
        return {"cluster": self.cluster, "vhost": self.vhost, "installId": self.install_id}

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> ClusterClaim:
        try:
            return cls(cluster=str(value["cluster"]), vhost=str(value["vhost"]), install_id=str(value["installId"]))
        except (KeyError, TypeError) as e:
            raise BrokerError(f"malformed cluster claim on the broker: {value!r}") from e
