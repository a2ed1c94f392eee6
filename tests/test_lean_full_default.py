"""Full fine-tuning is lean by default (the vocabulary matrices frozen); LM-BFF's every-weight variant is
``embeddings="train"`` and ``--preset lmbff``. Nothing saved before the change may change meaning: old
states, run configs and classifiers read as every weight trained, keep their folder and report names,
and are never confused with a lean run."""

from __future__ import annotations

import json

import pytest
import torch

from lmbff.classifier import PromptClassifier
from lmbff.cli import _experiment_config, build_parser
from lmbff.defaults import plan_text
from lmbff.experiment import ExperimentConfig, experiment_folder, finished_run
from lmbff.report import backend_label
from lmbff.tuning import FullConfig, config_from_dict, make_config, pin_changed_defaults

TRAIN = {"full": {"embeddings": "train"}}
FROZEN = {"full": {"embeddings": "frozen"}}
TEXTS = [f"free prize call now {i}" for i in range(4)] + [f"see you at lunch {i}" for i in range(4)]
LABELS = ["1"] * 4 + ["0"] * 4
TINY = dict(max_steps=2, batch_size=4, eval_every=0, learning_rate=1e-2, verbose=False, precision="fp32")


def test_full_is_lean_by_default_and_a_config_saved_before_the_option_trained_everything():
    assert make_config("full").embeddings == "frozen"
    assert make_config("full", TRAIN).embeddings == "train"
    # a state's tuning config from before the option existed: every weight trained
    assert config_from_dict({"backend": "full", "learning_rate": 1e-5}).embeddings == "train"
    assert config_from_dict(FullConfig().to_dict()).embeddings == "frozen"  # saved now: as saved
    assert pin_changed_defaults("full", None) == FROZEN
    assert pin_changed_defaults("full", {}, legacy=True) == TRAIN
    assert pin_changed_defaults("full", TRAIN) == TRAIN  # given wins
    assert pin_changed_defaults("lora", None) == {}  # no changed default: nothing added


def test_a_run_config_records_the_value_it_uses_and_an_old_one_reads_as_every_weight(tmp_path):
    base = {"task": "SST-2", "data_dir": "d", "out": str(tmp_path / "run")}
    assert ExperimentConfig(**base).backend_options == FROZEN
    assert ExperimentConfig(**base, method="finetune").backend_options == TRAIN  # the baseline: all
    assert ExperimentConfig(**base, method="zero-shot").backend_options == {}  # nothing trains
    assert ExperimentConfig(**base, backend="lora").backend_options == {}
    old = {**base, "backend": "full", "backend_options": {}}  # a config.json from before the change
    assert ExperimentConfig.from_dict(old).backend_options == TRAIN
    assert ExperimentConfig.from_dict({**old, "method": "zero-shot"}).backend_options == {}
    assert ExperimentConfig.from_dict(ExperimentConfig(**base).to_dict()).backend_options == FROZEN

    # that old run resumes as the every-weight run it is, and is refused to a lean one
    folder = tmp_path / "run"
    folder.mkdir()
    old_run = ExperimentConfig(**base).to_dict() | {"backend_options": {}}
    (folder / "config.json").write_text(json.dumps(old_run))
    (folder / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5}}))
    resumed = finished_run(ExperimentConfig(**base, backend_options=TRAIN), resume=True)
    assert resumed == {"test": {"accuracy": 0.5}}
    with pytest.raises(ValueError, match="differs from this run's configuration"):
        finished_run(ExperimentConfig(**base), resume=True)


def test_folders_and_report_labels_keep_old_full_runs_names_and_name_lean_ones():
    assert experiment_folder("o", "prompt", 13, "full").parent.name == "prompt-full-embeddings-frozen"
    assert experiment_folder("o", "prompt", 13, "full", TRAIN).parent.name == "prompt"
    assert experiment_folder("o", "prompt", 13, "full", FROZEN, "bf16").parent.name == (
        "prompt-full-embeddings-frozen-bf16"
    )
    assert experiment_folder("o", "finetune", 13, "full").parent.name == "finetune"
    assert experiment_folder("o", "zero-shot", 13, "full").parent.name == "zero-shot"
    # metrics.json of an old full run ({}), of a run pinned to train, and of a lean run
    assert backend_label({"backend": "full", "backend_options": {}}) == "full"
    assert backend_label({"backend": "full", "backend_options": TRAIN}) == "full"
    assert backend_label({"backend": "full", "backend_options": FROZEN}) == "full (embeddings=frozen)"
    assert backend_label({"backend": "lora", "backend_options": {"lora": {"r": 4}}}) == "lora (r=4)"


def test_the_lmbff_preset_trains_every_weight_unless_told_otherwise():
    base = ["run", "--task", "SST-2", "--data-dir", "d", "--out", "o"]

    def config(*extra: str) -> ExperimentConfig:
        return _experiment_config(build_parser().parse_args([*base, *extra]), "prompt", "d", "o", 13)

    def options(*extra: str) -> dict:
        return config(*extra).backend_options

    assert options("--preset", "lmbff") == TRAIN
    assert options("--preset", "lmbff", "--full-embeddings", "frozen") == FROZEN
    assert options("--backend", "full") == FROZEN  # the fast preset: full's own default
    assert options("--preset", "lmbff", "--backend", "lora") == {}
    # the plan names the variant, and gives no time from the every-weight measurement to a lean run
    text = plan_text([config("--backend", "full")], "fast")
    assert "backend full (embeddings=frozen)" in text and "of training each" not in text
    assert "of training each" in plan_text([config("--preset", "lmbff")], "lmbff")


def _vocabulary_changed(clf: PromptClassifier, before: torch.Tensor) -> bool:
    return not torch.equal(clf.base_.model.get_input_embeddings().weight, before)


def test_classifier_full_is_lean_preset_lmbff_trains_embeddings_and_old_saves_read_as_trained(
    bert_dir, tmp_path
):
    lean = PromptClassifier("SST-2", str(bert_dir), backend="full", **TINY)
    lean.fit(TEXTS, LABELS)
    assert lean.state_.tuning.embeddings == "frozen"
    assert not any(n.endswith("word_embeddings.weight") for n in lean.state_.tensors)

    every = PromptClassifier("SST-2", str(bert_dir), preset="lmbff", **TINY).fit(TEXTS, LABELS)
    assert every.state_.tuning.embeddings == "train"
    assert any(n.endswith("word_embeddings.weight") for n in every.state_.tensors)

    # a classifier saved before the option existed: its tuning config has no "embeddings"
    every.save(tmp_path / "saved")
    path = tmp_path / "saved" / "config.json"
    config = json.loads(path.read_text())
    config["backend"].pop("embeddings")
    config["experiment"]["classifier"]["params"]["preset"] = None
    config["experiment"]["classifier"]["params"]["backend"] = "full"
    path.write_text(json.dumps(config))
    again = PromptClassifier.load(tmp_path / "saved")
    assert again.state_.tuning.embeddings == "train"
    # get_params says what it was trained with, so a clone refits the same way, not lean
    assert again.get_params()["backend_options"] == TRAIN
    expected = every.predict_proba(TEXTS)
    assert torch.allclose(torch.tensor(again.predict_proba(TEXTS)), torch.tensor(expected))
