"""One mechanism for settings and options: conversion from text or typed values, bounds, choices, unknown names,
each a one-line PixelwiseError, and the classical methods' arguments checked from their annotations."""

from __future__ import annotations

import inspect
from typing import Annotated

import numpy as np
import pytest

from pixelwise.errors import PixelwiseError
from pixelwise.settings import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    Choices,
    Range,
    checked_options,
    convert,
    no_such_option,
    parse_key_values,
    problem,
)


def test_text_is_read_where_values_arrive_as_text_and_refused_where_they_arrive_typed() -> None:
    assert convert("3", int, name="epochs") == 3 and convert(2.0, int, name="epochs") == 2
    assert convert("off", bool, name="amp") is False and convert("1,4", tuple[float, ...], name="w") == (1.0, 4.0)
    assert convert(None, dict[str, int], name="model_options") == {}
    assert convert(np.int64(5), int, name="count", text=False) == 5  # numpy's integers are integers
    with pytest.raises(PixelwiseError, match=r"^run.yaml: epochs must be a whole number, got 'zero'$"):
        convert("zero", int, name="epochs", source="run.yaml")
    with pytest.raises(PixelwiseError, match=r"^dataset 'shapes': option count must be an integer, got '5'$"):
        convert("5", int, name="option count", source="dataset 'shapes'", text=False)
    for value, kind, expected in [
        (2.5, int, "a whole number"),
        (True, int, "a whole number"),
        ("fast", float, "a number"),
        ("maybe", bool, "true or false"),
        ([1], tuple[float, float], "a list of 2 numbers"),
        (3, dict[str, int], "a mapping"),
        (3, str, "text"),
    ]:
        with pytest.raises(PixelwiseError, match=f"must be {expected}"):
            convert(value, kind, name="x")


def test_bounds_and_choices_say_what_is_allowed() -> None:
    assert problem(0, AT_LEAST_ONE, name="epochs") == "epochs must be at least 1, got 0"
    assert problem(-0.5, NON_NEGATIVE, name="rotation") == "rotation must be 0 or more, got -0.5"
    assert problem(float("inf"), NON_NEGATIVE, name="rotation") == "rotation must be 0 or more, got inf"
    assert problem((0.9, 1.0), Range(0, 1, high_open=True), name="betas") == "betas must be in [0, 1), got (0.9, 1.0)"
    assert problem("3", AT_LEAST_ONE, name="epochs") == "epochs must be a number, got '3'"
    assert problem(None, AT_LEAST_ONE, name="seed") is None and problem(1, None, name="x") is None
    assert problem("adam", Choices(("adamw", "sgd")), name="optimizer") == (
        "optimizer is 'adam' (did you mean 'adamw'?); choose one of adamw, sgd"
    )


@checked_options
def _method(
    image: object,
    *,
    count: Annotated[int, Range(minimum=2)] = 3,
    size: Annotated[float | None, NON_NEGATIVE] = None,
    kind: Annotated[str, Choices(("mean", "median"))] = "mean",
    free: int = 0,
) -> tuple[object, ...]:
    """A stand-in for a classical method."""
    return count, size, kind, free


def test_annotated_keyword_arguments_are_converted_and_checked() -> None:
    assert _method(None, count=np.int32(4), size=1) == (4, 1.0, "mean", 0)
    assert _method(None, free="anything") == (3, None, "mean", "anything")  # not annotated: not checked
    for options, message in [
        ({"count": 1}, "_method: count must be an integer >= 2, got 1"),
        ({"count": "two"}, "_method: count must be an integer >= 2, got 'two'"),
        ({"size": -1.0}, "_method: size must be a finite number >= 0, got -1.0"),
        ({"kind": "max"}, "_method: kind is 'max'; choose one of mean, median"),
    ]:
        with pytest.raises(PixelwiseError) as error:
            _method(None, **options)
        assert str(error.value) == message
    # the function keeps its own face: signature, defaults, docstring
    assert list(inspect.signature(_method).parameters) == ["image", "count", "size", "kind", "free"]
    assert _method.__doc__ == "A stand-in for a classical method." and _method.__name__ == "_method"


def test_an_unknown_option_is_named_with_a_suggestion() -> None:
    error = no_such_option("dataset 'quokka'", ["sise"], ["size"], quoted=False)
    assert str(error) == "dataset 'quokka' has no option sise (did you mean 'size'?); its options: size"
    assert str(no_such_option("otsu", ["classes"], ["bins"], listing="its options are")) == (
        "otsu has no option 'classes'; its options are bins"
    )


def test_key_values_from_the_command_line() -> None:
    assert parse_key_values(["seeds=[[1, 2]]", "tolerance=none", "name=x=y"], "--set") == {
        "seeds": [[1, 2]],
        "tolerance": None,
        "name": "x=y",
    }
    with pytest.raises(PixelwiseError, match=r"--set 'bins': expected KEY=VALUE"):
        parse_key_values(["bins"], "--set")
