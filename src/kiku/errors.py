"""Errors kiku shows to users as one clear line instead of a traceback."""

from __future__ import annotations


class KikuError(Exception):
    """An error with a message meant for the user: what is wrong and what to do.

    The CLI prints ``str(error)`` on one line and exits with status 2.
    """


class InputError(KikuError):
    """Bad input: a file kiku cannot read at all.

    >>> str(InputError("chats.jsonl", "no conversations found", "check the format", line=3))
    'chats.jsonl:3: no conversations found; check the format'
    """

    def __init__(self, source: str, problem: str, hint: str = "", line: int | None = None) -> None:
        self.source = str(source)
        self.problem = problem
        self.hint = hint
        self.line = line
        where = self.source if line is None else f"{self.source}:{line}"
        text = f"{where}: {problem}"
        if hint:
            text += f"; {hint}"
        super().__init__(text)


class MissingDependencyError(KikuError):
    """An optional dependency is not installed.

    >>> str(MissingDependencyError("llama_cpp", "local"))
    "llama_cpp is not installed; install it with: pip install 'kiku[local]'"
    """

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is not installed; install it with: pip install 'kiku[{extra}]'")


def require(module: str, extra: str):  # noqa: ANN201 - returns a module
    """Import an optional module or raise MissingDependencyError with an install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra) from exc
