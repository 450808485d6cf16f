"""Refresh the catalog from an OpenRouter `GET /api/v1/models` dump (`omnirouter catalog import FILE`).

The result goes to `<data_dir>/catalog.json`, which the loader lays over the bundled catalog: models
we already know get OpenRouter's current metadata and prices (on their `openrouter` endpoint, and on
the first-party endpoint of closed-weight models whose author is itself a provider, e.g. `openai/gpt-4o`
on `openai`); models we do not know are added, served through the `openrouter` provider. Each import
replaces the last one.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec

from omnirouter.catalog.loader import IMPORTED_CATALOG, CatalogLayers, load_bundled, read_catalog_file
from omnirouter.catalog.types import Architecture, CatalogData, Endpoint, Model, Pricing, Reasoning

OPENROUTER = "openrouter"
# Model authors whose own API is a bundled provider: their list price is OpenRouter's price.
FIRST_PARTY = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google-ai-studio",
    "mistralai": "mistral",
    "deepseek": "deepseek",
}
_PRICE_FIELDS = (
    "prompt",
    "completion",
    "request",
    "image",
    "web_search",
    "internal_reasoning",
    "input_cache_read",
    "input_cache_write",
)
_DEFAULT_PARAMETER_KEYS = (
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
)


@dataclass(frozen=True)
class PriceChange:
    model: str
    provider: str
    field: str
    old: Decimal | None
    new: Decimal | None

    def __str__(self) -> str:
        def show(v: Decimal | None) -> str:
            return "-" if v is None else format(v.normalize(), "f")

        return f"{self.model} on {self.provider}: {self.field} {show(self.old)} -> {show(self.new)} USD/unit"


@dataclass
class ImportReport:
    path: Path  # the catalog file written
    added: list[str] = field(default_factory=list)  # model ids new to the catalog
    updated: list[str] = field(default_factory=list)  # known model ids refreshed from the dump
    price_changes: list[PriceChange] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # routers and aliases (negative or no prices)

    def summary(self) -> str:
        lines = [
            f"wrote {self.path}: {len(self.added)} models added, {len(self.updated)} updated, "
            f"{len(self.price_changes)} price changes, {len(self.skipped)} skipped"
        ]
        lines += [f"  {change}" for change in self.price_changes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def import_openrouter_models(dump_path: Path, data_dir: Path) -> ImportReport:
    """Write `data_dir/catalog.json` from an OpenRouter models dump and say what changed.

    Changes are measured against what the gateway served before: the bundled catalog plus the
    previous import, if any. Raises ValueError when the file is not such a dump.
    """
    dump_path = Path(dump_path)
    entries = _read_dump(dump_path)
    baseline = CatalogLayers()
    baseline.add(load_bundled(), "bundled catalog")
    previous = Path(data_dir) / IMPORTED_CATALOG
    if previous.is_file():
        baseline.add(read_catalog_file(previous), str(previous))
    known = {mid: msgspec.convert(raw, Model) for mid, raw in baseline.models.items()}

    report = ImportReport(path=previous)
    out: list[Model] = []
    for i, entry in enumerate(entries):
        model_id = entry["id"]
        if model_id.startswith("~") or model_id.count("/") != 1 or ":" in model_id:
            report.skipped.append(model_id)  # ~latest aliases and variant ids are not catalog models
            continue
        try:
            pricing = _pricing(entry["pricing"])
        except ValueError as exc:
            raise ValueError(f"{dump_path}: data[{i}] ({model_id}): {exc}") from exc
        if pricing is None:
            report.skipped.append(model_id)  # routers such as openrouter/auto publish -1
            continue
        top = entry.get("top_provider") if isinstance(entry.get("top_provider"), dict) else {}
        current = known.get(model_id)
        model = _metadata(entry, current)
        or_endpoint = Endpoint(
            provider=OPENROUTER,
            upstream_model=model_id,
            pricing=pricing,
            context_length=_int_or_none(top.get("context_length")) or model.context_length,
            max_completion_tokens=_int_or_none(top.get("max_completion_tokens")),
            is_moderated=bool(top.get("is_moderated", False)),
        )
        if current is None:
            model.endpoints = [or_endpoint]
            report.added.append(model_id)
            out.append(model)
            continue
        report.updated.append(model_id)
        changed: list[Endpoint] = []
        old_or = next((e for e in current.endpoints if e.provider == OPENROUTER), None)
        report.price_changes += _diff(model_id, OPENROUTER, old_or.pricing if old_or else None, pricing)
        changed.append(or_endpoint)
        # Only the author serves closed weights, so OpenRouter's price is the author's list price; for
        # open weights it may be another host's, and the author's own endpoint keeps its price.
        first_party = FIRST_PARTY.get(model.author) if not model.hugging_face_id else None
        own = next((e for e in current.endpoints if e.provider == first_party), None)
        if own is not None:
            report.price_changes += _diff(model_id, own.provider, own.pricing, pricing, partial=True)
            # Written even when unchanged: this file replaces the previous import, which may have set it.
            changed.append(msgspec.structs.replace(own, pricing=_repriced(own.pricing, pricing)))
        model.endpoints = changed  # the loader keeps the other endpoints and replaces these
        out.append(model)

    Path(data_dir).mkdir(parents=True, exist_ok=True)
    body = msgspec.json.format(msgspec.json.encode(CatalogData(models=out)), indent=1)
    tmp = previous.with_name(previous.name + ".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, previous)  # atomic: a server starting meanwhile reads the old or the new file
    return report


def _read_dump(path: Path) -> list[dict[str, Any]]:
    try:
        doc = msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc}); expected the body of OpenRouter's GET /models") from exc
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise ValueError(f"{path}: not an OpenRouter GET /models dump: expected an object with a `data` list")
    for i, entry in enumerate(data):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("id"), str)
            and isinstance(entry.get("name"), str)
            and isinstance(entry.get("pricing"), dict)
        ):
            raise ValueError(
                f"{path}: data[{i}] is not an OpenRouter model (needs `id`, `name` and `pricing`); "
                "expected the body of GET /models"
            )
    return data


def _pricing(raw: Any) -> Pricing | None:
    """The dump's per-token price strings as Decimals; None for routers, which publish -1."""
    if not isinstance(raw, dict) or "prompt" not in raw or "completion" not in raw:
        raise ValueError("`pricing` needs `prompt` and `completion`")
    values: dict[str, Decimal] = {}
    for name in _PRICE_FIELDS:
        if raw.get(name) is None:
            continue
        try:
            values[name] = Decimal(str(raw[name]))
        except InvalidOperation:
            raise ValueError(f"pricing.{name}: not a number: {raw[name]!r}") from None
        if not values[name].is_finite():
            raise ValueError(f"pricing.{name}: not a number: {raw[name]!r}")
    if any(v < 0 for v in values.values()):
        return None
    discount = raw.get("discount")
    extra = {"discount": float(discount)} if isinstance(discount, int | float) and discount else {}
    return Pricing(**values, **extra)


def _metadata(entry: dict[str, Any], current: Model | None) -> Model:
    """The dump's description of a model, keeping what the dump does not say from `current`."""
    base = current or Model(id=entry["id"], name=entry["name"])
    changes: dict[str, Any] = {"name": entry["name"]}
    if isinstance(entry.get("description"), str):
        changes["description"] = entry["description"]
    if isinstance(entry.get("canonical_slug"), str) and entry["canonical_slug"] != entry["id"]:
        changes["canonical_slug"] = entry["canonical_slug"]
    if isinstance(entry.get("created"), int):
        changes["created"] = entry["created"]
    if "context_length" in entry:
        changes["context_length"] = _int_or_none(entry["context_length"])
    for key in ("hugging_face_id", "knowledge_cutoff", "expiration_date"):
        if key in entry and (entry[key] is None or isinstance(entry[key], str)):
            changes[key] = entry[key] or None
    arch = entry.get("architecture")
    if isinstance(arch, dict):
        changes["architecture"] = _architecture(arch)
    params = entry.get("supported_parameters")
    if isinstance(params, list):
        changes["supported_parameters"] = [p for p in params if isinstance(p, str)]
    if "default_parameters" in entry:
        changes["default_parameters"] = _default_parameters(entry["default_parameters"])
    if (score := _coding_score(entry.get("benchmarks"))) is not None:
        changes["coding_score"] = score
    reasoning = entry.get("reasoning")
    if isinstance(reasoning, dict):
        # A shape we do not know yet keeps ours rather than failing the import.
        with contextlib.suppress(msgspec.ValidationError):
            changes["reasoning"] = msgspec.convert(reasoning, Reasoning)
    return msgspec.structs.replace(base, **changes)


def _coding_score(benchmarks: Any) -> float | None:
    """`benchmarks.artificial_analysis.coding_index` (0 to 100) as the catalog's 0-to-1 coding score."""
    aa = benchmarks.get("artificial_analysis") if isinstance(benchmarks, dict) else None
    index = aa.get("coding_index") if isinstance(aa, dict) else None
    if isinstance(index, bool) or not isinstance(index, int | float) or not 0 <= index <= 100:
        return None
    return round(index / 100, 6)


def _architecture(raw: dict[str, Any]) -> Architecture:
    inputs = [m for m in raw.get("input_modalities") or ["text"] if isinstance(m, str)]
    outputs = [m for m in raw.get("output_modalities") or ["text"] if isinstance(m, str)]
    modality = raw.get("modality")
    if not isinstance(modality, str):
        modality = "+".join(inputs) + "->" + "+".join(outputs)
    tokenizer = raw.get("tokenizer")
    instruct = raw.get("instruct_type")
    return Architecture(
        modality=modality,
        input_modalities=inputs,
        output_modalities=outputs,
        tokenizer=tokenizer if isinstance(tokenizer, str) else "Other",
        instruct_type=instruct if isinstance(instruct, str) else None,
    )


def _default_parameters(raw: Any) -> dict[str, float | int | None] | None:
    if not isinstance(raw, dict):
        return None
    out: dict[str, float | int | None] = {}
    for key in _DEFAULT_PARAMETER_KEYS:
        value = raw.get(key)
        if key in raw and (value is None or (isinstance(value, int | float) and not isinstance(value, bool))):
            out[key] = value
    return out or None


def _diff(
    model_id: str, provider: str, old: Pricing | None, new: Pricing, *, partial: bool = False
) -> list[PriceChange]:
    """Per-field changes. With `partial`, a price the dump omits (None) means "unchanged"."""
    if old is None:  # a new endpoint: its two headline prices are what changed
        return [PriceChange(model_id, provider, f, None, getattr(new, f)) for f in ("prompt", "completion")]
    changes = []
    for name in _PRICE_FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if before != after and not (partial and after is None):
            changes.append(PriceChange(model_id, provider, name, before, after))
    return changes


def _repriced(own: Pricing, new: Pricing) -> Pricing:
    """The first-party endpoint takes OpenRouter's prices; a price OpenRouter omits stays as it was."""
    changes = {name: getattr(new, name) for name in _PRICE_FIELDS if getattr(new, name) is not None}
    return msgspec.structs.replace(own, **changes)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
