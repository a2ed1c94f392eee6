"""Prototype verbalizers (issue 36): a class is a learned vector in the slot's hidden space, scored by
cosine similarity with a learned scale, alone or beside the label words; one forward pass per example
whatever the number of classes; trained with any backend; saved with the state."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmbff.classifier import PromptClassifier
from lmbff.cli import main
from lmbff.config import PrototypeConfig, TrainingArguments
from lmbff.experiment import ExperimentConfig
from lmbff.inputs import to_examples
from lmbff.model import PromptModel
from lmbff.train import Trainer
from lmbff.tuning import make_config
from prompts.library import TaskFileError, parse_task_text, task_file_from_labels

from .conftest import tiny_bert, tiny_gpt

TEXTS = [f"free prize call now {i}" for i in range(4)] + [f"see you at lunch {i}" for i in range(4)]
TEXTS += [f"the weather is nice {i}" for i in range(4)]
LABELS = ["spam"] * 4 + ["ham"] * 4 + ["other"] * 4
WORDS = ["bad offer", "good friend", "neutral thing"]  # several tokens each: the rows path for words
TINY = dict(max_steps=3, batch_size=4, eval_every=0, learning_rate=1e-2, verbose=False)
TEMPLATE = "{{ text }} It was {{ mask }}."


def _model(
    name, bert_tokenizer, gpt_tokenizer, labels=("spam", "ham", "other"), words=WORDS, verbalizer=None
):
    tokenizer = bert_tokenizer if name == "bert" else gpt_tokenizer
    lm = tiny_bert(tokenizer) if name == "bert" else tiny_gpt(tokenizer)
    task_file = task_file_from_labels(list(labels), TEMPLATE, list(words))
    kind = "masked" if name == "bert" else "causal"
    pm = PromptModel.for_task(lm, tokenizer, task_file.task, task_file.prompt(), kind=kind)
    if verbalizer:
        pm.use_prototypes(verbalizer)
    return pm, task_file.task


@pytest.mark.parametrize("verbalizer", ["prototype", "words+prototype"])
@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_prototype_states_reload_bit_for_bit_from_a_moved_folder(family, verbalizer, request, tmp_path):
    """Done-when of issue 36: prototype and words+prototype states reload bit for bit, moved."""
    folder = request.getfixturevalue(f"{family}_dir")
    clf = PromptClassifier(
        labels=["spam", "ham", "other"],
        label_words=WORDS,
        template=TEMPLATE,
        model=str(folder),
        verbalizer=verbalizer,
        backend="lora",
        **TINY,
    ).fit(TEXTS, LABELS)
    expected = clf.predict_proba(TEXTS)
    layer = clf.prompt_model_.prototypes
    assert layer is not None and clf.prompt_model_.verbalizer_kind == verbalizer
    clf.save(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["scoring"]["verbalizer"] == verbalizer
    shutil.move(str(tmp_path / "saved"), str(tmp_path / "moved"))
    again = PromptClassifier.load(tmp_path / "moved")
    assert again.prompt_model_.verbalizer_kind == verbalizer
    assert np.array_equal(again.predict_proba(TEXTS), expected)
    for name, tensor in layer.named_state().items():  # put on the scorer when it first predicts
        assert torch.equal(again.prompt_model_.prototypes.named_state()[name], tensor), name


def test_prototypes_train_beside_a_backend_and_their_state_is_named_apart(bert_tokenizer, gpt_tokenizer):
    pm, task = _model("gpt", bert_tokenizer, gpt_tokenizer, verbalizer="prototype")
    examples = [e for e in to_examples(TEXTS, ("text",))]
    examples = [type(e)(e.fields, label) for e, label in zip(examples, LABELS, strict=True)]
    trainer = Trainer(pm, task, make_config("lora"), TrainingArguments(max_steps=4, batch_size=4), examples)
    start = {n: t.detach().clone() for n, t in pm.prototypes.named_state().items()}
    state = trainer.trainable_state()
    assert {"lmbff_prototypes.prototypes", "lmbff_prototypes.center", "lmbff_prototypes.log_scale"} <= set(
        state
    )
    assert any("lora" in name for name in state)
    # their own rate, whatever --learning-rate the backend is given
    rates = {g.get("name"): g["lr"] for g in trainer.param_groups}
    assert rates["lmbff_prototypes."] == PrototypeConfig().learning_rate
    trainer.train(progress=False)
    moved = {n: not torch.equal(t, start[n]) for n, t in pm.prototypes.named_state().items()}
    assert moved["lmbff_prototypes.prototypes"] and moved["lmbff_prototypes.log_scale"]
    assert trainer.prototype_init == "examples"  # auto: class means for prototypes alone


def test_examples_init_is_the_nearest_class_mean_classifier(bert_tokenizer, gpt_tokenizer):
    """Before any step, prototypes from examples are each class's mean (centred, unit) feature."""
    pm, task = _model("bert", bert_tokenizer, gpt_tokenizer, verbalizer="prototype")
    examples = to_examples(TEXTS, ("text",))
    labels = [task.labels.index(label) for label in LABELS]
    assert pm.init_prototypes(examples, labels) == "examples"
    features = pm.slot_features(examples)
    center = features.mean(0)
    shifted = F.normalize(features - center, dim=-1)
    for c in range(3):
        mean = F.normalize(shifted[torch.tensor(labels) == c].mean(0), dim=-1)
        assert torch.allclose(pm.prototypes.prototypes[c], mean, atol=1e-6)
    scores = pm.predict_log_scores(examples, calibrate=False)
    cosine = (
        F.normalize(shifted, dim=-1)
        @ torch.stack([F.normalize(shifted[torch.tensor(labels) == c].mean(0), dim=-1) for c in range(3)]).T
    )
    assert np.array_equal(scores.argmax(1), cosine.argmax(1).numpy())


def test_words_init_ranks_like_the_label_words_logits(bert_tokenizer, gpt_tokenizer):
    """Words init: each prototype is its word's output-embedding row, so with one-token words and an
    untrained model, prototypes rank classes as the cosine of the feature with the words' rows."""
    pm, _ = _model(
        "gpt", bert_tokenizer, gpt_tokenizer, words=["great", "terrible", "okay"], verbalizer="prototype"
    )
    pm.prototypes.config = PrototypeConfig(init="words")
    examples = to_examples(TEXTS, ("text",))
    assert pm.init_prototypes(examples, [0] * len(examples)) == "words"
    weight = pm.base_lm.get_output_embeddings().weight
    rows = torch.tensor([ids[0] for ids in pm.words.word_ids])
    expected = F.normalize(pm.slot_features(examples), dim=-1) @ F.normalize(weight[rows], dim=-1).T
    scores = pm.predict_log_scores(examples, calibrate=False)
    assert np.array_equal(scores.argmax(1), expected.argmax(1).numpy())


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_one_forward_row_per_example_whatever_the_number_of_classes(family, bert_tokenizer, gpt_tokenizer):
    examples = to_examples(TEXTS, ("text",))
    rows_seen = {}
    for n in (3, 50):
        labels = [f"class {i}" for i in range(n)]
        words = [f"word number {i}" for i in range(n)]
        pm, _ = _model(family, bert_tokenizer, gpt_tokenizer, labels, words, verbalizer="prototype")
        pm.init_prototypes(examples, [i % n for i in range(len(examples))])
        seen: list[tuple[int, ...]] = []

        def record(module, args, kwargs, seen=seen):
            seen.append(tuple(kwargs["input_ids"].shape))

        handle = pm.base_lm.register_forward_pre_hook(record, with_kwargs=True)
        scores = pm.predict_log_scores(examples)
        handle.remove()
        assert scores.shape == (len(examples), n)
        rows_seen[n] = sum(shape[0] for shape in seen)
    assert rows_seen[3] == rows_seen[50] == len(examples)


def test_words_and_prototypes_combine_as_a_product_with_the_shared_prefix_too(bert_tokenizer, gpt_tokenizer):
    """words+prototype = log_softmax(word class scores + prototype class scores); on a causal LM the
    shared-prefix path gives the row-per-word path's scores and gradients (within 1e-5)."""
    pm, _ = _model("gpt", bert_tokenizer, gpt_tokenizer, verbalizer="words+prototype")
    examples = to_examples(TEXTS, ("text",))
    pm.init_prototypes(examples, [i % 3 for i in range(len(examples))])
    encodings = pm.encode(examples)
    assert pm.shares_prefix
    shared = pm.training_log_scores(encodings)
    rows = pm.class_log_scores(pm.collate(encodings), calibrate=False)
    assert torch.allclose(shared, rows, atol=1e-5)
    grads = []
    for scores in (shared, rows):
        pm.zero_grad()
        pm.prototypes.prototypes.grad = None
        scores[:, 0].sum().backward(inputs=[pm.prototypes.prototypes])
        grads.append(pm.prototypes.prototypes.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-5)
    with torch.no_grad():
        words, slot = pm._scores(pm.collate(encodings))
        by_words = pm._class_scores(words, None, calibrate=False)
        by_prototypes = pm.prototypes(slot).log_softmax(1)
        assert torch.allclose(rows, (by_words + by_prototypes).log_softmax(1), atol=1e-6)


def test_refused_where_a_prototype_cannot_work(bert_tokenizer, gpt_tokenizer, tmp_path):
    task_file = task_file_from_labels(["a", "b"], "{{ mask }}: {{ text }}", ["yes", "no"])
    lm = tiny_gpt(gpt_tokenizer)
    pm = PromptModel.for_task(lm, gpt_tokenizer, task_file.task, task_file.prompt(), kind="causal")
    with pytest.raises(ValueError, match="puts its slot before every field"):
        pm.use_prototypes("prototype")
    with pytest.raises(ValueError, match="verbalizer must be one of"):
        pm.use_prototypes("protoype")
    with pytest.raises(ValueError, match="trains none"):
        ExperimentConfig(task="x", data_dir="d", out="o", method="zero-shot", verbalizer="prototype")
    with pytest.raises(ValueError, match="trains none"):
        PromptClassifier(labels=["a", "b"], method="zero-shot", verbalizer="prototype").fit(None, ["a"])
    with pytest.raises(ValueError, match=r"prototype scale must be a finite number in \(0, 100\], got 0"):
        PromptClassifier(labels=["a", "b"], prototype_options={"scale": 0}).fit(["x"], ["a"])
    with pytest.raises(ValueError, match="prototype init must be one of"):
        PrototypeConfig(init="centroids")


def test_a_task_file_names_its_verbalizer_and_a_wrong_one_is_located():
    text = """task:
  name: t
  fields: [text_a]
  labels: [a, b]
templates:
  p:
    text: "{{ text_a }} It was {{ mask }}."
    label_words: {a: yes, b: no}
    verbalizer: words+prototype
"""
    text = text.replace("{a: yes, b: no}", "{a: 'yes', b: 'no'}")
    parsed, errors = parse_task_text(text, "t.yaml")
    assert not errors and parsed.prompt().verbalizer_kind == "words+prototype"
    parsed, errors = parse_task_text(text.replace("words+prototype", "prototypes"), "t.yaml")
    assert errors and isinstance(errors[0], TaskFileError)
    assert "unknown verbalizer 'prototypes'" in str(errors[0]) and "t.yaml:9:" in str(errors[0])


def test_cli_train_with_prototypes_then_predict_from_a_moved_state(gpt_dir, tmp_path):
    data = tmp_path / "data.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in zip(TEXTS, LABELS, strict=True)))
    out = tmp_path / "run"
    code = main(
        [
            "train", "--labels", "spam,ham,other", "--label-words", ",".join(WORDS), "--template", TEMPLATE,
            "--data-file", str(data), "--test-file", str(data), "--model", str(gpt_dir), "--out", str(out),
            "--verbalizer", "prototype", "--backend", "lora", "--max-steps", "2", "--batch-size", "4",
            "--prototype-init", "words",
        ]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["verbalizer"] == "prototype"
    assert "prototype (prototypes from words)" in (out / "results.md").read_text()
    expected = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    shutil.move(str(out / "state"), str(tmp_path / "moved"))
    code = main(
        [
            "predict",
            "--state",
            str(tmp_path / "moved"),
            "--data-file",
            str(data),
            "--out",
            str(tmp_path / "p"),
        ]
    )
    assert code == 0
    (written,) = (tmp_path / "p").glob("*/predictions.jsonl")
    got = [json.loads(line) for line in written.read_text().splitlines()]
    assert [(g["prediction"], g["scores"]) for g in got] == [(e["prediction"], e["scores"]) for e in expected]
