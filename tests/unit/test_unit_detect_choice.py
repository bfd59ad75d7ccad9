"""Multiple-choice datasets (MMLU / C-Eval style): detected in CSV, JSON and JSONL, every answer form
converted to a letter, bad rows reported by number, other formats left alone, and the question file
an evaluation writes read back by the engine's own reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loraforge.datastore import choice
from loraforge.datastore.detect import detect
from loraforge.datastore.ingest import IngestResult, ingest_file
from loraforge.datastore.sniffing import IngestError
from loraforge.engine.data.readers import read_rows
from loraforge.engine.eval.testset import read_questions

LLAMAFACTORY = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "llamafactory"
if not LLAMAFACTORY.is_dir():
    LLAMAFACTORY = Path("/work/shared/datasets/llamafactory")

MMLU_CSV = (
    "question,A,B,C,D,answer,subject\n"
    "What is 2 + 2?,3,4,5,6,B,math\n"
    '"Capital of France, the city?",Paris,Rome,Berlin,Madrid,a,geography\n'
    "Which is a prime?,4,6,7,9,(C),math\n"
)
CEVAL_CSV = "id,问题,A,B,C,D,答案,explanation\n0,中国的首都是?,上海,北京,广州,深圳,B,北京是首都\n"
HF_JSONL = [
    {"question": "Pick two", "choices": ["one", "two", "three"], "answer": 1, "subject": "counting"},
    {"question": "Pick the last", "choices": ["x", "y"], "answer": 1, "subject": "counting"},
]


def _ingest(
    tmp_path: Path, name: str, content: str | bytes, **options: Any
) -> tuple[IngestResult, list[Any]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "source"
    source.write_bytes(content.encode() if isinstance(content, str) else content)
    folder = tmp_path / "version"
    folder.mkdir()
    result = ingest_file(source, folder=folder, filename=name, source_sha256="0" * 64, **options)
    lines = (folder / "normalized.jsonl").read_text(encoding="utf-8").splitlines()
    return result, [json.loads(line) for line in lines]


def test_mmlu_csv_with_letter_answers_and_subject(tmp_path: Path) -> None:
    result, rows = _ingest(tmp_path, "mmlu.csv", MMLU_CSV)
    assert result.format == "multiple_choice"
    assert result.mapping["formatting"] == "multiple_choice"
    assert result.mapping["columns"] == {
        "question": "question", "answer": "answer", "A": "A", "B": "B", "C": "C", "D": "D",
        "subject": "subject",
    }  # fmt: skip
    assert result.valid_rows == 3 and result.invalid_rows == 0
    assert [r["choice"]["answer"] for r in rows] == ["B", "A", "C"]  # B, a, (C)
    assert rows[1]["choice"] == {
        "question": "Capital of France, the city?",
        "options": ["Paris", "Rome", "Berlin", "Madrid"],
        "answer": "A",
        "subject": "geography",
    }
    assert rows[0]["prompt"][0]["content"].endswith("D. 6\nAnswer:")
    assert rows[0]["response"] == [{"role": "assistant", "content": "B"}]
    assert result.stats["subjects"] == {"math": 2, "geography": 1}


def test_ceval_csv_with_chinese_columns(tmp_path: Path) -> None:
    result, rows = _ingest(tmp_path, "ceval.csv", CEVAL_CSV)
    assert result.format == "multiple_choice"
    assert result.mapping["columns"]["question"] == "问题"
    assert result.mapping["columns"]["answer"] == "答案"
    assert rows[0]["choice"]["options"][1] == "北京" and rows[0]["choice"]["answer"] == "B"
    assert rows[0]["choice"]["subject"] is None


def test_hf_jsonl_with_a_choices_list_and_index_answers(tmp_path: Path) -> None:
    content = "".join(json.dumps(r) + "\n" for r in HF_JSONL)
    result, rows = _ingest(tmp_path, "mmlu.jsonl", content)
    assert result.format == "multiple_choice"
    assert result.mapping["columns"] == {
        "question": "question", "answer": "answer", "options": "choices", "subject": "subject"
    }  # fmt: skip
    assert [r["choice"]["answer"] for r in rows] == ["B", "B"]  # 0-based indexes
    assert rows[1]["choice"]["options"] == ["x", "y"]


def test_json_array_with_more_options_and_capitalised_keys(tmp_path: Path) -> None:
    data = [
        {"Question": "Five options", "A": "a", "B": "b", "C": "c", "D": "d", "E": "e", "Answer": "E",
         "category": "misc"},
        {"Question": "Three of five", "A": "a", "B": "b", "C": "c", "D": "", "E": "", "Answer": "2",
         "category": "misc"},
    ]  # fmt: skip
    result, rows = _ingest(tmp_path, "cmmlu.json", json.dumps(data))
    assert result.format == "multiple_choice"
    assert result.mapping["columns"]["E"] == "E" and result.mapping["columns"]["subject"] == "category"
    assert rows[0]["choice"]["answer"] == "E" and len(rows[0]["choice"]["options"]) == 5
    assert rows[1]["choice"]["options"] == ["a", "b", "c"] and rows[1]["choice"]["answer"] == "C"


def test_csv_index_answers_and_an_options_list_cell(tmp_path: Path) -> None:
    content = 'question,options,answer\nQ one,"[""p"", ""q"", ""r""]",0\nQ two,"[""p"", ""q""]",1\n'
    result, rows = _ingest(tmp_path, "list.csv", content)
    assert result.format == "multiple_choice"
    assert [r["choice"]["answer"] for r in rows] == ["A", "B"]
    assert rows[0]["choice"]["options"] == ["p", "q", "r"]


def test_malformed_rows_are_reported_by_row_number(tmp_path: Path) -> None:
    content = (
        "question,A,B,C,D,answer\n"
        "Good one,1,2,3,4,A\n"
        "Bad letter,1,2,3,4,F\n"
        ",1,2,3,4,A\n"
        "No answer,1,2,3,4,\n"
        "Index too big,1,2,3,4,7\n"
        "Hole,1,,3,4,A\n"
        "Only one option,1,,,,A\n"
    )
    result, rows = _ingest(tmp_path, "bad.csv", content)
    assert result.format == "multiple_choice"
    assert result.valid_rows == 1 and result.invalid_rows == 6
    assert [(e["row"], e["field"]) for e in result.errors] == [
        (2, "answer"), (3, "question"), (4, "answer"), (5, "answer"), (6, "B"), (7, "A"),
    ]  # fmt: skip
    assert "not one of the options A, B, C, D" in result.errors[0]["message"]
    assert "0..3" in result.errors[3]["message"]
    assert [r["row"] for r in rows] == [1]


def test_a_file_without_any_valid_question_names_the_first_bad_row(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as caught:
        _ingest(tmp_path, "bad.csv", "question,A,B,answer\nQ,x,y,Z\n")
    assert caught.value.code == "no_valid_rows"
    assert "row 1: answer:" in caught.value.message


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"instruction": "Translate", "input": "hello", "output": "bonjour"}, "alpaca"),
        # an alpaca row that happens to have answer and letter-like columns stays alpaca
        ({"instruction": "Q", "input": "x", "output": "y", "answer": "A", "A": "1", "B": "2"}, "alpaca"),
        ({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}, "sharegpt"),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
            "messages",
        ),
        ({"text": "plain text"}, "text"),
        ({"question": "no options", "answer": "A"}, None),
        ({"question": "one option", "A": "x", "answer": "A"}, None),
        ({"question": "no answer", "A": "x", "B": "y"}, None),
    ],
)
def test_other_formats_are_not_taken_for_questions(row: dict[str, Any], expected: str | None) -> None:
    assert choice.columns_of(row) is None
    if expected is None:
        with pytest.raises(IngestError):
            detect([(1, row)], override=None, mapping=None)
    else:
        assert detect([(1, row)], override=None, mapping=None)[0] == expected


@pytest.mark.parametrize(
    "name",
    ["alpaca_en_demo.json", "identity.json", "dpo_en_demo.json", "kto_en_demo.json", "c4_demo.jsonl",
     "glaive_toolcall_en_demo.json"],
)  # fmt: skip
def test_llamafactory_samples_keep_their_formats(name: str) -> None:
    rows = read_rows(LLAMAFACTORY / name)[:200]
    fmt, _attr, evidence = detect(list(enumerate(rows, 1)), override=None, mapping=None)
    assert fmt != "multiple_choice"
    assert "multiple_choice" not in evidence["votes"]


def test_a_mapping_names_unusual_columns(tmp_path: Path) -> None:
    content = "题目,甲,乙,正确\n一加一?,1,2,乙\n"
    mapping = {
        "formatting": "multiple_choice",
        "columns": {"question": "题目", "A": "甲", "B": "乙", "answer": "正确"},
    }
    # `乙` names the option column, it is not an answer: the row says which rule it breaks
    with pytest.raises(IngestError) as caught:
        _ingest(tmp_path, "m.csv", content, mapping=mapping)
    assert "neither" in caught.value.message
    result, rows = _ingest(tmp_path / "again", "m.csv", content.replace(",乙\n", ",B\n"), mapping=mapping)
    assert result.format == "multiple_choice" and rows[0]["choice"]["answer"] == "B"
    with pytest.raises(IngestError) as incomplete:
        _ingest(
            tmp_path / "third", "m.csv", content, mapping={"formatting": "multiple_choice", "columns": {}}
        )
    assert incomplete.value.code == "invalid_mapping"


def test_override_without_question_columns_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as caught:
        _ingest(tmp_path, "a.jsonl", '{"instruction": "a", "output": "b"}\n', override="multiple_choice")
    assert caught.value.code == "unknown_format"


def test_the_engine_reads_the_question_file_a_version_gives(tmp_path: Path) -> None:
    _result, rows = _ingest(tmp_path, "mmlu.csv", MMLU_CSV)
    normalized = tmp_path / "version" / "normalized.jsonl"
    out = tmp_path / "run" / "data" / "questions.jsonl"
    assert choice.write_question_file(normalized, out) == 3
    questions = read_questions(out, "questions")
    assert [q.answer for q in questions] == ["B", "A", "C"]
    assert questions[0].subject == "math" and questions[0].options == ("3", "4", "5", "6")
    # a preprocess split marks rows; an evaluation on one split reads only those
    marked = [dict(r, split="validation" if r["row"] == 2 else "train") for r in rows]
    normalized.write_text("".join(json.dumps(r) + "\n" for r in marked), encoding="utf-8")
    assert choice.write_question_file(normalized, out, split="validation") == 1
    assert [q.question for q in read_questions(out, "questions")] == ["Capital of France, the city?"]
