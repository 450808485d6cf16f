"""The in-memory catalog: built once at startup, read on every request.

Everything a request needs (a model by any of its names, its live endpoints, a provider) is a
precomputed dict lookup; nothing here walks the model list on the request path.
"""

from __future__ import annotations

from omnirouter.catalog.types import Endpoint, Model, Provider


def split_variants(slug: str) -> tuple[str, tuple[str, ...]]:
    """``"openai/gpt-4o:nitro:online"`` -> ``("openai/gpt-4o", ("nitro", "online"))`` (behaviors §4.1)."""
    base, *variants = slug.split(":")
    return base, tuple(v for v in variants if v)


class Catalog:
    """Providers and models, indexed. Treat it as immutable: a new catalog replaces it on reload."""

    def __init__(self, providers: dict[str, Provider], models: dict[str, Model]) -> None:
        self.providers = providers
        self.models = models
        # Aliases and canonical slugs first, then every name lower-cased, so an exact alias beats a
        # case-insensitive match of another model's id.
        self._names: dict[str, Model] = {}
        self._folded: dict[str, Model] = {}
        for model in models.values():
            for name in (*model.aliases, model.canonical_slug):
                if name and name not in models:
                    self._names.setdefault(name, model)
        for model in models.values():
            for name in (model.id, *model.aliases, model.canonical_slug):
                if name:
                    self._folded.setdefault(name.lower(), model)
        self._live: dict[str, list[Endpoint]] = {}
        for model in models.values():
            self._live[model.id] = [ep for ep in model.endpoints if self._is_live(ep)]
        self._live_models = [m for m in models.values() if self._live[m.id]]

    def _is_live(self, ep: Endpoint) -> bool:
        provider = self.providers.get(ep.provider)
        return provider is not None and provider.enabled

    def model(self, model_id: str) -> Model | None:
        """Exact id, then an alias or canonical slug, then any of those case-insensitively."""
        found = self.models.get(model_id) or self._names.get(model_id)
        if found is None:
            found = self._folded.get(model_id.lower())
        return found

    def latest(self, family: str) -> Model | None:
        """`author/family-latest` (the `~` already stripped): the newest servable model of the family."""
        prefix = family.removesuffix("-latest").lower()
        found = [
            m for m in self._live_models
            if m.id.lower() == prefix or (m.id.lower().startswith(prefix) and m.id[len(prefix)] in "-.:0123456789")
        ]  # fmt: skip
        return max(found, key=lambda m: (m.created, m.id), default=None)

    def provider(self, slug: str) -> Provider | None:
        return self.providers.get(slug)

    def live_endpoints(self, model: Model) -> list[Endpoint]:
        """The model's endpoints whose provider exists and is enabled, in catalog order."""
        live = self._live.get(model.id)
        if live is None:  # a Model object that is not from this catalog
            return [ep for ep in model.endpoints if self._is_live(ep)]
        return live

    def live_models(self) -> list[Model]:
        """Models with at least one live endpoint: what this gateway can actually serve."""
        return self._live_models

    @staticmethod
    def endpoint_context_length(model: Model, ep: Endpoint) -> int | None:
        return ep.context_length if ep.context_length is not None else model.context_length

    @staticmethod
    def endpoint_supported_parameters(model: Model, ep: Endpoint) -> list[str]:
        if ep.supported_parameters is not None:
            return ep.supported_parameters
        return model.supported_parameters
