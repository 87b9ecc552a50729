"""With OpenTelemetry installed, each handler runs in a consumer span whose parent is the event's
traceparent, and a publish inside a span carries that span's context. In a subprocess: a tracer
provider can be set once per process, and the other tests expect none."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

pytest.importorskip("opentelemetry.sdk", reason="OpenTelemetry is optional; the dev extra installs it")

SCRIPT = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from rabbitsync.django import tracing
from rabbitsync.events import Origin, new_event

parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
event = new_event(type="menu.updated", origin=Origin("a", "b", "c"), data=None, extensions={"traceparent": parent})
with trace.get_tracer("view").start_as_current_span("view") as view:
    published = tracing.extensions()["traceparent"]
    view_span = format(view.get_span_context().span_id, "016x")
with tracing.handling(event):
    in_handler = tracing.extensions()["traceparent"]
(handled,) = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.CONSUMER]
print(json.dumps({
    "published": published, "view_span": view_span, "in_handler": in_handler, "name": handled.name,
    "trace": format(handled.context.trace_id, "032x"), "parent": format(handled.parent.span_id, "016x"),
    "span": format(handled.context.span_id, "016x"),
}))
"""


def test_handler_spans_continue_the_events_trace_and_publishes_carry_the_current_span():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(done.stdout)
    assert seen["published"].split("-")[2] == seen["view_span"]  # a publish in a view: the view's span
    assert seen["name"] == "menu.updated process"
    assert (seen["trace"], seen["parent"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    # What the handler publishes is a child of the handler's span, in the event's trace.
    assert seen["in_handler"] == f"00-{seen['trace']}-{seen['span']}-01"
