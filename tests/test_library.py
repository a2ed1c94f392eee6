"""The template library: every shipped task file lints clean; LM-BFF's templates are as published."""

import pytest

from prompts.library import bundled_templates_dir, find_task_file, iter_task_files, load_task, load_task_file
from prompts.lint import lint_file
from prompts.tokenization import TokenizerAdapter

from .conftest import DEMO_DATA

LMBFF_TASKS = [
    "SST-2",
    "SST-5",
    "MR",
    "CR",
    "MPQA",
    "Subj",
    "TREC",
    "CoLA",
    "MNLI",
    "SNLI",
    "QNLI",
    "RTE",
    "MRPC",
    "QQP",
    "STS-B",
]
ALL_FILES = [*iter_task_files([bundled_templates_dir()]), DEMO_DATA / "task.yaml"]


def test_all_lmbff_tasks_have_a_file():
    names = {p.stem for p in iter_task_files([bundled_templates_dir()])}
    assert set(LMBFF_TASKS) <= names


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.stem if p.stem != "task" else p.parent.name)
def test_every_task_file_lints_clean(path, bert_tokenizer, gpt_tokenizer):
    for tokenizer, kind in ((None, "masked"), (bert_tokenizer, "masked"), (gpt_tokenizer, "causal")):
        issues, words = lint_file(path, tokenizer, kind)
        errors = [str(i) for i in issues if i.severity == "error"]
        assert errors == []
        if tokenizer is not None:
            task_file = load_task_file(path)
            expected = sum(len(w) for p in task_file.prompts.values() for w in p.label_words.values())
            assert len(words) == expected and all(w.tokens for w in words)


@pytest.mark.parametrize(
    ("task", "fields", "expected"),
    [
        ("SST-2", {"text_a": "a gem ."}, "a gem . It was {mask}."),
        ("SST-5", {"text_a": "dull"}, "dull It was {mask}."),
        ("Subj", {"text_a": "the plot"}, "the plot This is {mask}."),
        ("CoLA", {"text_a": "Him went."}, "Him went. This is {mask}."),
        ("TREC", {"text_a": "Who wrote it ?"}, "{mask}: Who wrote it ?"),
        ("MNLI", {"text_a": "A dog runs.", "text_b": "The dog moves."}, "A dog runs? {mask}, the dog moves."),
        ("QNLI", {"text_a": "Who won?", "text_b": "Ann won."}, "Who won? {mask}, ann won."),
        ("MRPC", {"text_a": "It rained.", "text_b": "Rain fell."}, "It rained. {mask}, rain fell."),
        ("STS-B", {"text_a": "A cat.", "text_b": "A kitten."}, "A cat. {mask}, a kitten."),
    ],
)
def test_lmbff_templates_render_as_published(task, fields, expected):
    before, after = load_task(task).prompt().template.render_parts(fields)
    assert before + "{mask}" + after == expected


def test_lmbff_label_words():
    assert load_task("SST-2").prompt().label_words == {"0": ["terrible"], "1": ["great"]}
    assert load_task("SST-5").prompt().label_words["2"] == ["okay"]
    assert load_task("MNLI").prompt().label_words == {
        "contradiction": ["No"],
        "entailment": ["Yes"],
        "neutral": ["Maybe"],
    }
    assert load_task("TREC").prompt().label_words["3"] == ["Human"]
    sts = load_task("STS-B").task
    assert sts.is_regression and sts.value_range == (0.0, 5.0) and sts.split_threshold == 2.5
    assert load_task("RTE").task.field_limits == {"text_a": 240}
    assert load_task("CoLA").task.metric == "mcc" and load_task("QQP").task.metric == "f1"


def test_label_words_are_single_tokens_for_roberta_bpe(roberta_tokenizer):
    """LM-BFF's requirement: with RoBERTa-style BPE, label words take a leading space and are one token."""
    from prompts.encoding import PromptEncoder

    adapter = TokenizerAdapter(roberta_tokenizer, "masked")
    for name in ["SST-2", "SST-5", "Subj", "MNLI", "MRPC"]:
        task_file = load_task(name)
        prompt = task_file.prompt()
        after_space = PromptEncoder(prompt.template, adapter).slot_after_space
        assert after_space
        words = prompt.verbalizer(task_file.task).tokenize(adapter, after_space)
        assert words.single_token
        assert all(adapter.describe(list(ids))[0].startswith("Ġ") for ids in words.word_ids)


def test_unknown_task_lists_known_ones():
    with pytest.raises(FileNotFoundError, match=r"known tasks: .*SST-2"):
        find_task_file("NoSuchTask")


def test_task_lookup_is_case_insensitive_and_takes_paths():
    assert find_task_file("sst-2").stem == "SST-2"
    assert load_task(str(DEMO_DATA / "task.yaml")).task.name == "reviews"
