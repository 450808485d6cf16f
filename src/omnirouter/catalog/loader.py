"""Build the catalog: bundled file, then the imported OpenRouter snapshot, then the config file.

Each layer may add providers and models or amend the ones below it. A model named again keeps its
endpoints and gains the new ones (an endpoint with the same provider slug, or tag, is replaced), so a
config file can add a local server to `meta-llama/llama-3.1-8b-instruct` in three lines. Secrets come
from the environment only, and decide which providers are live.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from omnirouter.catalog.catalog import Catalog
from omnirouter.catalog.types import (
    Architecture,
    CatalogData,
    DataPolicy,
    Endpoint,
    Model,
    Pricing,
    Provider,
    Reasoning,
)
from omnirouter.providers.apis import ADAPTER_APIS

log = logging.getLogger("omnirouter.catalog")
IMPORTED_CATALOG = "catalog.json"  # in the data directory; written by `omnirouter catalog import`
SANDBOX = "sandbox"
# As roomy as the models agents are built for: Claude Code asks for 32,000 and 128,000 output tokens.
SANDBOX_CONTEXT, SANDBOX_MAX_COMPLETION = 200_000, 128_000

_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_MODEL_ID = re.compile(r"^[^\s/:]+/[^\s/:]+$")

# Fields a config file may set. `api_key` is accepted (a literal secret), though `api_key_env` is better;
# `enabled: false` switches a provider off even when its key is set.
_PROVIDER_FIELDS = frozenset(f.name for f in msgspec.structs.fields(Provider))
_MODEL_FIELDS = frozenset(f.name for f in msgspec.structs.fields(Model))
_ENDPOINT_FIELDS = frozenset(f.name for f in msgspec.structs.fields(Endpoint))
_NESTED_FIELDS = {
    "data_policy": frozenset(f.name for f in msgspec.structs.fields(DataPolicy)),
    "architecture": frozenset(f.name for f in msgspec.structs.fields(Architecture)),
    "reasoning": frozenset(f.name for f in msgspec.structs.fields(Reasoning)),
    "pricing": frozenset(f.name for f in msgspec.structs.fields(Pricing)),
}


def load_bundled() -> CatalogData:
    """The catalog shipped with the package (decoded afresh: the structs are mutable)."""
    raw = resources.files("omnirouter.catalog").joinpath("bundled.json").read_bytes()
    return msgspec.json.decode(raw, type=CatalogData)


def read_catalog_file(path: Path) -> CatalogData:
    try:
        return msgspec.json.decode(path.read_bytes(), type=CatalogData)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"{path}: not a valid catalog file: {exc}") from exc


def load_catalog(
    *,
    config: dict[str, Any] | None,
    env: Mapping[str, str],
    sandbox: bool,
    data_dir: Path,
    config_source: str = "config file",
    routable_apis: frozenset[str] = ADAPTER_APIS,
) -> Catalog:
    """The live catalog. Raises ValueError naming the file and the field when an input is malformed.

    `config` holds the config file's `providers` and/or `models` lists as YAML decoded them;
    `config_source` is the file's name, for error messages.
    """
    layers = CatalogLayers()
    layers.add(load_bundled(), "bundled catalog")
    imported = Path(data_dir) / IMPORTED_CATALOG
    if imported.is_file():
        layers.add(read_catalog_file(imported), str(imported))
    if config:
        layers.add_config(config, config_source)
    return layers.build(env=env, sandbox=sandbox, routable_apis=routable_apis)


class CatalogLayers:
    """Providers and models as plain dicts while layers are merged; `build` makes the Catalog."""

    def __init__(self) -> None:
        self.providers: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self._declared: set[str] = set()  # provider slugs the config file names
        self._disabled: set[str] = set()  # providers the config file switches off

    def add(self, data: CatalogData, source: str) -> None:
        """A layer that already decoded as CatalogData (the bundled file, an imported snapshot)."""
        self._add_providers([msgspec.to_builtins(p) for p in data.providers], source, from_config=False)
        self._add_models([msgspec.to_builtins(m) for m in data.models], source)

    def add_config(self, config: Mapping[str, Any], source: str) -> None:
        if not isinstance(config, Mapping):
            raise ValueError(f"{source}: expected a mapping with `providers` and/or `models`")
        providers = config.get("providers") or []
        models = config.get("models") or []
        for name, value in (("providers", providers), ("models", models)):
            if not isinstance(value, list):
                raise ValueError(f"{source}: `{name}` must be a list, got {_kind(value)}")
        self._add_providers(providers, source, from_config=True)
        self._add_models(models, source)

    def _add_providers(self, raws: list[Any], source: str, *, from_config: bool) -> None:
        for i, raw in enumerate(raws):
            where = f"providers[{i}]"
            _check_mapping(raw, source, where)
            _check_fields(raw, _PROVIDER_FIELDS, source, where)
            slug = raw.get("slug")
            if not isinstance(slug, str) or not _SLUG.match(slug):
                raise ValueError(
                    f"{source}: {where}.slug: required, lower-case letters, digits, '.', '_' or '-' (got {slug!r})"
                )
            merged = _overlay(self.providers.get(slug), raw, ("data_policy", "headers"))
            merged.setdefault("name", slug)
            merged.pop("enabled", None)  # computed in build()
            if from_config and isinstance(raw.get("ca_file"), str):
                merged["ca_file"] = _ca_file(raw["ca_file"], source, where)
            _convert(merged, Provider, source, where)
            self.providers[slug] = merged
            if from_config:
                self._declared.add(slug)
                if raw.get("enabled") is False:
                    self._disabled.add(slug)

    def _add_models(self, raws: list[Any], source: str) -> None:
        for i, raw in enumerate(raws):
            where = f"models[{i}]"
            _check_mapping(raw, source, where)
            _check_fields(raw, _MODEL_FIELDS, source, where)
            model_id = raw.get("id")
            if not isinstance(model_id, str) or not _MODEL_ID.match(model_id):
                raise ValueError(f"{source}: {where}.id: required, of the form author/slug (got {model_id!r})")
            endpoints = raw.get("endpoints") or []
            if not isinstance(endpoints, list):
                raise ValueError(f"{source}: {where}.endpoints: must be a list, got {_kind(endpoints)}")
            existing = self.models.get(model_id)
            merged = _overlay(
                existing, {k: v for k, v in raw.items() if k != "endpoints"}, ("architecture", "reasoning")
            )
            merged.setdefault("name", model_id)
            arch = raw.get("architecture")
            if isinstance(arch, dict) and "modality" not in arch:
                merged["architecture"]["modality"] = _modality(merged["architecture"])
            merged_eps = list(existing["endpoints"]) if existing else []
            for j, ep in enumerate(endpoints):
                ep_where = f"{where}.endpoints[{j}]"
                _check_mapping(ep, source, ep_where)
                _check_fields(ep, _ENDPOINT_FIELDS, source, ep_where)
                provider = ep.get("provider")
                if provider not in self.providers:
                    raise ValueError(
                        f"{source}: {ep_where}.provider: unknown provider {provider!r}; "
                        "declare it under `providers` first"
                    )
                key = ep.get("tag") or provider
                merged_eps = [e for e in merged_eps if (e.get("tag") or e["provider"]) != key]
                merged_eps.append(ep)
            merged["endpoints"] = merged_eps
            _convert(merged, Model, source, where)
            self.models[model_id] = merged

    def build(self, *, env: Mapping[str, str], sandbox: bool, routable_apis: frozenset[str] = ADAPTER_APIS) -> Catalog:
        providers: dict[str, Provider] = {}
        for slug, raw in self.providers.items():
            provider = msgspec.convert(raw, Provider)
            if provider.api_key_env and env.get(provider.api_key_env):
                provider.api_key = env[provider.api_key_env]
            # A provider declared in the config file with no api_key_env (a local vLLM) needs no key.
            keyless = slug in self._declared and not provider.api_key_env
            provider.enabled = (bool(provider.api_key) or keyless) and slug not in self._disabled
            if provider.enabled and provider.api not in routable_apis:
                # Listing models that every request would fail on helps nobody: say so once instead.
                log.warning("provider %s speaks the %r API, which has no adapter yet: not routable", slug, provider.api)
                provider.enabled = False
            providers[slug] = provider
        models = {mid: msgspec.convert(raw, Model) for mid, raw in self.models.items()}
        if sandbox:
            add_sandbox(providers, models)
        return Catalog(providers, models)


def add_sandbox(providers: dict[str, Provider], models: dict[str, Model]) -> None:
    """The offline provider, its two chat models and one model per other operation; no other model
    gains a sandbox endpoint."""
    providers[SANDBOX] = Provider(
        slug=SANDBOX,
        name="Sandbox (offline, deterministic)",
        api="sandbox",
        data_policy=DataPolicy(training=False, retains_prompts=False, zdr=True),
        enabled=True,
    )
    params = ["max_tokens", "temperature", "top_p", "stop", "seed", "response_format", "structured_outputs", "tools",
              "tool_choice", "parallel_tool_calls", "reasoning", "include_reasoning"]  # fmt: skip
    for slug, name, description in (
        ("echo", "Sandbox: Echo", "Replies with the last user message. Offline and deterministic."),
        ("chat", "Sandbox: Chat", "Scripted, deterministic replies and tool calls, without network access."),
    ):
        model_id = f"{SANDBOX}/{slug}"
        models[model_id] = Model(
            id=model_id,
            name=name,
            created=1735689600,  # fixed, so listings are reproducible
            description=description,
            context_length=SANDBOX_CONTEXT,
            supported_parameters=list(params),
            endpoints=[
                Endpoint(
                    provider=SANDBOX,
                    upstream_model=slug,
                    pricing=Pricing(prompt=Decimal("0.000001"), completion=Decimal("0.000002")),
                    max_completion_tokens=SANDBOX_MAX_COMPLETION,
                )
            ],
        )
    for slug, name, description, inputs, outputs, pricing in SANDBOX_MODALITIES:
        model_id = f"{SANDBOX}/{slug}"
        models[model_id] = Model(
            id=model_id,
            name=name,
            created=1735689600,
            description=description + " Offline and deterministic.",
            context_length=SANDBOX_CONTEXT,
            architecture=Architecture(
                modality=f"{'+'.join(inputs)}->{'+'.join(outputs)}", input_modalities=inputs, output_modalities=outputs
            ),
            endpoints=[Endpoint(provider=SANDBOX, upstream_model=slug, pricing=pricing)],
        )


# The sandbox's models of the operations beyond chat (providers/<operation>/sandbox.py answer them):
# (slug, name, description, input modalities, output modalities, prices).
SANDBOX_MODALITIES = (
    ("embed", "Sandbox: Embed", "Embeddings whose cosine similarity reflects the words two texts share.",
     ["text"], ["embeddings"], Pricing(prompt=Decimal("0.0000001"))),
    ("rerank", "Sandbox: Rerank", "Ranks documents by the words they share with the query.",
     ["text"], ["rerank"], Pricing(search_unit=Decimal("0.002"))),
    ("image", "Sandbox: Image", "A small PNG drawn from the prompt.",
     ["text", "image"], ["image", "text"], Pricing(image_output=Decimal("0.04"))),
    ("speech", "Sandbox: Speech", "A short WAV of a tone that carries the text it was given.",
     ["text"], ["audio"], Pricing(character=Decimal("0.000015"))),
    ("transcribe", "Sandbox: Transcribe", "Transcribes the sandbox's own speech; other audio to a fixed sentence.",
     ["audio"], ["text"], Pricing(audio_second=Decimal("0.0001"))),
    ("video", "Sandbox: Video", "A tiny video, ready after one poll.",
     ["text", "image"], ["video"], Pricing(video_second=Decimal("0.05"))),
)  # fmt: skip


def _overlay(base: dict[str, Any] | None, raw: Mapping[str, Any], nested: tuple[str, ...]) -> dict[str, Any]:
    """`base` with `raw`'s fields on top; the `nested` mappings are merged one level deep."""
    out = dict(base or {})
    for key, value in raw.items():
        if key in nested and isinstance(value, dict):
            below = out.get(key)
            out[key] = {**(below if isinstance(below, dict) else {}), **value}  # a copy: never alias input
        else:
            out[key] = value
    return out


def _modality(arch: Mapping[str, Any]) -> str:
    inputs = arch.get("input_modalities") or ["text"]
    outputs = arch.get("output_modalities") or ["text"]
    return "+".join(inputs) + "->" + "+".join(outputs)


def _convert(raw: dict[str, Any], type_: type, source: str, where: str) -> Any:
    try:
        return msgspec.convert(raw, type_)
    except msgspec.ValidationError as exc:
        # msgspec says "... - at `$.endpoints[0].pricing.prompt`"; name the entry in the file instead.
        raise ValueError(f"{source}: {str(exc).replace('`$', '`' + where)}") from exc


def _ca_file(path: str, source: str, where: str) -> str:
    """A provider's CA bundle as an absolute path (a relative one is read from the config file's
    folder), loaded once here so that a wrong path stops the start, not the provider's first request."""
    resolved = Path(path).expanduser()
    if not resolved.is_absolute() and Path(source).is_file():
        resolved = Path(source).parent / resolved
    try:
        ssl.create_default_context(cafile=resolved)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ValueError(f"{source}: {where}.ca_file: cannot load {resolved}: {reason}") from None
    return str(resolved.resolve())


def _check_mapping(raw: Any, source: str, where: str) -> None:
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: {where}: expected a mapping, got {_kind(raw)}")


def _check_fields(raw: Mapping[str, Any], allowed: frozenset[str], source: str, where: str) -> None:
    """Reject unknown keys, so a typo (`context_lenght`) is an error rather than silently ignored."""
    unknown = sorted(k for k in raw if k not in allowed)
    if unknown:
        raise ValueError(
            f"{source}: {where}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(sorted(allowed))}"
        )
    for key, fields in _NESTED_FIELDS.items():
        value = raw.get(key)
        if isinstance(value, dict):
            _check_fields(value, fields, source, f"{where}.{key}")


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
