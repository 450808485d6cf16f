"""The server's response Structs made fit to read what any OpenRouter-compatible server sends.

The server writes every field its Structs declare; OpenRouter itself leaves some out (an Omnirouter
extension such as a key's `rpm_limit`), sends null where this server never does, or an enum value this
server has no name for. ``readable(T)`` is a subclass of ``T`` (so ``isinstance(x, T)`` holds and the
type hints stay true of what is present) in which every field may be missing (``UNSET``) or null,
Literal enums read as their base type, unknown fields are ignored and nested Structs are readable too.
One definition per shape: this derives from the server's Structs, it does not restate them.
"""

from __future__ import annotations

import types
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from msgspec import UNSET, UnsetType


@cache
def readable(t: Any) -> Any:
    """``t`` with every Struct in it replaced by its tolerant subclass; other types as they are."""
    origin = get_origin(t)
    if origin is Annotated:
        return readable(get_args(t)[0])  # constraints are the server's to keep, not the reader's
    if origin is Literal:
        return Union[tuple({type(v) for v in get_args(t)})]  # noqa: UP007 - built from a tuple
    if origin in (Union, types.UnionType):
        return Union[tuple(readable(a) for a in get_args(t))]  # noqa: UP007
    if origin is not None:
        args = get_args(t)
        return origin[tuple(readable(a) for a in args)] if args else t
    if isinstance(t, type) and issubclass(t, msgspec.Struct):
        return _tolerant(t)
    return t


def _tolerant(t: type[msgspec.Struct]) -> type[msgspec.Struct]:
    config = t.__struct_config__
    fields = [
        (f.name, readable(f.type) | UnsetType | None, msgspec.field(default=UNSET, name=f.encode_name))
        for f in msgspec.structs.fields(t)
    ]
    tagged: dict[str, Any] = {}
    if config.tag is not None:
        tagged = {"tag": config.tag, "tag_field": config.tag_field}
    return msgspec.defstruct(
        t.__name__, fields, bases=(t,), module=t.__module__, kw_only=True, frozen=config.frozen,
        forbid_unknown_fields=False, **tagged,
    )  # fmt: skip


def read(content: bytes | str, t: Any) -> Any:
    """``content`` (JSON) as ``readable(t)``. An answer that leaves out the tag of a tagged union (the
    /files shapes' `_shape`, which OpenRouter's own examples omit) is read as the union's first member,
    the shape a client that is neither an OpenAI nor an Anthropic SDK is answered in."""
    try:
        return msgspec.json.decode(content, type=readable(t), strict=False)
    except msgspec.ValidationError:
        first = _untagged_member(t, content)
        if first is None:
            raise
        return msgspec.json.decode(content, type=readable(first), strict=False)


def _untagged_member(t: Any, content: bytes | str) -> Any:
    members = get_args(t) if get_origin(t) in (Union, types.UnionType) else ()
    configs = [getattr(m, "__struct_config__", None) for m in members]
    if not members or any(c is None or c.tag is None for c in configs):
        return None
    raw = msgspec.json.decode(content)
    return members[0] if isinstance(raw, dict) and configs[0].tag_field not in raw else None
