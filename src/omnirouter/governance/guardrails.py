"""Guardrails on the request path (behaviors §10): which apply to a key, how they combine, and what
they do to a request before any provider is contacted.

The registry's "guardrails" section is a `Guardrails` snapshot, or None when no guardrail is assigned
to anyone (then a request pays one dict lookup). What applies to a key is its direct guardrail, the
guardrail of the member who created it, and its workspace's default guardrail; combined, allow-lists
intersect, deny-lists add up, ZDR flags OR per model group, content filters add up (block beats redact)
and each guardrail's budget is checked on its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnirouter.catalog.catalog import split_variants
from omnirouter.errors import GatewayError
from omnirouter.governance.budgets import GovernedBudget
from omnirouter.governance.content_filters import ContentBlocked, Filter, apply, compile_filters

if TYPE_CHECKING:
    from omnirouter.catalog.catalog import Catalog
    from omnirouter.catalog.types import Model
    from omnirouter.governance.keys import KeyRecord
    from omnirouter.routing.plan import Candidate, Plan

# governance/workspaces.py's DEFAULT_WORKSPACE_ID (the default workspace, created by migration 0005).
DEFAULT_WORKSPACE_ID = "00000000-0000-4000-8000-000000000000"
# A workspace default guardrail's id is derived from its workspace's (OpenRouter: "deterministic").
_DEFAULT_NAMESPACE = uuid.UUID("6f1d3c8e-2b9a-4d52-9a51-0c7e4b1f2a60")
SCOPE_OF_VIA = {"key": "api-key", "member": "member", "workspace": "workspace"}  # pipeline stage's guardrail_scope
PERIOD_OF_INTERVAL = {"daily": "day", "weekly": "week", "monthly": "month", None: "total"}
ZDR_GROUP_OF_AUTHOR = {"anthropic": "anthropic", "openai": "openai", "google": "google", "x-ai": "xai", "xai": "xai"}


def default_guardrail_id(workspace_id: str) -> str:
    """The id of a workspace's default guardrail, materialized by its first PATCH."""
    return str(uuid.uuid5(_DEFAULT_NAMESPACE, workspace_id))


def zdr_group(model: Model) -> str:
    return ZDR_GROUP_OF_AUTHOR.get(model.author.lower(), "other")


def _base(slug: str) -> str:
    return split_variants(slug)[0].lower()


@dataclass(eq=False)
class Rail:
    """One guardrail as the request path needs it."""

    id: str
    name: str
    workspace_id: str
    limit_usd: Decimal | None
    reset_interval: str | None
    include_byok: bool
    allowed_models: tuple[str, ...] | None
    ignored_models: tuple[str, ...]
    allowed_providers: tuple[str, ...] | None
    ignored_providers: tuple[str, ...]
    zdr_groups: frozenset[str]
    no_free_training: bool
    no_paid_training: bool
    filters: tuple[Filter, ...]
    _models: tuple[Any, frozenset[str] | None, frozenset[str]] | None = None  # (catalog, allowed, ignored)

    @property
    def routes(self) -> bool:
        """Whether it restricts where a request may go (models, providers, data policy)."""
        return bool(
            self.allowed_models or self.ignored_models or self.allowed_providers or self.ignored_providers
            or self.zdr_groups or self.no_free_training or self.no_paid_training
        )  # fmt: skip

    def model_sets(self, catalog: Catalog) -> tuple[frozenset[str] | None, frozenset[str]]:
        """Allowed and ignored model ids as the catalog names them (slugs, canonical slugs and aliases
        resolved), per catalog (a reload may rename)."""
        if self._models is not None and self._models[0] is catalog:
            return self._models[1], self._models[2]

        def ids(slugs: Iterable[str]) -> frozenset[str]:
            out = set()
            for s in slugs:
                out.add(_base(s))
                if (m := catalog.model(split_variants(s)[0])) is not None:
                    out.add(m.id.lower())
            return frozenset(out)

        allowed = ids(self.allowed_models) if self.allowed_models else None
        ignored = ids(self.ignored_models)
        self._models = (catalog, allowed, ignored)
        return allowed, ignored

    def model_ok(self, model: Model, catalog: Catalog) -> bool:
        allowed, ignored = self.model_sets(catalog)
        names = {model.id.lower()} | ({model.canonical_slug.lower()} if model.canonical_slug else set())
        return (allowed is None or bool(names & allowed)) and not (names & ignored)


def _rail(row: Any) -> Rail:
    zdr = frozenset(g for g in ("anthropic", "openai", "google", "xai", "other") if getattr(row, f"enforce_zdr_{g}"))
    return Rail(
        id=row.id,
        name=row.name,
        workspace_id=row.workspace_id,
        limit_usd=row.limit_usd,
        reset_interval=row.reset_interval,
        include_byok=row.include_byok_in_budgets,
        allowed_models=tuple(row.allowed_models) if row.allowed_models else None,
        ignored_models=tuple(row.ignored_models or ()),
        allowed_providers=tuple(row.allowed_providers) if row.allowed_providers else None,
        ignored_providers=tuple(row.ignored_providers or ()),
        zdr_groups=zdr,
        no_free_training=row.enable_free_model_training is False,
        no_paid_training=row.enable_paid_model_training is False,
        filters=compile_filters(row.id, row.name, row.content_filters, row.content_filter_builtins),
    )


@dataclass(frozen=True)
class Applied:
    """A guardrail that applies to a key, and through what: "key", "member" or "workspace"."""

    rail: Rail
    via: str
    subject: str  # the key's hash, the member's user id, the workspace's id


class Policy:
    """The guardrails that apply to one key, combined."""

    def __init__(self, applied: list[Applied]) -> None:
        self.applied = applied
        self.routing = [a.rail for a in applied if a.rail.routes]
        # Union of every guardrail's filters; blocks are checked before any redaction (block beats redact).
        self.filters = tuple(f for a in applied for f in a.rail.filters)
        self.budgets = [_budget(a) for a in applied if a.rail.limit_usd is not None]

    def enforce(
        self, body: dict[str, Any], plan: Plan, catalog: Catalog, *, metadata: bool = False
    ) -> list[dict[str, Any]] | None:
        """Narrow the plan to what every guardrail allows (403 for a model, 404 when the provider or
        data-policy restrictions leave no endpoint), then run the content filters (403 on a block,
        redaction in place). Returns what the filters did, for the generation record. `metadata`:
        the client opted in to `openrouter_metadata`, which a block then carries."""
        if self.routing:
            plan.candidates = self._narrow(plan, catalog)
        if not self.filters:
            return None
        try:
            return apply(self.filters, body)
        except ContentBlocked as blocked:
            if metadata:
                blocked.openrouter_metadata = self._stage(blocked, plan)
            raise

    def _stage(self, blocked: ContentBlocked, plan: Plan) -> dict[str, Any]:
        """`openrouter_metadata` of a blocked request: no attempt, and the guardrail's pipeline stage."""
        f = blocked.filter
        via = next((a.via for a in self.applied if a.rail.id == f.guardrail_id), "key")
        return {
            "requested": plan.requested[0],
            "strategy": plan.strategy,
            "region": None,
            "summary": f"blocked by guardrail '{f.guardrail_name}' before any provider",
            "attempt": 0,
            "is_byok": False,
            "endpoints": {
                "total": plan.total_endpoints,
                "available": [
                    {"provider": c.provider.name, "model": c.model.id, "selected": False} for c in plan.candidates
                ],
            },
            "pipeline": [
                {
                    "type": "guardrail",
                    "name": f.guardrail_name,
                    "guardrail_id": f.guardrail_id,
                    "guardrail_scope": SCOPE_OF_VIA[via],
                    "summary": blocked.message,
                    "data": {"action": "blocked", "filter": f.kind, "patterns": (blocked.metadata or {})["patterns"]},
                }
            ],
        }

    def _narrow(self, plan: Plan, catalog: Catalog) -> list[Candidate]:
        from omnirouter.routing.availability import availability_error
        from omnirouter.routing.plan import _matches

        cands = plan.candidates
        for rail in self.routing:
            if rail.allowed_models is None and not rail.ignored_models:
                continue
            kept = [c for c in cands if rail.model_ok(c.model, catalog)]
            if not kept:
                shown = cands[0].model.id if cands else plan.requested[0]
                raise GatewayError(
                    403,
                    f"Model {shown} is not allowed by guardrail '{rail.name}'",
                    {"guardrail_id": rail.id, "guardrail_name": rail.name, "reason": "model_not_allowed"},
                )
            cands = kept
        for rail in self.routing:
            allowed, ignored = list(rail.allowed_providers or ()), list(rail.ignored_providers)
            if allowed or ignored:
                cands = [
                    c
                    for c in cands
                    if (not allowed or _matches(allowed, c.endpoint, c.provider.name))
                    and not (ignored and _matches(ignored, c.endpoint, c.provider.name))
                ]
        if not cands:
            raise availability_error(
                "constraint_filtered",
                "No endpoints found that match the provider restrictions of your guardrails",
                plan.requested,
                excluded_by=["allowed_providers"],
            )
        zdr = frozenset().union(*(r.zdr_groups for r in self.routing))
        if zdr:
            cands = [c for c in cands if zdr_group(c.model) not in zdr or _policy(c).zdr]
            if not cands:
                raise availability_error(
                    "privacy_restricted",
                    "No endpoints found that satisfy the zero data retention required by your guardrails",
                    plan.requested,
                    excluded_by=["data_policy:zdr"],
                )
        no_free = any(r.no_free_training for r in self.routing)
        no_paid = any(r.no_paid_training for r in self.routing)
        if no_free or no_paid:
            cands = [
                c for c in cands if not _policy(c).training or not (no_free if c.endpoint.pricing.is_free else no_paid)
            ]
            if not cands:
                raise availability_error(
                    "privacy_restricted",
                    "No endpoints found that satisfy the data policy of your guardrails (no training on prompts)",
                    plan.requested,
                    excluded_by=["data_policy:training"],
                )
        return cands

    def allows_model(self, model: Model, catalog: Catalog) -> bool:
        """Whether every guardrail lets requests reach the model through some live endpoint
        (GET /models/user): the same rules as a request's, per endpoint."""
        from omnirouter.routing.plan import Candidate

        if not all(r.model_ok(model, catalog) for r in self.routing):
            return False
        for ep in catalog.live_endpoints(model):
            provider = catalog.provider(ep.provider)
            if provider is None:
                continue
            plan = _Probe([Candidate(model, ep, provider, None)], [model.id])
            try:
                self._narrow(plan, catalog)  # type: ignore[arg-type]
            except GatewayError:
                continue
            return True
        return False


@dataclass
class _Probe:
    """A one-endpoint stand-in for a plan, to ask whether the guardrails would let it through."""

    candidates: list[Any]
    requested: list[str]


def _policy(c: Candidate) -> Any:
    from omnirouter.catalog.types import DataPolicy

    return c.provider.data_policy or DataPolicy()


def _budget(a: Applied) -> GovernedBudget:
    rail = a.rail
    assert rail.limit_usd is not None
    per = {"daily": " per day", "weekly": " per week", "monthly": " per month"}.get(rail.reset_interval or "", "")
    limit = f"${rail.limit_usd:,.2f}"
    whom = {"key": "", "member": f" for member {a.subject}", "workspace": ""}[a.via]
    return GovernedBudget(
        scope=f"grd:{rail.id}:{a.via}:{a.subject}",
        period=PERIOD_OF_INTERVAL[rail.reset_interval],
        limit=rail.limit_usd,
        include_byok=rail.include_byok,
        exceeded=f"Guardrail '{rail.name}' budget of {limit}{per}{whom} exceeded",
        owner=f"the budget of guardrail '{rail.name}'",
    )


class Guardrails:
    """The snapshot: every assigned or workspace-default guardrail, and who they apply to."""

    def __init__(self, rails: dict[str, Rail], by_key: dict[str, str], by_member: dict[str, str],
                 by_workspace: dict[str, str]) -> None:  # fmt: skip
        self.rails = rails
        self.by_key = by_key
        self.by_member = by_member
        self.by_workspace = by_workspace
        self._policies: dict[tuple[str, str | None, str | None], Policy | None] = {}

    def policy(self, key: KeyRecord) -> Policy | None:
        """The combined guardrails of `key`, or None when none applies (remembered per key)."""
        cache_key = (key.hash, key.creator_user_id, key.workspace_id)
        try:
            return self._policies[cache_key]
        except KeyError:
            pass
        applied = []
        if (gid := self.by_key.get(key.hash)) is not None:
            applied.append(Applied(self.rails[gid], "key", key.hash))
        if key.creator_user_id and (gid := self.by_member.get(key.creator_user_id)) is not None:
            applied.append(Applied(self.rails[gid], "member", key.creator_user_id))
        workspace = key.workspace_id or DEFAULT_WORKSPACE_ID
        if (gid := self.by_workspace.get(workspace)) is not None:
            applied.append(Applied(self.rails[gid], "workspace", workspace))
        found = Policy(applied) if applied else None
        self._policies[cache_key] = found
        return found


def load(conn: Connection) -> Guardrails | None:
    """The registry's loader: None when no guardrail applies to anything."""
    from omnirouter.store.tables import guardrail_key_assignments as gk
    from omnirouter.store.tables import guardrail_member_assignments as gm
    from omnirouter.store.tables import guardrails as g

    by_key = {r.key_hash: r.guardrail_id for r in conn.execute(sa.select(gk.c.key_hash, gk.c.guardrail_id))}
    by_member = {r.user_id: r.guardrail_id for r in conn.execute(sa.select(gm.c.user_id, gm.c.guardrail_id))}
    defaults = list(conn.execute(sa.select(g).where(g.c.workspace_default.is_(True))))
    if not by_key and not by_member and not defaults:
        return None
    wanted = set(by_key.values()) | set(by_member.values())
    rows = list(conn.execute(sa.select(g).where(g.c.id.in_(wanted)))) if wanted else []
    rails = {r.id: _rail(r) for r in [*rows, *defaults]}
    by_workspace = {r.workspace_id: r.id for r in defaults}
    # An assignment whose guardrail is gone (deleted meanwhile) applies nothing.
    by_key = {k: v for k, v in by_key.items() if v in rails}
    by_member = {k: v for k, v in by_member.items() if v in rails}
    return Guardrails(rails, by_key, by_member, by_workspace)


def guardrail_budgets(snapshot: Guardrails, key: KeyRecord) -> list[GovernedBudget]:
    """The budgets the key's guardrails put on its requests (governance/budgets.py): a key's own
    guardrail budgets that key, a member's budgets all that member's keys together (each member
    their own allowance), a workspace default's the whole workspace."""
    policy = snapshot.policy(key)
    return policy.budgets if policy is not None else []
