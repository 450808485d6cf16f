"""What watches each round's generations: the metrics and, when configured, the traces."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omnirouter.observability.metrics import Metrics
from omnirouter.observability.tracing import Tracing, endpoint_of

if TYPE_CHECKING:
    from omnirouter.state import AppState


def start(st: AppState) -> Callable[[], None]:
    """Attach the metrics and traces this worker's settings ask for to its recorder; returns what
    ends them when the worker stops."""
    settings = st.settings
    metrics = st.metrics = Metrics() if settings.metrics != "off" else None
    endpoint = endpoint_of(settings)
    tracing = Tracing(endpoint, settings.otel_service_name) if endpoint else None
    if metrics is None and tracing is None:
        return lambda: None

    def watch(batch: list[tuple[dict[str, Any], Any]], queued: int) -> None:
        if metrics is not None:
            metrics.observe(st, batch, queued)
        if tracing is not None:
            tracing.observe(st, batch)

    st.recorder.watch = watch

    def close() -> None:
        if tracing is not None:
            tracing.close()
        if metrics is not None:
            metrics.close()

    return close
