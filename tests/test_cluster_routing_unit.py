"""The pieces of shared routing health that need no Redis to check: how statistics from several
instances merge, and how circuits and sticky sessions apply what other instances announced."""

from __future__ import annotations

import random
import time

from omnirouter.cluster.health import SharedHealth
from omnirouter.cluster.stats import SKETCH_POINTS, SharedStats, merged_percentiles, sketch
from omnirouter.cluster.sticky import SharedSticky
from omnirouter.routing.stats import percentiles

KEY = ("m", "e")


def test_merging_nothing_from_elsewhere_is_the_local_nearest_rank():
    values = [random.Random(1).uniform(0.1, 3) for _ in range(257)]
    assert merged_percentiles(values, []) == percentiles(values)


def test_a_small_sketch_is_every_value_and_merges_exactly():
    rng = random.Random(2)
    a, b = [rng.uniform(0, 1) for _ in range(40)], [rng.uniform(1, 2) for _ in range(60)]
    assert sketch(b) == (60, sorted(b))
    assert merged_percentiles(a, [sketch(b)]) == percentiles(a + b)


def test_a_large_sketch_stays_within_a_sketch_step_of_the_exact_percentiles():
    rng = random.Random(3)
    local = [rng.expovariate(1) for _ in range(1000)]
    others = [[rng.expovariate(0.5) for _ in range(1000)] for _ in range(2)]
    n, points = sketch(others[0])
    assert n == 1000 and len(points) == SKETCH_POINTS
    merged = merged_percentiles(local, [sketch(o) for o in others])
    everything = sorted(local + others[0] + others[1])
    exact = percentiles(everything)
    assert merged is not None
    for p, value in merged.items():
        rank = everything.index(value) / len(everything)  # where the merged value sits among all samples
        exact_rank = everything.index(exact[p]) / len(everything)
        assert abs(rank - exact_rank) <= 1 / SKETCH_POINTS, (p, rank, exact_rank)


def test_stats_read_the_other_instances_with_their_own():
    here, there = SharedStats(), SharedStats()
    for ttft in (0.1, 0.2, 0.3):
        here.record_success(KEY, ttft=ttft, tokens=10, generation_seconds=1.0)
    for ttft in (1.0, 2.0, 3.0, 4.0, 5.0):
        there.record_success(KEY, ttft=ttft, tokens=10, generation_seconds=1.0)
    there.record_failure(KEY)
    assert here.latency(KEY) == percentiles([0.1, 0.2, 0.3])
    assert here.uptime(KEY, 300) == 1.0

    published = there.summary()  # what `there` publishes
    here.install({KEY: published})
    assert here.latency(KEY) == percentiles([0.1, 0.2, 0.3, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert here.uptime(KEY, 300) == 8 / 9
    assert here.uptime(KEY, 86400) == 8 / 9
    assert here.throughput(KEY) == percentiles([10.0] * 8)
    assert here.tool_success(KEY) is None
    here.install({})  # nothing heard from elsewhere (Redis down too long): its own again
    assert here.latency(KEY) == percentiles([0.1, 0.2, 0.3])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_circuits_announce_changes_and_apply_the_others():
    said: list = []
    clock = Clock()
    a = SharedHealth(announce=said.append, cooldown=30, clock=clock)
    b = SharedHealth(cooldown=30, clock=Clock())
    a.succeeded(KEY)  # closed already: nothing to say
    assert said == []
    a.failed(KEY, retry_after=7)
    kind, key, until, cooldown = said[-1]
    assert (kind, key, cooldown) == ("open", KEY, 7) and abs(until - (time.time() + 7)) < 0.5
    b.apply(said[-1])
    assert b.state(KEY) == "open" and b.deprioritised(KEY)
    a.attempt_started(KEY)  # still cooling: not a probe
    assert said[-1][0] == "open"
    clock.now += 7
    a.attempt_started(KEY)  # the probe
    assert said[-1][0] == "probe"
    b.clock.now += 7  # type: ignore[attr-defined]
    assert not b.deprioritised(KEY)  # half-open here too...
    b.apply(said[-1])
    assert b.deprioritised(KEY)  # ...until it hears someone probes
    a.succeeded(KEY)
    assert said[-1] == ("close", KEY, 0.0, 0.0)
    b.apply(said[-1])
    assert b.state(KEY) == "closed" and not b.deprioritised(KEY)


def test_a_cluster_wide_failure_doubles_the_cooling_period_everywhere():
    said: list = []
    a, b = SharedHealth(announce=said.append, cooldown=30), SharedHealth(announce=said.append, cooldown=30)
    a.failed(KEY)
    b.apply(said[-1])
    b.failed(KEY)  # failing again, on another instance: its circuit knows the first cooling period
    assert said[-1][3] == 60


def test_sticky_sessions_announce_new_routes_not_every_renewal():
    said: list = []
    a, b = SharedSticky(announce=said.append), SharedSticky()
    a.remember("s", "m", "e")
    a.remember("s", "m", "e")  # a renewal soon after: the others' copy is fresh enough
    assert said == [("set", "s", "m", "e", a.ttl)]
    b.apply(said[-1])
    assert b.get("s") == ("m", "e") and b  # a conversation that sticks anywhere: worth hashing here
    a.remember("s", "m", "other")  # re-routed: news
    a.forget("s")
    assert [e[0] for e in said] == ["set", "set", "forget"]
    for event in said[1:]:
        b.apply(event)
    assert b.get("s") is None
    a.forget("never-stuck")  # nothing to tell
    assert len(said) == 3
    a.remember("x" * 300, "m", "e")  # too long a session id to share
    assert len(said) == 3 and a.get("x" * 300) == ("m", "e")
