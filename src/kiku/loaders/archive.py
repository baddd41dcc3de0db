"""Reading the data file inside a ``.zip`` (ChatGPT and Claude.ai exports arrive zipped) or a ``.gz``.

The member (or the decompressed ``.gz``) is copied to a temporary folder in 1 MiB pieces (never
into memory) and removed when reading ends; reasons and warnings name it ``<archive>/<member>``
for a zip and by the ``.gz`` file's own name for gzip (``chats.jsonl.gz:12: ...``). The
temporary copy keeps the inner name (``chats.jsonl``), so the format is judged as for the plain file.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zipfile
import zlib
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


ARCHIVE_SUFFIXES = (".zip", ".gz")


def is_archive(file: Path) -> bool:
    """True for a ``.zip`` or ``.gz`` file, read through :func:`extracted_member`."""
    return file.is_file() and file.suffix.lower() in ARCHIVE_SUFFIXES


@contextmanager
def extracted_member(archive: Path, source: str) -> Iterator[tuple[Path, str]]:
    """Extract the data member of a ``.zip`` (or decompress a ``.gz``) to a temporary file; yield ``(path, display name)``.

    >>> with extracted_member(Path("tests/data/chats.jsonl.gz"), "chats.jsonl.gz") as (path, name):  # doctest: +SKIP
    ...     path.name, name
    ('chats.jsonl', 'chats.jsonl.gz')
    """
    if archive.suffix.lower() == ".gz":
        with _gunzipped(archive, source) as target:
            yield target, source
        return
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


@contextmanager
def _gunzipped(archive: Path, source: str) -> Iterator[Path]:
    """Decompress ``chats.jsonl.gz`` to a temporary ``chats.jsonl``; a damaged or cut-off file is an InputError."""
    folder = Path(tempfile.mkdtemp(prefix="kiku-gz-"))
    target = folder / (archive.name[: -len(".gz")] or "data")
    try:
        try:
            with gzip.open(archive, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(
                source, f"not a readable gzip file ({exc})", "check the download, or decompress it (gunzip) and pass the file inside"
            ) from None
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)
