"""Hypothesis strategies for the JSON Schema subset pydantic emits (for the OpenAPI tests).

hypothesis-jsonschema reaches into Hypothesis internals that current Hypothesis releases
removed, so this small generator covers what ``/openapi.json`` uses: types (and lists of
them), ``anyOf``, ``enum``/``const``, objects with ``properties``/``required``/
``additionalProperties``, arrays, string lengths and patterns, number ranges. Every value is
checked against the whole schema before use, so a gap here can only make fewer examples,
never a request the document does not allow.

Patterns are read as ECMA-262 reads them (what OpenAPI means): unanchored, and ``$`` only at
the very end (Python's ``$`` also matches before a final newline; ``\\Z`` does not).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st
from jsonschema import Draft202012Validator

JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)


def _ecma(pattern: str) -> str:
    return pattern.replace("$", r"\Z")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: not a JSON string a server can read
        return False
    return True


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength", 10**6)
    if "pattern" in schema:
        base = st.from_regex(_ecma(schema["pattern"]))
        return base.filter(lambda s: low <= len(s) <= high and _encodable(s))
    return st.text(min_size=low, max_size=min(high, low + 60)).filter(_encodable)


def _number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    if integer:
        return st.integers(low, high)
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Any] = schema.get("properties", {})
    branches = schema.get("anyOf", [{}])

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        branch = draw(st.sampled_from(branches))
        required = set(schema.get("required", ())) | set(branch.get("required", ()))
        out: dict[str, Any] = {}
        for name, prop in props.items():
            if name in required or draw(st.booleans()):
                sub = branch.get("properties", {}).get(name) if name in required else None
                out[name] = draw(strategy(sub or prop))
        if schema.get("additionalProperties") is True and draw(st.booleans()):
            extra = draw(st.dictionaries(st.text(min_size=1, max_size=8), JSON_SCALARS,
                                         max_size=2))
            out.update({k: v for k, v in extra.items() if k not in props})
        return out

    return build()


def _typed(schema: dict[str, Any], kind: str) -> st.SearchStrategy[Any]:
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = strategy(schema.get("items", {}))
        return st.lists(items, min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 5), 5))
    if kind == "object":
        if "additionalProperties" in schema and isinstance(schema["additionalProperties"],
                                                           dict):
            return st.dictionaries(st.text(max_size=8),
                                   strategy(schema["additionalProperties"]), max_size=3)
        return _object(schema)
    raise ValueError(f"no strategy for type {kind!r}")


def _unchecked(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind is None and "anyOf" in schema and "properties" not in schema:
        return st.one_of([strategy(s) for s in schema["anyOf"]])
    if kind is None:
        kind = "object" if "properties" in schema else None
    if kind is None:
        return JSON_SCALARS
    if isinstance(kind, list):
        return st.one_of([_typed(schema, k) for k in kind])
    return _typed(schema, kind)


def strategy(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against ``schema`` (``$ref``s already inlined)."""
    check = Draft202012Validator(schema)
    return _unchecked(schema).filter(
        lambda v: check.is_valid(v) and json.loads(json.dumps(v)) == v)

