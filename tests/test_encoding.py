"""Token ids around the slot: mask placement, special tokens, and truncation that spares the template."""

import pytest

from lmbff.data import Example
from lmbff.model import PromptModel
from prompts.encoding import PromptEncoder, PromptTooLong, share_budget
from prompts.library import load_task
from prompts.template import Template
from prompts.tokenization import TokenizerAdapter
from prompts.verbalizer import Verbalizer

LONG = " ".join(f"word{i % 50} is long" for i in range(3400))  # more than 10,000 words


def sst2_model(model, tokenizer, kind, **kw):
    task_file = load_task("SST-2")
    return PromptModel.for_task(model, tokenizer, task_file.task, task_file.prompt(), kind=kind, **kw)


def test_mask_placement_and_special_tokens(any_model):
    model, tokenizer, kind = any_model
    pm = sst2_model(model, tokenizer, kind)
    enc = pm.encode([Example({"text_a": "a gem of a film ."})])[0]
    expected = tokenizer("a gem of a film . It was", add_special_tokens=False)["input_ids"]
    assert enc.prefix_ids[1:] == expected  # after the one leading special token (CLS / <s> / BOS)
    batch = pm.collate([enc])
    ids = batch.input_ids[0].tolist()
    if kind == "masked":
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert ids[batch.positions[0]] == tokenizer.mask_token_id
        assert ids.count(tokenizer.mask_token_id) == 1
        assert tokenizer.decode(enc.suffix_ids, skip_special_tokens=True).strip() == "."
    else:
        # Causal next-token: a start token, the prompt up to the slot, nothing after it.
        assert ids[0] == tokenizer.bos_token_id and batch.positions[0] == len(ids) - 1
        assert pm.mode == "next_token"


@pytest.mark.parametrize("max_length", [32, 128])
def test_mask_and_template_survive_a_10000_word_input(any_model, max_length):
    model, tokenizer, kind = any_model
    pm = sst2_model(model, tokenizer, kind, max_length=max_length)
    assert len(LONG.split()) > 10_000
    enc = pm.encode([Example({"text_a": LONG})])[0]
    assert enc.length(1) <= max_length
    assert enc.truncated["text_a"] > 9_000
    prefix = tokenizer.decode(enc.prefix_ids, skip_special_tokens=True).lower()
    assert prefix.endswith("it was") and prefix.startswith("word0 is long")
    suffix = tokenizer.decode(enc.suffix_ids, skip_special_tokens=True)
    assert suffix.strip() == "."
    batch = pm.collate([enc])
    if kind == "masked":
        assert batch.input_ids[0, batch.positions[0]] == tokenizer.mask_token_id


def test_long_premise_is_cut_before_a_short_hypothesis(bert):
    model, tokenizer = bert
    task_file = load_task("MNLI")
    pm = PromptModel.for_task(
        model, tokenizer, task_file.task, task_file.prompt(), kind="masked", max_length=64
    )
    enc = pm.encode([Example({"text_a": LONG, "text_b": "The dog sleeps."})])[0]
    assert enc.length(1) <= 64
    assert set(enc.truncated) == {"text_a"}
    assert tokenizer.decode(enc.suffix_ids, skip_special_tokens=True) == ", the dog sleeps."


def test_two_long_fields_share_the_budget(bert):
    model, tokenizer = bert
    task_file = load_task("MRPC")
    pm = PromptModel.for_task(
        model, tokenizer, task_file.task, task_file.prompt(), kind="masked", max_length=100
    )
    enc = pm.encode([Example({"text_a": LONG, "text_b": LONG})])[0]
    assert 95 <= enc.length(1) <= 100
    cut_a, cut_b = enc.truncated["text_a"], enc.truncated["text_b"]
    assert abs(cut_a - cut_b) <= 2


def test_field_limit_applies_even_when_the_prompt_fits(bert):
    model, tokenizer = bert
    task_file = load_task("RTE")  # LM-BFF's first_sent_limit 240
    pm = PromptModel.for_task(
        model, tokenizer, task_file.task, task_file.prompt(), kind="masked", max_length=512
    )
    premise = " ".join(["alpha"] * 300)
    enc = pm.encode([Example({"text_a": premise, "text_b": "Yes."})])[0]
    assert enc.truncated == {"text_a": 60}
    assert enc.length(1) < 300


def test_truncate_side_start_keeps_the_end(bert_tokenizer):
    adapter = TokenizerAdapter(bert_tokenizer, "masked")
    template = Template("{{ text_a }} It was {{ mask }}.")
    encoder = PromptEncoder(template, adapter, max_length=12, truncate_side={"text_a": "start"})
    enc = encoder.encode({"text_a": "one two three four five six seven eight nine ten eleven twelve"})
    # [CLS] + 6 words + "it was" + [MASK] + "." + [SEP] = 12 tokens
    assert (
        bert_tokenizer.decode(enc.prefix_ids, skip_special_tokens=True)
        == "seven eight nine ten eleven twelve it was"
    )
    assert enc.truncated == {"text_a": 6}


def test_template_longer_than_the_budget_is_an_error(bert_tokenizer):
    adapter = TokenizerAdapter(bert_tokenizer, "masked")
    template = Template(
        "{{ text_a }} " + "this template alone is very long . " * 10 + "{{ mask }}", name="wordy"
    )
    with pytest.raises(PromptTooLong, match=r"wordy.*max_length=16"):
        PromptEncoder(template, adapter, max_length=16).encode({"text_a": "short"})


def test_share_budget():
    assert share_budget({"a": 10, "b": 3}, 20) == {"a": 10, "b": 3}
    assert share_budget({"a": 100, "b": 3}, 20) == {"a": 17, "b": 3}
    assert share_budget({"a": 100, "b": 100}, 21) == {"a": 11, "b": 10}
    assert share_budget({"a": 5, "b": 5}, -3) == {"a": 0, "b": 0}


def test_slot_at_the_start_takes_no_leading_space(roberta_tokenizer):
    adapter = TokenizerAdapter(roberta_tokenizer, "masked")
    trec = load_task("TREC")
    encoder = PromptEncoder(trec.prompt().template, adapter)
    assert encoder.slot_after_space is False
    words = trec.prompt().verbalizer(trec.task).tokenize(adapter, after_space=False)
    assert adapter.describe(list(words.word_ids[0]))[0] == "Description"


def test_verbalizer_errors():
    with pytest.raises(ValueError, match="label '1' has no label word"):
        Verbalizer({"0": "bad"}, ["0", "1"])
    with pytest.raises(ValueError, match="'2' is not a label of the task"):
        Verbalizer({"0": "bad", "2": "good"}, ["0", "1"])
    with pytest.raises(ValueError, match="empty label word"):
        Verbalizer({"0": "bad", "1": [" "]}, ["0", "1"])
