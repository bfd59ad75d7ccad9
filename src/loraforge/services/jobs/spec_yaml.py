"""Job specs as YAML: writing one, and reading one from a user with bounded cost.

PyYAML's pure-Python scanner does work per open flow collection for every token (`[[[[…` of 50,000
levels holds a core for a minute) and its composer recurses once per level (a RecursionError at about
a thousand). So a spec's YAML is refused before it is parsed when it is too long or opens too many
brackets (a linear pre-scan), then streamed as parser events, stopping at the first alias, the first
level deeper than a spec may be, or one value too many; only then is it built into Python objects.
libyaml's loader is used where PyYAML has it (it parses an order of magnitude faster).

The bounds are the engine's own (`engine.spec_loading`): what passes here is no larger than a spec
may be anyway.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from loraforge.engine.spec_loading import MAX_SPEC_DEPTH, MAX_SPEC_VALUES
from loraforge.errors import FieldIssue, InvalidInput

# A spec is a page of keys (LLaMA-Factory's examples are about 1 KB); a long system prompt fits.
MAX_YAML_CHARS = 128 * 1024
# Unclosed `[` / `{` the pre-scan tolerates. It ignores quoting, so brackets inside strings count
# too: far above MAX_SPEC_DEPTH so such text passes, far below the depth that makes PyYAML slow.
_MAX_OPEN_BRACKETS = 64
_BRACKETS = re.compile(r"[\[\]{}]")
_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)

_YAML_HEADER = (
    "# LoRAForge job spec (LLaMA-Factory vocabulary). `dataset` is a LoRAForge dataset id;\n"
    "# import it again with POST /api/templates/import or the job form's Import YAML.\n"
)


def spec_to_yaml(spec: dict[str, Any]) -> str:
    """The spec as a YAML document, keys in the order the user wrote them."""
    return _YAML_HEADER + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _yaml_error(message: str) -> InvalidInput:
    return InvalidInput(
        f"malformed YAML: {message}", code="invalid_yaml", fields=[FieldIssue(field="yaml", message=message)]
    )


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"


def _prescan(text: str) -> None:
    """Linear checks before PyYAML sees the text: its length and how many brackets it leaves open."""
    if len(text) > MAX_YAML_CHARS:
        raise _yaml_error(f"the YAML is {len(text)} characters long; a spec has at most {MAX_YAML_CHARS}")
    depth = 0
    for match in _BRACKETS.finditer(text):
        depth += 1 if match.group() in "[{" else -1
        if depth > _MAX_OPEN_BRACKETS:
            line = text.count("\n", 0, match.start()) + 1
            raise _yaml_error(f"line {line}: nested deeper than {MAX_SPEC_DEPTH} levels")


def _check_events(text: str) -> None:
    """Stream the parser's events and stop at the first alias, excess depth or excess value."""
    depth = values = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            # `*ref` chains can expand a small body into gigabytes.
            raise _yaml_error(f"{_where(event.start_mark)}: YAML aliases (*name) are not supported in a spec")
        if isinstance(event, yaml.NodeEvent):
            values += 1
            if values > MAX_SPEC_VALUES:
                where = _where(event.start_mark)
                raise _yaml_error(f"{where}: a spec holds at most {MAX_SPEC_VALUES} values")
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_SPEC_DEPTH:
                raise _yaml_error(f"{_where(event.start_mark)}: nested deeper than {MAX_SPEC_DEPTH} levels")
        elif isinstance(event, _CLOSE):
            depth -= 1


def read_spec_yaml(text: str) -> dict[str, Any]:
    """Parse one YAML mapping within the spec bounds; errors name the line and column (1-based)."""
    _prescan(text)
    try:
        _check_events(text)
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader: SafeLoader or CSafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _yaml_error(f"{_where(mark)}: {exc.problem or exc.context or 'syntax error'}") from None
    except yaml.YAMLError as exc:
        raise _yaml_error(str(exc).splitlines()[0] if str(exc) else "syntax error") from None
    except ValueError as exc:  # a scalar Python cannot build, e.g. an integer of 5,000 digits
        raise _yaml_error(str(exc)) from None
    if data is None:
        raise _yaml_error("the document is empty")
    if not isinstance(data, dict):
        raise _yaml_error("the spec must be a mapping of keys to values")
    return {str(k): v for k, v in data.items()}
