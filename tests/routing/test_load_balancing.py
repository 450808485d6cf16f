"""Default load balancing (behaviors §3.1): the first choice is drawn at random weighted by the inverse
square of price, and endpoints that failed recently go last. Seeded RNG: deterministic, not flaky."""

from __future__ import annotations

from collections import Counter

import pytest
from routing_helpers import config, endpoint, model, plan, provider, routing_for

N = 600
# Chi-square critical value for 2 degrees of freedom at p = 0.001: a correct sampler stays far below.
CHI2_2DF_P001 = 13.82


def three_priced(scale: float) -> dict:
    """One model, three endpoints priced 1, 2 and 3 units per million (split over prompt and completion)."""
    eps = [endpoint(s, prompt=0.5 * n * scale, completion=0.5 * n * scale) for n, s in enumerate("xyz", 1)]
    return config([provider(s) for s in "xyz"], [model("lb/m", eps)])


def chi_square(observed: Counter, expected_shares: dict[str, float], n: int) -> float:
    return sum((observed[k] - n * p) ** 2 / (n * p) for k, p in expected_shares.items())


@pytest.mark.parametrize(
    "scale", [1.0, 0.01, 0.001, 50.0], ids=["$1-3/M", "$0.01-0.03/M", "$0.001-0.003/M", "$50-150/M"]
)
def test_first_choice_is_weighted_by_inverse_square_of_price(scale):
    routing = routing_for(three_priced(scale), seed=1234)
    firsts = Counter(plan(routing, {"model": "lb/m"}).candidates[0].endpoint.slug for _ in range(N))
    weights = {"x": 1.0, "y": 1 / 4, "z": 1 / 9}
    total = sum(weights.values())
    shares = {k: w / total for k, w in weights.items()}  # 36/49, 9/49, 4/49
    assert chi_square(firsts, shares, N) < CHI2_2DF_P001, firsts
    # The worked example's ratio: the $1 endpoint is about nine times as likely as the $3 one.
    assert 5 < firsts["x"] / firsts["z"] < 15, firsts


def test_every_endpoint_stays_in_the_plan_as_a_fallback():
    routing = routing_for(three_priced(1.0), seed=7)
    for _ in range(50):
        assert sorted(c.endpoint.slug for c in plan(routing, {"model": "lb/m"}).candidates) == ["x", "y", "z"]


def test_recently_failing_endpoint_goes_last():
    """The docs' example: A $1, B $2 with recent outages, C $3 -> B is tried last, A ~9x as often as C first."""
    routing = routing_for(three_priced(1.0), seed=99)
    routing.health.failed(("lb/m", "y"))
    orders = [[c.endpoint.slug for c in plan(routing, {"model": "lb/m"}).candidates] for _ in range(N)]
    assert all(o[-1] == "y" for o in orders)
    firsts = Counter(o[0] for o in orders)
    assert chi_square(firsts, {"x": 0.9, "z": 0.1}, N) < 10.83  # 1 df, p = 0.001


def test_failing_cheapest_endpoint_is_never_first():
    routing = routing_for(three_priced(1.0), seed=5)
    routing.health.failed(("lb/m", "x"))
    assert {plan(routing, {"model": "lb/m"}).candidates[0].endpoint.slug for _ in range(200)} <= {"y", "z"}


def test_free_endpoint_always_first():
    cfg = three_priced(1.0)
    cfg["models"][0]["endpoints"].append(endpoint("w", prompt=0, completion=0))
    cfg["providers"].append(provider("w"))
    routing = routing_for(cfg, seed=3)
    assert {plan(routing, {"model": "lb/m"}).candidates[0].endpoint.slug for _ in range(100)} == {"w"}
