"""kiku.cli_common.progress_bar: the one progress bar of the kiku commands."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from kiku.cli_common import progress_bar


def test_progress_bar_counts_and_drops_an_unfinished_bar_on_ctrl_c() -> None:
    out = io.StringIO()
    with progress_bar(3, "labelling", Console(file=out, width=100)) as advance:
        advance(3)
    assert "labelling" in out.getvalue() and "3/3" in out.getvalue()

    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt), progress_bar(10, "applying", Console(file=out, width=100)) as advance:
        advance(2)
        raise KeyboardInterrupt
    assert "2/10" not in out.getvalue().splitlines()[-1] if out.getvalue().strip() else True
