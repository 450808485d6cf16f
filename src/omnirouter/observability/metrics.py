"""Prometheus metrics of one worker, fed off the request path.

Requests only hand the recorder their generation row and a few timestamps (pipeline/call.py); the
recorder gives them here once per flush round (store/writer.py `watch`), where they are counted in
batches: a request pays for an append, not for a lock and a label lookup per metric. Errors are
counted as they are answered (the error path only). Gauges (circuits, streams in flight, the
recorder's queue) are sampled every round.

With several workers (`omnirouter serve --workers N`) the CLI points PROMETHEUS_MULTIPROC_DIR at a
directory under the data dir before the workers start: each worker writes its values to files there
(prometheus-client's multiprocess mode) and a scrape, whichever worker answers it, sums them all.
"""

from __future__ import annotations

import bisect
import os
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from omnirouter.errors import GatewayError

if TYPE_CHECKING:
    from omnirouter.state import AppState

prometheus_client.disable_created_metrics()  # a `_created` series per label set doubles the scrape for nothing

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

# (arrived, each attempt's start, first upstream byte, first token relayed, settled): monotonic
# seconds from pipeline/call.py; None where the request never got that far. Each attempt's status,
# provider and latency are in the row's provider_responses, in the same order.
Timing = tuple[float, tuple[float, ...], float | None, float | None, float]
Observed = tuple[dict[str, Any], Timing | None]

# The names a status gets as an error `type` when the error carries no error_type of its own.
STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    408: "timeout",
    413: "too_large",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal",
    502: "provider_error",
    503: "unavailable",
    504: "deadline",
}
TOKEN_KINDS = ("prompt", "completion", "reasoning", "cached")
CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}
# Gateway overhead is sub-millisecond when all is well; model latencies are seconds.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def prepare_multiprocess(data_dir: Path) -> Path:
    """Before the workers start: an empty directory for their metric files, named in the
    environment they inherit. A previous run's files are removed (their workers are gone)."""
    path = (data_dir / "metrics").resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def _observe_all(histogram: Histogram, values: list[float]) -> None:
    """`histogram.observe(v)` for each of `values`, with one update per bucket rather than a lock per
    value: prometheus-client has no batch observe, and its bucket and sum values take `inc(n)`."""
    bounds = histogram._upper_bounds  # the buckets' `le`, +Inf last
    counts = [0] * len(bounds)
    for v in values:
        counts[bisect.bisect_left(bounds, v)] += 1
    for bucket, n in zip(histogram._buckets, counts, strict=True):
        if n:
            bucket.inc(n)
    histogram._sum.inc(sum(values))


def error_type(err: GatewayError) -> str:
    given = (err.metadata or {}).get("error_type")
    return given if isinstance(given, str) else STATUS_TYPES.get(err.status, str(err.status))


class Metrics:
    """One worker's metrics (a registry of its own, so that several apps in one process, as in the
    tests, do not share values)."""

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV)
        self.registry = r = CollectorRegistry()
        model = ["model", "provider", "key"]
        self.requests = Counter(
            "omnirouter_requests",
            "Requests that reached a provider (one per generation), by outcome: ok, error, cancelled",
            ["api_type", *model, "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "omnirouter_errors",
            "Error answers (before or during a stream), by status and type",
            ["status", "type"],
            registry=r,
        )
        self.attempts = Counter(
            "omnirouter_upstream_attempts",
            "Upstream attempts, by provider and status",
            ["provider", "status"],
            registry=r,
        )
        self.tokens = Counter(
            "omnirouter_tokens", "Tokens, by kind: prompt, completion, reasoning, cached", [*model, "kind"], registry=r
        )
        self.cost = Counter("omnirouter_cost_usd", "What requests cost, in USD (credits)", model, registry=r)
        self.overhead = Histogram(
            "omnirouter_gateway_overhead_seconds",
            "Time a request spent in the gateway outside upstream calls (added latency)",
            ["api_type"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "omnirouter_time_to_first_token_seconds",
            "Streams: from the request's arrival to its first token",
            ["model", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "omnirouter_request_duration_seconds",
            "From a request's arrival to its settle",
            ["model", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # Gauges: each worker's own value; a scrape sums them (or takes the worst circuit), live workers only.
        self.circuits = Gauge(
            "omnirouter_circuit_state",
            "Endpoint circuits: 0 closed, 1 half-open, 2 open",
            ["model", "endpoint"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.streams = Gauge(
            "omnirouter_streams_in_flight", "Streams being relayed", multiprocess_mode="livesum", registry=r
        )
        self.queue = Gauge(
            "omnirouter_recorder_queue_depth",
            "Generations buffered for the next batched write",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.destinations = Counter(
            "omnirouter_destination_events",
            "Generation events sent to observability destinations, by destination id and outcome: delivered, failed",
            ["destination", "outcome"],
            registry=r,
        )
        self._deliveries_seen: dict[tuple[str, str], int] = {}
        self._circuits_shown: set[tuple[str, str]] = set()
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """`metric.labels(*labels)`, kept: the lookup validates and locks every time."""
        if (child := self._children.get((metric, labels))) is None:
            child = self._children[(metric, labels)] = metric.labels(*labels)
        return child

    # -- the error path
    def error(self, err: GatewayError) -> None:
        self.errors.labels(str(err.status), error_type(err)).inc()

    # -- every flush round (store/writer.py), off the request path
    def observe(self, st: AppState, batch: list[Observed], queued: int) -> None:
        """Count a round's generations: one sum per label set, then one update of each metric per
        label set (a labelled metric's lookup and lock cost more than the sums)."""
        # (api_type, model, provider, key hash, outcome) -> [requests, prompt, completion, reasoning, cached, cost]
        groups: dict[tuple[str, ...], list[Any]] = {}
        attempts: defaultdict[tuple[str, str], int] = defaultdict(int)
        timings: defaultdict[tuple[Histogram, tuple[str, ...]], list[float]] = defaultdict(list)
        for row, timing in batch:
            outcome = "error" if row["finish_reason"] == "error" else "cancelled" if row["cancelled"] else "ok"
            key = (row["api_type"], row["model"], row["provider_name"], row["key_hash"], outcome)
            if (sums := groups.get(key)) is None:
                sums = groups[key] = [0, 0, 0, 0, 0, Decimal(0)]
            sums[0] += 1
            sums[1] += row["tokens_prompt"] or 0
            sums[2] += row["tokens_completion"] or 0
            sums[3] += row["native_tokens_reasoning"] or 0
            sums[4] += row["native_tokens_cached"] or 0
            sums[5] += row["total_cost"] or 0
            for a in row["provider_responses"] or ():
                attempts[(a["provider_name"], str(a["status"]))] += 1
            self._timings(row, timing, timings)
        names = st.keys.by_hash
        for (api_type, model, provider, key_hash, outcome), sums in groups.items():
            record = names.get(key_hash)
            labels = (model, provider, record.name if record is not None else "unknown")
            self._child(self.requests, (api_type, *labels, outcome)).inc(sums[0])
            for kind, n in zip(TOKEN_KINDS, sums[1:5], strict=True):
                if n:
                    self._child(self.tokens, (*labels, kind)).inc(n)
            if sums[5]:
                self._child(self.cost, labels).inc(float(sums[5]))
        for key, n in attempts.items():
            self._child(self.attempts, key).inc(n)
        for (histogram, labels), values in timings.items():
            _observe_all(self._child(histogram, labels), values)
        self.sample(st, queued)

    def _timings(self, row: dict[str, Any], timing: Timing | None, into: dict[Any, list[float]]) -> None:
        at = (row["model"], row["provider_name"])
        if timing is None:  # an operation that keeps no timestamps: its recorded latency
            if row["latency_ms"] is not None:
                into[(self.duration, at)].append(row["latency_ms"] / 1000)
            return
        arrived, starts, first_byte, first_token, settled = timing
        into[(self.duration, at)].append(settled - arrived)
        if first_token is not None and row["streamed"]:
            into[(self.ttft, at)].append(first_token - arrived)
        if first_byte is None or not starts:
            return
        earlier = sum(a["latency"] for a in row["provider_responses"][:-1]) / 1000
        upstream = earlier + (first_byte - starts[-1])
        # A stream's relay waits on the upstream: its overhead is what came before the first byte.
        until = first_byte if row["streamed"] else settled
        into[(self.overhead, (row["api_type"],))].append(max(0.0, until - arrived - upstream))

    def sample(self, st: AppState, queued: int) -> None:
        self.queue.set(queued)
        if st.keepalive is not None:
            self.streams.set(len(st.keepalive.streams))
        if st.routing is not None:
            states = st.routing.health.states()
            for key in self._circuits_shown - states.keys():  # closed since: shown as closed
                self.circuits.labels(*key).set(0)
            for key, state in states.items():
                self.circuits.labels(*key).set(CIRCUIT_VALUES[state])
            self._circuits_shown |= states.keys()
        if (deliverer := st.deliverer) is not None:  # this worker's counts (observability/deliverer.py)
            for outcome, counts in (("delivered", deliverer.delivered), ("failed", deliverer.failed)):
                for destination, n in list(counts.items()):
                    key = (destination, outcome)
                    if n > (seen := self._deliveries_seen.get(key, 0)):
                        self.destinations.labels(destination, outcome).inc(n - seen)
                        self._deliveries_seen[key] = n

    # -- the scrape
    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        every = CollectorRegistry()
        multiprocess.MultiProcessCollector(every, path=self.multiprocess_dir)
        return generate_latest(every)

    def close(self) -> None:
        """The worker stops: its gauges leave the sums (its counters stay in them)."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)
