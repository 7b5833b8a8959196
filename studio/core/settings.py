"""What a setting is: a dataclass field with the metadata (label, help, range, unit, choices) that
every front end reads, and the ``Section`` base that parses, checks and prints a table of them.

The same metadata drives TOML files (read and written with each setting's help as a comment),
CLI overrides such as ``--set train.lr=3e-4``, and the window's forms, which are generated from
:meth:`Section.field_specs`. No torch and no Qt here: reading a setting is instant anywhere.
"""

from __future__ import annotations

import codecs
import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

import tomli_w

from studio.core.errors import ConfigError, ConfigIssue


def setting(
    default: Any,
    *,
    label: str,
    help: str,
    unit: str = "",
    min: float | None = None,
    max: float | None = None,
    advanced: bool = False,
) -> Any:
    """A dataclass field with the metadata that forms, TOML comments and validation read."""
    meta = {"label": label, "help": help, "unit": unit, "min": min, "max": max, "advanced": advanced}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class FieldSpec:
    """Everything a form needs to show and check one setting."""

    key: str  # "train.lr"
    name: str  # "lr"
    kind: Literal["int", "float", "bool", "str", "choice", "str_list"]
    default: Any
    label: str
    help: str
    unit: str
    min: float | None
    max: float | None
    choices: tuple[str, ...]
    advanced: bool


def _kind_of(tp: Any) -> tuple[str, tuple[str, ...]]:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "choice", tuple(str(a) for a in typing.get_args(tp))
    if origin is list:
        return "str_list", ()
    if tp is bool:
        return "bool", ()
    if tp is int:
        return "int", ()
    if tp is float:
        return "float", ()
    if tp is str:
        return "str", ()
    raise TypeError(f"unsupported config field type {tp!r}")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip() if not isinstance(value, dict) else "a table"


def _coerce(value: Any, spec: FieldSpec) -> tuple[Any, str | None]:
    """Return (value, None) or (None, reason) for a value read from TOML or an override."""
    kind = spec.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        return None, f"expected true or false, got {_describe(value)}"
    if kind == "int":
        if isinstance(value, bool):
            return None, f"expected a whole number, got {_describe(value)}"
        if isinstance(value, int):
            return value, None
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        return None, f"expected a whole number, got {_describe(value)}"
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"expected a number, got {_describe(value)}"
        return float(value), None
    if kind == "str":
        if isinstance(value, str):
            return value, None
        return None, f"expected text, got {_describe(value)}"
    if kind == "choice":
        if isinstance(value, str) and value in spec.choices:
            return value, None
        return None, f"must be one of {', '.join(spec.choices)} (got {_describe(value)})"
    if kind == "str_list":
        if isinstance(value, str):
            return [value], None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value), None
        return None, f"expected a list of text values, got {_describe(value)}"
    raise AssertionError(kind)


class Section:
    """Base of every config component. Subclasses are dataclasses with a ``section`` name."""

    section: ClassVar[str] = ""

    @classmethod
    def field_specs(cls) -> list[FieldSpec]:
        hints = typing.get_type_hints(cls)
        specs = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            kind, choices = _kind_of(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
            meta = f.metadata
            specs.append(
                FieldSpec(
                    key=f"{cls.section}.{f.name}",
                    name=f.name,
                    kind=kind,  # type: ignore[arg-type]
                    default=default,
                    label=meta.get("label", f.name),
                    help=meta.get("help", ""),
                    unit=meta.get("unit", ""),
                    min=meta.get("min"),
                    max=meta.get("max"),
                    choices=choices,
                    advanced=meta.get("advanced", False),
                )
            )
        return specs

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], issues: list[ConfigIssue] | None = None) -> Self:
        """Build from a TOML table. Collects every problem into ``issues`` (or raises ConfigError)."""
        own = issues is None
        issues = [] if issues is None else issues
        specs = {s.name: s for s in cls.field_specs()}
        if not isinstance(data, Mapping):
            issues.append(ConfigIssue(cls.section, "expected a table of settings"))
            data = {}
        values: dict[str, Any] = {}
        for name, raw in data.items():
            spec = specs.get(name)
            if spec is None:
                known = ", ".join(sorted(specs))
                issues.append(ConfigIssue(f"{cls.section}.{name}", f"unknown setting (known: {known})"))
                continue
            value, problem = _coerce(raw, spec)
            if problem:
                issues.append(ConfigIssue(spec.key, problem))
            else:
                values[name] = value
        obj = cls(**values)
        had_issues = any(i.key.startswith(cls.section + ".") for i in issues)
        issues.extend(obj.range_issues())
        if not had_issues and not any(i.key.startswith(cls.section + ".") for i in issues):
            issues.extend(obj.check())
        if own and issues:
            raise ConfigError(issues)
        return obj

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _copy(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def validate(self) -> list[ConfigIssue]:
        """Range checks from the metadata, then the section's own cross-field rules."""
        issues = self.range_issues()
        return issues or self.check()

    def range_issues(self) -> list[ConfigIssue]:
        issues = []
        for spec in self.field_specs():
            value = getattr(self, spec.name)
            if spec.kind in ("int", "float"):
                if spec.min is not None and value < spec.min:
                    issues.append(ConfigIssue(spec.key, f"{spec.key}={value} is below the minimum {_num(spec.min)}"))
                if spec.max is not None and value > spec.max:
                    issues.append(ConfigIssue(spec.key, f"{spec.key}={value} is above the maximum {_num(spec.max)}"))
        return issues

    def check(self) -> list[ConfigIssue]:
        """Cross-field rules; override in sections that have them."""
        return []


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


@dataclass
class ModelConfig(Section):
    """Base of the per-architecture configs (``studio.core.architectures``)."""

    section: ClassVar[str] = "model"
    arch: ClassVar[str] = ""
    label: ClassVar[str] = ""
    objective: ClassVar[Literal["causal", "masked", "seq2seq"]] = "causal"
    # Size presets shown on the Model page: name -> field values.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    context_length: int = setting(64, label="Context length", help="Tokens the model sees at once during training.", unit="tokens", min=2, max=1_000_000)
    dropout: float = setting(0.0, label="Dropout", help="Share of activations zeroed in training; helps small corpora, slows learning.", min=0.0, max=0.9)

    @classmethod
    def field_specs(cls) -> list[FieldSpec]:
        # Forms read better with the architecture's own shape first, shared settings after,
        # and advanced switches last.
        specs = super().field_specs()
        shared = {"context_length", "dropout"}
        return sorted(specs, key=lambda s: (s.advanced, s.name in shared))

    def param_count(self, vocab_size: int) -> int:
        raise NotImplementedError

    def activation_bytes(self, batch_size: int, seq_len: int, vocab_size: int) -> int:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, **super().to_dict()}


def text_codec_problem(name: str) -> str | None:
    """Why ``name`` cannot decode text files (unknown, or a bytes-to-bytes codec such as zlib), or None."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        return f"unknown encoding {name!r}; use auto or a Python codec name such as utf-8, cp1252, gb18030"
    except (TypeError, ValueError):
        return f"{name!r} is not an encoding name"
    if not getattr(info, "_is_text_encoding", True):
        return f"{name!r} is not a text encoding (it does not turn bytes into text); use auto or a codec such as utf-8"
    try:  # the "undefined" codec exists only to refuse every use
        codecs.getincrementaldecoder(name)("strict").decode(b"", final=True)
    except (UnicodeError, TypeError, AttributeError):
        return f"{name!r} cannot decode anything; use auto or a codec such as utf-8"
    return None
