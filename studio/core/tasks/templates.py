"""Prompt templates: how a decoder-only model sees a sequence-to-sequence example as one text.

``translate: {source} => {target}`` becomes the prompt ``translate: <source> => `` followed by
the target. The loss covers only the target tokens (and the closing <eos>), so the model learns to
write answers, not to repeat prompts. The template is saved with the run and used again at
inference, which is why a fine-tuned model answers in the Try panel without being told the format.
"""

from __future__ import annotations

import re

from studio.core.errors import ConfigError, ConfigIssue
from studio.core.i18n import _
from studio.core.tasks.examples import Example

DEFAULT_TEMPLATES = {
    "translate": "translate: {source} => {target}",
    "summarize": "summarize: {document} => {summary}",
    "qa": "question: {question} context: {context} => {answer}",
}
TARGET_ROLE = {"translate": "target", "summarize": "summary", "qa": "answer"}
INPUT_ROLES = {"translate": ("source",), "summarize": ("document",), "qa": ("question", "context")}
_PLACEHOLDER = re.compile(r"\{([a-z]+)\}")


def template_for(kind: str, template: str) -> str:
    """The template to use (the default for the kind when empty), checked."""
    template = template or DEFAULT_TEMPLATES[kind]
    target = "{" + TARGET_ROLE[kind] + "}"
    names = _PLACEHOLDER.findall(template)
    allowed = {*INPUT_ROLES[kind], TARGET_ROLE[kind]}
    unknown = [n for n in names if n not in allowed]
    if unknown:
        # Translators: {field} and {fields} are template fields written in braces ({source}), kept as is; {kind} a task kind.
        message = _("unknown field {field}; a {kind} template may use {fields}").format(
            field="{" + unknown[0] + "}", kind=kind, fields=", ".join("{" + a + "}" for a in sorted(allowed))
        )
        raise ConfigError(ConfigIssue("task.template", message))
    if not template.rstrip().endswith(target) or template.count(target) != 1:
        # Translators: {field} is a template field in braces ({target}), kept as is; {template} the template given.
        message = _("the template must end with {field}, once (got {template})").format(field=target, template=repr(template))
        raise ConfigError(ConfigIssue("task.template", message))
    return template


def prompt_text(kind: str, template: str, example: Example | None = None, **inputs: str) -> str:
    """The text before the target, with the example's (or the given) inputs filled in."""
    template = template_for(kind, template)
    prefix = template.rstrip()[: -len("{" + TARGET_ROLE[kind] + "}")]
    values = dict(inputs)
    if example is not None:
        if kind == "qa":
            values = {"question": example.question, "context": example.source}
        else:
            values = {INPUT_ROLES[kind][0]: example.source}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), prefix)
