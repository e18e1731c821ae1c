"""The command line stays what it was: `help --json` and every `CMD --help` against a snapshot.

The snapshot (`tests/data/cli_help.json`) was taken from the parser before it became a table
of per-command builders; any change to an option, a help text or the schema shows up here.
After a deliberate change, regenerate it with
`.venv/bin/python -m tests.unit.test_cli_parser` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentty_core.cli.main import COMMANDS
from agentty_core.cli.parser import build_parser
from agentty_core.cli.schema import schema
from tests.helpers.cli import AGENTTY

SNAPSHOT = Path(__file__).parent.parent / "data" / "cli_help.json"
COLUMNS = "100"  # argparse wraps help to the terminal width
NAMES = ["help", *COMMANDS]


def _without_version(value: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in value.items() if k != "version"}


def _run(*args: str) -> str:
    env = {**os.environ, "COLUMNS": COLUMNS}
    proc = subprocess.run(
        [AGENTTY, *args], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return proc.stdout


def snapshot_now() -> dict[str, object]:
    """What the installed command prints today."""
    return {
        "schema": _without_version(json.loads(_run("help", "--json"))),
        "help": {name: _run(*([name] if name else []), "--help") for name in ["", *NAMES]},
    }


@pytest.fixture(scope="module")
def expected() -> dict[str, object]:
    value = json.loads(SNAPSHOT.read_text("utf-8"))
    assert isinstance(value, dict)
    return value


def test_help_json_is_unchanged(expected: dict[str, object]) -> None:
    assert _without_version(json.loads(_run("help", "--json"))) == expected["schema"]


@pytest.mark.parametrize("name", ["", *NAMES], ids=lambda n: n or "(top)")
def test_command_help_is_unchanged(name: str, expected: dict[str, object]) -> None:
    helps = expected["help"]
    assert isinstance(helps, dict)
    assert _run(*([name] if name else []), "--help") == helps[name]


@pytest.mark.parametrize("name", NAMES)
def test_one_command_parser_equals_the_full_one(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path builds only the command it runs: that subparser is the full one's."""
    monkeypatch.setenv("COLUMNS", COLUMNS)
    full = schema(build_parser())["commands"]
    one = schema(build_parser(name))["commands"]
    assert isinstance(full, list) and isinstance(one, list)
    assert one == [c for c in full if c["name"] == name]


def test_every_command_has_a_runner() -> None:
    built = {c["name"] for c in schema(build_parser())["commands"]}  # type: ignore[attr-defined]
    assert built == set(NAMES)


@pytest.mark.parametrize(
    ("module", "absent"),
    [("agentty_core.cli.parser", "agentty_core.cli.main"), ("agentty_core.cli.main", "argparse")],
)
def test_no_import_cycle_between_parser_and_commands(module: str, absent: str) -> None:
    """The definitions load without the commands; the commands load argparse only on demand."""
    code = f"import sys, {module}; assert {absent!r} not in sys.modules, {absent!r}"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(snapshot_now(), indent=1, sort_keys=True) + "\n", "utf-8")
    print(f"wrote {SNAPSHOT}", file=sys.stderr)


@pytest.mark.parametrize("columns", [None, "", "abc", "0", "-3", "37", "250"])
def test_help_width_is_shutils(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    # The parser asks the terminal's width itself, so that building it imports no shutil.
    import shutil

    from agentty_core.cli.parser import terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns


def test_help_json_says_start_needs_a_program_unless_shell() -> None:
    """`start --shell CMDLINE` takes no PROGRAM: an agent reading the schema was told it must
    give one. `run` has no --shell: its PROGRAM stays required."""
    listed = json.loads(json.dumps(schema(build_parser())))["commands"]
    commands = {c["name"]: c for c in listed}
    (program,) = commands["start"]["positionals"]
    assert program["required"] is False and program["requiredUnless"] == ["--shell"]
    (program,) = commands["run"]["positionals"]
    assert program["required"] is True and "requiredUnless" not in program


@pytest.mark.parametrize(
    "words",
    [
        ["wait", "--text", "hello", "--text", "zzz"],
        ["wait", "--timeout", "1", "--timeout=2", "--exit"],
        ["get", "-s", "a", "--session", "b"],
        ["kill", "--timeout", "1", "--timeout", "2"],
        ["start", "--name", "a", "--name", "b", "--", "cat"],
        ["run", "--cols", "90", "--cols", "100", "--", "cat"],
        ["--host", "a", "--host", "b", "status"],  # (the first host was called)
        ["doctor", "--host", "a", "--host=b"],
    ],
)
def test_a_single_valued_option_given_twice_is_a_usage_error(
    words: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """argparse keeps the last value: `wait --text A --text B` waited for B alone, and
    `help --json` says these options are not repeatable. Both paths refuse it now (and the
    lanes of `start` and `run`, taken with the spawner on, hand it to the full path)."""
    from tests.helpers.cli import AGENTTY
    from tests.integration.test_hotpath import FULL, run

    monkeypatch.setenv("AGENTTY_SPAWNER", "1")

    for way in ([AGENTTY], FULL):
        proc = run(way, *words)
        assert proc.returncode == 2, (way, proc.stderr)
        assert "given more than once" in proc.stderr and proc.stderr.count("\n") == 1
    assert run([AGENTTY], *words).stderr == run(FULL, *words).stderr


def test_repeatable_options_stay_repeatable() -> None:
    from agentty_core.cli.parser import build_parser

    words = ["run", "--expect", "a", "--input", "1", "--expect", "b", "--input", "2", "--", "cat"]
    assert build_parser().parse_args(words).expect == ["a", "b"]
    started = build_parser().parse_args(["start", "--env", "A=1", "--env", "B=2", "--", "cat"])
    assert started.env == [("A", "1"), ("B", "2")]


def test_the_lanes_hand_a_repeated_option_to_argparse() -> None:
    from agentty_core.cli import fast, runlane, startlane

    assert startlane.parse(["start", "--name", "a", "--name", "b", "--", "cat"]) is None
    assert startlane.parse(["start", "--env", "A=1", "--env", "B=2", "--", "cat"]) is not None
    assert runlane.parse(["run", "--timeout", "1", "--timeout", "2", "--", "cat"]) is None
    assert runlane.parse(["run", "--input", "a", "--input", "b", "--", "cat"]) is not None
    assert fast.parse(["wait", "--text", "a", "--text", "b"]) is None
    assert fast.parse(["wait", "--json", "--json", "--text", "a"]) is not None


def test_kill_grace_beyond_a_minute_is_a_usage_error() -> None:
    """The parser took up to 86400 s and the worker then refused more than 60, naming its
    own parameter ("grace must be ..."): the parser says it now, in the option's terms."""
    from tests.helpers.cli import AGENTTY
    from tests.integration.test_hotpath import FULL, run

    for way in ([AGENTTY], FULL):
        for value in ("61", "nan", "inf", "-1"):
            proc = run(way, "kill", "--timeout", value)
            assert proc.returncode == 2 and "grace per step must be in 0..60" in proc.stderr


@pytest.mark.parametrize(
    ("words", "said"),
    [
        (
            ["text", "--enter", "ls", "-la"],
            "unrecognized arguments: -la; to type a word that "
            "starts with '-', put '--' before it (agentty text -- -la) (see 'agentty text --help')",
        ),
        (
            ["send", "--enter", "-rf"],
            "the following arguments are required: ARG; to type a "
            "word that starts with '-', put '--' before it (agentty send -- -rf) "
            "(see 'agentty send --help')",
        ),
        (["get", "--foo"], "unrecognized arguments: --foo (see 'agentty get --help')"),
        (["--bogus"], "unrecognized arguments: --bogus (see 'agentty --help')"),
    ],
)
def test_words_left_over_are_said_with_the_command_s_help(words: list[str], said: str) -> None:
    """`text --enter ls -la` is what an agent writes: argparse took -la for an option and
    pointed at the top-level help. The error names the command's help and, for a command
    that types its words, how to type one that starts with '-'."""
    from tests.integration.test_hotpath import FULL, run

    for way in ([AGENTTY], FULL):
        proc = run(way, *words)
        assert (proc.returncode, proc.stderr) == (2, f"agentty: error: {said}\n"), way


@pytest.mark.parametrize(
    "args",
    [
        ["resize", "--cols", "\u0663", "--rows", "24"],  # ARABIC-INDIC DIGIT THREE
        ["resize", "--cols", "\uff18\uff10", "--rows", "24"],  # FULLWIDTH 80
        ["get", "--lines", "1_000"],
        ["wait", "--exit", "--timeout", "\u0663"],
        ["wait", "--exit", "--timeout", "1_0"],
        ["kill", "--timeout", "\u0665"],
    ],
    ids=["arabic-indic", "fullwidth", "underscore", "secs-arabic", "secs-underscore", "grace"],
)
def test_numbers_are_ascii_digits_as_the_fast_path_reads_them(args: list[str]) -> None:
    """Python's int() and float() read any script's digits and `1_000`; the fast path (and
    tmux) read ASCII digits only, so the same words were a number one way and not the
    other. A number in other digits is refused with the usage exit, both ways."""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(args)
    assert refused.value.code == 2
    proc = subprocess.run([AGENTTY, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a" in proc.stderr, proc
