"""The worker-log tab follows a file like `tail -f`, including one that appears late."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult

from agentty_ui.widgets.log_view import LogView
from tests.ui.conftest import wait_for


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield LogView(id="log")


async def test_a_log_that_appears_later_is_shown_whole_and_the_error_goes(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    async with Host().run_test() as pilot:
        log = pilot.app.query_one(LogView)
        log.follow(path)
        await wait_for(pilot, lambda: any("cannot read" in line for line in log.lines))
        path.write_text("hello from the worker\n")
        await wait_for(pilot, lambda: any("from the worker" in line for line in log.lines))
        assert [line for line in log.lines if line] == ["hello from the worker"]
        with path.open("a") as handle:
            handle.write("second line\n")
        await wait_for(pilot, lambda: "second line" in log.lines)
        assert [line for line in log.lines if line] == ["hello from the worker", "second line"]


async def test_an_empty_log_that_appears_replaces_the_error(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    async with Host().run_test() as pilot:
        log = pilot.app.query_one(LogView)
        log.follow(path)
        await wait_for(pilot, lambda: any("cannot read" in line for line in log.lines))
        path.touch()
        await wait_for(pilot, lambda: not any("cannot read" in line for line in log.lines))


HOSTILE = b"END \x1b]0;LOGTITLE2\x07 \x1b[31mRED \xff\n"
SHOWN = r"END \x1b]0;LOGTITLE2\x07 \x1b[31mRED " + "\ufffd"


async def test_a_log_s_escape_sequences_are_shown_as_text(tmp_path: Path) -> None:
    """A program's output in its worker's log set the outer terminal's title."""
    path = tmp_path / "worker.log"
    path.write_bytes(b"start\n" + HOSTILE)
    async with Host().run_test() as pilot:
        log = pilot.app.query_one(LogView)
        log.follow(path)
        await wait_for(pilot, lambda: "END" in "".join(log.lines))
        assert [line for line in log.lines if line] == ["start", SHOWN]
        log.follow_remote("s1@h", lambda: HOSTILE.decode("utf-8", "replace"))
        await wait_for(pilot, lambda: "start" not in log.lines and "END" in "".join(log.lines))
        assert [line for line in log.lines if line] == [SHOWN]
