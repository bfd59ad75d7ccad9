"""One chat generation in the builtin worker: parameters, prompt rendering, token-by-token streaming.

Imported only by the worker process (torch, transformers). The model's `generate()` runs in a worker
thread and hands each new token to `_TokenQueue`; the caller iterates `Generation.pieces()`, which
decodes incrementally, holds back text that could still become a stop string, and ends at a stop
string, an end-of-turn token, `max_tokens`, or when `cancel()` is called (checked after every token by
a StoppingCriteria, so a client that goes away frees the slot within one token).

Penalties follow OpenAI's definition exactly (a logits processor over the tokens generated so far):
`logit[t] -= presence_penalty * (count[t] > 0) + frequency_penalty * count[t]`. `temperature` 0 means
greedy decoding. `seed` seeds torch's global generator just before sampling, which is exactly
reproducible when the worker runs one generation at a time (`--concurrency 1`, the default).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_TOKENS = 256
MAX_STOP_STRINGS = 4
# Tokens that end an assistant turn in common chat templates; added to the model's own eos ids when
# the tokenizer knows them (ChatML's <|im_end|> is not the eos of many ChatML models).
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "<end_of_turn>")


class RequestError(Exception):
    """A request the worker refuses; rendered as OpenAI's error shape with this HTTP status."""

    def __init__(
        self, message: str, *, status: int = 400, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code or ("model_not_found" if status == 404 else "invalid_request_error")

    @property
    def type(self) -> str:
        return "invalid_request_error" if self.status < 500 else "server_error"


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"'{name}' must be a number", param=name)
    if not low <= float(value) <= high:
        raise RequestError(f"'{name}' must be between {low:g} and {high:g}", param=name)
    return float(value)


def parse_sampling(body: dict[str, Any]) -> SamplingParams:
    """The sampling parameters of an OpenAI chat body; RequestError naming the bad parameter."""
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        raise RequestError(f"'{param}' must be an integer >= 1", param=param)
    stop = body.get("stop")
    stops: tuple[str, ...]
    if stop is None:
        stops = ()
    elif isinstance(stop, str):
        stops = (stop,) if stop else ()
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= MAX_STOP_STRINGS:
        stops = tuple(s for s in stop if s)
    else:
        raise RequestError(
            f"'stop' must be a string or a list of at most {MAX_STOP_STRINGS} strings", param="stop"
        )
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError("'seed' must be an integer", param="seed")
    n = body.get("n")
    if n is not None and n != 1:
        raise RequestError("only n=1 is supported", param="n")
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        stop=stops,
        seed=seed,
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
    )


def parse_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    """`messages` as [{role, content: str}]: text parts are joined; other part types are refused."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", param="messages")
    result: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        param = f"messages.[{index}]"
        if not isinstance(message, dict):
            raise RequestError("each message must be an object", param=param)
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role not in {"system", "user", "assistant", "tool"}:
            raise RequestError("role must be system, user, assistant or tool", param=f"{param}.role")
        content = message.get("content")
        if content is None:
            text = ""
        elif isinstance(content, str):
            text = content
        elif isinstance(content, list):
            texts: list[str] = []
            for part in content:
                if (
                    not isinstance(part, dict)
                    or part.get("type") != "text"
                    or not isinstance(part.get("text"), str)
                ):
                    raise RequestError("only text content parts are supported", param=f"{param}.content")
                texts.append(part["text"])
            text = "".join(texts)
        else:
            raise RequestError("content must be a string or a list of parts", param=f"{param}.content")
        result.append({"role": role, "content": text})
    return result


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Prompt token ids: the tokenizer's own chat template, else a plain `role: content` layout."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        text = "\n".join([*lines, "assistant:"])
    # The template already wrote any BOS it wants; don't let the tokenizer add a second one.
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids


def end_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Token ids that end the assistant's turn: the model's eos ids plus known end-of-turn tokens."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab and token in tokenizer.all_special_tokens + list(tokenizer.get_added_vocab()):
            ids.add(vocab[token])
    return sorted(ids)


def context_length(model: Any) -> int:
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


@dataclass
class Outcome:
    """What a finished generation reports: token counts and why it ended."""

    prompt_tokens: int
    completion_tokens: int = 0
    finish_reason: str = "length"
    cancelled: bool = False
    error: str | None = None
    text: list[str] = field(default_factory=list)


class _TokenQueue:
    """A transformers streamer (put/end) that forwards generated token ids to the consumer."""

    def __init__(self, prompt_length: int) -> None:
        self.queue: queue.Queue[list[int] | None] = queue.Queue()
        self._skip_prompt = True
        self._prompt_length = prompt_length

    def put(self, value: Any) -> None:
        ids = value.reshape(-1).tolist()
        if self._skip_prompt:
            # generate() first hands over the whole prompt; only new tokens interest us.
            self._skip_prompt = False
            if len(ids) == self._prompt_length:
                return
        self.queue.put(ids)

    def end(self) -> None:
        self.queue.put(None)


class Generation:
    """One generation: start() runs generate() in a thread; pieces() yields text; cancel() ends it."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompt_ids: list[int],
        params: SamplingParams,
        *,
        ignore_eos: bool = False,
    ) -> None:
        self.ignore_eos = ignore_eos
        self.model = model
        self.tokenizer = tokenizer
        self.prompt_ids = prompt_ids
        self.params = params
        self.outcome = Outcome(prompt_tokens=len(prompt_ids))
        self._cancel = threading.Event()
        self._stop_requested = threading.Event()
        self._streamer = _TokenQueue(len(prompt_ids))
        self._thread: threading.Thread | None = None
        self._end_ids = end_token_ids(model, tokenizer)
        limit = context_length(model) - len(prompt_ids)
        if limit < 1:
            raise RequestError(
                f"the prompt has {len(prompt_ids)} tokens; this model's context is {context_length(model)}",
                param="messages",
                code="context_length_exceeded",
            )
        requested = params.max_tokens if params.max_tokens is not None else DEFAULT_MAX_TOKENS
        self.max_new_tokens = min(requested, limit)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="generation", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        import torch
        from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        params = self.params
        flags = (self._cancel, self._stop_requested)

        class _Flag(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                done = any(flag.is_set() for flag in flags)
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

        prompt_length = len(self.prompt_ids)

        class _Penalties(LogitsProcessor):
            def __call__(self, input_ids: Any, scores: Any) -> Any:
                generated = input_ids[:, prompt_length:]
                if generated.shape[1] == 0:
                    return scores
                counts = torch.zeros_like(scores)
                counts.scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
                penalty = params.frequency_penalty * counts + params.presence_penalty * (counts > 0).to(
                    scores.dtype
                )
                return scores - penalty

        device = next(self.model.parameters()).device
        input_ids = torch.tensor([self.prompt_ids], dtype=torch.long, device=device)
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": self.max_new_tokens,
            "streamer": self._streamer,
            "stopping_criteria": StoppingCriteriaList([_Flag()]),
            "eos_token_id": self._end_ids or None,
            "pad_token_id": self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else (self._end_ids[0] if self._end_ids else 0),
        }
        if self.ignore_eos:
            # vLLM's `ignore_eos`: end-of-turn tokens are masked until max_tokens (benchmarks, tests).
            kwargs["min_new_tokens"] = self.max_new_tokens
        if params.presence_penalty or params.frequency_penalty:
            kwargs["logits_processor"] = LogitsProcessorList([_Penalties()])
        if params.temperature == 0.0:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        try:
            with torch.inference_mode():
                self.model.generate(**kwargs)
        except Exception as exc:  # reported to the client as a server error, the worker stays up
            self.outcome.error = f"{type(exc).__name__}: {exc}"
            self._streamer.end()

    def pieces(self) -> Iterator[str]:
        """Text as it is generated (blocking; run it in a thread). Fills `outcome` as it goes."""
        stops = self.params.stop
        hold = max((len(s) for s in stops), default=1) - 1
        ids: list[int] = []
        emitted = 0  # characters of the decoded text already yielded
        text = ""
        finish = "length"
        ended_by_eos = False
        while True:
            item = self._streamer.queue.get()
            if item is None:
                break
            if ended_by_eos or self._stop_requested.is_set():
                continue  # drain what generate() still produces after we decided to stop
            for token in item:
                if token in self._end_ids:
                    ended_by_eos = True
                    break
                ids.append(token)
            self.outcome.completion_tokens = len(ids) + (1 if ended_by_eos else 0)
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if text.endswith("\ufffd"):
                continue  # a multi-byte character is still incomplete
            cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
                finish = "stop"
                self._stop_requested.set()
            elif ended_by_eos:
                finish = "stop"
            safe = len(text) if (cut >= 0 or ended_by_eos) else max(emitted, len(text) - hold)
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
            if self._cancel.is_set():
                break
        self.join()
        if not self._stop_requested.is_set() and not self._cancel.is_set():
            text = text.rstrip("\ufffd")
            cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
                finish = "stop"
            if len(text) > emitted:
                yield text[emitted:]
        if ended_by_eos:
            finish = "stop"
        self.outcome.finish_reason = finish
        self.outcome.cancelled = self._cancel.is_set()
