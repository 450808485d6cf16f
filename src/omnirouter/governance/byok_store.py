"""BYOK on the request path: the governance section "byok" (every enabled key, decrypted once when the
snapshot loads, held in memory only) and the hook that puts a request's BYOK candidates in its plan.

Order (behaviors §5.5): the workspace's prioritized keys for each planned endpoint's provider, in the
plan's order (so even ahead of provider.order's later entries) and by sort_order within a provider;
then the shared endpoints; then the fallback keys. A key applies when its model, API-key and user
filters admit the request. `is_required` removes the shared endpoints of its provider for the models
it applies to, `is_byok_only` for every model.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from omnirouter.catalog.catalog import Catalog
from omnirouter.formats.openai_chat import ChatRequest
from omnirouter.governance.byok_crypto import Undecryptable, bound
from omnirouter.governance.byok_service import default_workspace
from omnirouter.governance.keys import KeyRecord
from omnirouter.providers.base import Credentials, UpstreamContext
from omnirouter.routing.availability import availability_error
from omnirouter.routing.plan import Plan
from omnirouter.store.tables import byok_keys

log = logging.getLogger("omnirouter")
NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class ByokKey:
    """One enabled BYOK key, its secret in clear (memory only: never logged, never in a repr)."""

    id: str
    provider: str
    is_fallback: bool
    is_required: bool
    is_byok_only: bool
    sort_order: int
    allowed_models: frozenset[str] | None
    allowed_key_hashes: frozenset[str] | None
    allowed_user_ids: frozenset[str] | None
    declared_zdr: bool | None
    secret: str = field(repr=False)
    # What the adapters get for a call with this key and no forwarded client headers.
    context: UpstreamContext = field(repr=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "context", UpstreamContext(credentials=Credentials(api_key=self.secret)))

    def covers(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models

    def admits(self, model: str, key_hash: str, user: str | None) -> bool:
        return (
            self.covers(model)
            and (self.allowed_key_hashes is None or key_hash in self.allowed_key_hashes)
            and (self.allowed_user_ids is None or (user is not None and user in self.allowed_user_ids))
        )

    def zdr_ok(self, *, by_policy: bool) -> bool:
        """Whether it may serve a request asking for ZDR at an endpoint whose provider policy is ZDR
        (`by_policy`) or not: declared non-ZDR never; declared ZDR always; undeclared as the policy."""
        return self.declared_zdr is True or (by_policy and self.declared_zdr is None)

    def context_for(self, ctx: UpstreamContext | None) -> UpstreamContext:
        """The upstream context of one attempt with this key: its credentials, the request's headers."""
        if ctx is None or not ctx.headers:
            return self.context
        return UpstreamContext(credentials=self.context.credentials, headers=ctx.headers)


@dataclass(frozen=True)
class ByokSnapshot:
    """Workspace -> provider slug -> its enabled keys, prioritized ones first, each by sort_order."""

    by_workspace: Mapping[str, Mapping[str, tuple[ByokKey, ...]]]


def _frozen(values: list[str] | None) -> frozenset[str] | None:
    # An empty list restricts nothing, as null (the spec's "empty or containing").
    return frozenset(values) if values else None


def load(conn: Connection) -> ByokSnapshot | None:
    """Every enabled key, decrypted with the keyring bound to this database (None: no key at all, so
    that a request pays one lookup). A key no configured encryption key opens is left out, logged by id."""
    c = byok_keys.c
    rows = conn.execute(
        select(byok_keys)
        .where(c.deleted.is_(False), c.disabled.is_(False))
        .order_by(c.workspace_id, c.provider, c.is_fallback, c.sort_order, c.created_at)
    ).all()
    if not rows:
        return None
    keyring = bound(conn)
    if keyring is None:
        log.warning("%d BYOK key(s) stored but OMNIROUTER_ENCRYPTION_KEY is not set: they are not used", len(rows))
        return None
    out: dict[str, dict[str, list[ByokKey]]] = {}
    for r in rows:
        try:
            secret = keyring.decrypt(r.secret)
        except Undecryptable:
            log.warning("BYOK key %s: no key in OMNIROUTER_ENCRYPTION_KEY decrypts it; it is not used", r.id)
            continue
        entry = ByokKey(
            id=r.id,
            provider=r.provider,
            is_fallback=r.is_fallback,
            is_required=r.is_required,
            is_byok_only=r.is_byok_only,
            sort_order=r.sort_order,
            allowed_models=_frozen(r.allowed_models),
            allowed_key_hashes=_frozen(r.allowed_api_key_hashes),
            allowed_user_ids=_frozen(r.allowed_user_ids),
            declared_zdr=r.declared_zdr,
            secret=secret,
        )
        out.setdefault(r.workspace_id, {}).setdefault(r.provider, []).append(entry)
    return ByokSnapshot({w: {p: tuple(keys) for p, keys in ps.items()} for w, ps in out.items()})


def routing_sets(
    snapshot: ByokSnapshot, key: KeyRecord, req: ChatRequest, catalog: Catalog
) -> tuple[frozenset[str], frozenset[str]]:
    """What the planner must know of the request's workspace keys (governance/byok_store.py `apply`
    keeps the endpoints they bring for BYOK candidates only):
    - the providers it has keys for and the instance has none (disabled in the catalog), whose
      endpoints are planned too;
    - when the request asks for ZDR, the providers it has a key declared ZDR for (`declared_zdr`),
      whose endpoints pass the ZDR filter whatever the provider's own policy."""
    providers = snapshot.by_workspace.get(key.workspace_id or default_workspace())
    if providers is None:
        return NONE, NONE
    keyless = [p for p in providers if (known := catalog.provider(p)) is not None and not known.enabled]
    zdr = []
    if req.provider is not None and req.provider.zdr:
        zdr = [p for p, keys in providers.items() if any(k.declared_zdr for k in keys)]
    return (frozenset(keyless) if keyless else NONE), (frozenset(zdr) if zdr else NONE)


def _zdr(cand: Any) -> bool:
    policy = cand.provider.data_policy
    return policy is not None and policy.zdr


def apply(snapshot: ByokSnapshot, plan: Plan, key: KeyRecord, req: ChatRequest) -> None:
    """Put the request's BYOK candidates in `plan` (hook 6 of pipeline/endpoint.py `_admit`)."""
    providers = snapshot.by_workspace.get(key.workspace_id or default_workspace())
    if providers is None:
        return
    key_hash, user = key.hash, req.user
    zdr = bool(req.provider and req.provider.zdr)  # the request asks for ZDR
    first: list[Any] = []
    shared: list[Any] = []
    last: list[Any] = []
    changed = False
    for cand in plan.candidates:
        keys = providers.get(cand.provider.slug)
        if keys is None:
            shared.append(cand)
            continue
        model = cand.model.id
        # Under ZDR, an endpoint the provider's own policy does not make ZDR came in for the keys
        # declared ZDR alone (routing_sets); a key declared non-ZDR never serves such a request.
        zdr_by_key = zdr and not _zdr(cand)
        for k in keys:
            if k.admits(model, key_hash, user) and (not zdr or k.zdr_ok(by_policy=not zdr_by_key)):
                (last if k.is_fallback else first).append(dataclasses.replace(cand, byok=k))
                changed = True
        if (
            zdr_by_key
            or not cand.provider.enabled
            or any(k.is_byok_only or (k.is_required and k.covers(model)) for k in keys)
        ):
            changed = True  # the shared endpoint is left out (no key of the instance's, or not ZDR)
        else:
            shared.append(cand)
    if not changed:
        return
    candidates = first + shared + last
    if not candidates:
        raise availability_error(
            "no_endpoints",
            "The workspace's BYOK keys require its own keys for this provider, and none applies to this request",
            plan.requested,
        )
    plan.candidates = candidates
    plan.byok = True
