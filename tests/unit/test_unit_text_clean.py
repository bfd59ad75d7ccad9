"""The "clean text" option: prose is tidied, code and meaningful angle brackets come out unchanged."""

from __future__ import annotations

import pytest

from loraforge.datastore.text_clean import clean

PYTHON = '''```python
def pairs(xs: list[int]) -> dict[str, int]:
    """Nested blocks keep their indentation."""
    out = {}
    for i, x in enumerate(xs):
        if x  <  10 and x > 0:
            out[f"<{i}>"] = x   # aligned    comment

    return out
```'''

JAVA = """Generics stay: `List<String>` inline, and in a block:

~~~java
public static <T extends Comparable<T>> List<T> sort(Map<K, V> m) {
    List<String> names = new ArrayList<>();
	return names;  // a tab-indented line
}
~~~"""

CPP_INDENTED = """Four-space indented code:

    #include <vector>
    template <typename T>
    std::vector<T> twice(const std::vector<T>& v) {

        return v;   // blank line above stays
    }

Back to prose."""

# Text that is already clean or is not HTML: it must come out exactly as it went in.
UNCHANGED = [
    # Code without fences keeps indentation at every depth (4+ spaces or a tab is code).
    "def f(x):\n    if x:\n        return [y  for y in x]\n\n    return None\nprint( f )",
    # Generics and comparisons outside code blocks.
    "Use List<String>, Map<K, V>, Box<A> and public <A extends B> void f();",
    "if a < b > c then x<b>y, a<p>c.",
    "#include <map>\n#include <span>\nstd::vector<int> v;",
    # Chat-template and special tokens, multimodal placeholders, autolinks and e-mail addresses.
    "<|im_start|>user\nhi<|im_end|> <s> a </s> <image> <think>x</think>",
    "mail <a@b.c> or see <https://x.y>",
    # Maths keeps its symbols (no NFKC); only `&name;` with its semicolon is an entity.
    "E = mc², ½ < ¾, 0 <x> 1, $$a<b>c$$ and a&b&not c",
    # Placeholders that happen to be tag names are kept when HTML would not write them that way.
    "Write about <title> in <div> words.",
]

# (input, expected output)
CLEANED = [
    # English prose: tags, entities, whitespace runs, trailing spaces, blank-line runs.
    (
        "<p>Hello&nbsp;<b>world</b></p>\x07  \t again   \n\n\n\nBye &amp; thanks.",
        "Hello world again\n\nBye & thanks.",
    ),
    # Chinese: full-width punctuation and the two-space paragraph indent stay; full-width letters fold.
    (
        "　　你好，世界！  我们用ＬｏＲＡ微调。\n<p>中文&amp;测试</p>",
        "　　你好，世界！ 我们用LoRA微调。\n中文&测试",
    ),
    # Real HTML: attributes, self-closing and void tags, comments, scripts, unclosed <p> and <li>.
    (
        "<div class=\"x\">Hi <span class='y'>there</span></div><br>line2<br/>line3<!-- c -->"
        "<script>alert(1)</script>\n<ul><li>one<li>two</ul>",
        "Hi there\nline2\nline3\none two",
    ),
    # Markdown lists keep their nesting.
    ("- a\n  - b  c\n    - d", "- a\n  - b c\n    - d"),
    # Windows line ends: normalised in prose.
    ("one\r\ntwo  \r\n", "one\ntwo"),
]


@pytest.mark.parametrize("text", UNCHANGED)
def test_unchanged(text: str) -> None:
    assert clean(text) == text


@pytest.mark.parametrize(("text", "expected"), CLEANED)
def test_cleaned(text: str, expected: str) -> None:
    assert clean(text) == expected
    assert clean(expected) == expected  # cleaning twice changes nothing more


def test_entities_are_unescaped_after_tags_are_removed() -> None:
    assert clean("&lt;p&gt; is escaped HTML; &#x4F60;&#22909;") == "<p> is escaped HTML; 你好"


def test_code_blocks_come_out_byte_for_byte() -> None:
    for block in (PYTHON, JAVA, CPP_INDENTED):
        cleaned = clean(f"Intro  <b>text</b>:\n\n{block}\n\nOutro&nbsp;here.")
        assert cleaned == f"Intro text:\n\n{block}\n\nOutro here."
    # CRLF inside a fence, an unclosed fence (runs to the end), and a backtick line that is not a fence.
    fenced = "x\r\n```\r\na  =  1\r\n```\r\n"
    assert clean(fenced) == "x\n```\r\na  =  1\r\n```\r\n"
    assert clean("see:\n```\n<p>kept</p>   \n") == "see:\n```\n<p>kept</p>   \n"
    assert clean("```a``` <b>b</b>") == "```a``` b"


def test_markdown_with_fenced_code_in_a_list() -> None:
    text = "1. Step   one\n   ```js\n   const a  = b<c>d;\n   ```\n2. <em>Done</em>"
    assert clean(text) == "1. Step one\n   ```js\n   const a  = b<c>d;\n   ```\n2. Done"


def test_empty_and_whitespace() -> None:
    assert clean("") == ""
    assert clean(" \n\n ") == ""
    assert clean("\n\n    indented code first") == "    indented code first"
