"""An Ollama bundle: the GGUF plus a `Modelfile` whose TEMPLATE (Go template syntax), stop tokens and
parameters come from the model's chat template, and the `ollama create` command that imports it.

The Go templates render exactly the layouts of LoRAForge's named templates (LLaMA-Factory's, see
`engine/chat_templates.py`): the user turn carries the assistant header where LF puts it there, so the
model continues right after it. BOS is not in the template: llama.cpp adds it itself when the GGUF says
`add_bos_token`. `auto` picks the named layout the tokenizer's own Jinja template matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loraforge.engine.export.errors import ExportError

EOS = "{eos}"  # placeholder for the tokenizer's literal eos token


@dataclass(frozen=True)
class GoLayout:
    user: tuple[str, str]  # text before / after the user's content (after: includes the assistant header)
    assistant: tuple[str, str]
    system: tuple[str, str] | None = None  # None: the system prompt goes into the first user turn
    system_in_user: str = ""  # with system=None: "{system}" + this, before the first user content
    stops: tuple[str, ...] = ()
    default_system: str | None = None


_CHATML = GoLayout(
    user=("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"),
    assistant=("", "<|im_end|>\n"),
    system=("<|im_start|>system\n", "<|im_end|>\n"),
)
LAYOUTS: dict[str, GoLayout] = {
    "chatml": GoLayout(**{**_CHATML.__dict__, "stops": ("<|im_end|>", "<|im_start|>")}),
    "qwen": GoLayout(
        **{
            **_CHATML.__dict__,
            "stops": ("<|im_end|>",),
            "default_system": "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        }
    ),
    "default": GoLayout(
        user=("Human: ", EOS + "\nAssistant:"),
        assistant=("", EOS + "\n"),
        system=("System: ", EOS + "\n"),
        stops=(EOS, "Human:"),
    ),
    "llama3": GoLayout(
        user=(
            "<|start_header_id|>user<|end_header_id|>\n\n",
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        assistant=("", "<|eot_id|>"),
        system=("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
        stops=("<|eot_id|>", "<|eom_id|>"),
    ),
    "mistral": GoLayout(
        user=("[INST] ", "[/INST]"),
        assistant=(" ", EOS),
        system=None,
        system_in_user="\n\n",
        stops=(EOS, "[INST]"),
    ),
    "phi": GoLayout(
        user=("<|user|>\n", "<|end|>\n<|assistant|>\n"),
        assistant=("", "<|end|>\n"),
        system=("<|system|>\n", "<|end|>\n"),
        stops=("<|end|>",),
    ),
    # no system markers: the system text simply comes first (LF's plain "{content}" system slot)
    "deepseek3": GoLayout(
        user=("<｜User｜>", "<｜Assistant｜>"), assistant=("", EOS), system=("", ""), stops=(EOS,)
    ),
    "empty": GoLayout(user=("", ""), assistant=("", ""), system=("", "")),
}


def detect_layout(chat_template: str | None) -> str:
    """The named layout a tokenizer's Jinja chat template follows (by its turn markers)."""
    text = chat_template or ""
    for marker, name in (
        ("<|im_start|>", "chatml"),
        ("<|start_header_id|>", "llama3"),
        ("[INST]", "mistral"),
        ("<|user|>", "phi"),
        ("<｜User｜>", "deepseek3"),
        ("Human: ", "default"),
    ):
        if marker in text:
            return name
    raise ExportError(
        f"cannot tell which chat layout the model's template follows; name one ({', '.join(sorted(LAYOUTS))})"
    )


def _go_text(text: str) -> str:
    """Literal text inside a Go template: only `{{` would be read as an action."""
    return text.replace("{{", '{{ "{{" }}')


def go_template(layout: GoLayout, eos: str) -> str:
    """The TEMPLATE of the Modelfile: the system prompt, then each message in turn."""

    def lit(text: str) -> str:
        return _go_text(text.replace(EOS, eos))

    parts: list[str] = []
    if layout.system is not None:
        before, after = lit(layout.system[0]), lit(layout.system[1])
        parts.append(f"{{{{ if .System }}}}{before}{{{{ .System }}}}{after}{{{{ end }}}}")
        first_user = ""
    else:
        parts.append("{{ $first := true }}")
        first_user = (
            f"{{{{ if and $first $.System }}}}{{{{ $.System }}}}{lit(layout.system_in_user)}{{{{ end }}}}"
            "{{ $first = false }}"
        )
    parts.append(
        '{{ range .Messages }}{{ if eq .Role "user" }}'
        f"{lit(layout.user[0])}{first_user}{{{{ .Content }}}}{lit(layout.user[1])}"
        '{{ else if eq .Role "assistant" }}'
        f"{lit(layout.assistant[0])}{{{{ .Content }}}}{lit(layout.assistant[1])}"
        "{{ end }}{{ end }}"
    )
    return "".join(parts)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def modelfile(gguf_name: str, template: str, eos: str, *, temperature: float = 0.7) -> str:
    """The Modelfile text for `template` (a LAYOUTS name) next to `gguf_name` in the same folder."""
    if template not in LAYOUTS:
        raise ExportError(
            f"no Ollama layout for template {template!r}; choose one of {', '.join(sorted(LAYOUTS))}"
        )
    layout = LAYOUTS[template]
    if '"""' in (body := go_template(layout, eos)):
        raise ExportError('the chat template contains """, which a Modelfile cannot quote')
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{body}"""']
    if layout.default_system:
        lines.append(f'SYSTEM """{layout.default_system}"""')
    for stop in dict.fromkeys(s.replace(EOS, eos) for s in layout.stops):
        lines.append(f"PARAMETER stop {_quoted(stop)}")
    lines.append(f"PARAMETER temperature {temperature}")
    return "\n".join(lines) + "\n"


def ollama_model_name(name: str) -> str:
    """A name `ollama create` accepts (lower-case letters, digits, `._-`), never empty."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")
    return cleaned[:80] or "loraforge-model"


def create_command(name: str) -> str:
    return f"ollama create {ollama_model_name(name)} -f Modelfile"
