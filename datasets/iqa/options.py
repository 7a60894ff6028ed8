"""Reader options: each reader declares its options as a small dataclass, and they are parsed here, once.

Every entry point takes options the same way: ``datasets.iqa.load(name, root, **options)``, the
``-o KEY=VALUE`` flags of ``python -m datasets.iqa inspect``, ``pipelines.pack_iqa`` and
``dri.evaluate``, and the ``stage2.options`` mapping of ``dri.train``. Values may be typed
(``high=10``) or text (``"10"``, ``"false"``); errors name the option and what it accepts.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class OptionError(ValueError):
    """A reader option that does not exist or has a value it does not accept."""


@dataclass(frozen=True)
class NoOptions:
    """The reader takes no options."""


def _accepted(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(kind))
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return f"{_accepted(inner[0])} or none"
    return {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(kind, str(kind))


def convert(value: Any, kind: Any, where: str) -> Any:
    """``value`` (typed or text) as the declared ``kind``; :class:`OptionError` naming ``where`` otherwise."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        return convert(value, next(a for a in typing.get_args(kind) if a is not type(None)), where)
    text = value.strip() if isinstance(value, str) else None
    if origin is Literal:
        choices = typing.get_args(kind)
        for choice in choices:
            if value == choice or (text is not None and text.lower() == str(choice).lower()):
                return choice
        raise OptionError(f"{where}: expected {_accepted(kind)}, got {value!r}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in TRUE + FALSE:
            return text.lower() in TRUE
    elif kind in (int, float) and not isinstance(value, bool):
        try:
            number = float(text if text is not None else value)
        except (TypeError, ValueError):
            number = None
        if number is not None and number == number and abs(number) != float("inf"):
            if kind is float:
                return number
            if number.is_integer():
                return int(number)
    elif kind is str and (text is not None):
        return text
    raise OptionError(f"{where}: expected {_accepted(kind)}, got {value!r}")


def parse(cls: type, values: Mapping[str, Any] | None, reader: str) -> Any:
    """An instance of the options dataclass ``cls`` from ``values``; unknown names are refused with the known ones."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        accepted = ", ".join(f"{n} ({_accepted(hints[n])})" for n in known) or "none"
        raise OptionError(f"{reader}: unknown option(s) {', '.join(unknown)}; the {reader} reader accepts: {accepted}")
    converted = {k: convert(v, hints[k], f"{reader} option {k}") for k, v in values.items()}
    try:
        return cls(**converted)
    except ValueError as error:
        raise OptionError(f"{reader}: {error}") from None


def key_values(pairs: Iterable[str]) -> dict[str, str]:
    """``["low=0", "high=10"]`` (the ``-o KEY=VALUE`` flags) as a mapping of text values."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"reader options come as KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def describe(cls: type) -> str:
    """``name (accepted values, default ...)`` for each option, for help texts."""
    hints = typing.get_type_hints(cls)
    parts = [f"{f.name} ({_accepted(hints[f.name])}, default {f.default!r})" for f in dataclasses.fields(cls)]
    return ", ".join(parts) or "none"
