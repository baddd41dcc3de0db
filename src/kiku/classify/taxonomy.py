"""Taxonomy: the labels a classifier chooses from, as a YAML file and a pydantic model.

A taxonomy file looks like::

    name: support-topics
    version: "1"
    multi_label: false
    system_prompt: You label questions users ask about our product.
    labels:
      - name: billing
        description: Questions about invoices, plans, refunds and payment methods.
        examples: ["How do I get a refund?", "Can I pay by invoice?"]
        negative_examples: ["How do I reset my password?"]
      - name: other
        description: Anything that fits no other label.
    examples:              # optional: extra labelled examples, any label
      - {text: "Where is my receipt?", label: billing}

Loading validates the file and reports the first problem on one line with file and line:

    >>> from kiku.classify.taxonomy import Taxonomy, Label
    >>> t = Taxonomy(labels=[Label(name="a", description="about a"), Label(name="b", description="about b")])
    >>> t.label_names
    ['a', 'b']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kiku.errors import InputError

DEFAULT_SYSTEM_PROMPT = (
    "You classify user requests into exactly one of the labels below. "
    "Read the request, compare it with each label's description and examples, and answer with the best label."
)


class Label(BaseModel):
    """One label: a short name, a description that says what belongs to it, and examples."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    description: str
    examples: list[str] = Field(default_factory=list)
    negative_examples: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name_is_clean(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("label name is empty; give every label a short name")
        return value

    @field_validator("description")
    @classmethod
    def _description_not_empty(cls, value: str) -> str:
        if not value or not value.strip():
            raise ValueError("description is empty; say in a sentence what belongs to this label")
        return value.strip()

    @field_validator("examples", "negative_examples")
    @classmethod
    def _examples_not_blank(cls, value: list[str]) -> list[str]:
        for index, text in enumerate(value):
            if not str(text).strip():
                raise ValueError(f"example {index + 1} is empty; remove it or write the example text")
        return [str(t).strip() for t in value]


class LabelledExample(BaseModel):
    """An extra example in the taxonomy's top-level ``examples`` list."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    label: str = Field(min_length=1)


class Taxonomy(BaseModel):
    """A set of labels with a system prompt; ``multi_label`` allows several labels per item.

    ``examples`` (top level) holds extra labelled examples; they are merged with each label's
    ``examples`` by :meth:`positive_examples`.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = "taxonomy"
    version: str = "1"
    multi_label: bool = False
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    labels: list[Label] = Field(min_length=2)
    examples: list[LabelledExample] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @model_validator(mode="after")
    def _consistent(self) -> Taxonomy:
        seen: dict[str, int] = {}
        for index, label in enumerate(self.labels):
            key = label.name.casefold()
            if key in seen:
                raise _TaxonomyProblem(
                    ("labels", index, "name"),
                    f"duplicate label {label.name!r} (also label {seen[key] + 1}); rename or merge them",
                )
            seen[key] = index
        for index, example in enumerate(self.examples):
            if example.label not in self.label_names:
                raise _TaxonomyProblem(
                    ("examples", index, "label"),
                    f"example for unknown label {example.label!r}; use one of {', '.join(self.label_names)}",
                )
        return self

    @property
    def label_names(self) -> list[str]:
        """Label names in file order."""
        return [label.name for label in self.labels]

    def label(self, name: str) -> Label:
        """The label called ``name`` (KeyError if there is none)."""
        for label in self.labels:
            if label.name == name:
                return label
        raise KeyError(name)

    def positive_examples(self) -> list[tuple[str, str]]:
        """All (text, label) examples: each label's ``examples`` then the top-level ones."""
        pairs = [(text, label.name) for label in self.labels for text in label.examples]
        pairs += [(example.text, example.label) for example in self.examples]
        return pairs

    def to_yaml(self) -> str:
        """The taxonomy as YAML text (round-trips through :func:`load_taxonomy`)."""
        data = self.model_dump(mode="json")
        if not data["examples"]:
            del data["examples"]
        for label in data["labels"]:
            if not label["negative_examples"]:
                del label["negative_examples"]
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def save(self, path: str | Path) -> Path:
        """Write the taxonomy to ``path`` as YAML and return the path."""
        path = Path(path)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path


class _TaxonomyProblem(ValueError):
    """A consistency problem with the location (path into the YAML document) it refers to."""

    def __init__(self, location: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


def _line_index(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each path into the YAML document (keys and list indexes) to its 1-based line."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = path + (key_node.value,)
            lines.update(_line_index(value_node, child))
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_index(item, path + (index,)))
    return lines


def _nearest_line(lines: dict[tuple[Any, ...], int], location: tuple[Any, ...]) -> int | None:
    for end in range(len(location), -1, -1):
        if location[:end] in lines:
            return lines[location[:end]]
    return None


def _describe_location(location: tuple[Any, ...], data: Any) -> str:
    if len(location) >= 2 and location[0] == "labels" and isinstance(location[1], int):
        try:
            name = data["labels"][location[1]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            name = None
        what = f"label {name!r}" if name else f"label {location[1] + 1}"
        rest = ".".join(str(p) for p in location[2:])
        return f"{what} {rest}".strip()
    return ".".join(str(p) for p in location) or "taxonomy"


def parse_taxonomy(text: str, source: str = "<taxonomy>") -> Taxonomy:
    """Parse and validate taxonomy YAML text; raise InputError naming the line on a problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, f"not valid YAML ({problem})", "fix the syntax (indentation, quotes, colons)", line) from None
    if not isinstance(data, dict):
        raise InputError(source, "a taxonomy must be a YAML mapping with a 'labels' list", "see examples/taxonomy-wandb.yaml", 1)
    lines = _line_index(root) if root is not None else {}
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = tuple(error["loc"])
        context_error = error.get("ctx", {}).get("error")
        if isinstance(context_error, _TaxonomyProblem):
            location, message = context_error.location, context_error.message
        else:
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown field {location[-1]!r}; check the spelling (allowed: name, version, multi_label, system_prompt, labels, examples; per label: name, description, examples, negative_examples)"
            elif error["type"] == "missing":
                message = f"missing field {location[-1]!r}; add it"
            elif error["type"] == "too_short" and location == ("labels",):
                message = "a taxonomy needs at least two labels; add labels (an 'other' label is often useful)"
        where = _describe_location(location, data)
        raise InputError(source, f"{where}: {message}", line=_nearest_line(lines, location)) from None


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read and validate a taxonomy YAML file.

    >>> load_taxonomy("examples/taxonomy-wandb.yaml").label_names  # doctest: +SKIP
    ['artifact', 'integrations', 'visualisation', 'other']
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "taxonomy file not found", "create one with: kiku classify init taxonomy.yaml")
    return parse_taxonomy(path.read_text(encoding="utf-8"), str(path))
