"""Settings and options, one mechanism: a value a user gives becomes a typed value, or one line saying what is wrong.

Every kind of option goes through here: ``TrainConfig``'s settings (a YAML file, ``--set``, the flags), a
model's options (``--model-option``), a built-in dataset's options (``--data-option``) and a classical
method's keyword arguments (``--set`` of ``pixelwise classical``, or a call from Python). Each declares its
values with ordinary types, and their bounds with ``Range`` and ``Choices``: in a dataclass field's metadata
(``TrainConfig``'s ``setting(..., bounds=...)``) or in a parameter's annotation (``Annotated[int,
Range(minimum=2)]``, which ``checked_options`` enforces). The pieces:

- ``parse_key_values(pairs, flag)``: ``KEY=VALUE`` strings from the command line, values read as YAML;
- ``convert(value, kind, name=, text=)``: a value to the type ``kind`` (bool, int, float, str, a mapping,
  a tuple of numbers, ``X | None``). ``text=True`` where values may arrive as text (a flag, a YAML file):
  ``"3"`` reads as 3 and ``2.0`` as 2; ``text=False`` where they arrive typed (keyword arguments, the
  parsed ``KEY=VALUE``): the type must already be right;
- ``Range`` / ``Choices`` and ``problem(value, rule, name=)``: the bounds, checked;
- ``checked_options``: a decorator that converts and checks a function's annotated keyword arguments;
- ``no_such_option``: the one sentence for an unknown name, with ``errors.did_you_mean``.

Every message is one line: ``"{source}: {name} must be {what}, got {value!r}"``. A value given as text is
told in words ("a whole number", "at least 1"); a typed argument in the terms of its signature ("an integer
>= 2"), which is what a caller of a Python function reads. pydantic (in the ``serve`` extra only) would do
the converting too, but its messages are several lines and the core install stays without it.
"""

from __future__ import annotations

import functools
import math
import numbers
import typing
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from pixelwise.errors import PixelwiseError, did_you_mean

Parameters = ParamSpec("Parameters")
Result = TypeVar("Result")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Range:
    """The numbers a value may take: ``minimum`` / ``maximum`` (None: unbounded), each included unless
    ``low_open`` / ``high_open``. Floats must also be finite.

    >>> Range(minimum=1).words(), Range(minimum=0, low_open=True).words(), Range(0, 1, high_open=True).words()
    ('at least 1', 'positive', 'in [0, 1)')
    >>> Range(minimum=2).symbols(), Range(0, 1, low_open=True).symbols()
    ('>= 2', 'in (0, 1]')
    """

    minimum: float | None = None
    maximum: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        low_ok = self.minimum is None or (value > self.minimum if self.low_open else value >= self.minimum)
        high_ok = self.maximum is None or (value < self.maximum if self.high_open else value <= self.maximum)
        return low_ok and high_ok

    def words(self) -> str:
        """The bounds as a person reads them: "at least 1", "0 or more", "positive", "in (0, 1]"."""
        if self.maximum is not None:
            return (
                self._interval()
                if self.minimum is not None
                else f"{'below' if self.high_open else 'at most'} {self.maximum:g}"
            )
        if self.minimum is None:
            return "a number"
        if self.minimum == 0:
            return "positive" if self.low_open else "0 or more"
        return f"{'above' if self.low_open else 'at least'} {self.minimum:g}"

    def symbols(self) -> str:
        """The bounds as a signature reads them: ">= 2", "> 0", "in [0, 1)"; "" when unbounded."""
        if self.minimum is not None and self.maximum is not None:
            return self._interval()
        if self.minimum is not None:
            return f"{'>' if self.low_open else '>='} {self.minimum:g}"
        if self.maximum is not None:
            return f"{'<' if self.high_open else '<='} {self.maximum:g}"
        return ""

    def _interval(self) -> str:
        return f"in {'(' if self.low_open else '['}{self.minimum:g}, {self.maximum:g}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class Choices:
    """The only values allowed (names, or numbers)."""

    values: tuple[Any, ...]

    def listed(self) -> str:
        return ", ".join(str(value) for value in self.values)


AT_LEAST_ONE = Range(minimum=1)
NON_NEGATIVE = Range(minimum=0)
POSITIVE = Range(minimum=0, low_open=True)


def problem(value: Any, rule: Range | Choices | None, *, name: str) -> str | None:
    """What is wrong with an already converted ``value`` under ``rule`` (one line without a source), or None.

    A tuple's elements are checked one by one; None (an optional value left out) passes.

    >>> problem(0, AT_LEAST_ONE, name="epochs"), problem(2, AT_LEAST_ONE, name="epochs")
    ('epochs must be at least 1, got 0', None)
    >>> problem("adam", Choices(("adamw", "sgd")), name="optimizer")
    "optimizer is 'adam' (did you mean 'adamw'?); choose one of adamw, sgd"
    """
    if rule is None or value is None:
        return None
    if isinstance(rule, Choices):
        if value in rule.values:
            return None
        hint = did_you_mean(value, [str(choice) for choice in rule.values]) if isinstance(value, str) else ""
        return f"{name} is {value!r}{hint}; choose one of {rule.listed()}"
    values = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(item, numbers.Real) and not isinstance(item, bool) for item in values):
        return f"{name} must be a number, got {value!r}"
    if all(rule.contains(item) for item in values):
        return None
    return f"{name} must be {rule.words()}, got {value!r}"


def convert(value: Any, kind: Any, *, name: str, source: str = "", text: bool = True) -> Any:
    """``value`` as the type ``kind``, or a PixelwiseError "{source}: {name} must be {what}, got {value!r}".

    >>> convert("3", int, name="epochs"), convert("0.75,1.25", tuple[float, float], name="scale_range")
    (3, (0.75, 1.25))
    >>> convert("none", int | None, name="seed"), convert("yes", bool, name="amp")
    (None, True)
    """
    args = typing.get_args(kind)
    if type(None) in args:  # X | None
        if value is None or (text and isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        kind = next(arg for arg in args if arg is not type(None))
    converted = _converted(value, kind, text=text)
    if converted is not _WRONG:
        return converted
    prefix = f"{source}: " if source else ""
    raise PixelwiseError(f"{prefix}{name} must be {_expected(kind, text=text)}, got {value!r}")


_WRONG = object()


def _converted(value: Any, kind: Any, *, text: bool) -> Any:
    """``value`` as ``kind``, or ``_WRONG``."""
    origin = typing.get_origin(kind)
    if kind not in (bool, int, float, str) and origin not in (dict, Mapping, tuple):
        raise TypeError(f"settings cannot convert to {kind!r}")  # a declaration this module does not know
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if text and isinstance(value, str) and value.lower() in _TRUE + _FALSE:
                return value.lower() in _TRUE
        elif kind is int:
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy's integers too
                return int(value)
            if text and (isinstance(value, str) or (isinstance(value, float) and value.is_integer())):
                return int(value)
        elif kind is float:
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                return float(value)
            if text and isinstance(value, str):
                return float(value)
        elif kind is str:
            if isinstance(value, str):
                return value
        elif origin is tuple:
            items = [part for part in value.split(",") if part.strip()] if isinstance(value, str) else list(value)
            inner = typing.get_args(kind)
            if Ellipsis in inner or len(items) == len(inner):
                return tuple(float(item) for item in items)
        elif value is None and text:  # a mapping left empty in YAML
            return {}
        elif isinstance(value, Mapping):
            return {str(key): item for key, item in value.items()}
    except (TypeError, ValueError):
        pass
    return _WRONG


def _expected(kind: Any, *, text: bool) -> str:
    origin = typing.get_origin(kind)
    if origin in (dict, Mapping):
        return "a mapping of name: value, e.g. {width: 32}"
    if origin is tuple:
        inner = typing.get_args(kind)
        return "a list of numbers" if Ellipsis in inner else f"a list of {len(inner)} numbers"
    if kind is int:
        return "a whole number" if text else "an integer"
    return {bool: "true or false", float: "a number", str: "text"}[kind]


def checked_options(function: Callable[Parameters, Result]) -> Callable[Parameters, Result]:
    """Convert and check the keyword arguments of ``function`` whose annotation carries a ``Range`` or
    ``Choices`` (``Annotated[int, Range(minimum=2)]``) before it runs; a wrong one is a PixelwiseError
    "{function}: {name} must be an integer >= 2, got 1". The signature (and so ``inspect.signature``, the
    defaults, the docstring) stays the function's own.
    """

    @functools.wraps(function)
    def call(*args: Parameters.args, **kwargs: Parameters.kwargs) -> Result:
        wanted = _argument_rules(function)
        for name, value in kwargs.items():
            if name in wanted:
                kwargs[name] = _checked_argument(value, *wanted[name], name=name, source=function.__name__)
        return function(*args, **kwargs)

    return call


@functools.cache
def _argument_rules(function: Callable[..., Any]) -> dict[str, tuple[Any, Range | Choices]]:
    """The annotated parameters of ``function``: name -> (type, rule). Read at the first call, once: until its
    module has finished loading, the annotations are strings naming things not defined yet."""
    rules: dict[str, tuple[Any, Range | Choices]] = {}
    for name, hint in typing.get_type_hints(function, include_extras=True).items():
        if typing.get_origin(hint) is typing.Annotated:
            kind, *extras = typing.get_args(hint)
            rule = next((extra for extra in extras if isinstance(extra, (Range, Choices))), None)
            if rule is not None:
                rules[name] = (kind, rule)
    return rules


def _checked_argument(value: Any, kind: Any, rule: Range | Choices, *, name: str, source: str) -> Any:
    """A typed argument converted and within ``rule``: one message for the type and the bounds alike."""
    if isinstance(rule, Choices):
        wrong = problem(value, rule, name=name)
        if wrong:
            raise PixelwiseError(f"{source}: {wrong}")
        return value
    optional = type(None) in typing.get_args(kind)
    base = next((arg for arg in typing.get_args(kind) if arg is not type(None)), kind) if optional else kind
    if value is None and optional:
        return None
    converted = _converted(value, base, text=False)
    if converted is _WRONG or not rule.contains(converted):
        what = "an integer" if base is int else "a finite number" if rule.symbols() else "a number"
        bounds = f" {rule.symbols()}" if rule.symbols() else ""
        raise PixelwiseError(f"{source}: {name} must be {what}{bounds}, got {value!r}")
    return converted


def no_such_option(
    owner: str, unknown: Iterable[str], known: Collection[str], *, quoted: bool = True, listing: str = "its options:"
) -> PixelwiseError:
    """The error for options ``owner`` does not have: "{owner} has no option 'x' (did you mean 'y'?); its
    options: a, b". ``known`` is listed in the order given. ``quoted`` and ``listing`` keep the wording each
    caller's users (and tests) have always seen: "seed" or "'seed'", "its options:" or "its options are".

    >>> str(no_such_option("model 'unet-small'", ["widht"], ["depth", "width"]))
    "model 'unet-small' has no option 'widht' (did you mean 'width'?); its options: depth, width"
    """
    names = sorted(unknown)
    shown = ", ".join(map(repr, names) if quoted else names)
    hint = did_you_mean(names[0], known)
    return PixelwiseError(f"{owner} has no option {shown}{hint}; {listing} {', '.join(known) or 'none'}")


def parse_key_values(pairs: Iterable[str], flag: str) -> dict[str, Any]:
    """``["classes=4", "seeds=[[3, 4]]", "tolerance=none"]`` -> ``{"classes": 4, "seeds": [[3, 4]], "tolerance": None}``.

    Values are read as YAML scalars and lists (numbers, true/false, none/null, [..]); anything else stays a
    string. Dashes in keys become underscores, so ``marker-spacing=5`` and ``marker_spacing=5`` agree.

    >>> parse_key_values(["classes=4", "method=mean", "marker-spacing=0.5", "seeds=[[1, 2]]"], "--set")
    {'classes': 4, 'method': 'mean', 'marker_spacing': 0.5, 'seeds': [[1, 2]]}
    """
    import yaml

    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not separator or not key:
            raise PixelwiseError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {flag} classes=4")
        value = value.strip()
        if value.lower() == "none" or not value:
            parsed[key] = None
            continue
        try:
            parsed[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed[key] = value
    return parsed
