"""Checking tool arguments against the JSON Schema subset the tool definitions use.

Supported: ``type`` (object, number, integer, string, boolean), ``properties``, ``required``,
``minimum``/``maximum``, ``exclusiveMinimum``/``exclusiveMaximum``, ``minLength``/``maxLength``,
``enum`` and ``additionalProperties: false``; other keywords (``format``, ``pattern``,
``description``) are not checked. Language models are sloppy with types, so values are coerced where the intent is
clear: ``"200,000"``, ``"$1,500.50"`` and ``"6.5%"`` are numbers (``"$200k"`` is not guessed
at), ``360.0`` is an integer, ``"true"``/``"yes"`` are booleans, and ``null`` counts as absent.
Unknown properties are dropped when the schema forbids them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

_NUMBER_TEXT = re.compile(r"^\s*\$?\s*([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+)\s*%?\s*$")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


@dataclass(frozen=True)
class Violation:
    """One way the arguments break the schema: the property (empty for the whole object) and the problem.

    ``problem`` is one of "not_object", "missing", "type", "minimum", "maximum", "min_length",
    "max_length", "enum".
    """

    field: str
    problem: str
    message: str


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and (match := _NUMBER_TEXT.match(value)):
        text = match[1].replace(",", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
        return int(number) if number == number.to_integral_value() and "." not in text else float(number)
    return None


def _coerce(value: Any, kind: str | None) -> tuple[Any, bool]:
    """``value`` as ``kind``, and whether that worked."""
    if kind is None:
        return value, True
    if kind == "number":
        number = _number(value)
        return number, number is not None
    if kind == "integer":
        number = _number(value)
        if number is None or (isinstance(number, float) and not number.is_integer()):
            return value, False
        return int(number), True
    if kind == "string":
        if isinstance(value, str):
            return value, True
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value), True
        return value, False
    if kind == "boolean":
        if isinstance(value, bool):
            return value, True
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE, True
        if isinstance(value, int) and value in (0, 1):
            return bool(value), True
        return value, False
    if kind == "object":
        return value, isinstance(value, dict)
    return value, True


_ARTICLE = {"number": "a number", "integer": "a whole number", "string": "text", "boolean": "true or false"}


def _check(name: str, value: Any, schema: Mapping[str, Any]) -> tuple[Any, Violation | None]:
    kind = schema.get("type")
    value, ok = _coerce(value, kind if isinstance(kind, str) else None)
    if not ok:
        return value, Violation(name, "type", f"{name} must be {_ARTICLE.get(str(kind), kind)}.")
    if "enum" in schema:
        options = list(schema["enum"])
        if isinstance(value, str):
            by_folded = {str(o).casefold(): o for o in options}
            value = by_folded.get(value.strip().casefold(), value)
        if value not in options:
            listed = ", ".join(str(o) for o in options)
            return value, Violation(name, "enum", f"{name} must be one of: {listed}.")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return value, Violation(name, "minimum", f"{name} must be at least {schema['minimum']}.")
        if "maximum" in schema and value > schema["maximum"]:
            return value, Violation(name, "maximum", f"{name} must be at most {schema['maximum']}.")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return value, Violation(name, "minimum", f"{name} must be more than {schema['exclusiveMinimum']}.")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            return value, Violation(name, "maximum", f"{name} must be less than {schema['exclusiveMaximum']}.")
    if isinstance(value, str):
        if "minLength" in schema and len(value.strip()) < schema["minLength"]:
            return value, Violation(name, "min_length", f"{name} must not be empty.")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return value, Violation(name, "max_length", f"{name} must be at most {schema['maxLength']} characters.")
    return value, None


def validate_arguments(arguments: Any, schema: Mapping[str, Any]) -> tuple[dict[str, Any], list[Violation]]:
    """The arguments coerced to the schema's types, and every violation found (empty when valid)."""
    if not isinstance(arguments, dict):
        return {}, [Violation("", "not_object", "The arguments must be a JSON object.")]
    properties: Mapping[str, Any] = schema.get("properties", {})
    closed = schema.get("additionalProperties") is False
    cleaned: dict[str, Any] = {}
    violations: list[Violation] = []
    for name, value in arguments.items():
        if value is None:
            continue
        if name not in properties:
            if not closed:
                cleaned[name] = value
            continue
        checked, violation = _check(name, value, properties[name])
        if violation is not None:
            violations.append(violation)
        else:
            cleaned[name] = checked
    for name in schema.get("required", []):
        if arguments.get(name) is None:
            violations.append(Violation(name, "missing", f"{name} is required."))
    return cleaned, violations
