"""Model loading: kind detection, clear errors for models that cannot be found, no downloads."""

import pytest

from lmbff.pretrained import ModelNotFound, load_model


def test_loads_saved_tiny_models_with_their_kind(bert_dir, gpt_dir):
    assert load_model(str(bert_dir)).kind == "masked"
    loaded = load_model(str(gpt_dir))
    assert loaded.kind == "causal" and not loaded.model.training


def test_missing_folder_says_so(tmp_path):
    with pytest.raises(ModelNotFound, match="does not exist"):
        load_model(str(tmp_path / "nothing-here"))


def test_unknown_hub_name_explains_the_fix():
    with pytest.raises(
        ModelNotFound, match=r"could not be fetched from the Hugging Face hub.*--model <folder>"
    ):
        load_model("no-such-org/no-such-model-xyz")


def test_tokenizer_loading_shares_the_checks(bert_dir, tmp_path):
    from lmbff.pretrained import load_tokenizer

    tokenizer, kind = load_tokenizer(str(bert_dir))
    assert kind == "masked" and tokenizer.mask_token_id is not None
    assert load_tokenizer(str(bert_dir), "causal")[1] == "causal"
    with pytest.raises(ModelNotFound, match="does not exist"):
        load_tokenizer(str(tmp_path / "nothing-here"))
    with pytest.raises(ModelNotFound, match="could not be fetched from the Hugging Face hub"):
        load_tokenizer("no-such-org/no-such-model-xyz")
