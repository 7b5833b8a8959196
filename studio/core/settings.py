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
from studio.core.i18n import N_, _


def setting(
    default: Any,
    *,
    label: str,
    help: str,
    unit: str = "",
    min: float | None = None,
    max: float | None = None,
    advanced: bool = False,
    choice_labels: Mapping[str, str] | None = None,
    shown_when: Mapping[str, tuple[Any, ...]] | None = None,
    suggestions: tuple[str, ...] = (),
    choices_from: str = "",
    free_text: bool = True,
    path: Literal["", "file", "folder", "file_or_folder"] = "",
    file_patterns: tuple[str, ...] = (),
    step: float | None = None,
) -> Any:
    """A dataclass field with the metadata that forms, TOML comments and validation read.

    ``label``, ``help`` and ``unit`` are English, marked with ``N_()`` where they are written (they
    are made at import, before a language is chosen), and translated where they are shown:
    ``_(spec.label)``, ``_(spec.help)``. TOML comments keep the English, so files read the same
    everywhere.

    Optional metadata, read by front ends (none of it changes what a value may be):

    - ``choice_labels``: how to name a choice to a person (``{"char": "Character"}``);
    - ``shown_when``: the setting applies only while each named setting of the same section has
      one of the listed values (``{"kind": ("qa",)}``); a setting's value as it is read counts, so
      for ``data.format = "auto"`` the format found from the file extension;
    - ``suggestions``: common values of a text setting that takes others too (language codes);
    - ``choices_from``: where the values of a text setting come from when they depend on data
      (``"the file's columns"``, ``"trained runs"``), so a front end can offer them;
    - ``free_text``: whether a value outside those offered is meaningful;
    - ``path``: the value names a ``file``, a ``folder``, or a ``file_or_folder`` on disk (one per
      entry for a list), so a front end can offer its file dialogs; ``file_patterns`` for them;
    - ``step``: a convenient increment for a number.
    """
    meta = {"label": label, "help": help, "unit": unit, "min": min, "max": max, "advanced": advanced,
            "choice_labels": dict(choice_labels or {}), "shown_when": {k: tuple(v) for k, v in (shown_when or {}).items()},
            "suggestions": tuple(suggestions), "choices_from": choices_from, "free_text": free_text, "path": path,
            "file_patterns": tuple(file_patterns), "step": step}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class FieldSpec:
    """Everything a form needs to show and check one setting. ``label``, ``help`` and ``unit`` are
    the English source text (the gettext message ids): show them as ``_(spec.label)``."""

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
    # Optional metadata (see ``setting``); pairs rather than dicts so a spec stays hashable.
    choice_labels: tuple[tuple[str, str], ...] = ()
    shown_when: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    suggestions: tuple[str, ...] = ()
    choices_from: str = ""
    free_text: bool = True
    path: Literal["", "file", "folder", "file_or_folder"] = ""
    file_patterns: tuple[str, ...] = ()
    step: float | None = None

    def choice_label(self, value: str) -> str:
        """The name a person reads for a choice (the value itself when it has no label), in English:
        show it as ``_(spec.choice_label(value))``."""
        return dict(self.choice_labels).get(value, value)

    def applies(self, values: Mapping[str, Any]) -> bool:
        """Whether the setting matters given its section's other values (``shown_when``); a
        setting named in a condition but absent from ``values`` does not restrict it."""
        return all(values[name] in allowed for name, allowed in self.shown_when if name in values)

    def condition_text(self) -> str:
        """``shown_when`` in words, for documentation: "only when kind is qa"."""
        parts = [f"{name} is {' or '.join(str(v) for v in allowed)}" for name, allowed in self.shown_when]
        return f"only when {' and '.join(parts)}" if parts else ""


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
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip() if not isinstance(value, dict) else _("a table")


def _coerce(value: Any, spec: FieldSpec) -> tuple[Any, str | None]:
    """Return (value, None) or (None, reason) for a value read from TOML or an override."""
    kind = spec.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        # Translators: "true" and "false" are the values as written in a config file; {value} is what was given.
        return None, _("expected true or false, got {value}").format(value=_describe(value))
    if kind == "int":
        if isinstance(value, bool):
            return None, _("expected a whole number, got {value}").format(value=_describe(value))
        if isinstance(value, int):
            return value, None
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        return None, _("expected a whole number, got {value}").format(value=_describe(value))
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, _("expected a number, got {value}").format(value=_describe(value))
        return float(value), None
    if kind == "str":
        if isinstance(value, str):
            return value, None
        return None, _("expected text, got {value}").format(value=_describe(value))
    if kind == "choice":
        if isinstance(value, str) and value in spec.choices:
            return value, None
        # Translators: {choices} are the allowed values, kept as is (cosine, linear, constant).
        return None, _("must be one of {choices} (got {value})").format(choices=", ".join(spec.choices), value=_describe(value))
    if kind == "str_list":
        if isinstance(value, str):
            return [value], None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value), None
        return None, _("expected a list of text values, got {value}").format(value=_describe(value))
    raise AssertionError(kind)


_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    # get_type_hints evaluates every annotation string again on each call; building a run config
    # asks for the specs of each section many times, and after a Build on the Data page that was
    # over 100 ms of the GUI thread.
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


class Section:
    """Base of every config component. Subclasses are dataclasses with a ``section`` name."""

    section: ClassVar[str] = ""

    @classmethod
    def field_specs(cls) -> list[FieldSpec]:
        hints = _type_hints(cls)
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
                    choice_labels=tuple(meta.get("choice_labels", {}).items()),
                    shown_when=tuple(meta.get("shown_when", {}).items()),
                    suggestions=meta.get("suggestions", ()),
                    choices_from=meta.get("choices_from", ""),
                    free_text=meta.get("free_text", True),
                    path=meta.get("path", ""),
                    file_patterns=meta.get("file_patterns", ()),
                    step=meta.get("step"),
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
            issues.append(ConfigIssue(cls.section, _("expected a table of settings")))
            data = {}
        values: dict[str, Any] = {}
        for name, raw in data.items():
            spec = specs.get(name)
            if spec is None:
                known = ", ".join(sorted(specs))
                # Translators: {known} lists the setting names of this section, kept as is.
                issues.append(ConfigIssue(f"{cls.section}.{name}", _("unknown setting (known: {known})").format(known=known)))
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
                    # Translators: {key} is a setting's name (train.lr), kept as is.
                    message = _("{key}={value} is below the minimum {minimum}")
                    issues.append(ConfigIssue(spec.key, message.format(key=spec.key, value=value, minimum=_num(spec.min))))
                if spec.max is not None and value > spec.max:
                    # Translators: {key} is a setting's name (train.lr), kept as is.
                    message = _("{key}={value} is above the maximum {maximum}")
                    issues.append(ConfigIssue(spec.key, message.format(key=spec.key, value=value, maximum=_num(spec.max))))
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

    context_length: int = setting(64, label=N_("Context length"), help=N_("Tokens the model sees at once during training."), unit=N_("tokens"), min=2, max=1_000_000)
    dropout: float = setting(0.0, label=N_("Dropout"), help=N_("Share of activations zeroed in training; helps small corpora, slows learning."), min=0.0, max=0.9)

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
        # Translators: "auto" and the codec names are values of the encoding setting, kept as is.
        return _("unknown encoding {name}; use auto or a Python codec name such as utf-8, cp1252, gb18030").format(
            name=repr(name)
        )
    except (TypeError, ValueError):
        return _("{name} is not an encoding name").format(name=repr(name))
    if not getattr(info, "_is_text_encoding", True):
        return _("{name} is not a text encoding (it does not turn bytes into text); use auto or a codec such as utf-8").format(
            name=repr(name)
        )
    try:  # the "undefined" codec exists only to refuse every use
        codecs.getincrementaldecoder(name)("strict").decode(b"", final=True)
    except (UnicodeError, TypeError, AttributeError):
        return _("{name} cannot decode anything; use auto or a codec such as utf-8").format(name=repr(name))
    return None
