"""The `<think>` splitter: whole texts, streams cut at every position, the DeepSeek-R1 form."""

from __future__ import annotations

import pytest

from loraforge.inference.think import Split, ThinkSplitter, split_text, template_opens_think


def _stream(chunks: list[str], *, opened: bool = False) -> Split:
    splitter = ThinkSplitter(opened=opened)
    out = Split()
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    out.extend(splitter.flush())
    return out


def _cuts(text: str) -> list[list[str]]:
    """The text cut into 1, 2 and 3 pieces at every pair of positions, and one character per chunk."""
    pieces = [[text], list(text)]
    for i in range(1, len(text)):
        pieces.append([text[:i], text[i:]])
        for j in range(i + 1, len(text)):
            pieces.append([text[:i], text[i:j], text[j:]])
    return pieces


@pytest.mark.parametrize(
    ("text", "reasoning", "content"),
    [
        ("<think>step 1, step 2</think>\n\nThe answer is 4.", "step 1, step 2", "The answer is 4."),
        ("\n<think>\nplan\n</think>answer", "\nplan\n", "answer"),
        ("no reasoning here", "", "no reasoning here"),
        ("<think>cut off by max_tokens", "cut off by max_tokens", ""),
        ("<think></think>direct", "", "direct"),
        ("a < b and c > d", "", "a < b and c > d"),
        ("answer with a late <think> tag", "", "answer with a late <think> tag"),
        ("<thin", "", "<thin"),
        ("", "", ""),
        (" \n\t", "", " \n\t"),  # an answer of blank space is still the answer
    ],
)
def test_both_tags_whole_and_streamed(text: str, reasoning: str, content: str) -> None:
    assert split_text(text) == Split(reasoning, content)
    for chunks in _cuts(text):
        assert _stream(chunks) == Split(reasoning, content), chunks


@pytest.mark.parametrize(
    ("text", "reasoning", "content"),
    [
        # DeepSeek-R1: the template wrote `<think>\n`, the model only closes it.
        ("Let me think.\n</think>\n\nIt is 4.", "Let me think.\n", "It is 4."),
        ("<think>redundant open</think>x", "redundant open", "x"),
        ("still thinking when cut off", "still thinking when cut off", ""),
    ],
)
def test_opened_by_template(text: str, reasoning: str, content: str) -> None:
    assert split_text(text, opened=True) == Split(reasoning, content)
    for chunks in _cuts(text):
        assert _stream(chunks, opened=True) == Split(reasoning, content), chunks


def test_whole_text_detects_a_lone_closing_tag() -> None:
    # Without the hint a whole text still has the full picture.
    assert split_text("reasoning</think>\nanswer") == Split("reasoning", "answer")


def test_stream_without_hint_never_takes_back_sent_content() -> None:
    # The first chunk already went out as content; the late closing tag is dropped, nothing is lost.
    assert _stream(["reasoning", "</think>answer"]) == Split("", "reasoninganswer")
    # ...but when the closing tag comes before any answer text, it is split exactly.
    assert _stream(["  </thi", "nk>answer"]) == Split("", "answer")


def test_partial_tag_is_held_only_while_it_can_still_be_a_tag() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<thi") == Split()  # may become <think>
    assert splitter.feed("s is text") == Split("", "<this is text")
    assert splitter.feed(" and </th") == Split("", " and ")
    assert splitter.feed("ings>") == Split("", "</things>")
    assert splitter.flush() == Split()


def test_leading_blank_space_is_held_only_briefly() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("\n\n") == Split()  # `<think>` may still follow
    assert splitter.feed(" " * 70) == Split("", "\n\n" + " " * 70)


def test_reasoning_streams_before_the_closing_tag() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<think>one ") == Split("one ", "")
    assert splitter.feed("two </") == Split("two ", "")
    assert splitter.feed("think>\n") == Split()
    assert splitter.feed("\nthree") == Split("", "three")


@pytest.mark.parametrize(
    ("template", "opens"),
    [
        ("{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}", True),
        ("{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}", False),
        (
            "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking"
            " is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}"
            "{%- endif %}{%- endif %}",
            False,
        ),
        ("{{ '<think>' }} without a generation prompt", False),
        (None, False),
    ],
)
def test_template_opens_think(template: str | None, opens: bool) -> None:
    assert template_opens_think(template) is opens
