"""Judge prompt templates: files with named placeholders, built in or supplied by the user.

Two kinds of template file:

- **placeholder files** (``.txt``, ``.md``, or ``.yaml``/``.yml`` with a ``user_template`` key, as in the
  published Selene Mini templates): ``{user_input}``, ``{assistant_response}``, ``{assistant_response_a}``,
  ``{assistant_response_b}``, ``{rubric_objective}``, ``{rubric_score_1_description}`` …
  ``{rubric_score_5_description}``, ``{rubric_yes_description}``, ``{rubric_no_description}``,
  ``{reference_response}``, and gavel's own ``{output_format}``. A placeholder is a name in braces with
  nothing else (``{name}``): an unknown one is an error, other braces (``{"verdict": "Yes"}``, ``{ x }``)
  stay as they are. The task is inferred from the placeholders used.
- **Jinja2 files** (``.j2``): the same names as variables plus ``task``, ``mode`` and ``has_reference``; one
  file can serve every task.

A file is checked when it is loaded (:class:`TemplateError`, one line naming the file): placeholders and
variables must be known names, a YAML file's ``user_template`` a string, a Jinja2 file must compile and render
a sample item of every task, mode and reference case.

A template set is a folder of ``<task>.txt`` / ``<task>_reference.txt`` (or ``.j2``) files; the built-in
sets live in ``gavel/judge/templates/``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2
from jinja2 import meta, nodes
from pydantic import BaseModel, ConfigDict

from gavel.config import ConfigError, read_yaml_mapping, validate_model
from gavel.judge.records import JudgeRecord, Task
from gavel.labels import Mode, answer_text

PLACEHOLDERS = (
    "user_input",
    "assistant_response",
    "assistant_response_a",
    "assistant_response_b",
    "rubric_objective",
    *(f"rubric_score_{i}_description" for i in range(1, 6)),
    "rubric_yes_description",
    "rubric_no_description",
    "reference_response",
    "output_format",
)
#: The variables a Jinja2 file has besides the placeholders.
JINJA_VARIABLES = (*PLACEHOLDERS, "task", "mode", "has_reference")
#: What counts as a placeholder in a placeholder file: an identifier in braces.
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

_VERDICT_SPELLING = {
    Task.absolute: "an integer from 1 to 5",
    Task.classification: "Yes or No",
    Task.pairwise: "A or B",
}
_REASONING_SPELLING = {
    Task.absolute: "your assessment of the response",
    Task.classification: "your assessment of the response",
    Task.pairwise: "your assessment of the two responses",
}


def output_format(task: Task, mode: Mode) -> str:
    """The output-format instruction for a task: critique then result, or the result alone."""
    verdict = f"<{_VERDICT_SPELLING[task]}>"
    if mode is Mode.verdict:
        return f"Your reply must strictly follow this format, with nothing else:\n{answer_text(verdict)}"
    return f"Your reply must strictly follow this format:\n{answer_text(verdict, f'<{_REASONING_SPELLING[task]}>')}"


def template_values(record: JudgeRecord, mode: Mode) -> dict[str, str]:
    """The placeholder values for a record."""
    rubric = record.resolved_rubric()
    values = {
        "user_input": record.instruction,
        "rubric_objective": rubric.objective,
        "reference_response": record.reference or "",
        "output_format": output_format(record.task, mode),
    }
    if record.task is Task.pairwise:
        values |= {"assistant_response_a": record.response_a or "", "assistant_response_b": record.response_b or ""}
    else:
        values["assistant_response"] = record.response or ""
    if record.task is Task.absolute:
        values |= {f"rubric_score_{i}_description": getattr(rubric, f"score{i}") or "" for i in range(1, 6)}
    if record.task is Task.classification:
        values |= {"rubric_yes_description": rubric.yes or "", "rubric_no_description": rubric.no or ""}
    return values


class TemplateError(ValueError):
    """A template file is broken, or a template cannot be used for a record."""


def _sample(task: Task, reference: str | None) -> JudgeRecord:
    """A made-up item of `task`: what a Jinja2 file is test-rendered with when it is loaded."""
    responses = {"response_a": "A", "response_b": "B"} if task is Task.pairwise else {"response": "R"}
    return JudgeRecord(id="sample", task=task, instruction="I", reference=reference, **responses)


_SAMPLES = tuple(_sample(task, ref) for task in Task for ref in (None, "REF"))


class _YamlTemplate(BaseModel):
    """A YAML template file (Selene Mini's layout); keys other than ``user_template`` are not read."""

    model_config = ConfigDict(extra="allow")
    user_template: str


def _yaml_text(path: Path) -> str:
    """The ``user_template`` of a YAML file."""
    try:
        return validate_model(read_yaml_mapping(path), _YamlTemplate, str(path)).user_template
    except ConfigError as exc:
        raise TemplateError(str(exc)) from None


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    env.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)  # raw characters for the model
    return env


def _template_line(exc: BaseException) -> int | None:
    """The template line a Jinja2 render error was raised on."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _at(path: Path, line: int | None) -> str:
    return f"{path}, line {line}" if line else str(path)


def _compile(path: Path, text: str) -> jinja2.Template:
    """A Jinja2 file compiled, its variables known, every sample item rendered; TemplateError otherwise."""
    env = _environment()
    try:
        tree = env.parse(text)
        compiled = env.from_string(tree)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{_at(path, exc.lineno)}: {exc.message}") from None
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx != "load"}  # set in some branch: the renders tell
    unknown = meta.find_undeclared_variables(tree) - set(JINJA_VARIABLES) - assigned
    if unknown:
        name = min(unknown, key=lambda n: (_first_use(tree, n), n))
        raise TemplateError(f"{_at(path, _first_use(tree, name))}: unknown variable '{name}' "
                            f"(known: {', '.join(JINJA_VARIABLES)})")
    for record in _SAMPLES:
        for mode in Mode:
            try:
                compiled.render(_jinja_context(record, mode))
            except Exception as exc:  # the file's own expressions: any failure is the file's
                message = " ".join(str(exc).split())
                raise TemplateError(f"{_at(path, _template_line(exc))}: {type(exc).__name__}: {message} "
                                    f"(rendering a {record.task.value} item, {mode.value} mode)") from None
    return compiled


def _first_use(tree: nodes.Template, name: str) -> int:
    """The line `name` is first read on (0: none found)."""
    return min((n.lineno for n in tree.find_all(nodes.Name) if n.name == name and n.ctx == "load"), default=0)


def _jinja_context(record: JudgeRecord, mode: Mode) -> dict[str, object]:
    """The variables a Jinja2 file is rendered with."""
    values = template_values(record, mode)
    context: dict[str, object] = {name: values.get(name, "") for name in PLACEHOLDERS}
    return context | {"task": record.task.value, "mode": mode.value, "has_reference": record.reference is not None}


def _check_placeholders(path: Path, text: str) -> None:
    unknown = [name for name in _PLACEHOLDER_RE.findall(text) if name not in PLACEHOLDERS]
    if unknown:
        raise TemplateError(f"{path}: unknown placeholder {{{unknown[0]}}} (known: {', '.join(PLACEHOLDERS)})")


def infer_task(text: str) -> Task | None:
    names = set(_PLACEHOLDER_RE.findall(text))
    if "assistant_response_a" in names:
        return Task.pairwise
    if "rubric_yes_description" in names:
        return Task.classification
    if "rubric_score_1_description" in names:
        return Task.absolute
    return None


@dataclass
class Template:
    """One template file."""

    name: str
    text: str
    task: Task | None = None  # None: any task (Jinja2 files)
    compiled: jinja2.Template | None = field(default=None, repr=False)  # a Jinja2 file's

    @classmethod
    def from_file(cls, path: Path, name: str | None = None) -> Template:
        """The template in `path`, checked (TemplateError naming the file)."""
        if path.suffix in (".yaml", ".yml"):
            text = _yaml_text(path)
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise TemplateError(f"{path}: cannot be read: {exc}") from None
        if path.suffix == ".j2":
            return cls(name=name or path.stem, text=text, compiled=_compile(path, text))
        _check_placeholders(path, text)
        return cls(name=name or path.stem, text=text, task=infer_task(text))

    @property
    def jinja(self) -> bool:
        return self.compiled is not None

    @property
    def uses_reference(self) -> bool:
        return "reference_response" in self.text

    def render(self, record: JudgeRecord, mode: Mode) -> str:
        if self.task is not None and self.task is not record.task:
            raise TemplateError(f"template '{self.name}' is for {self.task.value} items, not {record.task.value}")
        if self.compiled is not None:
            try:
                return self.compiled.render(_jinja_context(record, mode)).strip()
            except jinja2.TemplateError as exc:  # an item unlike the samples the file was checked with
                raise TemplateError(f"template '{self.name}': {exc}") from None
        values = template_values(record, mode)
        return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), ""), self.text).strip()


@dataclass
class TemplateSet:
    """Templates keyed by (task, with reference); picks the right one for each record."""

    name: str
    templates: dict[tuple[Task | None, bool], Template] = field(default_factory=dict)
    fallback: TemplateSet | None = None

    def pick(self, record: JudgeRecord) -> Template:
        has_ref = record.reference is not None
        for key in ((record.task, has_ref), (None, has_ref), (record.task, not has_ref), (None, not has_ref)):
            if key in self.templates:
                return self.templates[key]
        if self.fallback is not None:
            return self.fallback.pick(record)
        raise TemplateError(f"template set '{self.name}' has no template for {record.task.value} items")

    def render(self, record: JudgeRecord, mode: Mode) -> tuple[str, Template]:
        template = self.pick(record)
        return template.render(record, mode), template


def builtin_dir() -> Path:
    return Path(str(resources.files("gavel.judge") / "templates"))


def builtin_names() -> list[str]:
    return sorted(p.name for p in builtin_dir().iterdir() if p.is_dir())


def _set_from_dir(folder: Path, name: str) -> TemplateSet:
    templates: dict[tuple[Task | None, bool], Template] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".txt", ".md", ".j2", ".yaml", ".yml"):
            continue
        template = Template.from_file(path, name=f"{name}/{path.stem}")
        stem = path.stem
        task = next((t for t in Task if stem.startswith(t.value)), None) if not template.jinja else None
        templates[(task or template.task, stem.endswith("reference"))] = template
    if not templates:
        raise TemplateError(f"{folder}: no template files (.txt, .md, .j2, .yaml)")
    return TemplateSet(name=name, templates=templates)


def load_templates(spec: str | Path | None = None) -> TemplateSet:
    """A built-in set name ("default", ...), a template folder, or one template file.

    A single file serves the task its placeholders name (or all tasks for ``.j2``); items of other
    tasks use the default set.
    """
    default = _set_from_dir(builtin_dir() / "default", "default")
    if spec is None or str(spec) == "default":
        return default
    if str(spec) in builtin_names():
        return _set_from_dir(builtin_dir() / str(spec), str(spec))
    path = Path(spec)
    if path.is_dir():
        return _set_from_dir(path, path.name)
    if not path.exists():
        raise TemplateError(f"{spec}: no such template file or built-in set (built in: {', '.join(builtin_names())})")
    template = Template.from_file(path)
    if template.task is None and not template.jinja:
        raise TemplateError(f"{path}: cannot tell the task: the file uses none of the response/rubric placeholders")
    key = (template.task, template.uses_reference)
    return TemplateSet(name=str(path), templates={key: template}, fallback=default)
