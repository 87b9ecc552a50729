"""A :class:`~rabbitsync.cli.graph.Topology` as a picture: Mermaid or Graphviz text, or SVG/PNG via ``dot``.

Publishing services on the left, event types in the middle (one node per namespace and type: the
exchange is shared by every cluster), consuming services on the right, each cluster a box. Types
with a parity problem and queues nobody owns are drawn red and dashed. The text formats are pure;
SVG and PNG need Graphviz's ``dot`` on the PATH (Debian package ``graphviz``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

from rabbitsync.cli.failures import CliError
from rabbitsync.cli.graph import Topology

TEXT_FORMATS = ("mermaid", "dot")
IMAGE_FORMATS = ("svg", "png")


def _id(*parts: str) -> str:
    return "n" + hashlib.sha1("\0".join(parts).encode()).hexdigest()[:10]


def _flagged(topology: Topology) -> set[tuple[str, str]]:
    return {(p.namespace, p.subject) for p in topology.problems if p.kind in ("not-published", "not-consumed")}


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(topology: Topology) -> str:
    flagged = _flagged(topology)
    lines = ["digraph rabbitsync {", "  rankdir=LR;", '  node [fontname="Helvetica", shape=box, style=rounded];']
    for cluster in topology.clusters:
        lines.append(f'  subgraph "cluster_{_quote(cluster)}" {{')
        lines.append(f'    label="{_quote(cluster)}";')
        for namespace, service in topology.services_in(cluster):
            lines.append(f'    {_id("svc", cluster, namespace, service)} [label="{_quote(f"{namespace}/{service}")}"];')
        lines.append("  }")
    for namespace, event_type in topology.event_types():
        style = ', color=red, fontcolor=red, style="rounded,dashed"' if (namespace, event_type) in flagged else ""
        label = _quote(f"{namespace}: {event_type}")
        lines.append(f'  {_id("type", namespace, event_type)} [label="{label}", shape=ellipse{style}];')
    for e in topology.edges:
        service, event = _id("svc", e.cluster, e.namespace, e.service), _id("type", e.namespace, e.event_type)
        lines.append(f"  {service} -> {event};" if e.role == "publishes" else f"  {event} -> {service};")
    if topology.unowned_queues:
        lines.append('  subgraph "cluster_broker" {')
        lines.append('    label="unowned queues on the broker"; color=red; fontcolor=red;')
        for queue in topology.unowned_queues:
            lines.append(
                f'    {_id("queue", queue)} [label="{_quote(queue)}", shape=cylinder, color=red, style=dashed];'
            )
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def mermaid(topology: Topology) -> str:
    flagged = _flagged(topology)
    lines = ["flowchart LR"]
    for cluster in topology.clusters:
        lines.append(f'  subgraph {_id("cluster", cluster)}["{_mermaid(cluster)}"]')
        for namespace, service in topology.services_in(cluster):
            lines.append(f'    {_id("svc", cluster, namespace, service)}["{_mermaid(f"{namespace}/{service}")}"]')
        lines.append("  end")
    for namespace, event_type in topology.event_types():
        node = _id("type", namespace, event_type)
        lines.append(f'  {node}(["{_mermaid(f"{namespace}: {event_type}")}"])')
        if (namespace, event_type) in flagged:
            lines.append(f"  class {node} problem")
    for e in topology.edges:
        service, event = _id("svc", e.cluster, e.namespace, e.service), _id("type", e.namespace, e.event_type)
        lines.append(f"  {service} --> {event}" if e.role == "publishes" else f"  {event} --> {service}")
    if topology.unowned_queues:
        lines.append('  subgraph broker["unowned queues on the broker"]')
        for queue in topology.unowned_queues:
            lines.append(f'    {_id("queue", queue)}[("{_mermaid(queue)}")]')
            lines.append(f"    class {_id('queue', queue)} problem")
        lines.append("  end")
    lines.append("  classDef problem stroke:#d00,color:#d00,stroke-dasharray:4")
    return "\n".join(lines) + "\n"


def _mermaid(text: str) -> str:
    return text.replace('"', "#quot;")


def image(dot_source: str, fmt: str) -> bytes:
    """``dot_source`` rendered by Graphviz as ``svg`` or ``png``."""
    exe = shutil.which("dot")
    if exe is None:
        raise CliError(
            f"--format {fmt} needs Graphviz's dot on the PATH (Debian: apt-get install graphviz); "
            "--format dot or mermaid need nothing"
        )
    done = subprocess.run([exe, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise CliError(f"dot failed: {' '.join(done.stderr.decode(errors='replace').split())}")
    return done.stdout
