"""The routing state a worker keeps: planner, circuit breakers, measured stats, sticky sessions and
the provider adapters. Built once per worker in app.py."""

from __future__ import annotations

from dataclasses import dataclass

from omnirouter.providers.base import Adapter
from omnirouter.routing.health import Health
from omnirouter.routing.plan import Planner
from omnirouter.routing.stats import EndpointStats
from omnirouter.routing.sticky import Sticky


@dataclass
class Routing:
    planner: Planner
    health: Health
    stats: EndpointStats
    sticky: Sticky
    adapters: dict[str, Adapter]
