"""What both command lines (``kiku`` and ``kiku classify``) share: one error wrapper, one stderr
console, and help output where flags show no value placeholder.

Every user-facing error becomes one line, ``error: WHAT; WHAT TO DO``, with exit status 2:

- ``KikuError`` (kiku's own errors) as they are;
- a pydantic ``ValidationError`` from a settings model, with the field named by the option
  the user typed (``--clusters 1: must be at least 2``);
- Ctrl-C as ``interrupted`` (status 130), after the progress bars have stopped.

The text is printed literally (never read as Rich markup), so a hint such as
``pip install 'kiku[openai]'`` reaches the user whole.

Example::

    @app.command()
    @friendly_errors
    def tree(run_dir: Path) -> None: ...
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, overload

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from kiku.errors import KikuError

error_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

INTERRUPTED = "interrupted"
#: The Ctrl-C hint for commands that resume where they stopped.
RESUME_HINT = "interrupted; run the same command again to resume where it stopped"


def print_error(message: str) -> None:
    """Print ``error: MESSAGE`` in red on stderr, the message taken literally (no markup)."""
    line = Text("error: ", style="bold red")
    line.append(message)
    error_console.print(line, highlight=False, soft_wrap=True)


def _option_names() -> dict[str, str]:
    """Parameter name -> the option a user types (``min_cluster_size`` -> ``--min-cluster-size``), from Click."""
    import click

    context = click.get_current_context(silent=True)
    if context is None:
        return {}
    names: dict[str, str] = {}
    for param in context.command.params:
        if param.name:
            long = [o for o in param.opts if o.startswith("--")]
            names[param.name] = long[0] if long else param.human_readable_name
    return names


def _problem(error: Mapping[str, Any]) -> str:
    """One pydantic error entry as a short phrase: ``must be at least 2``."""
    context = error.get("ctx") or {}
    kind = error.get("type", "")
    phrases = {
        "greater_than_equal": "must be at least {ge}",
        "greater_than": "must be more than {gt}",
        "less_than_equal": "must be at most {le}",
        "less_than": "must be less than {lt}",
        "literal_error": "expected {expected}",
        "extra_forbidden": "is not a setting",
    }
    if kind in phrases:
        with contextlib.suppress(KeyError):
            return phrases[kind].format(**context)
    message = str(error.get("msg", "invalid value"))
    return message[:1].lower() + message[1:]


def validation_message(error: Any, fields: Mapping[str, str] | None = None) -> str:
    """A pydantic ValidationError as one line naming the options: ``--clusters 1: must be at least 2``.

    ``fields`` maps a model field to the command parameter that sets it when their names differ
    (``{"llm_concurrency": "concurrency"}``); the option spelling comes from the running command.

    >>> from pydantic import BaseModel, Field, ValidationError
    >>> class Settings(BaseModel):
    ...     clusters: int = Field(2, ge=2)
    >>> try:
    ...     Settings(clusters=1)
    ... except ValidationError as exc:
    ...     validation_message(exc)
    '--clusters 1: must be at least 2'
    """
    options = _option_names()
    parts = []
    for entry in error.errors():
        location = [str(x) for x in entry.get("loc", ())]
        field = location[0] if location else ""
        parameter = (fields or {}).get(field, field)
        option = options.get(parameter) or ("--" + parameter.replace("_", "-") if parameter else "value")
        where = option + "".join(f"[{x}]" for x in location[1:])
        value = entry.get("input")
        shown = f" {value}" if isinstance(value, (int, float, str)) and not isinstance(value, bool) else ""
        parts.append(f"{where}{shown}: {_problem(entry)}")
    return "; ".join(parts) or "invalid settings"


@contextlib.contextmanager
def user_errors(on_interrupt: str = INTERRUPTED, fields: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn user-facing errors inside the block into one line on stderr and an exit status."""
    from pydantic import ValidationError

    try:
        yield
    except KikuError as error:
        print_error(str(error))
        raise typer.Exit(2) from None
    except ValidationError as error:
        print_error(validation_message(error, fields))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        error_console.print(escape(on_interrupt), highlight=False)
        raise typer.Exit(130) from None


@overload
def friendly_errors(function: F) -> F: ...
@overload
def friendly_errors(*, on_interrupt: str = ..., fields: Mapping[str, str] | None = ...) -> Callable[[F], F]: ...


def friendly_errors(function: F | None = None, *, on_interrupt: str = INTERRUPTED,
                    fields: Mapping[str, str] | None = None) -> Any:
    """Decorate a command so :func:`user_errors` handles its errors; usable bare or with options."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with user_errors(on_interrupt, fields):
                return command(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate(function) if function is not None else decorate


def stop_bars(bars: Any, failed: bool) -> None:
    """Stop a Rich ``Progress``; after a failure, drop the bars that never finished first, so no
    stray spinner line sits above the error."""
    if failed:
        for task in list(bars.tasks):
            if not task.finished:
                bars.remove_task(task.id)
        if not bars.tasks:
            bars.live.transient = True  # nothing left to show: not even an empty line
    bars.stop()


def _flags_show_no_metavar() -> None:
    """Typer's Rich help prints ``<bool>`` after flags (``--dry-run <bool>``) as if they took a
    value; show nothing there, as Click does."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_kiku_flags", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return shown(self, ctx)

    display_type_rich._kiku_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_metavar()


def new_bars(console: Console) -> Any:
    """The Rich ``Progress`` every kiku command shows: spinner, stage, bar, done/total, elapsed, eta."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console, transient=False,
    )


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, console: Console | None = None) -> Iterator[Callable[[int], None]]:
    """One progress bar on stderr (or ``console``); yields ``advance(n)``. After a failure or Ctrl-C
    the unfinished bar is removed before the error is printed (:func:`stop_bars`)."""
    bars = new_bars(console or error_console)
    task = bars.add_task(description, total=total)
    bars.start()
    failed = True
    try:
        yield lambda n: bars.advance(task, n)
        failed = False
    finally:
        stop_bars(bars, failed)
