"""What `start` checks about the program before anything runs: the command and the cwd.

The caller's side of a start (`state.intent.plan`, from `launch.launcher` or from a worker
the `start` lane forked) resolves the command with the *session's* PATH and passes the
worker an absolute path, so the program found is the one the caller meant. Spawning it is
`proc.ptyhost`'s job; this module stays light (no shutil, no dataclasses): the CLI's full
path imports it for every `start` and `run`.
"""

from __future__ import annotations

import os

from agentty_core.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, SpawnError, UsageError, cut


def resolve_command(program: str, path_env: str | None, cwd: str) -> str:
    """The absolute path that will be exec'd, or a SpawnError with exit code 127/126."""
    if not program:  # ("command not found: " named nothing)
        message = "command not found: '' (the program is an empty string)"
        raise SpawnError(message, exit_code=EXIT_NOT_FOUND)
    if "/" in program:
        candidate = program if os.path.isabs(program) else os.path.join(cwd, program)
        if not os.path.exists(candidate):
            raise SpawnError(f"command not found: {program}", exit_code=EXIT_NOT_FOUND)
        if os.path.isdir(candidate):
            raise SpawnError(f"is a directory: {program}", exit_code=EXIT_NOT_EXECUTABLE)
        if not os.access(candidate, os.X_OK):
            raise SpawnError(f"permission denied: {program}", exit_code=EXIT_NOT_EXECUTABLE)
        return os.path.abspath(candidate)
    found = which(program, path_env if path_env is not None else os.defpath)
    if found is None:
        raise SpawnError(f"command not found: {program}", exit_code=EXIT_NOT_FOUND)
    return os.path.abspath(found)


def which(program: str, path: str) -> str | None:
    """`shutil.which(program, path=path)` for a bare name on POSIX: the first executable
    file of that name along `path` (each directory once). Written out because importing
    shutil (with bz2, lzma, fnmatch) costs the CLI's full path more than all of this."""
    if not path:
        return None
    seen: set[str] = set()
    for directory in path.split(os.pathsep):
        if directory in seen:
            continue
        seen.add(directory)
        name = os.path.join(directory, program)
        if os.path.exists(name) and os.access(name, os.F_OK | os.X_OK) and not os.path.isdir(name):
            return name
    return None


def validate_cwd(cwd: str) -> None:
    if "\0" in cwd:  # (os.path.exists says False: "cwd does not exist" misled)
        raise UsageError("cwd holds a NUL byte, which no path can")
    if not os.path.exists(cwd):
        raise SpawnError(f"cwd does not exist: {cut(cwd, 200)}")
    if not os.path.isdir(cwd):
        raise SpawnError(f"cwd is not a directory: {cut(cwd, 200)}")
    if not os.access(cwd, os.X_OK):
        raise SpawnError(f"cwd is not accessible: {cut(cwd, 200)}")
