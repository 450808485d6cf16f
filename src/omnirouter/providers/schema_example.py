"""A value that validates against a JSON schema, made up deterministically (the sandbox's tool-call
arguments and structured outputs).

`example(schema)` builds the plainest value each keyword allows: `const`, then the first `enum`
member, then `examples`/`default`, else one built from `type` and its constraints (bounds,
`multipleOf`, lengths, `pattern`, `format`, `minItems`/`uniqueItems`/`prefixItems`/`contains`,
`properties`/`required`/`minProperties`, `$ref` into the same document, `allOf` merged). A branch
of `anyOf`/`oneOf` is accepted only once the reference validator (`jsonschema`) agrees, so a
`oneOf` whose branches overlap still gets a value matching exactly one; when no candidate passes,
the last one is returned (the schema may be unsatisfiable). The same schema always gives the same
value. Recursive schemas stop adding optional properties and items below `MAX_DEPTH`.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

MAX_DEPTH = 6

FORMATS: dict[str, str] = {
    "date": "2025-01-15",
    "date-time": "2025-01-15T09:30:00Z",
    "time": "09:30:00Z",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "iri-reference": "https://example.com/",
    "uri-template": "https://example.com/{id}",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "json-pointer": "/example",
    "relative-json-pointer": "0",
    "regex": "^example$",
}

# The type a schema without `type` implies by the keywords it uses.
_TYPE_BY_KEYWORD = (
    (("properties", "required", "additionalProperties", "minProperties", "patternProperties"), "object"),
    (("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems"), "array"),
    (("minLength", "maxLength", "pattern", "format"), "string"),
    (("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"), "number"),
)


def example(schema: Any, *, name: str = "value") -> Any:
    """A value valid against `schema` (a dict or a boolean schema); `name` seeds the strings."""
    return _Maker(schema).make(schema, name, 0)


class _Maker:
    def __init__(self, root: Any) -> None:
        self.root = root
        self._validator: Any = None

    # -- checking a candidate
    def valid(self, schema: Any, value: Any) -> bool:
        """What jsonschema says (True when it cannot judge the schema: it is not ours to refuse)."""
        try:
            if self._validator is None:
                import jsonschema  # only when a schema has branches to choose between

                cls = jsonschema.validators.validator_for(self.root, default=jsonschema.Draft202012Validator)
                self._validator = cls(self.root, format_checker=cls.FORMAT_CHECKER)
            return bool(self._validator.evolve(schema=schema).is_valid(value))
        except Exception:
            return True

    # -- making one
    def make(self, schema: Any, name: str, depth: int) -> Any:
        if schema is True or schema == {}:
            return name
        if schema is False or not isinstance(schema, dict):
            return None
        schema = self._flatten(schema, depth)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for key in ("examples", "default"):
            given = schema.get(key)
            candidate = (given[0] if given else None) if key == "examples" and isinstance(given, list) else given
            if candidate is not None and self.valid(schema, candidate):
                return candidate
        branches = schema.get("oneOf") or schema.get("anyOf")
        if isinstance(branches, list) and branches:
            return self._branch(schema, branches, name, depth)
        return self._typed(schema, _type_of(schema), name, depth)

    def _flatten(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        """`$ref` resolved and `allOf` merged into one schema (siblings of `$ref` kept, as 2019+ reads them)."""
        for _ in range(32):  # a chain of references, not a cycle
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                break
            target = self._resolve(ref)
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in parts:
                if isinstance(part, dict):
                    merged = _merge(merged, self._flatten(part, depth))
            schema = merged
        return schema

    def _resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            return {}  # a remote document: nothing to read offline
        node: Any = self.root
        for token in ref[1:].lstrip("/").split("/") if ref != "#" else []:
            token = token.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else (node or {}).get(token)
        return node if isinstance(node, dict) else {}

    def _branch(self, schema: dict[str, Any], branches: list[Any], name: str, depth: int) -> Any:
        base = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf")}
        # Non-null branches first: a tool wants a value, not the null it may accept.
        ordered = sorted(branches, key=lambda b: isinstance(b, dict) and b.get("type") == "null")
        candidate: Any = None
        for branch in ordered:
            part = self._flatten(branch, depth) if isinstance(branch, dict) else branch
            merged = _merge(base, part) if isinstance(part, dict) else part
            candidate = self.make(merged, name, depth)
            if self.valid(schema, candidate):
                return candidate
            # A whole number also matches an overlapping `integer` branch: a `number` one needs a fraction.
            if type(candidate) is int and self.valid(schema, fraction := candidate + 0.5):
                return fraction
        return candidate

    def _typed(self, schema: dict[str, Any], kind: str, name: str, depth: int) -> Any:
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return _string(schema, name)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = [r for r in schema.get("required") or [] if isinstance(r, str)]
        names = list(props) if depth < MAX_DEPTH else [n for n in props if n in required]
        names += [r for r in required if r not in names]
        cap = schema.get("maxProperties")
        if isinstance(cap, int):  # required ones first, then optional ones while there is room
            names = sorted(names, key=lambda n: n not in required)[: max(cap, len(required))]
        out = {n: self.make(props.get(n, _extra_schema(schema, n)), n, depth + 1) for n in names}
        least = schema.get("minProperties")
        i = 0
        while isinstance(least, int) and len(out) < least and i < 1000:
            key = f"key{i}"
            if key not in out:
                out[key] = self.make(_extra_schema(schema, key), key, depth + 1)
            i += 1
        return out

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        prefix = prefix if isinstance(prefix, list) else []
        least = int(schema.get("minItems") or 0)
        most = schema.get("maxItems")
        count = max(least, len(prefix) if depth < MAX_DEPTH else 0, 1 if depth < MAX_DEPTH else 0)
        if isinstance(most, int):
            count = min(count, most)
        if items is False:
            count = min(count, len(prefix))
        out = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else (items if items is not None else {})
            value = self.make(sub, f"{name}{i + 1}" if i else name, depth + 1)
            if schema.get("uniqueItems") and value in out:
                options = self._flatten(sub, depth).get("enum") if isinstance(sub, dict) else None
                unused = [v for v in options or [] if v not in out]
                value = unused[0] if unused else _vary(value, i)
            out.append(value)
        contains = schema.get("contains")
        if isinstance(contains, dict) and not any(self.valid(contains, v) for v in out):
            wanted = self.make(contains, name, depth + 1)
            out = [wanted, *out[1:]] if out and (isinstance(most, int) and len(out) >= most) else [wanted, *out]
        return out


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if isinstance(k, str)]
        non_null = [k for k in kinds if k != "null"]
        return (non_null or kinds or ["string"])[0]
    if isinstance(kind, str):
        return kind
    for keywords, implied in _TYPE_BY_KEYWORD:
        if any(k in schema for k in keywords):
            return implied
    return "string"


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Both schemas' constraints in one (enough for the allOf and branch shapes seen in tool schemas)."""
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = {**out[key], **value}
        elif key == "required" and isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key in ("minimum", "minLength", "minItems", "minProperties") and key in out:
            out[key] = max(out[key], value)
        elif key in ("maximum", "maxLength", "maxItems", "maxProperties") and key in out:
            out[key] = min(out[key], value)
        else:
            out[key] = value
    return out


def _extra_schema(schema: dict[str, Any], key: str) -> Any:
    """The schema of a property `properties` does not name."""
    for pattern, sub in (schema.get("patternProperties") or {}).items():
        if re.search(pattern, key):
            return sub
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def _bounds(schema: dict[str, Any]) -> tuple[Any, bool, Any, bool]:
    """(low, low is exclusive, high, high is exclusive), in either draft's spelling."""
    low, high = schema.get("minimum"), schema.get("maximum")
    low_x = high_x = False
    ex_min, ex_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_min, bool):
        low_x = ex_min
    elif isinstance(ex_min, int | float) and (low is None or ex_min >= low):
        low, low_x = ex_min, True
    if isinstance(ex_max, bool):
        high_x = ex_max
    elif isinstance(ex_max, int | float) and (high is None or ex_max <= high):
        high, high_x = ex_max, True
    return low, low_x, high, high_x


def _integer(schema: dict[str, Any]) -> int:
    low, low_x, high, high_x = _bounds(schema)
    lo = None if low is None else (math.floor(low) + 1 if low_x else math.ceil(low))
    hi = None if high is None else (math.ceil(high) - 1 if high_x else math.floor(high))
    start = lo if lo is not None else (min(0, hi) if hi is not None else 0)
    if lo is None and hi is None:
        start = 1  # a count or an id reads better as 1 than 0
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        d = Decimal(str(step))
        # Round towards the bound that was given: up from a minimum, down from a maximum.
        k = math.floor(Decimal(start) / d) if lo is None and hi is not None else math.ceil(Decimal(start) / d)
        value = d * k
        if value == value.to_integral_value():
            return int(value)
    return start


def _number(schema: dict[str, Any]) -> int | float:
    low, low_x, high, high_x = _bounds(schema)
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        d = Decimal(str(step))
        direction = 1
        if low is not None:
            k = math.ceil(Decimal(str(low)) / d)
            k += 1 if low_x and k * d <= Decimal(str(low)) else 0
        elif high is not None and high <= 0:
            k, direction = math.floor(Decimal(str(high)) / d), -1
            k -= 1 if high_x and k * d >= Decimal(str(high)) else 0
        else:
            k = 1
        # Validators divide in binary floating point (0.6 / 0.1 is 5.999...): take the first multiple
        # whose float quotient is whole, so every validator agrees it is one.
        for j in range(k, k + 100 * direction, direction):
            value = j * d
            number = int(value) if value == value.to_integral_value() else float(value)
            below_high = high is None or number < high or (number == high and not high_x)
            above_low = low is None or number > low or (number == low and not low_x)
            if (q := number / step) == int(q) and below_high and above_low:
                return number
        value = k * d
        return int(value) if value == value.to_integral_value() else float(value)
    if low is not None and high is not None:
        return low if not low_x else (high if not high_x else (low + high) / 2)
    if low is not None:
        return low + 1 if low_x else low
    if high is not None:
        return high - 1 if high_x else min(high, 0)
    return 1  # whole: clients that read a "number" into an integer field (Codex) accept it too


def _string(schema: dict[str, Any], name: str) -> str:
    least = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
    most = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
    pattern = schema.get("pattern")
    fmt = schema.get("format")
    candidates = [FORMATS[fmt]] if fmt in FORMATS else []
    candidates.append(f"example {name}".replace("_", " "))
    for text in candidates:
        fitted = _fit_length(text, least, most)
        if not isinstance(pattern, str) or _matches(pattern, fitted):
            return fitted
    if isinstance(pattern, str) and (made := _from_pattern(pattern, least)) is not None:
        return made
    return _fit_length(candidates[0], least, most)


def _fit_length(text: str, least: int, most: int | None) -> str:
    if len(text) < least:
        text += "x" * (least - len(text))
    return text if most is None else text[:most]


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True


def _from_pattern(pattern: str, least: int) -> str | None:
    """The shortest plain string the regular expression matches (literals, classes, repeats,
    groups, first alternatives), padded by repeating the last repeatable piece up to `least`."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        text = _emit(_parser.parse(pattern), _parser, least)
    except Exception:
        return None
    return text if _matches(pattern, text) else None


def _emit(parsed: Any, p: Any, least: int) -> str:
    c = p  # opcode names live on the parser module's constants
    out: list[str] = []
    for op, arg in parsed:
        if op is c.LITERAL:
            out.append(chr(arg))
        elif op is c.NOT_LITERAL:
            out.append("a" if arg != ord("a") else "b")
        elif op is c.ANY:
            out.append("a")
        elif op is c.IN:
            out.append(_from_class(arg, c))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, sub = arg
            piece = _emit(sub, p, 0)
            times = low
            have = len("".join(out))
            while piece and have + len(piece) * times < least and (high is c.MAXREPEAT or times < high):
                times += 1
            out.append(piece * times)
        elif op is c.SUBPATTERN:
            out.append(_emit(arg[-1], p, 0))
        elif op is c.BRANCH:
            out.append(_emit(arg[1][0], p, 0))
        elif op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            continue
        else:
            raise ValueError(f"unsupported regular expression element {op}")
    return "".join(out)


def _from_class(items: Any, c: Any) -> str:
    negate = any(op is c.NEGATE for op, _ in items)
    if negate:
        excluded = "".join(chr(a) for op, a in items if op is c.LITERAL)
        return next(ch for ch in "axZ0_" if ch not in excluded)
    for op, arg in items:
        if op is c.LITERAL:
            return chr(arg)
        if op is c.RANGE:
            return chr(arg[0])
        if op is c.CATEGORY:
            return {c.CATEGORY_DIGIT: "0", c.CATEGORY_SPACE: " ", c.CATEGORY_WORD: "a"}.get(arg, "a")
    return "a"


def _vary(value: Any, i: int) -> Any:
    """A value like `value` but different, for `uniqueItems`."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + i
    if isinstance(value, str):
        return f"{value}{i}"
    if isinstance(value, list):
        return [*value, i]
    if isinstance(value, dict):
        return {**value, f"item{i}": i}
    return value
