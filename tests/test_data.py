"""Readers: TSV (no quoting), CSV, JSONL, datasets folders; malformed rows are named by file, line, field."""

import json

import pytest

from lmbff.data import DataError, find_split, load_split, read_examples
from prompts.library import load_task

SST2 = load_task("SST-2").task
MNLI = load_task("MNLI").task
STSB = load_task("STS-B").task


def test_tsv_without_quoting(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text('text_a\tlabel\n"quoted" start , and null\t1\nNA\t0\n', encoding="utf-8")
    report = read_examples(path, SST2)
    assert [e.fields["text_a"] for e in report.examples] == ['"quoted" start , and null', "NA"]
    assert [e.label for e in report.examples] == ["1", "0"]
    assert report.examples[1].source == f"{path}:3"


def test_csv_jsonl_and_datasets_folder(tmp_path):
    (tmp_path / "a.csv").write_text('text_a,text_b,label\n"A, b",c,neutral\n', encoding="utf-8")
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"text_a": "x", "text_b": "y", "label": "entailment"}) + "\n"
    )
    assert read_examples(tmp_path / "a.csv", MNLI).examples[0].fields == {"text_a": "A, b", "text_b": "c"}
    assert read_examples(tmp_path / "a.jsonl", MNLI).examples[0].label == "entailment"
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {"text_a": ["p", "q"], "text_b": ["r", "s"], "label": ["neutral", "entailment"]}
    )
    ds.save_to_disk(str(tmp_path / "test"))
    report = load_split(tmp_path, "test", MNLI)
    assert [e.label for e in report.examples] == ["neutral", "entailment"]
    datasets.DatasetDict({"dev": ds}).save_to_disk(str(tmp_path / "dd"))
    assert len(load_split(tmp_path / "dd", "dev", MNLI).examples) == 2


@pytest.mark.parametrize(
    ("content", "line", "field", "message"),
    [
        ("text_a\tlabel\ngood\t7\n", 2, "label", "unknown label '7'"),
        ("text_a\tlabel\ngood\t1\nbad\n", 3, None, "1 columns, the header has 2"),
        ("text_a\tlabel\ngood\t\n", 2, "label", "missing label"),
        ("sentence\tlabel\ngood\t1\n", 2, "text_a", "missing"),
    ],
)
def test_malformed_rows_are_located(tmp_path, content, line, field, message):
    path = tmp_path / "d.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_examples(path, SST2)
    assert err.value.line == line and err.value.field_name == field and message in str(err.value)
    assert str(err.value).startswith(f"{path}:{line}:")


def test_bad_encoding_is_located(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"text_a\tlabel\ngood\t1\nbad \xff\xfe text\t0\n")
    with pytest.raises(DataError, match=r"d.tsv:3: not UTF-8"):
        read_examples(path, SST2)


def test_skip_bad_counts_and_keeps_the_rest(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"text_a\tlabel\ngood\t1\n\t0\nbad \xff\t0\nfine\t0\nx\t9\n")
    report = read_examples(path, SST2, skip_bad=True)
    assert [e.fields["text_a"] for e in report.examples] == ["good", "", "fine"]  # blank text is kept
    assert [e.line for e in report.skipped] == [4, 6]


def test_regression_labels(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("text_a\ttext_b\tlabel\na\tb\t3.8\nc\td\t7\n")
    with pytest.raises(DataError, match=r"d.tsv:3: field 'label': 7.0 is outside the task's range"):
        read_examples(path, STSB)
    assert read_examples(path, STSB, skip_bad=True).examples[0].label == 3.8


def test_invalid_json_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text_a": "a", "label": "1"}\n{"text_a": "b", "label": \n')
    with pytest.raises(DataError, match=r"d.jsonl:2: invalid JSON"):
        read_examples(path, SST2)


def test_missing_split_lists_the_folder(tmp_path):
    (tmp_path / "train.tsv").write_text("text_a\tlabel\n")
    with pytest.raises(FileNotFoundError, match=r"no 'dev' split.*train.tsv"):
        find_split(tmp_path, "dev")


def test_kshot_folder_finds_the_task_test_file(tmp_path):
    task_dir = tmp_path / "SST-2"
    (task_dir / "k-shot" / "16-42").mkdir(parents=True)
    (task_dir / "test.tsv").write_text("text_a\tlabel\nx\t1\n")
    (task_dir / "k-shot" / "16-42" / "dev.tsv").write_text("text_a\tlabel\ny\t0\n")
    assert find_split(task_dir / "k-shot" / "16-42", "test") == task_dir / "test.tsv"
    assert find_split(task_dir / "k-shot" / "16-42", "dev") == task_dir / "k-shot" / "16-42" / "dev.tsv"


def test_a_blank_text_is_kept_as_lmbff_keeps_it(tmp_path):
    """Seen: LM-BFF's own CR split (a row that is a single space) could not be read at all."""
    path = tmp_path / "train.tsv"
    path.write_text("text_a\tlabel\ngood\t1\n \t0\n\t1\n", encoding="utf-8")
    report = read_examples(path, SST2)
    assert [e.fields["text_a"] for e in report.examples] == ["good", " ", ""]
    assert report.blank == 2 and not report.skipped


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "the file is empty or has only a header"),
        ("text_a\tlabel\n", "the file is empty or has only a header"),
        ("text_a\tlabel\ngood\t7\nbad\t9\n", "all 2 rows were malformed and skipped"),
    ],
)
def test_no_examples_is_an_error_naming_the_file(tmp_path, content, why):
    """Seen: an empty or header-only file loaded the model, then failed in scikit-learn naming no file."""
    path = tmp_path / "test.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}: no examples: {why}"):
        read_examples(path, SST2, skip_bad=True)


def test_one_line_reader_ignores_unicode_line_separators(tmp_path):
    """U+2028, U+2029, U+0085 and form feeds are text, not line ends (str.splitlines breaks on them)."""
    from lmbff.data import raw_lines

    path = tmp_path / "train.tsv"
    path.write_text("text_a\tlabel\na\u2028b\u2029c\x85d\x0ce\t1\nnext\t0\n", encoding="utf-8")
    assert len(raw_lines(path)) == 3
    examples = read_examples(path, SST2).examples
    assert [e.source.rsplit(":", 1)[1] for e in examples] == ["2", "3"]
    assert examples[0].fields["text_a"] == "a\u2028b\u2029c\x85d\x0ce"
