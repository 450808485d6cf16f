"""Workspaces on the request path: each workspace's defaults (`default_text_model`,
`default_provider_sort`) and budgets, as the "workspaces" governance section (governance/registry.py).

The section is None when no workspace has a default or a budget, so a request pays one dict lookup
at most. Management of workspaces and members is governance/workspace_service.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from omnirouter.accounting.periods import window_end
from omnirouter.governance.budgets import GovernedBudget
from omnirouter.jsonio import money
from omnirouter.store.tables import workspace_budgets as budgets_table
from omnirouter.store.tables import workspaces as workspaces_table

if TYPE_CHECKING:
    from omnirouter.accounting.ledger import Ledger
    from omnirouter.governance.keys import KeyRecord

# The workspace every key belongs to unless put in another (migration 0005 creates it; a UUID, as
# every workspace id is, for clients that check the format). Its slug is "default".
DEFAULT_WORKSPACE_ID = "00000000-0000-4000-8000-000000000000"
DEFAULT_WORKSPACE_SLUG = "default"

# Broadest first: the order budgets are checked and named in ("names the broadest exceeded interval").
INTERVALS = ("lifetime", "monthly", "weekly", "daily")
PERIOD_OF_INTERVAL = {"lifetime": "total", "monthly": "month", "weekly": "week", "daily": "day"}


def workspace_of(key: KeyRecord) -> str:
    return key.workspace_id or DEFAULT_WORKSPACE_ID


def usd(amount: Decimal) -> str:
    return f"${amount:.2f}"


def exceeded_message(interval: str, limit: Decimal) -> str:
    """OpenRouter's words (behaviors §10.2)."""
    return f"Workspace {interval} budget of {usd(limit)} exceeded. Contact your org admin."


def budget_scope(workspace_id: str) -> str:
    """The ledger scope a workspace's spend counts under (every key of the workspace adds to it)."""
    return f"ws:{workspace_id}"


@dataclass(frozen=True, slots=True)
class BudgetLayer:
    """A workspace budget as GET /key shows it (scope "workspace")."""

    budget_id: str
    interval: str
    limit: Decimal
    include_byok: bool


@dataclass(frozen=True, slots=True)
class Defaults:
    text_model: str | None
    provider_sort: str | None


class WorkspacesSnapshot:
    """What the request path needs of workspaces, by workspace id: only those with something set."""

    __slots__ = ("budgets", "defaults", "layers")

    def __init__(
        self,
        defaults: dict[str, Defaults],
        budgets: dict[str, tuple[GovernedBudget, ...]],
        layers: dict[str, tuple[BudgetLayer, ...]] | None = None,
    ) -> None:
        self.defaults = defaults
        self.budgets = budgets
        self.layers = layers or {}

    def apply_defaults(self, key: KeyRecord, body: dict[str, Any]) -> None:
        """The key's workspace's defaults, where the request leaves the field unset (an explicit
        `model`, `models` or `provider.sort` always wins)."""
        found = self.defaults.get(key.workspace_id or DEFAULT_WORKSPACE_ID)
        if found is None:
            return
        if found.text_model and not body.get("model") and not body.get("models"):
            body["model"] = found.text_model
        if found.provider_sort:
            provider = body.get("provider")
            if provider is None:
                body["provider"] = {"sort": found.provider_sort}
            elif isinstance(provider, dict) and provider.get("sort") is None:
                body["provider"] = {**provider, "sort": found.provider_sort}


def workspace_budgets(snapshot: WorkspacesSnapshot, key: KeyRecord) -> tuple[GovernedBudget, ...]:
    """The budgets of `key`'s workspace, broadest interval first (governance/budgets.py for_key)."""
    return snapshot.budgets.get(key.workspace_id or DEFAULT_WORKSPACE_ID, ())


def budget_layers(snapshot: WorkspacesSnapshot, ledger: Ledger, key: KeyRecord, now: datetime) -> list[dict[str, Any]]:
    """`key`'s workspace's budgets as GET /key's `budgets` entries (broadest first), with the spend of
    the whole workspace in each current window."""
    workspace = key.workspace_id or DEFAULT_WORKSPACE_ID
    scope = budget_scope(workspace)
    shown = []
    for layer in snapshot.layers.get(workspace, ()):
        period = PERIOD_OF_INTERVAL[layer.interval]
        usage, byok = ledger.spent(scope, period, now)
        spend = usage + byok if layer.include_byok else usage
        ends = window_end(period, now)
        shown.append(
            {
                "scope": "workspace",
                "budget_id": layer.budget_id,
                "guardrail_id": None,
                "include_byok": layer.include_byok,
                "limit_usd": money(layer.limit),
                "spend_usd": money(spend),
                "remaining_usd": money(layer.limit - spend),
                "reset_interval": None if layer.interval == "lifetime" else layer.interval,
                "resets_at": ends.astimezone(UTC).isoformat().replace("+00:00", "Z") if ends else None,
            }
        )
    return shown


def load(conn: Connection) -> WorkspacesSnapshot | None:
    """The "workspaces" section: None when no workspace has a default or a budget."""
    w = workspaces_table.c
    defaults = {
        row.id: Defaults(row.default_text_model, row.default_provider_sort)
        for row in conn.execute(
            select(w.id, w.default_text_model, w.default_provider_sort).where(
                or_(w.default_text_model.is_not(None), w.default_provider_sort.is_not(None))
            )
        )
    }
    b = budgets_table.c
    rows = conn.execute(
        select(b.id, b.workspace_id, b.interval, b.limit_usd, w.name, w.include_byok_in_budgets).join(
            workspaces_table, w.id == b.workspace_id
        )
    ).all()
    found: dict[str, list[GovernedBudget]] = {}
    layers: dict[str, list[BudgetLayer]] = {}
    for row in sorted(rows, key=lambda r: INTERVALS.index(r.interval)):
        layers.setdefault(row.workspace_id, []).append(
            BudgetLayer(row.id, row.interval, row.limit_usd, row.include_byok_in_budgets)
        )
        found.setdefault(row.workspace_id, []).append(
            GovernedBudget(
                scope=budget_scope(row.workspace_id),
                period=PERIOD_OF_INTERVAL[row.interval],
                limit=row.limit_usd,
                include_byok=row.include_byok_in_budgets,
                exceeded=exceeded_message(row.interval, row.limit_usd),
                owner=f"the {row.interval} budget of workspace {row.name!r}",
            )
        )
    if not defaults and not found:
        return None
    return WorkspacesSnapshot(
        defaults,
        {wid: tuple(bs) for wid, bs in found.items()},
        {wid: tuple(ls) for wid, ls in layers.items()},
    )
