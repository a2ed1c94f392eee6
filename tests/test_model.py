"""PromptModel scores, checked against hand computations from the models' full logits."""

import numpy as np
import pytest
import torch

from lmbff.data import Example
from lmbff.evaluate import apply_calibration
from lmbff.model import PromptModel, regression_prediction, regression_targets
from prompts.library import load_task
from prompts.template import Template
from prompts.verbalizer import Verbalizer

SENTENCES = [
    "a gem of a film .",
    "dull and far too long .",
    "it was fine , i guess",
    "great acting",
    "no .",
    "the plot is a mess but the music is lovely and the cast does its best .",
]


def examples(texts=SENTENCES):
    return [Example({"text_a": t}) for t in texts]


def full_logprobs(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_masked_fast_path_equals_hand_computation(family, request):
    model, tokenizer = request.getfixturevalue(family)
    kind = "masked"
    task_file = load_task("SST-2")
    pm = PromptModel.for_task(model, tokenizer, task_file.task, task_file.prompt(), kind=kind)
    assert pm.fast_path
    got = pm.predict_log_scores(examples(), batch_size=4)
    word_ids = [ids[0] for ids in pm.words.word_ids]
    for row, enc in zip(got, pm.encode(examples()), strict=True):
        ids = [*enc.prefix_ids, tokenizer.mask_token_id, *enc.suffix_ids]
        logits = full_logprobs(model, ids)[len(enc.prefix_ids), word_ids]
        np.testing.assert_allclose(row, logits.log_softmax(-1).numpy(), atol=1e-5)
        assert np.isclose(np.exp(row).sum(), 1.0, atol=1e-5)


def test_fast_path_never_computes_vocabulary_logits(any_model):
    model, tokenizer, kind = any_model
    task_file = load_task("SST-2")
    pm = PromptModel.for_task(model, tokenizer, task_file.task, task_file.prompt(), kind=kind)
    shapes = []
    handle = model.get_output_embeddings().register_forward_hook(
        lambda m, a, out: shapes.append(tuple(out.shape))
    )
    try:
        pm.predict_log_scores(examples(), batch_size=3)
    finally:
        handle.remove()
    assert shapes and all(shape[-2] == 0 for shape in shapes)  # the output layer only ever saw empty input


def test_causal_next_token_equals_hand_computation(gpt):
    model, tokenizer = gpt
    task_file = load_task("SST-5")
    pm = PromptModel.for_task(model, tokenizer, task_file.task, task_file.prompt(), kind="causal")
    assert pm.mode == "next_token" and pm.fast_path
    got = pm.predict_log_scores(examples(), batch_size=4)
    word_ids = [ids[0] for ids in pm.words.word_ids]
    for row, enc in zip(got, pm.encode(examples()), strict=True):
        logits = full_logprobs(model, enc.prefix_ids)[-1, word_ids]
        np.testing.assert_allclose(row, logits.log_softmax(-1).numpy(), atol=1e-5)


def test_causal_mid_prompt_slot_scores_the_filled_sequence(gpt):
    """TREC's slot starts the prompt: each label's filled sequence is scored as a whole."""
    model, tokenizer = gpt
    task_file = load_task("TREC")
    pm = PromptModel.for_task(model, tokenizer, task_file.task, task_file.prompt(), kind="causal")
    assert pm.mode == "sequence" and not pm.fast_path
    questions = examples(["Who wrote Hamlet ?", "How far is the moon ?", "What is a gem ?"])
    got = pm.predict_log_scores(questions, batch_size=2)
    for row, example in zip(got, questions, strict=True):
        expected = []
        for word in ["Description", "Entity", "Expression", "Human", "Location", "Number"]:
            word_ids = tokenizer(word, add_special_tokens=False)["input_ids"]
            rest = tokenizer(": " + example.fields["text_a"], add_special_tokens=False)["input_ids"]
            ids = [tokenizer.bos_token_id, *word_ids, *rest]
            logprobs = full_logprobs(model, ids)
            expected.append(sum(float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids))))
        np.testing.assert_allclose(row, torch.tensor(expected).log_softmax(-1).numpy(), atol=1e-4)


@pytest.mark.parametrize(
    "text",
    [
        "Review: {{ text_a }} All in all it was {{ mask }} , said the critic .",
        "{{ text_a }} It was {{ mask }}",
    ],
)
def test_causal_shared_prefix_equals_one_row_per_word(gpt, text):
    """Inference runs the text before the slot once (left-padded, cached) and every word's continuation
    on it; the scores equal those of scoring each filled passage as its own row."""
    model, tokenizer = gpt
    verbalizer = Verbalizer(
        {"neg": ["terrible", "dreadfully boring"], "pos": "greatness-filled"}, ["neg", "pos"]
    )
    pm = PromptModel(model, tokenizer, Template(text), verbalizer, kind="causal")
    assert pm.shares_prefix and not pm.fast_path and max(len(w) for w in pm.words.word_ids) > 1
    encodings = pm.encode(examples())  # prefixes of different lengths: the left padding is exercised
    with torch.no_grad():
        shared = pm.shared_prefix_log_scores(encodings).numpy()
        rows = pm.class_log_scores(pm.collate(encodings)).numpy()
    np.testing.assert_allclose(shared, rows, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(pm.predict_log_scores(examples(), batch_size=4), rows, rtol=1e-5, atol=1e-4)


def test_no_shared_prefix_with_modules_that_act_on_whole_sequences(fresh_model):
    from lmbff.tuning import make_config
    from lmbff.tuning.injection import detach

    model, tokenizer, kind = fresh_model("gpt")
    verbalizer = Verbalizer({"neg": "dreadfully boring", "pos": "great"}, ["neg", "pos"])
    pm = PromptModel(model, tokenizer, Template("{{ text_a }} It was {{ mask }} ."), verbalizer, kind=kind)
    assert pm.shares_prefix
    make_config("soft-prompt").apply(model)
    assert not pm.shares_prefix
    detach(model)
    assert pm.shares_prefix


def test_multi_token_words_with_several_masks(bert):
    model, tokenizer = bert
    verbalizer = Verbalizer({"neg": "terrible", "pos": "greatness-filled"}, ["neg", "pos"])
    pm = PromptModel(model, tokenizer, Template("{{ text_a }} It was {{ mask }}."), verbalizer, kind="masked")
    lengths = [len(w) for w in pm.words.word_ids]
    assert lengths[0] == 1 and lengths[1] > 2 and not pm.fast_path
    got = pm.predict_log_scores(examples(), batch_size=4)
    for row, enc in zip(got, pm.encode(examples()), strict=True):
        scores = []
        for word in pm.words.word_ids:
            ids = enc.prefix_ids + [tokenizer.mask_token_id] * len(word) + enc.suffix_ids
            logprobs = full_logprobs(model, ids)
            start = len(enc.prefix_ids)
            scores.append(np.mean([float(logprobs[start + i, tok]) for i, tok in enumerate(word)]))
        np.testing.assert_allclose(row, torch.tensor(scores).log_softmax(-1).numpy(), atol=1e-5)


def test_multi_token_words_for_a_causal_lm(gpt):
    model, tokenizer = gpt
    verbalizer = Verbalizer({"neg": "terrible", "pos": "wonderfully grand"}, ["neg", "pos"])
    pm = PromptModel(model, tokenizer, Template("{{ text_a }} It was {{ mask }}."), verbalizer, kind="causal")
    assert pm.mode == "next_token" and not pm.fast_path
    got = pm.predict_log_scores(examples(), batch_size=3)
    for row, enc in zip(got, pm.encode(examples()), strict=True):
        scores = []
        for word in pm.words.word_ids:
            ids = enc.prefix_ids + list(word)
            logprobs = full_logprobs(model, ids)
            n = len(enc.prefix_ids)
            scores.append(sum(float(logprobs[n - 1 + i, tok]) for i, tok in enumerate(word)))
        np.testing.assert_allclose(row, torch.tensor(scores).log_softmax(-1).numpy(), atol=1e-5)


def test_several_words_per_label_average_their_probabilities(roberta):
    model, tokenizer = roberta
    template = Template("{{ text_a }} It was {{ mask }}.")
    multi = PromptModel(
        model, tokenizer, template, Verbalizer({"neg": ["bad", "terrible"], "pos": "great"}), kind="masked"
    )
    single = PromptModel(
        model, tokenizer, template, Verbalizer({"neg": "bad", "pos": "terrible", "x": "great"}), kind="masked"
    )
    got = np.exp(multi.predict_log_scores(examples()))
    three = np.exp(single.predict_log_scores(examples()))  # probabilities of bad, terrible, great
    expected_neg = (three[:, 0] + three[:, 1]) / 2
    expected = np.stack([expected_neg, three[:, 2]], 1)
    np.testing.assert_allclose(got, expected / expected.sum(1, keepdims=True), atol=1e-5)


def test_batching_and_length_sorting_do_not_change_scores(any_model):
    model, tokenizer, kind = any_model
    for task in ("SST-2", "TREC"):
        task_file = load_task(task)
        pm = PromptModel.for_task(model, tokenizer, task_file.task, task_file.prompt(), kind=kind)
        one = pm.predict_log_scores(examples(), batch_size=1)
        many = pm.predict_log_scores(examples(), batch_size=5)
        np.testing.assert_allclose(one, many, atol=1e-5)


def test_contextual_calibration(roberta):
    model, tokenizer = roberta
    task_file = load_task("SST-2")
    pm = PromptModel.for_task(model, tokenizer, task_file.task, task_file.prompt(), kind="masked")
    raw = pm.predict_log_scores(examples())
    content_free = np.exp(
        pm.predict_log_scores([Example({"text_a": t}) for t in ("N/A", "", "[MASK]")])
    ).mean(0)
    returned = pm.calibrate()
    np.testing.assert_allclose(returned, content_free, atol=1e-6)
    calibrated = np.exp(pm.predict_log_scores(examples()))
    by_hand = np.exp(raw) / content_free
    np.testing.assert_allclose(calibrated, by_hand / by_hand.sum(1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(np.exp(apply_calibration(raw, content_free)), calibrated, atol=1e-5)
    # The content-free inputs' mean prediction, calibrated, is uniform: what calibration is for.
    mean = np.log(content_free)[None]
    np.testing.assert_allclose(np.exp(apply_calibration(mean, returned)), [[0.5, 0.5]], atol=1e-6)
    shifted = np.exp(apply_calibration(mean, returned[::-1]))  # the wrong vector does not do it
    assert not np.allclose(shifted, [[0.5, 0.5]], atol=1e-3) or np.allclose(returned, 0.5, atol=1e-3)


def test_regression_readout_and_targets():
    log_scores = np.log(np.array([[0.8, 0.2], [0.1, 0.9]]))
    np.testing.assert_allclose(regression_prediction(log_scores, (0.0, 5.0)), [1.0, 4.5])
    np.testing.assert_allclose(
        regression_targets([0.0, 2.5, 5.0], (0.0, 5.0)).numpy(), [[1, 0], [0.5, 0.5], [0, 1]]
    )


def test_mode_must_fit_the_model_kind(bert):
    model, tokenizer = bert
    with pytest.raises(ValueError, match="does not fit a masked LM"):
        PromptModel(
            model,
            tokenizer,
            Template("{{ text_a }} {{ mask }}"),
            Verbalizer({"a": "good", "b": "bad"}),
            kind="masked",
            mode="sequence",
        )


def test_unknown_label_word_is_an_error(bert):
    model, tokenizer = bert
    with pytest.raises(ValueError, match="unknown to the tokenizer"):
        PromptModel(
            model,
            tokenizer,
            Template("{{ text_a }} {{ mask }}"),
            Verbalizer({"a": "good", "b": "☃"}),
            kind="masked",
        )


@pytest.mark.parametrize("chunk_rows", [1, 3, 1000])
def test_target_log_probs_in_chunks_equal_the_full_log_softmax(gpt, monkeypatch, chunk_rows):
    """The full-vocabulary log-softmax runs in chunks sized by a memory budget, in place when nothing
    needs gradients; every chunk size and both paths give each position's log P(target), and training
    still gets gradients through it."""
    import lmbff.model as model_module

    model, tokenizer = gpt
    pm = PromptModel(
        model,
        tokenizer,
        Template("{{ text_a }} It was {{ mask }} ."),
        Verbalizer({"a": "good", "b": "bad"}, ["a", "b"]),
        kind="causal",
    )
    vocab = model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(model_module, "_LOGITS_CHUNK_BYTES", chunk_rows * 4 * vocab)
    assert model_module.logits_chunk_rows(vocab) == chunk_rows
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(7, model.config.hidden_size, generator=generator)
    targets = torch.randint(0, vocab, (7,), generator=generator)
    expected = pm._output_logits(features).log_softmax(-1)[torch.arange(7), targets]
    with torch.no_grad():
        scored = pm._target_log_probs(features, targets)
    torch.testing.assert_close(scored, expected.detach(), rtol=1e-5, atol=1e-5)
    trained = pm._target_log_probs(features.requires_grad_(), targets)
    torch.testing.assert_close(trained.detach(), expected.detach(), rtol=1e-5, atol=1e-5)
    trained.sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
