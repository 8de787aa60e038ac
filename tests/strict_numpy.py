"""NumPy's strict rule for Python scalars (NEP 50), applied where NumPy 2.4 is still lenient.

NumPy 2.5 raises ``OverflowError`` when a Python integer meets an integer array it does not fit in, e.g.
``np.where(valid, mask_uint8, -1)``; 2.4 (the newest we can install) silently wraps -1 to 255 there, so
the bug passes every test here and crashes on a user's machine. ``strict_python_scalars()`` wraps the
functions where 2.4 still wraps (``where``, ``select``, ``pad``'s ``constant_values``, ``clip``) so that
they raise as 2.5 does; the suite runs under it (``conftest.py``). Arithmetic (``mask + 300``) and
``full``/``full_like`` already raise on 2.4 and need no wrapper.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np


def _python_ints(values: Iterable[Any]) -> Iterator[int]:
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _python_ints(value)
        elif isinstance(value, int) and not isinstance(value, (bool, np.integer)):
            yield value


def _integer_dtypes(values: Iterable[Any]) -> Iterator[np.dtype[Any]]:
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _integer_dtypes(value)
        elif isinstance(value, (np.ndarray, np.integer)) and np.issubdtype(value.dtype, np.integer):
            yield value.dtype


def check_fits(function: str, arrays: Iterable[Any], scalars: Iterable[Any]) -> None:
    """Raise OverflowError, as NumPy 2.5 does, if a Python int in ``scalars`` does not fit an integer dtype
    among ``arrays``."""
    dtypes = list(_integer_dtypes(arrays))
    for value in _python_ints(scalars):
        for dtype in dtypes:
            info = np.iinfo(dtype)
            if not info.min <= value <= info.max:
                raise OverflowError(f"np.{function}: Python integer {value} out of bounds for {dtype} (NEP 50)")


def _strict(function: Callable[..., Any], name: str, split: Callable[..., tuple[list[Any], list[Any]]]) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        arrays, scalars = split(*args, **kwargs)
        check_fits(name, arrays + scalars, scalars)
        return function(*args, **kwargs)

    return wrapper


def _where(condition: Any, *values: Any, **_: Any) -> tuple[list[Any], list[Any]]:
    return list(values), list(values)


def _select(conditions: Any, choices: Any, default: Any = 0) -> tuple[list[Any], list[Any]]:
    return list(choices), [default]


def _pad(array: Any, pad_width: Any, mode: Any = "constant", **kwargs: Any) -> tuple[list[Any], list[Any]]:
    return [array], [kwargs.get("constant_values", 0)]


def _clip(array: Any, *bounds: Any, **kwargs: Any) -> tuple[list[Any], list[Any]]:
    limits = [*bounds, *(kwargs.get(key) for key in ("a_min", "a_max", "min", "max"))]
    return [array], [limit for limit in limits if limit is not None]


SPLITS: dict[str, Callable[..., tuple[list[Any], list[Any]]]] = {
    "where": _where,
    "select": _select,
    "pad": _pad,
    "clip": _clip,
}


@contextlib.contextmanager
def strict_python_scalars() -> Iterator[None]:
    """Within the block, ``np.where``/``select``/``pad``/``clip`` refuse Python ints that do not fit."""
    originals = {name: getattr(np, name) for name in SPLITS}
    try:
        for name, split in SPLITS.items():
            setattr(np, name, _strict(originals[name], name, split))
        yield
    finally:
        for name, original in originals.items():
            setattr(np, name, original)
