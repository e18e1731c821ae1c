"""The worker's event loop: asyncio's checks of a signal, answered from a set read once."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from agentty_core.worker import loop


def test_signal_handlers_run_and_bad_signals_are_refused_as_asyncio_does() -> None:
    async def main() -> list[int]:
        running = asyncio.get_running_loop()
        assert isinstance(running, loop.WorkerLoop)
        got: list[int] = []
        done = asyncio.Event()

        def on_usr1() -> None:
            got.append(signal.SIGUSR1)
            done.set()

        running.add_signal_handler(signal.SIGUSR1, on_usr1)
        with pytest.raises(ValueError, match="invalid signal number 0"):
            running.add_signal_handler(0, on_usr1)
        with pytest.raises(TypeError, match="sig must be an int"):
            running.add_signal_handler("x", on_usr1)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):  # asyncio's own refusal, past the check
            running.add_signal_handler(signal.SIGKILL, on_usr1)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(done.wait(), 5)
        running.remove_signal_handler(signal.SIGUSR1)
        return got

    assert loop.run(main()) == [signal.SIGUSR1]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
