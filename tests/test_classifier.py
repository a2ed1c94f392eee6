"""The estimator API: scikit-learn's contract, every input shape, label types, clear errors, saving."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from lmbff.classifier import PromptClassifier, shared_base
from lmbff.errors import ConfigError
from lmbff.train import TrainingArguments

TINY = dict(max_steps=4, batch_size=4, eval_every=0, learning_rate=1e-2, verbose=False)


def data(n: int = 6):
    texts = [f"good good good {i}" for i in range(n)] + [f"bad bad bad {i}" for i in range(n)]
    return texts, ["1"] * n + ["0"] * n


@pytest.mark.parametrize("backend", ["ln", "prefix+ln"])
def test_fit_predict_save_load(backend, bert_dir, tmp_path):
    texts, labels = data()
    clf = PromptClassifier("SST-2", str(bert_dir), backend=backend, **TINY)
    clf.fit(texts, labels)
    probabilities = clf.predict_proba(texts)
    assert probabilities.shape == (12, 2) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert clf.predict(texts).tolist() == [["0", "1"][i] for i in probabilities.argmax(1)]
    assert clf.state_.tuning.to_dict()["backend"] == backend  # learning itself: test_train.py
    clf.save(tmp_path / "clf")
    again = PromptClassifier.load(tmp_path / "clf")
    assert np.array_equal(again.predict_proba(texts), probabilities)
    assert np.array_equal(clf.predict_proba(texts), probabilities)  # the two take turns on one base


def test_a_bare_string_is_refused_not_read_letter_by_letter(bert_dir):
    """Seen: predict("Free prize, call now") returned 20 predictions, one per character."""
    clf = PromptClassifier("SST-2", str(bert_dir), **TINY).fit(*data())
    with pytest.raises(TypeError, match="not a single string"):
        clf.predict("Free prize, call now")
    assert clf.predict(["Free prize, call now"]).shape == (1,)


def test_inputs_of_every_shape_give_the_same_scores(bert_dir):
    """Seen: predict(pd.DataFrame({"text_a": [...]})) made one prediction, on the column name."""
    import datasets
    import pandas as pd

    texts, labels = data()
    clf = PromptClassifier("SST-2", str(bert_dir), **TINY).fit(texts, labels)
    expected = clf.predict_proba(texts)
    same = [
        pd.DataFrame({"text_a": texts}),
        pd.DataFrame({"sentence": texts}),  # a one-column frame, whatever its name
        pd.DataFrame({"text_a": texts, "label": labels}),  # extra columns are ignored
        pd.Series(texts),
        np.array(texts),
        np.array(texts)[:, None],
        [{"text_a": t} for t in texts],
        [(t,) for t in texts],
        datasets.Dataset.from_dict({"text_a": texts}),
    ]
    for inputs in same:
        assert np.array_equal(clf.predict_proba(inputs), expected), type(inputs)
    renamed = PromptClassifier("SST-2", str(bert_dir), columns={"sentence": "text_a"}, **TINY)
    frame = pd.DataFrame({"sentence": texts, "other": labels})
    assert np.array_equal(renamed.fit(frame, labels).predict_proba(frame), expected)
    dataset = datasets.Dataset.from_dict({"sentence": texts, "other": labels})
    assert np.array_equal(renamed.predict_proba(dataset), expected)
    with pytest.raises(ValueError, match=r"no column for \['text_a'\].*columns=\{"):
        clf.predict_proba(frame)


def test_pair_inputs(bert_dir):
    import pandas as pd

    pairs = [("a premise", "a hypothesis"), ("it rains", "it is wet")] * 3
    labels = ["entailment", "not_entailment"] * 3
    clf = PromptClassifier("RTE", str(bert_dir), **TINY).fit(pairs, labels)
    expected = clf.predict_proba(pairs)
    frame = pd.DataFrame(pairs, columns=["text_a", "text_b"])
    assert np.array_equal(clf.predict_proba(frame), expected)
    assert np.array_equal(clf.predict_proba(np.array(pairs)), expected)
    with pytest.raises(ValueError, match="input 0: one text, but the task reads 2 fields"):
        clf.predict_proba(["only one field"])
    with pytest.raises(ValueError, match=r"input 1: field 'text_b' is missing"):
        clf.predict_proba([{"text_a": "a", "text_b": "b"}, {"text_a": "c"}])


def test_labels_keep_their_type(bert_dir):
    """Integer labels were `tuple.index(x): x not in tuple`; now classes_ and predict keep them."""
    texts, labels = data()
    clf = PromptClassifier("SST-2", str(bert_dir), **TINY).fit(texts, [int(v) for v in labels])
    assert clf.classes_.tolist() == [0, 1] and clf.classes_.dtype.kind == "i"
    predicted = clf.predict(texts)
    assert set(predicted.tolist()) <= {0, 1} and predicted.dtype.kind == "i"
    assert 0 <= clf.score(texts, [int(v) for v in labels]) <= 1
    numpy_labels = PromptClassifier("SST-2", str(bert_dir), **TINY).fit(
        texts, np.array([int(v) for v in labels])
    )
    assert numpy_labels.classes_.tolist() == [0, 1]


def test_bad_labels_and_inputs_are_clear_errors(bert_dir):
    texts, labels = data()
    clf = PromptClassifier("SST-2", str(bert_dir), **TINY)
    with pytest.raises(ValueError, match=r"input 0: field 'label' is 'positive', not a label of the task"):
        clf.fit(texts, ["positive"] * len(texts))
    with pytest.raises(ValueError, match="12 inputs but 11 labels"):
        clf.fit(texts, labels[:-1])
    with pytest.raises(ValueError, match="11 inputs but 12 labels"):  # was silently accepted
        clf.fit(texts[:-1], labels)
    with pytest.raises(ValueError, match="input 2: is None"):
        clf.fit([*texts[:2], None, *texts[3:]], labels)
    with pytest.raises(ValueError, match="input 3: field 'label' is None"):
        clf.fit(texts, [*labels[:3], None, *labels[4:]])
    with pytest.raises(
        ValueError, match=r"input 0: field 'text_a' is missing \(the example has \['text'\]\)"
    ):
        clf.fit([{"text": t} for t in texts], labels)
    with pytest.raises(ValueError, match="input 1: expected a text, a tuple or a dict, got int"):
        clf.fit(["fine", 3, *texts[2:]], labels)
    with pytest.raises(ValueError, match="input 1: field 'text_a' is a float"):
        clf.fit([{"text_a": "fine"}, {"text_a": float("nan")}, *texts[2:]], labels)
    with pytest.raises(ValueError, match="no inputs"):
        clf.fit([], [])
    with pytest.raises(ValueError, match="method must be"):
        PromptClassifier("SST-2", str(bert_dir), method="magic").fit(texts, labels)
    with pytest.raises(ConfigError, match="unknown tuning backend"):
        PromptClassifier("SST-2", str(bert_dir), backend="nope").fit(texts, labels)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        clf.save("nowhere")
    with pytest.raises(NotFittedError):
        PromptClassifier("SST-2", str(bert_dir)).predict(texts)


def test_every_training_argument_is_a_parameter():
    params = inspect.signature(PromptClassifier).parameters
    from dataclasses import fields

    assert {f.name for f in fields(TrainingArguments)} <= set(params)
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())  # scikit-learn needs no **kwargs


def test_scikit_learn_contract(bert_dir):
    """Seen: clone failed (no get_params), cross_val_score failed (no score, no tags), Pipeline's
    predict failed, repr was the object's address."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    texts, labels = data(8)
    clf = PromptClassifier("SST-2", str(bert_dir), **TINY)
    text = repr(clf)
    assert text.startswith("PromptClassifier(") and "task='SST-2'" in text and "0x" not in text
    copy = clone(clf)
    assert copy.get_params() == clf.get_params() and copy is not clf
    assert clf.set_params(max_steps=2) is clf and clf.max_steps == 2
    assert clf.__sklearn_tags__().input_tags.string

    scores = cross_val_score(clf, texts, labels, cv=2)
    assert scores.shape == (2,) and all(0 <= s <= 1 for s in scores)

    lower = FunctionTransformer(lambda batch: [t.lower() for t in batch])
    pipe = Pipeline([("lower", lower), ("clf", PromptClassifier("SST-2", str(bert_dir), **TINY))])
    pipe.fit([t.upper() for t in texts], labels)
    fitted = pipe.named_steps["clf"]
    assert np.array_equal(pipe.predict_proba([t.upper() for t in texts]), fitted.predict_proba(texts))

    search = GridSearchCV(clf, {"learning_rate": [1e-3, 1e-2]}, cv=2)
    search.fit(texts, labels)
    assert search.best_params_["learning_rate"] in (1e-3, 1e-2)
    assert search.best_estimator_.predict(texts).shape == (16,)


def test_clones_share_the_base_without_changing_each_other(bert_dir):
    """Fitting a second classifier on the shared base leaves the first one's scores as they were."""
    texts, labels = data()
    first = PromptClassifier("SST-2", str(bert_dir), **TINY).fit(texts, labels)
    before = first.predict_proba(texts)
    second = PromptClassifier("SST-2", str(bert_dir), backend="prefix+ln", **{**TINY, "seed": 7})
    second.fit(texts, list(reversed(labels)))
    assert first.base_ is second.base_ is shared_base(str(bert_dir))
    assert not np.array_equal(second.predict_proba(texts), before)
    assert np.array_equal(first.predict_proba(texts), before)
    first.fit(texts, labels)  # a refit starts from the base, not from the last fit
    assert np.array_equal(first.predict_proba(texts), before)


def test_progress_is_shown_unless_verbose_is_false(bert_dir, capsys):
    texts, labels = data()
    PromptClassifier("SST-2", str(bert_dir), **{**TINY, "verbose": True}).fit(texts, labels).predict(texts)
    err = capsys.readouterr().err
    assert "training" in err and "scoring" in err and "backend lora" in err
    PromptClassifier("SST-2", str(bert_dir), **TINY).fit(texts, labels).predict(texts)
    err = capsys.readouterr().err
    assert "training" not in err and "scoring" not in err


def test_zero_shot_without_a_yaml(bert_dir, tmp_path):
    texts = ["a football match", "the world bank", "the election"]
    clf = PromptClassifier.zero_shot(
        labels=["World", "Sports"],
        template="{{ text }} Topic: {{ mask }}.",
        label_words={"World": "world", "Sports": "sports"},
        model=str(bert_dir),
        verbose=False,
    )
    assert clf.classes_.tolist() == ["World", "Sports"]
    assert clf.prompt_model_.calibration is not None  # calibrated by default
    predicted = clf.predict(texts)
    assert set(predicted.tolist()) <= {"World", "Sports"}
    raw = PromptClassifier.zero_shot(
        ["World", "Sports"],
        "{{ text }} Topic: {{ mask }}.",
        ["world", "sports"],
        model=str(bert_dir),
        calibrate=False,
        verbose=False,
    )
    assert raw.prompt_model_.calibration is None
    assert not np.allclose(raw.predict_proba(texts), clf.predict_proba(texts))
    numbered = PromptClassifier.zero_shot(
        [0, 1], "{{ text }} It was {{ mask }}.", ["bad", "good"], model=str(bert_dir), verbose=False
    )
    assert numbered.classes_.tolist() == [0, 1] and numbered.predict(texts).dtype.kind == "i"
    clf.save(tmp_path / "zs")
    assert np.array_equal(
        PromptClassifier.load(tmp_path / "zs").predict_proba(texts), clf.predict_proba(texts)
    )
    from prompts.library import TaskFileError
    from prompts.template import TemplateError

    with pytest.raises(TemplateError, match="no mask slot"):
        PromptClassifier.zero_shot(["a", "b"], "{{ text }} is nothing", model=str(bert_dir))
    with pytest.raises(TaskFileError, match="empty label word"):
        PromptClassifier.zero_shot(["a", "b"], "{{ text }} {{ mask }}", ["x", " "], model=str(bert_dir))
    with pytest.raises(TaskFileError, match="labels repeat"):
        PromptClassifier.zero_shot(["a", "a"], "{{ text }} {{ mask }}", model=str(bert_dir))


def test_calibration_is_a_parameter(bert_dir):
    texts, labels = data()
    plain = PromptClassifier("SST-2", str(bert_dir), **TINY).fit(texts, labels)
    assert plain.prompt_model_.calibration is None  # "auto": off after tuning
    calibrated = PromptClassifier("SST-2", str(bert_dir), calibrate=True, **TINY).fit(texts, labels)
    assert calibrated.prompt_model_.calibration is not None
    zero = PromptClassifier("SST-2", str(bert_dir), method="zero-shot", verbose=False).fit(texts, labels)
    assert zero.prompt_model_.calibration is not None and zero.state_ is None
    off = PromptClassifier("SST-2", str(bert_dir), method="zero-shot", calibrate=False, verbose=False)
    assert off.fit(texts, labels).prompt_model_.calibration is None


def test_a_failed_fit_leaves_the_shared_base_as_it_was(bert_dir):
    texts, labels = data()
    other = PromptClassifier("SST-2", str(bert_dir), **TINY).fit(texts, labels)
    before = other.predict_proba(texts)
    broken = PromptClassifier(  # the prefixes are added, then LoRA fails
        "SST-2",
        str(bert_dir),
        backend="prefix+lora",
        backend_options={"lora": {"target_modules": ["nothing"]}},
        **TINY,
    )
    with pytest.raises(ValueError, match="LoRA on"):
        broken.fit(texts, labels)
    base = shared_base(str(bert_dir)).model
    assert not hasattr(base, "lmbff_tuning") and not any("lora_" in n for n, _ in base.named_parameters())
    assert np.array_equal(other.predict_proba(texts), before)


def test_few_shot_without_a_yaml_file(bert_dir, tmp_path):
    """Issue 36: the constructor twin of zero_shot, fitted like any classifier (it was found only in a
    docstring, as PromptClassifier(PromptClassifier.zero_shot(...).task))."""
    from sklearn.base import clone

    texts = ["the card has not come", "where is my new card", "link my card", "connect the card to my app"]
    intents = ["card_arrival", "card_arrival", "card_linking", "card_linking"]
    clf = PromptClassifier(
        model=str(bert_dir),
        labels=["card_arrival", "card_linking"],
        template="{{ text }} Topic: {{ mask }}.",
        label_words={"card_arrival": "arrival", "card_linking": "linking"},
        backend="ln",
        **TINY,
    )
    clf.fit(texts, intents)
    assert clf.classes_.tolist() == ["card_arrival", "card_linking"] and clf.task_.name == "few-shot"
    probabilities = clf.predict_proba(texts)
    assert clone(clf).get_params()["labels"] == ["card_arrival", "card_linking"]
    clf.save(tmp_path / "intents")
    again = PromptClassifier.load(tmp_path / "intents")
    assert np.array_equal(again.predict_proba(texts), probabilities)
    assert again.get_params()["template"] == "{{ text }} Topic: {{ mask }}."
    with pytest.raises(ValueError, match="not both"):
        PromptClassifier("SST-2", str(bert_dir), labels=["a", "b"]).fit(texts, ["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="label_words= goes with labels="):
        PromptClassifier("SST-2", str(bert_dir), label_words=["a", "b"]).fit(texts, ["0", "1", "0", "1"])
