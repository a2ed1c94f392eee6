"""Automatic label words: ranking against brute force, criteria, filters, assignments, command line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

import lmbff.search.label_ranking as search
from lmbff.cli import main
from lmbff.data import Example
from lmbff.model import PromptModel
from lmbff.search.label_ranking import WordFilter, class_word_scores, rank_assignments
from lmbff.search.labels import LabelSearchConfig, finetune_reranker, search_label_words
from lmbff.train import TrainingArguments
from lmbff.tuning import make_config
from prompts.library import load_task
from prompts.verbalizer import Verbalizer

from .conftest import DEMO_DATA

TASK_FILE = load_task("SST-2")
TASK = TASK_FILE.task


def examples() -> list[Example]:
    good = [Example({"text_a": t}, "1") for t in ("a good film", "great acting", "I loved it", "superb")]
    bad = [Example({"text_a": t}, "0") for t in ("a bad film", "dull acting", "I hated it", "awful")]
    return good + bad


def scorer_for(model, tokenizer, kind) -> PromptModel:
    return PromptModel.for_task(model, tokenizer, TASK, TASK_FILE.prompt(), kind=kind)


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_ranking_equals_a_brute_force_per_word_computation(family, fresh_model):
    model, tokenizer, kind = fresh_model(family)
    pm = scorer_for(model, tokenizer, kind)
    data = examples()
    config = LabelSearchConfig(top_k=5, candidates=6)
    result = search_label_words(pm, TASK, data, data, config)
    # brute force: each candidate word's log-probability, one example at a time, from the raw logits
    brute: dict[str, float] = {}
    words = {w for ws in result.candidates_per_class.values() for w in ws}
    for word in words:
        [token] = pm.adapter.word_ids(word, pm.encoder.slot_after_space)
        for label in TASK.labels:
            total = 0.0
            for e in [e for e in data if e.label == label]:
                enc = pm.encoder.encode(e.fields)
                if kind == "masked":
                    ids, at = (
                        [*enc.prefix_ids, pm.adapter.mask_token_id, *enc.suffix_ids],
                        len(enc.prefix_ids),
                    )
                else:
                    ids, at = list(enc.prefix_ids), len(enc.prefix_ids) - 1
                with torch.no_grad():
                    logits = model(input_ids=torch.tensor([ids])).logits[0, at]
                total += float(logits.double().log_softmax(-1)[token])
            brute[(word, label)] = total
    for label, ranked_words in result.candidates_per_class.items():
        sums = [brute[(w, label)] for w in ranked_words]
        assert sums == sorted(sums, reverse=True)  # ranked by the summed log-probability
        np.testing.assert_allclose(sums[0], max(brute[(w, label)] for w in words), rtol=1e-4)
    # assignment accuracies: the prompt model's own predictions with that verbalizer
    for ranked in result.ranked[:3]:
        pm_words = scorer_for(model, tokenizer, kind)
        pm_words.verbalizer = Verbalizer(ranked.words, TASK.labels)
        pm_words.words = pm_words.verbalizer.tokenize(pm_words.adapter, pm_words.encoder.slot_after_space)
        predicted = pm_words.predict_log_scores(data).argmax(1)
        gold = [TASK.labels.index(e.label) for e in data]
        assert ranked.train_accuracy == pytest.approx(float(np.mean(predicted == gold)))
    accuracies = [r.train_accuracy for r in result.ranked]
    assert accuracies == sorted(accuracies, reverse=True) and len(result.ranked) == 6


def test_petal_likelihood_ratio_by_hand():
    probs = np.array([[0.5, 0.1], [0.3, 0.1], [0.1, 0.4]])  # 3 examples x 2 words
    labels = np.array([0, 0, 1])
    scores = class_word_scores(np.log(probs), labels, 2, "petal")
    assert scores[0, 0] == pytest.approx(np.log(0.4 / 0.1))  # mean(0.5, 0.3) / 0.1
    assert scores[1, 1] == pytest.approx(np.log(0.4 / 0.1))
    assert scores[0, 1] == pytest.approx(np.log(0.1 / 0.4))
    # a rare word: a larger ratio, but outside the class's most likely words
    rare = np.log(np.array([[0.5, 0.1, 1e-6], [0.3, 0.1, 1e-6], [0.1, 0.4, 1e-9]]))
    pooled = class_word_scores(rare, labels, 2, "petal", petal_pool=2)
    assert class_word_scores(rare, labels, 2, "petal")[0].argmax() == 2 and pooled[0].argmax() == 0
    assert np.isneginf(pooled[0, 2])
    lmbff = class_word_scores(np.log(probs), labels, 2, "lmbff")
    assert lmbff[0, 0] == pytest.approx(np.log(0.5) + np.log(0.3))


def test_word_filter_keeps_whole_words_only(fresh_model):
    model, tokenizer, kind = fresh_model("bert")
    pm = scorer_for(model, tokenizer, kind)
    accept = WordFilter(pm.adapter, after_space=True)
    vocab = tokenizer.get_vocab()
    assert accept.word(vocab["great"]) == "great"
    assert accept.word(vocab["##ing"]) is None  # a piece of a word
    assert accept.word(vocab["the"]) is None  # a stop word
    assert accept.word(vocab["!"]) is None and accept.word(tokenizer.mask_token_id) is None
    assert WordFilter(pm.adapter, True, stop_words=True).word(vocab["the"]) == "the"
    assert WordFilter(pm.adapter, True, subwords=True).word(vocab["##ing"]) == "ing"


def test_beam_search_agrees_with_exhaustive_enumeration(monkeypatch):
    rng = np.random.default_rng(0)
    log_probs = np.log(rng.dirichlet(np.ones(30), size=24))
    labels = np.repeat(np.arange(3), 8)
    candidates = [[(i, f"w{i}") for i in range(c * 10, c * 10 + 6)] for c in range(3)]
    exhaustive = rank_assignments(log_probs, labels, candidates, n=5)
    monkeypatch.setattr(search, "_EXHAUSTIVE_LIMIT", 1)
    beam = rank_assignments(log_probs, labels, candidates, n=5, beam=10_000)  # wide: exact
    assert [a.train_accuracy for a in beam] == [a.train_accuracy for a in exhaustive]
    assert all(len(set(a.token_ids)) == 3 for a in beam)


def test_sequence_mode_template_is_refused(fresh_model):
    model, tokenizer, kind = fresh_model("gpt")
    trec = load_task("TREC")
    pm = PromptModel.for_task(model, tokenizer, trec.task, trec.prompt(), kind=kind)
    with pytest.raises(ValueError, match="text after the slot"):
        search_label_words(pm, trec.task, [Example({"text_a": "Who is it ?"}, "HUM")])


def test_rerank_by_finetuning_restores_the_model(fresh_model):
    model, tokenizer, kind = fresh_model("bert")
    before = {n: t.clone() for n, t in model.state_dict().items()}
    pm = scorer_for(model, tokenizer, kind)
    data = examples()
    args = TrainingArguments(max_steps=2, batch_size=4, eval_every=0, learning_rate=1e-2)
    rerank = finetune_reranker(pm, TASK, data, data, make_config("ln"), args)
    config = LabelSearchConfig(top_k=3, candidates=4, rerank="finetune", rerank_top=2)
    result = search_label_words(pm, TASK, data, data, config, rerank_with=rerank)
    tuned = [r.finetuned_dev_accuracy for r in result.ranked[:2]]
    assert all(t is not None for t in tuned) and tuned == sorted(tuned, reverse=True)
    assert result.ranked[2].finetuned_dev_accuracy is None
    assert all(torch.equal(before[n], t) for n, t in model.state_dict().items())
    assert pm.verbalizer.to_dict() == TASK_FILE.prompt().verbalizer(TASK).to_dict()


def test_search_labels_command_writes_a_ranked_list_and_a_yaml_block(gpt_dir, tmp_path, capsys):
    out = tmp_path / "labels"
    task = DEMO_DATA / "task.yaml"
    code = main(
        f"search-labels --task {task} --data-dir {DEMO_DATA} --model {gpt_dir} --top-k 4 --candidates 5 "
        f"--criterion petal --out {out}".split()
    )
    assert code == 0
    result = json.loads((out / "labels.json").read_text())
    assert result["criterion"] == "petal" and len(result["ranked"]) == 5
    block = yaml.safe_load((out / "verbalizer.yaml").read_text())
    [spec] = block.values()
    assert spec["label_words"] == result["ranked"][0]["words"]
    assert "| rank | label words |" in (out / "labels.md").read_text()
    assert "winner as YAML" in capsys.readouterr().out


def test_search_labels_reranks_with_the_backend_options_it_is_given(gpt_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(DEMO_DATA / "train.tsv", data / "train.tsv")
    shutil.copy(DEMO_DATA / "test.tsv", data / "dev.tsv")
    base = f"search-labels --task {DEMO_DATA / 'task.yaml'} --data-dir {data} --model {gpt_dir} "
    base += "--top-k 3 --candidates 3 --rerank finetune --rerank-top 1 --rerank-steps 1 "
    for extra, embeddings in (("", "frozen"), ("--full-embeddings train ", "train")):
        out = tmp_path / embeddings
        assert main(f"{base}{extra}--out {out}".split()) == 0
        result = json.loads((out / "labels.json").read_text())
        assert result["rerank_tuning"]["backend"] == "full"
        assert result["rerank_tuning"]["embeddings"] == embeddings
        assert result["rerank_tuning"]["steps"] == 1
        assert result["ranked"][0]["finetuned_dev_accuracy"] is not None


@pytest.mark.parametrize(
    "extra, message",
    [
        ("--full-embeddings train", "apply to re-ranking only: add --rerank finetune"),
        ("--rerank finetune --lora-rank 4", "options for lora, which backend 'full' does not use"),
        ("--rerank finetune", "ranks by dev accuracy, and"),
    ],
)
def test_search_labels_refuses_a_reranking_it_cannot_do_before_loading(tmp_path, capsys, extra, message):
    # A model path that does not exist: each error must come before the model would load.
    out, model = tmp_path / "labels", tmp_path / "no-model"
    argv = f"search-labels --task {DEMO_DATA / 'task.yaml'} --data-dir {DEMO_DATA} --model {model} {extra} "
    assert main(f"{argv}--out {out}".split()) != 0
    shown = capsys.readouterr()
    assert message in shown.out + shown.err
    assert not out.exists()
