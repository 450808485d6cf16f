"""providers/schema_example: the value it makes validates (by `jsonschema`, the reference validator)
and is the same every time, for hand-picked schemas and for schemas Hypothesis composes."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnirouter.providers.schema_example import example

ADDRESS = {
    "type": "object",
    "properties": {"street": {"type": "string", "minLength": 3}, "zip": {"type": "string", "pattern": r"^\d{5}$"}},
    "required": ["street", "zip"],
    "additionalProperties": False,
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "weather tool": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City and country"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
        },
        "required": ["location"],
    },
    "formats": {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date"},
            "at": {"type": "string", "format": "date-time"},
            "email": {"type": "string", "format": "email"},
            "site": {"type": "string", "format": "uri"},
            "id": {"type": "string", "format": "uuid"},
            "ip": {"type": "string", "format": "ipv4"},
        },
        "required": ["when", "at", "email", "site", "id", "ip"],
    },
    "numbers": {
        "type": "object",
        "properties": {
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "even": {"type": "integer", "multipleOf": 2, "minimum": 7},
            "price": {"type": "number", "multipleOf": 0.01, "minimum": 10.005},
            "negative": {"type": "integer", "maximum": -3},
            "old_style": {"type": "number", "minimum": 5, "exclusiveMinimum": True},
        },
        "required": ["ratio", "even", "price", "negative"],
        "$schema": "http://json-schema.org/draft-07/schema#",
    },
    "strings": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2,4}$"},
            "short": {"type": "string", "maxLength": 3},
            "long": {"type": "string", "minLength": 40},
            "fixed": {"const": "v1"},
            "nullable": {"type": ["string", "null"]},
        },
        "required": ["code", "short", "long", "fixed", "nullable"],
    },
    "arrays": {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3, "uniqueItems": True},
            "colours": {
                "type": "array",
                "items": {"enum": ["red", "green", "blue"]},
                "minItems": 2,
                "uniqueItems": True,
            },
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": False},
            "with_one": {"type": "array", "contains": {"const": 42}, "items": {"type": "integer"}},
        },
        "required": ["tags", "colours", "pair", "with_one"],
    },
    "nested refs": {
        "$defs": {
            "address": ADDRESS,
            "person": {"type": "object", "properties": {"home": {"$ref": "#/$defs/address"}}},
        },
        "type": "object",
        "properties": {"owner": {"$ref": "#/$defs/person"}, "offices": {"type": "array", "items": ADDRESS}},
        "required": ["owner", "offices"],
    },
    "draft-07 definitions": {
        "definitions": {"id": {"type": "integer", "minimum": 100}},
        "type": "object",
        "properties": {"ids": {"type": "array", "items": {"$ref": "#/definitions/id"}, "minItems": 2}},
        "required": ["ids"],
    },
    "oneOf overlapping": {
        "type": "object",
        "properties": {"n": {"oneOf": [{"type": "integer"}, {"type": "number"}]}},
        "required": ["n"],
    },
    "discriminated union": {
        "type": "object",
        "properties": {
            "shape": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"kind": {"const": "circle"}, "radius": {"type": "number", "minimum": 0}},
                        "required": ["kind", "radius"],
                    },
                    {
                        "type": "object",
                        "properties": {"kind": {"const": "square"}, "side": {"type": "number"}},
                        "required": ["kind", "side"],
                    },
                ]
            }
        },
        "required": ["shape"],
    },
    "allOf": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer", "minimum": 3}}, "required": ["b"]},
        ]
    },
    "recursive tree": {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["name"],
            }
        },
        "$ref": "#/$defs/node",
    },
    "min properties": {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 2},
    "strict structured output": {
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "sources": {"type": "array", "items": {"type": "string", "format": "uri"}},
        },
        "required": ["answer", "confidence", "sources"],
        "additionalProperties": False,
    },
}


def assert_valid(schema: dict[str, Any], value: Any) -> None:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_the_example_validates_and_is_always_the_same(name: str) -> None:
    schema = SCHEMAS[name]
    before = copy.deepcopy(schema)
    value = example(schema)
    assert_valid(schema, value)
    assert example(schema) == value
    assert schema == before  # the caller's schema is left as it was


def test_optional_properties_are_filled_and_enums_take_their_first_member() -> None:
    value = example(SCHEMAS["weather tool"])
    assert value["unit"] == "celsius"
    assert 1 <= value["days"] <= 14
    assert isinstance(value["location"], str) and value["location"]


def test_a_recursive_schema_ends() -> None:
    depth, node = 0, example(SCHEMAS["recursive tree"])
    while node.get("children"):
        node, depth = node["children"][0], depth + 1
    assert 0 < depth < 10


# -- property-style: schemas composed from the keywords the generator handles
def _integers() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"type": st.just("integer")},
        optional={
            "minimum": st.integers(-50, 50),
            "multipleOf": st.sampled_from([2, 3, 5]),
            "exclusiveMaximum": st.integers(60, 100),
        },
    )


def _numbers() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"type": st.just("number")},
        optional={
            "exclusiveMinimum": st.floats(-10, 10, allow_nan=False).map(lambda f: round(f, 2)),
            "maximum": st.integers(20, 30),
            "multipleOf": st.sampled_from([0.5, 0.25, 0.1]),
        },
    )


def _strings() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("string")},
            optional={"minLength": st.integers(0, 30), "maxLength": st.integers(30, 60)},
        ),
        st.fixed_dictionaries(
            {"type": st.just("string"), "format": st.sampled_from(["date", "date-time", "email", "uri", "uuid"])}
        ),
        st.fixed_dictionaries(
            {"type": st.just("string"), "pattern": st.sampled_from([r"^[a-z]+$", r"^\d{3}-\d{4}$", r"^(yes|no)$"])}
        ),
        st.lists(st.text("abcxyz", min_size=1, max_size=5), min_size=1, max_size=4, unique=True).map(
            lambda xs: {"enum": xs}
        ),
    )


def _schemas() -> st.SearchStrategy[dict[str, Any]]:
    leaves = st.one_of(_integers(), _numbers(), _strings(), st.just({"type": "boolean"}), st.just({"type": "null"}))

    def grow(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        objects = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), children, min_size=1).flatmap(
            lambda props: st.fixed_dictionaries(
                {
                    "type": st.just("object"),
                    "properties": st.just(props),
                    "required": st.lists(st.sampled_from(sorted(props)), unique=True),
                    "additionalProperties": st.booleans(),
                }
            )
        )
        arrays = st.fixed_dictionaries(
            {"type": st.just("array"), "items": children}, optional={"minItems": st.integers(0, 4)}
        )
        unions = st.lists(children, min_size=1, max_size=3).map(lambda bs: {"anyOf": bs})
        return st.one_of(objects, arrays, unions)

    return st.recursive(leaves, grow, max_leaves=12)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_schemas())
def test_composed_schemas_get_valid_examples(schema: dict[str, Any]) -> None:
    value = example(schema)
    assert_valid(schema, value)
    assert example(schema) == value
