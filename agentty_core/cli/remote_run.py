"""`agentty --host H run ...`: the one-shot run on another host, its outcome told apart from
the link's.

`run` exits with its program's code, any number: 126, 127 and 255 included, which a shell
and ssh use for their own failures (agentty not found there, the connection lost). So the
remote `run` is asked for JSON, and what it printed, not the code, says whether it ran: a
final screen means it did (printed here as `run` prints it, with the program's code), and
no screen leaves the code and stderr to the link's diagnosis (`transport.classify`).

Its caller's SIGINT, SIGTERM or SIGHUP end ssh, whose channel closes; the remote `run` sees
its reader gone and ends the program (`cli/run.watch_reader`): ssh passes no signal on.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Sequence

from agentty_core.cli import hotread
from agentty_core.cli.remote import write_all
from agentty_core.cli.run import Signals, Stopped
from agentty_core.cli.runlane import VALUED
from agentty_core.remote import transport
from agentty_core.remote.hosts import Host
from agentty_core.screen_text import controls_escaped, printable_lines

# run's options that take a value: the word after one is not the program.
_VALUED = frozenset(VALUED)
_OPTIONS = _VALUED | {"--json", "--help"}


def _spelt_out(word: str) -> str:
    """An option as argparse reads it: a unique abbreviation (`--time`) is the option."""
    name, equals, value = word.partition("=")
    if not name.startswith("--") or name in _OPTIONS:
        return word
    found = [option for option in _OPTIONS if option.startswith(name)]
    return found[0] + equals + value if len(found) == 1 else word


def run_options(words: Sequence[str]) -> list[str]:
    """The words of `run`'s own options, as argparse reads them: up to `--` or the first
    word that is neither an option nor an option's value (the program: `run df -h` asks
    df, not run, for -h)."""
    at = list(words).index("run")
    options: list[str] = []
    takes_value = False
    for word in words[at + 1 :]:
        if takes_value:
            options.append(word)
            takes_value = False
        elif word == "--" or not word.startswith("-"):
            break
        else:
            word = _spelt_out(word)
            options.append(word)
            takes_value = word in _VALUED
    return options


def asks_help(words: Sequence[str]) -> bool:
    return any(word in ("-h", "--help") for word in run_options(words))


def forward_run(host: Host, words: Sequence[str], home_root: str) -> int:
    words = list(words)
    at = words.index("run")
    as_json = "--json" in run_options(words)
    asked = words if as_json else [*words[: at + 1], "--json", *words[at + 1 :]]
    transport.share_master(host, home_root)
    argv = transport.argv_for(host, asked, home_root)
    with Signals() as signals:
        try:
            proc = subprocess.Popen(
                transport.dying_with_us(argv),  # (killed outright here: ends there too)
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=transport.child_env(),
            )
        except OSError as exc:
            raise transport.spawn_error(host, argv, exc) from None
        assert proc.stdout is not None and proc.stderr is not None
        try:
            signals.arm()
            # Not `communicate`: a killed ssh's pipes stay open in its master until the far
            # side ends (`transport.collect`).
            got = transport.collect(
                [proc.stdout.fileno(), proc.stderr.fileno()],
                lambda: proc.poll() is not None,
                limit=transport.MAX_CAPTURE,
            )
            assert got is not None  # (no deadline)
            out, err = got
            proc.wait()
        except transport.TooLarge:
            _end(proc)
            raise transport.too_large(host) from None
        except Stopped as exc:
            _end(proc)
            name = signal.Signals(exc.signum).name
            hotread.error(f"run stopped by {name}: ending the program on {host.name}")
            return 128 + exc.signum
        except BaseException:
            _end(proc)
            raise
        finally:
            signals.disarm()
    stderr = err.decode("utf-8", "replace")
    screen = _screen(out)
    if screen is None:  # it printed no screen: agentty's own error there, or the link's
        failure = transport.killed(host, proc.returncode) or transport.classify(
            host, proc.returncode, stderr, out
        )
        if failure is not None:
            raise failure
    elif not as_json:  # (rows hold no control character, unless that host's agentty lies)
        text = hotread.screen_text(screen, "lines")
        text = "\n".join(controls_escaped(line) for line in text.split("\n"))
        out = text.encode("utf-8", "surrogateescape")
    if sys.stdout is not None:
        sys.stdout.flush()
    said = printable_lines(stderr).encode()  # the host's words, escaped as on every path
    for fd, data in ((1, out), (2, said)):
        with contextlib.suppress(OSError):  # (either may be closed: the code still says)
            write_all(fd, data)
    return proc.returncode


def _screen(out: bytes) -> dict[str, object] | None:
    """The final screen `run --json` printed, or None."""
    try:
        screen = json.loads(out)
    except (ValueError, RecursionError):  # (nested past the parser's depth)
        return None
    return screen if isinstance(screen, dict) and "lines" in screen else None


def _end(proc: subprocess.Popen[bytes]) -> None:
    """End ssh (its channel closes: the remote `run` ends the program) and wait for it."""
    proc.kill()
    proc.wait()
