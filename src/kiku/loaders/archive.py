"""Reading the data file inside a ``.zip`` (ChatGPT and Claude.ai exports arrive zipped).

The member is copied to a temporary folder in 1 MiB pieces (never into memory) and removed
when reading ends; reasons and warnings name it ``<archive>/<member>``.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from kiku.errors import InputError

DATA_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")
PREFERRED = "conversations.json"


def choose_member(names: list[str], source: str) -> str:
    """The member to read: ``conversations.json`` (at any depth), else the only data file.

    >>> choose_member(["export/user.json", "export/conversations.json", "export/chat.html"], "x.zip")
    'export/conversations.json'
    """
    data = [n for n in names if PurePosixPath(n).suffix.lower() in DATA_SUFFIXES and not n.startswith("__MACOSX/") and not n.endswith("/")]
    preferred = [n for n in data if PurePosixPath(n).name == PREFERRED]
    if preferred:
        return min(preferred, key=len)
    if len(data) == 1:
        return data[0]
    if not data:
        raise InputError(source, "the zip file holds no data file (.json, .jsonl, .csv, .parquet)", "pass the export's conversations.json")
    listed = ", ".join(data[:6]) + (", ..." if len(data) > 6 else "")
    raise InputError(source, f"the zip file holds several data files ({listed})", "unzip it and pass the one to read")


@contextmanager
def extracted_member(archive: Path, source: str) -> Iterator[tuple[Path, str]]:
    """Extract the data member of ``archive`` to a temporary file; yield ``(path, display name)``."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            member = choose_member(bundle.namelist(), source)
            folder = Path(tempfile.mkdtemp(prefix="kiku-zip-"))
            target = folder / PurePosixPath(member).name
            with bundle.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise InputError(source, f"not a readable zip file ({exc})", "check the download, or unzip it and pass the file inside") from None
    try:
        yield target, f"{source}/{member}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
