"""Evaluation metrics against values computed by hand (English and Chinese)."""

from __future__ import annotations

import math

import pytest
import torch

from loraforge.engine.eval import choice, judge, matching, overlap, perplexity


def test_bleu4_on_characters_with_smoothing_method_3() -> None:
    # "abcd" vs "abce": 1-4-gram precisions 3/4, 2/3, 1/2, 0/1; method 3 turns the zero into
    # 1/(2·1); no brevity penalty. (3/4 · 2/3 · 1/2 · 1/2)^(1/4) = 0.125^(1/4) = 0.594604
    assert overlap.bleu4_chars("abcd", "abce") == pytest.approx(59.4604, abs=1e-4)
    assert overlap.bleu4_chars("今天天气很好", "今天天气很好") == pytest.approx(100.0)
    assert overlap.bleu4_chars("", "abc") == 0.0


def test_rouge_over_jieba_words_scores_chinese_as_chinese() -> None:
    # 我|喜欢|猫 vs 我|喜欢|狗: unigrams 2 of 3, bigrams 1 of 2, LCS 2 of 3.
    zh = overlap.rouge_words("我喜欢猫", "我喜欢狗")
    assert zh == pytest.approx({"rouge-1": 66.6667, "rouge-2": 50.0, "rouge-l": 66.6667}, abs=1e-3)
    en = overlap.rouge_words("the cat sat", "the cat ran")
    assert en == pytest.approx({"rouge-1": 66.6667, "rouge-2": 50.0, "rouge-l": 66.6667}, abs=1e-3)
    assert overlap.rouge_words("   ", "reference") == {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}


def test_lf_scores_are_the_plain_mean_over_samples() -> None:
    scores = overlap.lf_scores(["abcd", "same text"], ["abce", "same text"])
    assert set(scores) == set(overlap.LF_KEYS)
    assert scores["bleu-4"] == pytest.approx((59.4604 + 100.0) / 2, abs=1e-3)
    assert scores["rouge-1"] == pytest.approx(50.0)  # "abcd"/"abce" share no word: 0, then 100
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        overlap.lf_scores(["a", "b"], ["a"])


def test_sacrebleu_corpus_bleu_and_the_chinese_tokenizer() -> None:
    # 13a words; precisions 5/6, 3/5, 1/4, and 0/3 smoothed ("exp") to 1/(2·3): geometric mean 0.37992
    assert overlap.corpus_bleu(["the cat sat on the mat"], ["the cat is on the mat"]) == pytest.approx(
        37.9918, abs=1e-3
    )
    # Chinese references pick the zh tokenizer (one token per character): 我 喜 欢 猫 vs 我 喜 欢 狗,
    # the same arithmetic as the character BLEU above. 13a would see one word each and score 0.
    assert overlap.sacrebleu_tokenizer(["我喜欢狗"]) == "zh"
    assert overlap.corpus_bleu(["我喜欢猫"], ["我喜欢狗"]) == pytest.approx(59.4604, abs=1e-3)
    assert overlap.corpus_bleu(["我喜欢猫"], ["我喜欢狗"], tokenize="13a") == 0.0
    assert overlap.corpus_chrf(["same text"], ["same text"]) == pytest.approx(100.0)


def test_answer_checks() -> None:
    assert matching.exact_match("  Paris\n", "paris") == 1.0
    assert matching.exact_match("Paris", "paris", case_sensitive=True) == 0.0
    assert matching.contains("The capital is Paris.", "paris") == 1.0
    assert matching.contains("anything", "") == 0.0
    assert matching.regex_match("order #1234 shipped", matching.compile_pattern(r"#\d{4}\b")) == 1.0
    with pytest.raises(ValueError, match="not a valid regular expression"):
        matching.compile_pattern("(unclosed")
    schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    assert matching.valid_json('```json\n{"name": "LoRAForge"}\n```', schema) == 1.0
    assert matching.valid_json('{"name": 3}', schema) == 0.0
    assert matching.valid_json("{name: 'x'}") == 0.0
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        matching.check_schema({"type": "no-such-type"})


def test_multiple_choice_prompt_pick_and_accuracy() -> None:
    shot = choice.Question("2 + 2 = ?", ("3", "4"), "B", "math")
    open_q = choice.Question("3 + 3 = ?", ("6", "7"), "A", "math")
    prompt = choice.build_prompt(open_q, [shot])
    assert prompt == (
        "The following are multiple choice questions (with answers) about math.\n\n"
        "2 + 2 = ?\nA. 3\nB. 4\nAnswer: B\n\n3 + 3 = ?\nA. 6\nB. 7\nAnswer:"
    )
    assert choice.pick({"A": 1.5, "B": 2.0, "C": -1.0}) == "B"
    assert choice.pick({"B": 1.0, "A": 1.0}) == "A"  # ties go to the first letter
    with pytest.raises(ValueError, match="not one of the options A, B"):
        choice.check_question(choice.Question("q", ("x", "y"), "C"))
    acc = choice.accuracy([("math", True), ("math", False), ("law", True), (None, True)])
    assert (acc.overall, acc.count, acc.by_subject) == (75.0, 4, {"law": 100.0, "math": 50.0})


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Score: 7\nMostly right.", 7.0),
        ("**Rating:** 8 — good", 8.0),
        ("I would give it [[6]].", 6.0),
        ("That is a 9/10 answer.", 9.0),
        ("5", 5.0),
        ("评分：4", 4.0),
        ("Score: 42", None),  # out of range: unparseable, not clamped
        ("A fine answer overall.", None),
    ],
)
def test_judge_scores_are_read_robustly(reply: str, score: float | None) -> None:
    assert judge.parse_score(reply) == score


def test_pairwise_needs_both_orders_to_agree() -> None:
    assert judge.parse_verdict("Verdict: A\nBecause…") == "A"
    assert judge.parse_verdict("**Verdict**: tie") == "tie"
    assert judge.parse_verdict("no idea") is None
    assert judge.pairwise_outcome("A", "B") == "win"  # preferred in both positions
    assert judge.pairwise_outcome("B", "A") == "loss"
    assert judge.pairwise_outcome("A", "A") == "tie"  # position bias: each time the first answer
    assert judge.pairwise_outcome("A", None) is None
    rates = judge.pairwise_rates(["win", "win", "tie", "loss", None])
    assert (rates.win, rates.tie, rates.loss, rates.unparseable) == (50.0, 25.0, 25.0, 1)
    judge.check_template(judge.SCORE_PROMPT, judge.SCORE_FIELDS)
    with pytest.raises(ValueError, match=r"must contain \{reference\}"):
        judge.check_template("{question} {answer}", judge.SCORE_FIELDS)
    with pytest.raises(ValueError, match="unknown placeholder"):
        judge.check_template("{question} {answer} {reference} {oops}", judge.SCORE_FIELDS)


def test_perplexity_is_token_weighted_over_labelled_positions() -> None:
    # Uniform logits over 4 tokens: every labelled position costs ln 4, so the perplexity is 4.
    logits = torch.zeros(1, 4, 4)
    labels = torch.tensor([[perplexity.IGNORE_INDEX, perplexity.IGNORE_INDEX, 2, 3]])
    nll, count = perplexity.batch_nll(logits, labels)
    assert count == 2 and nll == pytest.approx(2 * math.log(4))
    total = perplexity.NllTotal()
    total.add(nll, count)
    # A second, longer sample with a sure prediction (NLL ≈ 0 on 6 tokens) pulls the set down more
    # than a per-sample average would: exp(2 ln 4 / 8) = 4^(1/4).
    total.add(0.0, 6)
    assert total.perplexity == pytest.approx(4**0.25)
    assert perplexity.NllTotal().perplexity == math.inf
