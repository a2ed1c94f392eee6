"""The estimator API: fit, predict, predict_proba, save, load on a shared base."""

from __future__ import annotations

import numpy as np
import pytest

from lmbff.classifier import PromptClassifier
from lmbff.pretrained import load_model


def data(n: int = 6):
    texts = [f"good good good {i}" for i in range(n)] + [f"bad bad bad {i}" for i in range(n)]
    return texts, ["1"] * n + ["0"] * n


@pytest.mark.parametrize("backend", ["ln", "prefix+ln"])
def test_fit_predict_save_load(backend, bert_dir, tmp_path):
    texts, labels = data()
    clf = PromptClassifier(
        "SST-2", str(bert_dir), backend=backend, max_steps=4, batch_size=4, eval_every=0, learning_rate=1e-2
    )
    clf.fit(texts, labels)
    probabilities = clf.predict_proba(texts)
    assert probabilities.shape == (12, 2) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert clf.predict(texts) == [["0", "1"][i] for i in probabilities.argmax(1)]
    assert clf._trainer.saved_tuning.to_dict()["backend"] == backend  # learning itself: test_train.py
    clf.save(tmp_path / "clf")
    shared = load_model(str(bert_dir))  # a fresh, untouched base model
    again = PromptClassifier.load(tmp_path / "clf", loaded=shared)
    assert np.array_equal(again.predict_proba(texts), probabilities)
    again.attached.detach()


def test_inputs_are_checked(bert_dir):
    clf = PromptClassifier("RTE", str(bert_dir), max_steps=1)
    with pytest.raises(ValueError, match="input 0 has 1 fields; task RTE reads"):
        clf.predict_proba(["only one field"])
    assert clf.predict_proba([("a premise", "a hypothesis")]).shape == (1, 2)
    with pytest.raises(TypeError, match="unknown training arguments"):
        PromptClassifier("SST-2", str(bert_dir), steps=3)
    with pytest.raises(RuntimeError, match="fit the classifier"):
        clf.save("nowhere")
