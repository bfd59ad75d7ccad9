"""The Ollama Modelfile per chat template: its Go TEMPLATE, rendered by a small evaluator of the
Go-template constructs it uses, gives the very text LoRAForge's named template (LLaMA-Factory's
layout) renders for the same conversation; stops and parameters are there."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from loraforge.engine.chat_templates import NAMED_TEMPLATES
from loraforge.engine.export.errors import ExportError
from loraforge.engine.export.ollama import (
    LAYOUTS,
    create_command,
    detect_layout,
    go_template,
    modelfile,
    ollama_model_name,
)

EOS = "</s>"


@dataclass
class _Node:
    kind: str  # text | out | if | range | set
    arg: str = ""
    body: list[_Node] = field(default_factory=list)
    branches: list[tuple[str, list[_Node]]] = field(default_factory=list)  # for if: (cond, body)...


def _parse(template: str) -> list[_Node]:
    """Just the Go-template constructs our Modelfiles use: if / else if / end, range, vars, fields."""
    root: list[_Node] = []
    stack: list[tuple[_Node | None, list[_Node]]] = [(None, root)]
    pos = 0
    for m in re.finditer(r"\{\{(.*?)\}\}", template, re.S):
        if m.start() > pos:
            stack[-1][1].append(_Node("text", template[pos : m.start()]))
        pos = m.end()
        action = m.group(1).strip()
        if action.startswith("if "):
            node = _Node("if", branches=[(action[3:], [])])
            stack[-1][1].append(node)
            stack.append((node, node.branches[0][1]))
        elif action.startswith("else if "):
            parent = stack.pop()[0]
            assert parent is not None
            parent.branches.append((action[8:], []))
            stack.append((parent, parent.branches[-1][1]))
        elif action.startswith("range "):
            node = _Node("range", action[6:])
            stack[-1][1].append(node)
            stack.append((node, node.body))
        elif action == "end":
            stack.pop()
        elif ":=" in action or re.match(r"^\$\w+ = ", action):
            stack[-1][1].append(_Node("set", action))
        else:
            stack[-1][1].append(_Node("out", action))
    assert len(stack) == 1, "unbalanced template"
    if pos < len(template):
        root.append(_Node("text", template[pos:]))
    return root


def _value(expr: str, dot: dict[str, Any], root: dict[str, Any], env: dict[str, Any]) -> Any:
    expr = expr.strip()
    if expr.startswith('"'):
        return expr[1:-1]
    if expr in ("true", "false"):
        return expr == "true"
    if expr.startswith("eq "):
        a, b = re.findall(r'"[^"]*"|\S+', expr[3:])
        return _value(a, dot, root, env) == _value(b, dot, root, env)
    if expr.startswith("and "):
        return all(_value(x, dot, root, env) for x in expr[4:].split())
    if expr.startswith("$."):
        return root[expr[2:]]
    if expr.startswith("$"):
        return env[expr]
    if expr.startswith("."):
        return dot[expr[1:]]
    raise AssertionError(f"unsupported expression {expr!r}")


def _render(nodes: list[_Node], dot: dict[str, Any], root: dict[str, Any], env: dict[str, Any]) -> str:
    out = []
    for n in nodes:
        if n.kind == "text":
            out.append(n.arg)
        elif n.kind == "out":
            out.append(str(_value(n.arg, dot, root, env)))
        elif n.kind == "set":
            name, value = re.split(r"\s*:?=\s*", n.arg, maxsplit=1)
            env[name] = _value(value, dot, root, env)
        elif n.kind == "if":
            for cond, body in n.branches:
                if _value(cond, dot, root, env):
                    out.append(_render(body, dot, root, env))
                    break
        elif n.kind == "range":
            for item in _value(n.arg, dot, root, env):
                out.append(_render(n.body, item, root, env))
    return "".join(out)


def render_go(template: str, system: str, messages: list[dict[str, str]]) -> str:
    # Ollama gives the template every message (the system one too) and the system prompt as .System
    turns = [{"Role": m["role"], "Content": m["content"]} for m in messages]
    data = {"System": system, "Messages": [{"Role": "system", "Content": system}, *turns]}
    return _render(_parse(template), data, data, {})


class _Tok:
    bos_token = ""  # llama.cpp adds BOS itself (add_bos_token): the template has none
    eos_token = EOS


CONVERSATION = [
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Name a colour."},
]


@pytest.mark.parametrize("system", ["You are terse.", ""])
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_go_template_renders_the_named_layout(name: str, system: str) -> None:
    lf = NAMED_TEMPLATES[name]
    prompt, _ = lf.render_pair_text(_Tok(), [*CONVERSATION, {"role": "assistant", "content": "Red."}], system)
    want = prompt  # everything up to the answer the model is to write
    got = render_go(go_template(LAYOUTS[name], EOS), system, CONVERSATION)
    assert got == want


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_modelfile_has_from_template_stops_and_parameters(name: str) -> None:
    text = modelfile("model-q8_0.gguf", name, EOS)
    lines = text.splitlines()
    assert lines[0] == "FROM ./model-q8_0.gguf"
    assert text.count('TEMPLATE """') == 1
    stops = [line for line in lines if line.startswith("PARAMETER stop ")]
    for stop in LAYOUTS[name].stops:
        assert f'PARAMETER stop "{stop.replace("{eos}", EOS)}"' in stops
    assert "PARAMETER temperature 0.7" in lines
    if name == "qwen":
        assert any(line.startswith('SYSTEM """You are Qwen') for line in lines)


def test_template_detection_and_names() -> None:
    from loraforge.engine.demo_families import FAMILIES

    assert detect_layout(FAMILIES["qwen2"].chat_template) == "chatml"
    assert detect_layout(FAMILIES["llama"].chat_template) == "default"
    assert detect_layout(FAMILIES["mistral"].chat_template) == "mistral"
    assert detect_layout(FAMILIES["phi3"].chat_template) == "phi"
    with pytest.raises(ExportError):
        detect_layout("{{ messages }}")
    with pytest.raises(ExportError):
        modelfile("m.gguf", "nope", EOS)
    assert ollama_model_name("My Model v2 (LoRA)") == "my-model-v2-lora"
    assert ollama_model_name("///") == "loraforge-model"
    assert create_command("Demo") == "ollama create demo -f Modelfile"
