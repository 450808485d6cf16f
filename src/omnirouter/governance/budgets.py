"""The budgets governance puts on a key beside its own limit: each applicable guardrail's `limit_usd`
and its workspace's budgets (behaviors §10.2: checked independently, the lowest wins). The meter
(accounting/meter.py) enforces them with the key's limit and the instance's credit, on the same
reserve-then-settle path and the same shared leases."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omnirouter.governance.keys import KeyRecord
    from omnirouter.governance.registry import Governance


@dataclass(frozen=True, slots=True)
class GovernedBudget:
    scope: str  # the ledger scope its spend counts under, e.g. "grd:<guardrail id>:key:<hash>" (<= 200 chars)
    period: str  # the window: "day", "week", "month" or "total" (accounting/periods.py)
    limit: Decimal  # USD
    include_byok: bool  # BYOK spend (what it would have cost) counts too
    exceeded: str  # the 403's message once it is spent, e.g. "Workspace monthly budget of $500.00 exceeded. ..."
    owner: str  # names it in refusals: "the budget of guardrail 'Team A'", "the monthly budget of workspace 'Prod'"


EXCEEDED_STATUS = 403  # a guardrail or workspace budget met (behaviors §10.2, §10.3)


def for_key(gov: Governance, key: KeyRecord) -> tuple[GovernedBudget, ...]:
    """Every budget governance puts on `key`'s requests; () when none does (the common case)."""
    budgets: tuple[GovernedBudget, ...] = ()
    guardrails = gov.get("guardrails")
    if guardrails is not None:
        from omnirouter.governance.guardrails import guardrail_budgets

        budgets += tuple(guardrail_budgets(guardrails, key))
    workspaces = gov.get("workspaces")
    if workspaces is not None:
        from omnirouter.governance.workspaces import workspace_budgets

        budgets += tuple(workspace_budgets(workspaces, key))
    return budgets
