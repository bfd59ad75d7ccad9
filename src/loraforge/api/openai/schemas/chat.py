"""Request and response models of `/v1/chat/completions`.

Requests are checked here so a bad parameter is a 400 naming it (`param`) before any model starts.
Unknown request fields are ignored (clients and SDKs send many optional ones); the upstream gets only
the fields listed here (`upstream_body`), which also keeps a caller's `loraforge` key (server
folders for the builtin worker) from ever reaching it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from loraforge.api.schemas.common import at_most

MAX_STOP_SEQUENCES = 4
# Far above any context window's worth of turns, far below what makes validation itself the cost
# (60,000 messages took seconds before the model was even looked up).
MAX_MESSAGES = 2048
MAX_CONTENT_PARTS = 256
MAX_TOOL_CALLS = 128

# Passed through as given when present: common OpenAI options and vLLM's sampling extras.
_PASS_THROUGH = (
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "top_k",
    "min_p",
    "repetition_penalty",
    "ignore_eos",
    "min_tokens",
)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = Field(
        default=None, description="A string, or a list of `{type: text, text}` parts (no images)."
    )
    name: Annotated[str, StringConstraints(max_length=256)] | None = None
    tool_calls: Annotated[list[dict[str, Any]], at_most(MAX_TOOL_CALLS, "tool calls")] | None = Field(
        default=None, max_length=MAX_TOOL_CALLS
    )
    tool_call_id: Annotated[str, StringConstraints(max_length=256)] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _content_shape(cls, value: Any) -> Any:
        # Checked by hand so the message says what is wrong instead of listing union members.
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValueError("content must be a string or a list of text parts")
        if len(value) > MAX_CONTENT_PARTS:
            raise ValueError(f"at most {MAX_CONTENT_PARTS} content parts, not {len(value)}")
        for index, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ValueError(f"part {index}: only text parts are supported (got {kind!r})")
            if not isinstance(part.get("text"), str):
                raise ValueError(f"part {index}: text must be a string")
        return value

    @model_validator(mode="after")
    def _content_required(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (only an assistant message with tool_calls may omit it)")
        return self

    def upstream(self) -> dict[str, Any]:
        """Text parts joined into one string (every backend reads strings); `developer` is `system`."""
        content: str | None
        if isinstance(self.content, list):
            content = "".join(part.text for part in self.content)
        else:
            content = self.content
        out: dict[str, Any] = {
            "role": "system" if self.role == "developer" else self.role,
            "content": content,
        }
        for key in ("name", "tool_calls", "tool_call_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Annotated[str, StringConstraints(min_length=1, max_length=400)] = Field(
        description="A `/v1/models` id: `demo-tiny`, a registered model (`name` or `name@vN`), or "
        "`<provider>/<model>`."
    )
    messages: Annotated[list[ChatMessage], at_most(MAX_MESSAGES, "messages")] = Field(
        min_length=1, max_length=MAX_MESSAGES
    )
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, description="Alias of max_tokens.")
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    n: int | None = Field(default=None, description="Only 1 is supported.")
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_shape(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) > MAX_STOP_SEQUENCES:
                raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
            if not all(isinstance(item, str) and item for item in value):
                raise ValueError("stop sequences must be non-empty strings")
        return value

    @field_validator("n")
    @classmethod
    def _only_one(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("only n=1 is supported")
        return value

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def upstream_body(self) -> dict[str, Any]:
        """The body the gateway forwards (its `model` is still the caller's name)."""
        body: dict[str, Any] = {"model": self.model, "messages": [m.upstream() for m in self.messages]}
        for key in ("temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        max_tokens = self.max_tokens or self.max_completion_tokens
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        extra = self.model_extra or {}
        for key in _PASS_THROUGH:
            if extra.get(key) is not None:
                body[key] = extra[key]
        return body


# ---- responses (documented shapes; answers may carry more fields, as OpenAI's do) -----------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Usage(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(_Open):
    role: str = "assistant"
    content: str | None = None
    reasoning_content: str | None = Field(
        default=None, description="The `<think>` part, when the model thinks."
    )


class Choice(_Open):
    index: int
    message: AssistantMessage
    finish_reason: str | None = None


class ChatCompletion(_Open):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
