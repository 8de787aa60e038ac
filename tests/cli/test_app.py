"""One command line: every help page at 80 columns, the same flag under the same name in every command.

The command tree is walked, not listed, so a new command (export, serve ...) is held to the same rules the
moment it is registered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from pixelwise import __version__
from pixelwise.cli import app
from pixelwise.cli.app import Command


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(words after `pixelwise`, click command) for every command that runs something."""
    children = getattr(command, "commands", None)
    if children is None:
        yield path, command
        return
    for name, child in children.items():
        yield from walk(child, (*path, name))


COMMANDS = dict(walk(typer.main.get_command(app)))
NAMES = [" ".join(path) for path in COMMANDS]
# the commands that do heavy work: they take --threads and -q
HEAVY = {"classical", "predict", "evaluate", "compare", "train", "demo"}
# commands whose outputs can replace earlier ones; the robust branch (issue 9) gives these --overwrite
TYPE_METAVAR = re.compile(r"<(str|path|int|float|bool|list\[[^\]]*\])>")


def options(command: Any) -> dict[str, Any]:
    """Every visible name (``-o``, ``--out``, ``--no-tta`` ...) -> its parameter."""
    return {
        name: param
        for param in command.params
        if param.param_type_name == "option" and not param.hidden
        for name in (*param.opts, *param.secondary_opts)
    }


def help_text(cli: Any, words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    result = cli(*words, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_tree_holds_every_command() -> None:
    assert {"classical", "compare", "demo", "evaluate", "models", "predict", "train", "datasets list"} <= set(NAMES)
    assert "datasets export" in NAMES
    assert all(isinstance(command, Command) for command in COMMANDS.values())


@pytest.mark.parametrize("words", list(COMMANDS), ids=NAMES)
def test_help_fits_80_columns_names_every_option_whole_and_shows_an_example(
    cli: Any, words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = help_text(cli, words, monkeypatch)
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide
    for name in options(COMMANDS[words]):
        # whole: not cut ("--encoder-weig…") and not broken over two lines
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{name} is not whole in the help"
    assert "…" not in text and not TYPE_METAVAR.search(text), TYPE_METAVAR.search(text)
    assert "Example" in text


@pytest.mark.parametrize("words", list(COMMANDS), ids=NAMES)
def test_help_shows_every_default(cli: Any, words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    """A value option with a default, and an on/off pair, say their default; a plain flag is off unless given."""
    text = re.sub(r"\s+", " ", help_text(cli, words, monkeypatch))
    for param in {id(param): param for param in options(COMMANDS[words]).values()}.values():
        if param.is_flag and not param.secondary_opts:
            continue
        command = COMMANDS[words]
        record = param.get_help_record(command.context_class(command, info_name=words[-1]))
        if param.default not in (None, [], ()) or param.secondary_opts:
            assert "default:" in record[1], f"{words}: {param.opts[0]} hides its default"
        assert re.sub(r"\s+", " ", record[1]).split("[default:")[0].strip()[:30] in text


def test_the_root_help_lists_each_command_uncut(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    text = help_text(cli, (), monkeypatch)
    assert "--version" in text and "-h, --help" in text
    listed = text.split("Commands:")[1]
    assert "..." not in listed
    assert all(name.split()[0] in listed for name in NAMES)


@pytest.mark.parametrize("words", [(), *COMMANDS], ids=["pixelwise", *NAMES])
def test_dash_h_is_help_everywhere(cli: Any, words: tuple[str, ...]) -> None:
    result = cli(*words, "-h")
    assert result.returncode == 0 and result.stdout.startswith("Usage:")


def test_version(cli: Any) -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"pixelwise {__version__} (Python ")
    assert "torch" in result.stdout and len(result.stdout.splitlines()) == 1


def test_every_command_with_outputs_names_them_dash_o_out() -> None:
    writers = {name for name, command in zip(NAMES, COMMANDS.values(), strict=True) if "--out" in options(command)}
    assert writers == {
        "classical",
        "compare",
        "demo",
        "evaluate",
        "export",
        "predict",
        "train",
        "datasets export",
        "datasets import",
        "datasets export-coco",
    }
    for words, command in COMMANDS.items():
        names = options(command)
        if "--out" in names:
            assert names["-o"] is names["--out"], words
        assert not {"--output", "--out-dir", "--json", "--force"} & set(names), words


@pytest.mark.parametrize(
    "words",
    [
        pytest.param(
            words,
        )
        for words, command in COMMANDS.items()
        if "--out" in options(command)
    ],
    ids=[name for name, command in zip(NAMES, COMMANDS.values(), strict=True) if "--out" in options(command)],
)
def test_every_command_with_outputs_replaces_them_only_with_overwrite(words: tuple[str, ...]) -> None:
    assert "--overwrite" in options(COMMANDS[words])


def test_replacing_has_one_word() -> None:
    for words, command in COMMANDS.items():
        for name, param in options(command).items():
            if re.search(r"\breplac", param.help or "", re.IGNORECASE):
                assert name == "--overwrite", f"{words}: {name} replaces files but is not --overwrite"


def test_heavy_commands_take_threads_and_quiet_and_the_device_rule_is_one() -> None:
    for words, command in COMMANDS.items():
        names = options(command)
        if " ".join(words) in HEAVY:
            assert "--threads" in names and names["--threads"].metavar == "N", words
            assert names["-q"] is names["--quiet"], words
        if "--device" in names:
            assert names["--device"].metavar == "auto|cpu|cuda|cuda:N", words
            # train's flags default to None and leave the value to TrainConfig, whose default they show
            record = names["--device"].get_help_record(command.context_class(command, info_name=words[-1]))
            assert "[default: auto]" in record[1], words
        for param in set(names.values()):
            # on/off is a flag, never an option that takes true/false
            assert param.is_flag or not isinstance(param.default, bool), (words, param.opts)
    assert {" ".join(words) for words, command in COMMANDS.items() if "--device" in options(command)} >= {
        "predict",
        "train",
        "compare",
        "demo",
    }


def test_bad_threads_and_device_are_one_line_before_any_work(cli: Any, tmp_path: Path) -> None:
    for flags, message in (
        (["--threads", "0"], "--threads 0: give 1 or more"),
        (["--device", "tpu"], "--device tpu: not a device"),
    ):
        result = cli("predict", tmp_path / "missing.pt", tmp_path, "-o", tmp_path / "out", *flags)
        assert result.returncode == 2 and message in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_old_forms_before_1_0_are_usage_errors_of_one_line(cli: Any, tmp_path: Path) -> None:
    """--force (now --overwrite), evaluate --json and the OUT arguments (now -o/--out) went before 1.0."""
    out = tmp_path / "shapes"
    for arguments in (
        ("datasets", "export", "shapes", out),
        ("datasets", "export", "shapes", "-o", out, "--force"),
        ("classical", "otsu", tmp_path, tmp_path / "regions"),
        ("evaluate", tmp_path, tmp_path, "--json", tmp_path / "s.json"),
        ("export", tmp_path / "best.pt", tmp_path / "best.onnx"),
    ):
        result = cli(*arguments)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (arguments, result.stderr)
        assert result.stderr.startswith("pixelwise: error: ") and "-h for help" in result.stderr, result.stderr
    assert not out.exists() and not (tmp_path / "regions").exists()


@pytest.mark.parametrize(
    ("words", "hint"),
    [
        (("predcit",), "Did you mean 'predict'?"),
        (("classical", "kmean", "shapes", "-o", "{tmp}/o"), "did you mean 'kmeans'?"),
        (("classical", "otsu", "shapes", "-o", "{tmp}/o", "--set", "bin=3"), "did you mean 'bins'?"),
        (("classical", "otsu", "shapez", "-o", "{tmp}/o"), "did you mean 'shapes'?"),
        (("compare", "shapes", "-o", "{tmp}/o", "-m", "otsu,multi-otsu"), "did you mean 'multi_otsu'?"),
        (("compare", "shapes", "-o", "{tmp}/o", "-m", "cnn", "--set", "epoch=1"), "did you mean 'epochs'?"),
        (("compare", "shapes", "-o", "{tmp}/o", "-m", "cnn", "--set", "loss=dic"), "did you mean 'dice'?"),
        (("train", "shapes", "-o", "{tmp}/o", "--model-option", "widht=8"), "did you mean 'width'?"),
        (("train", "shapes", "-o", "{tmp}/o", "--data-option", "siz=16"), "did you mean 'size'?"),
        (("datasets", "export", "nucleii", "-o", "{tmp}/o"), "did you mean 'nuclei'?"),
        (("evaluate", "{tmp}", "{tmp}", "--split", "tset"), "did you mean 'test'?"),
        (
            ("predict", "x.pt", "{tmp}", "-o", "{tmp}/o", "--overlapp", "0.2"),
            "(Possible options: --help, --overlap, --overlay)",
        ),
    ],
)
def test_a_near_miss_says_did_you_mean(cli: Any, words: tuple[str, ...], hint: str, tmp_path: Path) -> None:
    result = cli(*(word.replace("{tmp}", str(tmp_path)) for word in words))
    assert result.returncode == 2
    assert hint in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("words", "message", "usage"),
    [
        (("predict",), "Missing argument 'MODEL'", "usage: pixelwise predict [OPTIONS] MODEL INPUT..."),
        (("predict", "a.pt", "b", "--tile-sise", "3"), "No such option: --tile-sise", "pixelwise predict -h"),
        (("predict", "a.pt", "b", "--tile", "x"), "Invalid value for '--tile'", "pixelwise predict -h"),
        (("datasets", "export"), "Missing argument 'NAME'", "usage: pixelwise datasets export [OPTIONS] NAME"),
        (("predcit",), "No such command 'predcit'", "usage: pixelwise [OPTIONS] COMMAND"),
    ],
)
def test_a_usage_error_is_one_line_with_the_usage(cli: Any, words: tuple[str, ...], message: str, usage: str) -> None:
    """click's own errors too: one line, exit status 2, the usage and where help is, in the same line."""
    result = cli(*words)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("pixelwise: error: "), result.stderr
    assert message in result.stderr and usage in result.stderr, result.stderr


@pytest.mark.parametrize("words", [(), ("datasets",)])
def test_a_bare_group_prints_its_help(cli: Any, words: tuple[str, ...]) -> None:
    result = cli(*words)
    assert result.returncode == 2 and result.stderr.startswith(f"Usage: {' '.join(('pixelwise', *words))} [OPTIONS]")
    assert "Commands:" in result.stderr and "pixelwise: error" not in result.stderr
