"""Request and response models of conversations, the system prompt library and the playground.

The streamed routes (sending a message, regenerating, the playground) answer Server-Sent Events; the
models below named `*Event` are the JSON each event's `data:` line carries, so the shapes are typed
in one place (the route serialises them with `model_dump_json`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from loraforge.api.ids import Id
from loraforge.api.schemas.common import ErrorBody, ErrorResponse, Name, RequestModel, ResponseModel, at_most

ModelName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    Field(
        description="A /v1 model id: `demo-tiny`, a registered name, `<name>@v<n>` or `<provider>/<model>`."
    ),
]
SystemPrompt = Annotated[str, StringConstraints(max_length=100_000)]
Content = Annotated[str, StringConstraints(max_length=200_000)]
# A conversation file holds every branch; more messages than this are refused before any is read.
MAX_IMPORTED_MESSAGES = 10_000


class ChatParams(RequestModel):
    """Sampling parameters passed to the model (OpenAI names); unset ones use the model's defaults."""

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, le=131_072)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    stop: str | list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=4
    )
    seed: int | None = None


# ---- conversations --------------------------------------------------------------------------------------


class ConversationCreate(RequestModel):
    title: Name | None = Field(default=None, description="Default `New chat`; the first message sets it.")
    model: ModelName | None = None
    system_prompt: SystemPrompt = ""
    params: ChatParams | None = None


class ConversationUpdate(RequestModel):
    title: Name | None = None
    model: ModelName | None = None
    system_prompt: SystemPrompt | None = None
    params: ChatParams | None = None
    head_message_id: Id | None = Field(
        default=None,
        description="Switch branch: the head moves to the newest leaf under this message.",
    )


class MessagePublic(ResponseModel):
    id: int
    conversation_id: int
    parent_id: int | None
    role: str = Field(description="user | assistant | system")
    content: str
    reasoning_content: str | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    finish_reason: str | None = Field(
        default=None, description="stop | length | cancelled (client went away) | error (partial answer)."
    )
    created_at: datetime
    siblings: list[int] = Field(
        default_factory=list,
        description="Ids of the messages with the same parent (this one too), oldest first: the branches.",
    )


class ConversationPublic(ResponseModel):
    id: int
    owner_id: int
    title: str
    model: str | None
    system_prompt: str
    params: dict[str, Any]
    head_message_id: int | None
    created_at: datetime
    updated_at: datetime
    message_count: int = 0


class ConversationDetail(ConversationPublic):
    messages: list[MessagePublic] = Field(description="The current branch, from the root to the head.")


class ConversationPage(BaseModel):
    items: list[ConversationPublic]
    total: int
    page: int
    page_size: int


class MessageSend(RequestModel):
    content: Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
    parent_id: Id | None = Field(
        default=None,
        description=(
            "Absent: after the current head. A message id: answer from there (an earlier message's parent = "
            "edit and resend, a new branch). null: a new root (edit the first message)."
        ),
    )
    model: ModelName | None = Field(default=None, description="Default: the conversation's model.")
    params: ChatParams | None = Field(default=None, description="Override the conversation's parameters.")


class Regenerate(RequestModel):
    model: ModelName | None = Field(default=None, description="Default: the conversation's model.")
    params: ChatParams | None = None


# ---- export / import ------------------------------------------------------------------------------------


class ExportedMessage(BaseModel):
    id: int = Field(description="Reference inside the file (parents name it); new ids are given on import.")
    parent_id: int | None = None
    role: Literal["user", "assistant", "system"]
    content: Content
    reasoning_content: Content | None = None
    model: Annotated[str, StringConstraints(max_length=300)] | None = None
    params: ChatParams = Field(default_factory=ChatParams)
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    latency_ms: float | None = Field(default=None, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    finish_reason: Annotated[str, StringConstraints(max_length=32)] | None = None
    created_at: datetime | None = None


class ConversationExport(BaseModel):
    """`GET .../export?format=json` writes this; `POST /chat/conversations/import` reads it back."""

    format: Literal["loraforge.conversation"] = "loraforge.conversation"
    version: Literal[1] = 1
    title: Name = "New chat"
    model: Annotated[str, StringConstraints(max_length=300)] | None = None
    system_prompt: SystemPrompt = ""
    params: ChatParams = Field(default_factory=ChatParams)
    head_message_id: int | None = None
    created_at: datetime | None = None
    exported_at: datetime | None = None
    messages: Annotated[list[ExportedMessage], at_most(MAX_IMPORTED_MESSAGES, "messages")] = Field(
        default_factory=list, max_length=MAX_IMPORTED_MESSAGES
    )


# ---- prompt library -------------------------------------------------------------------------------------


class PromptCreate(RequestModel):
    name: Name
    content: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    shared: bool = Field(default=False, description="Readable (not changeable) by every user.")


class PromptUpdate(RequestModel):
    name: Name | None = None
    content: Annotated[str, StringConstraints(min_length=1, max_length=100_000)] | None = None
    shared: bool | None = None


class PromptPublic(ResponseModel):
    id: int
    owner_id: int
    name: str
    content: str
    variables: list[str] = Field(description="The `{{name}}` placeholders, in order of first appearance.")
    shared: bool
    created_at: datetime
    updated_at: datetime
    editable: bool = Field(default=False, description="Whether the caller may change or delete it (owner).")


class PromptPage(BaseModel):
    items: list[PromptPublic]
    total: int
    page: int
    page_size: int


VariableName = Annotated[str, StringConstraints(max_length=200)]


class PromptRender(RequestModel):
    variables: dict[VariableName, Annotated[str, StringConstraints(max_length=100_000)]] = Field(
        default_factory=dict, max_length=256
    )


class PromptRendered(BaseModel):
    content: str


# ---- playground -----------------------------------------------------------------------------------------


class PlaygroundRequest(RequestModel):
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
    system_prompt: SystemPrompt = ""
    models: list[ModelName] = Field(min_length=1, max_length=3, description="1 to 3 models, side by side.")
    params: ChatParams | None = None


class PlaygroundResult(BaseModel):
    model: str
    content: str = ""
    reasoning_content: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    finish_reason: str | None = None
    error: ErrorBody | None = Field(default=None, description="Why this model gave no (complete) answer.")


class PlaygroundRunPublic(ResponseModel):
    id: int
    owner_id: int
    prompt: str
    system_prompt: str
    params: dict[str, Any]
    results: list[PlaygroundResult]
    created_at: datetime


class PlaygroundRunPage(BaseModel):
    items: list[PlaygroundRunPublic]
    total: int
    page: int
    page_size: int


# ---- Server-Sent Event payloads ------------------------------------------------------------------------


class DeltaEvent(BaseModel):
    """`event: delta` of a conversation: a piece of the answer (either field may be absent)."""

    content: str | None = None
    reasoning_content: str | None = None


class PlaygroundDeltaEvent(DeltaEvent):
    index: int = Field(description="Which model (position in `models`).")


class PlaygroundResultEvent(PlaygroundResult):
    index: int


class PlaygroundErrorEvent(BaseModel):
    index: int
    model: str
    error: ErrorBody


class PlaygroundDoneEvent(BaseModel):
    run_id: int


class ChatStreamEvents(BaseModel):
    """Documentation of a conversation's event stream, not a JSON body: each field is an SSE event
    name (`event: <name>`) and the shape of that event's `data:` line."""

    message: MessagePublic | None = Field(default=None, description="First: the stored user message.")
    delta: DeltaEvent | None = Field(default=None, description="A piece of the answer (many).")
    done: MessagePublic | None = Field(default=None, description="Last on success: the stored answer.")
    error: ErrorResponse | None = Field(default=None, description="Last on failure: the error shape.")


class PlaygroundStreamEvents(BaseModel):
    """Documentation of the playground's event stream, not a JSON body: each field is an SSE event
    name and the shape of its `data:` line (every one but `done` carries the model's `index`)."""

    delta: PlaygroundDeltaEvent | None = None
    result: PlaygroundResultEvent | None = Field(default=None, description="One model finished.")
    error: PlaygroundErrorEvent | None = Field(default=None, description="One model failed; others go on.")
    done: PlaygroundDoneEvent | None = Field(default=None, description="Last: the saved run's id.")
