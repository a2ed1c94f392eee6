"""Issue 38: distilling a tuned prompt model into a small student (lmbff.distill), on tiny models: the
teacher is a state of a tiny BERT, the student a tiny BERT encoder with a head."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lmbff import PromptClassifier
from lmbff.cli import main

TEXTS = [
    "a good film", "a bad film", "good acting", "bad acting", "really good", "really bad",
    "good plot", "bad plot", "so good", "so bad", "good fun", "bad fun",
]  # fmt: skip
LABELS = ["pos", "neg"] * 6


@pytest.fixture
def teacher(bert_dir, tmp_path):
    clf = PromptClassifier(
        labels=["pos", "neg"], label_words=["good", "bad"], model=str(bert_dir), max_steps=2,
        backend="bitfit", verbose=False,
    ).fit(TEXTS, LABELS)  # fmt: skip
    clf.save(tmp_path / "teacher")
    return clf, tmp_path / "teacher"


def _unlabelled(tmp_path, lines=TEXTS):
    path = tmp_path / "unlabelled.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_student_from_a_saved_state_reloads_from_a_moved_folder_and_scores_bit_identically(
    teacher, bert_dir, tmp_path, capsys
):
    _, state = teacher
    unlabelled = _unlabelled(tmp_path)
    student = str(tmp_path / "student")
    code = main(["distill", "--teacher", str(state), "--unlabelled", str(unlabelled), "--student",
                 str(bert_dir), "--epochs", "2", "--batch-size", "4", "--out", student])  # fmt: skip
    assert code == 0, capsys.readouterr().out
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["kind"] == "lmbff-student" and config["unlabelled"]["texts"] == 12
    assert config["teacher"][0]["folder"] == str(state.resolve()) and config["teacher"][0]["fingerprint"]
    assert len(config["unlabelled"]["sha256"]) == 64 and 0.0 <= config["agreement"] <= 1.0
    first = PromptClassifier.load(tmp_path / "student")
    expected = first.predict_proba(TEXTS)
    shutil.move(tmp_path / "student", tmp_path / "moved")
    again = PromptClassifier.load(tmp_path / "moved")
    assert np.array_equal(again.predict_proba(TEXTS), expected)
    assert set(again.predict(TEXTS)) <= {"pos", "neg"}

    data = tmp_path / "test.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(TEXTS, LABELS, strict=True)))
    assert main(["predict", "--state", str(tmp_path / "moved"), "--data-file", str(data), "--out",
                 str(tmp_path / "p")]) == 0  # fmt: skip
    records = [
        json.loads(line)
        for line in next((tmp_path / "p").rglob("predictions.jsonl")).read_text().splitlines()
    ]
    assert [r["prediction"] for r in records] == again.predict(TEXTS).tolist()
    metrics = json.loads(next((tmp_path / "p").rglob("metrics.json")).read_text())
    assert metrics["method"] == "student" and "accuracy" in metrics["test"]

    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("sentence\tlabel\nfine\tpos\n")  # not the task's field
    capsys.readouterr()
    assert main(["predict", "--state", str(tmp_path / "moved"), "--data-file", str(wrong), "--out",
                 str(tmp_path / "p2")]) == 2  # fmt: skip
    assert "wrong.tsv" in capsys.readouterr().out


def test_the_estimator_distils_itself_and_an_ensemble_averages_its_teachers(teacher, bert_dir, tmp_path):
    clf, state = teacher
    student = clf.distill(
        _unlabelled(tmp_path), tmp_path / "student", student=str(bert_dir), epochs=1, batch_size=6
    )
    assert student.classes_.tolist() == ["pos", "neg"] and student.predict(["good"]).tolist()[0] in (
        "pos",
        "neg",
    )

    from lmbff.distill import read_unlabelled, teacher_from_states

    second = PromptClassifier(labels=["pos", "neg"], label_words=["great", "awful"], model=str(bert_dir),
                              max_steps=2, backend="bitfit", verbose=False).fit(TEXTS, LABELS)  # fmt: skip
    second.save(tmp_path / "teacher2")
    examples, _ = read_unlabelled(_unlabelled(tmp_path), clf.task_)
    one, _, _ = teacher_from_states([state], progress=False)
    two, _, _ = teacher_from_states([tmp_path / "teacher2"], progress=False)
    both, _, record = teacher_from_states([state, tmp_path / "teacher2"], progress=False)
    assert np.allclose(both(examples), (one(examples) + two(examples)) / 2) and len(record) == 2


def test_bad_inputs_are_refused_before_any_model_loads_and_nothing_is_written(
    teacher, bert_dir, tmp_path, capsys, monkeypatch
):
    from lmbff.state import TrainedState

    _, state = teacher
    monkeypatch.setattr(TrainedState, "load_base", lambda *a, **k: pytest.fail("a model loaded"))
    unlabelled = _unlabelled(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    (tmp_path / "not-a-state").mkdir()
    cases = [
        (["--teacher", str(tmp_path / "not-a-state"), "--unlabelled", str(unlabelled)], "not-a-state"),
        (["--teacher", str(state), "--unlabelled", str(empty)], "empty.txt"),
        (["--teacher", str(state), "--unlabelled", str(tmp_path / "missing.txt")], "missing.txt"),
        (["--teacher", str(state), "--unlabelled", str(unlabelled), "--student",
          str(tmp_path / "no-encoder")], "no-encoder"),
    ]  # fmt: skip
    for arguments, named in cases:
        capsys.readouterr()
        code = main(["distill", *arguments, "--out", str(tmp_path / "student")])
        out = capsys.readouterr().out
        assert code == 2 and out.startswith("error:") and named in out, out
        assert not (tmp_path / "student").exists()
    with pytest.raises(SystemExit):
        main(
            [
                "distill",
                "--teacher",
                str(state),
                "--unlabelled",
                str(unlabelled),
                "--out",
                "x",
                "--temperature",
                "0",
            ]
        )


def test_a_student_folder_missing_a_file_is_refused_naming_it(teacher, bert_dir, tmp_path):
    from lmbff.errors import StateError

    clf, _ = teacher
    clf.distill(_unlabelled(tmp_path), tmp_path / "student", student=str(bert_dir), epochs=1)
    (tmp_path / "student" / "head.safetensors").unlink()
    with pytest.raises(StateError, match=r"missing head\.safetensors"):
        PromptClassifier.load(tmp_path / "student")


def test_an_int8_student_is_a_smaller_folder_that_reloads_bit_identically_from_a_moved_folder(
    teacher, bert_dir, tmp_path, capsys
):
    clf, _ = teacher
    fp32 = clf.distill(_unlabelled(tmp_path), tmp_path / "student", student=str(bert_dir), epochs=1)
    assert (
        main(["compress", "--student", str(tmp_path / "student"), "--int8", "--out", str(tmp_path / "int8")])
        == 0
    )
    assert "int8, 4 MB" in capsys.readouterr().out.replace("\n", " ")
    assert not (tmp_path / "int8" / "encoder" / "model.safetensors").exists()  # no float weights kept
    small = PromptClassifier.load(tmp_path / "int8")
    expected = small.predict_proba(TEXTS)
    assert np.abs(expected - fp32.predict_proba(TEXTS)).max() < 0.1  # close to the float student
    shutil.move(tmp_path / "int8", tmp_path / "moved-int8")
    assert np.array_equal(PromptClassifier.load(tmp_path / "moved-int8").predict_proba(TEXTS), expected)
    config = json.loads((tmp_path / "moved-int8" / "config.json").read_text())
    assert config["compression"]["kind"] == "int8"
    capsys.readouterr()
    assert (
        main(["compress", "--student", str(tmp_path / "moved-int8"), "--int8", "--out", str(tmp_path / "x")])
        == 2
    )
    assert "already compressed" in capsys.readouterr().out and not (tmp_path / "x").exists()


# ---- the layer-dropped student and compression of prompt models (lmbff.layer_drop, prompt_student) -------
def test_layer_dropping_keeps_every_kth_layer_with_its_weights_and_per_layer_settings(gpt_tokenizer):
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from lmbff.errors import ConfigError
    from lmbff.layer_drop import drop_layers, kept_layers, transformer_layers

    assert kept_layers(18, 2) == list(range(1, 18, 2)) and kept_layers(18, 9) == [8, 17]
    assert kept_layers(5, 2) == [0, 2, 4] and kept_layers(4, 1) == [0, 1, 2, 3]
    for bad in (0, 19, 2.0, True):
        with pytest.raises(ConfigError, match="k-th layer"):
            kept_layers(18, bad)
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(gpt_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=6,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8,
        layer_types=["sliding_attention", "full_attention"] * 3,
    )  # fmt: skip
    teacher = Gemma3ForCausalLM(config).eval()
    student = drop_layers(teacher, [1, 3, 5])
    assert student.config.num_hidden_layers == 3 and student.config.layer_types == ["full_attention"] * 3
    assert teacher.config.num_hidden_layers == 6  # the teacher is untouched
    for m, t in enumerate([1, 3, 5]):
        for (name, ours), (_, theirs) in zip(
            transformer_layers(student)[m].state_dict().items(),
            transformer_layers(teacher)[t].state_dict().items(),
            strict=True,
        ):
            assert torch.equal(ours, theirs), name
        assert transformer_layers(student)[m].self_attn.layer_idx == m
    assert torch.equal(student.lm_head.weight, teacher.lm_head.weight)
    assert student.lm_head.weight.data_ptr() == student.model.embed_tokens.weight.data_ptr()  # still tied
    ids = torch.tensor([[5, 6, 7, 8]])
    assert student(input_ids=ids).logits.shape == teacher(input_ids=ids).logits.shape
    # keeping every layer is a copy that computes what the original does
    assert torch.allclose(drop_layers(teacher, range(6))(input_ids=ids).logits, teacher(input_ids=ids).logits)
    for bad in ([], [3, 1], [1, 1], [6]):
        with pytest.raises(ConfigError, match="increasing indices"):
            drop_layers(teacher, bad)


def test_tinybert_losses_are_zero_for_a_copy_and_grow_with_a_changed_layer(bert):
    import torch

    from lmbff.layer_drop import LayerTaps, drop_layers, intermediate_losses

    model, _ = bert
    copy = drop_layers(model, [0, 1])
    ids, mask = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with LayerTaps(model) as theirs, LayerTaps(copy) as ours:
        model(input_ids=ids, attention_mask=mask)
        copy(input_ids=ids, attention_mask=mask)
        same = intermediate_losses(theirs, ours, [0, 1], mask)
        assert (
            len(ours.hidden) == 3 and len(ours.attentions) == 2 and ours.attentions[0].shape == (2, 2, 4, 4)
        )
        with torch.no_grad():
            weight = copy.bert.encoder.layer[1].output.dense.weight
            weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
        copy(input_ids=ids, attention_mask=mask)
        changed = intermediate_losses(theirs, ours, [0, 1], mask)
    same, changed = ({k: float(v.detach()) for k, v in d.items()} for d in (same, changed))
    assert all(v < 1e-10 for v in same.values()), same
    assert changed["hidden"] > 1e-3 and changed["embedding"] < 1e-10
    assert changed["attention"] < 1e-10  # the changed layer's own attention read its unchanged input
    assert model.config._attn_implementation != "eager"  # switched back on leaving


def test_a_layer_dropped_student_scores_as_its_teacher_does_and_reloads_bit_identically(
    teacher, tmp_path, capsys
):
    _, state = teacher
    unlabelled = _unlabelled(tmp_path)
    code = main(["distill", "--teacher", str(state), "--unlabelled", str(unlabelled), "--student",
                 "teacher-layers", "--keep-every", "2", "--epochs", "2", "--batch-size", "4",
                 "--out", str(tmp_path / "student")])  # fmt: skip
    assert code == 0, capsys.readouterr().out
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["student"] == "prompt" and config["layers"] == {
        "teacher": 2,
        "kept": [1],
        "start": "teacher",
    }
    assert config["history"][0]["hidden"] >= 0 and "attention" in config["history"][0]
    model_config = json.loads((tmp_path / "student" / "model" / "config.json").read_text())
    assert model_config["num_hidden_layers"] == 1
    first = PromptClassifier.load(tmp_path / "student")
    expected = first.predict_proba(TEXTS)
    shutil.move(tmp_path / "student", tmp_path / "moved")
    again = PromptClassifier.load(tmp_path / "moved")
    assert np.array_equal(again.predict_proba(TEXTS), expected)
    data = tmp_path / "test.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(TEXTS, LABELS, strict=True)))
    assert main(["predict", "--state", str(tmp_path / "moved"), "--data-file", str(data), "--out",
                 str(tmp_path / "p")]) == 0  # fmt: skip
    metrics = json.loads(next((tmp_path / "p").rglob("metrics.json")).read_text())
    assert metrics["method"] == "student" and metrics["backend"] == "prompt"
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("sentence\tlabel\nfine\tpos\n")  # not the task's field
    capsys.readouterr()
    assert main(["predict", "--state", str(tmp_path / "moved"), "--data-file", str(wrong), "--out",
                 str(tmp_path / "p2")]) == 2  # fmt: skip
    assert "wrong.tsv" in capsys.readouterr().out and not (tmp_path / "p2").exists()
    # another model folder under the same state is refused by its fingerprint
    from lmbff.errors import StateError

    (tmp_path / "moved" / "model" / "model.safetensors").unlink()
    with pytest.raises(StateError, match=r"missing model/model\.safetensors"):
        PromptClassifier.load(tmp_path / "moved")


def test_a_tuned_model_compresses_to_folders_that_load_without_the_base(teacher, bert_dir, tmp_path, capsys):
    clf, state = teacher
    expected = clf.predict_proba(TEXTS)
    outs = {}
    forms = {
        "folded": [],
        "fp32": ["--fp32"],
        "bf16": ["--bf16"],
        "int8": ["--int8"],
        "pruned": ["--prune", "0.5"],
    }
    for name, flags in forms.items():
        capsys.readouterr()
        code = main(["compress", "--state", str(state), *flags, "--out", str(tmp_path / name)])
        assert code == 0, capsys.readouterr().out
        outs[name] = PromptClassifier.load(tmp_path / name).predict_proba(TEXTS)
    assert np.allclose(outs["folded"], expected, atol=1e-6)  # the state folded in scores as the state did
    assert np.abs(outs["fp32"] - expected).max() < 0.01 and np.abs(outs["int8"] - expected).max() < 0.1
    config = json.loads((tmp_path / "pruned" / "config.json").read_text())
    assert config["compression"]["prune"] == 0.5 and 0.49 < config["compression"]["zeros"] < 0.52
    assert not (tmp_path / "int8" / "model" / "model.safetensors").exists()
    shutil.move(tmp_path / "int8", tmp_path / "int8-moved")
    assert np.array_equal(PromptClassifier.load(tmp_path / "int8-moved").predict_proba(TEXTS), outs["int8"])
    capsys.readouterr()
    assert (
        main(["compress", "--student", str(tmp_path / "int8-moved"), "--int8", "--out", str(tmp_path / "x")])
        == 2
    )
    assert "already compressed" in capsys.readouterr().out and not (tmp_path / "x").exists()
    with pytest.raises(SystemExit):
        main(["compress", "--state", str(state), "--prune", "1.0", "--out", str(tmp_path / "y")])


def test_the_layer_student_and_compression_refuse_what_they_cannot_do_before_a_model_loads(
    teacher, bert_dir, tmp_path, capsys, monkeypatch
):
    from lmbff.distill import DistillConfig, distill
    from lmbff.errors import ConfigError
    from lmbff.state import TrainedState

    clf, state = teacher
    prefix = PromptClassifier(labels=["pos", "neg"], label_words=["good", "bad"], model=str(bert_dir),
                              max_steps=1, backend="prefix", verbose=False).fit(TEXTS, LABELS)  # fmt: skip
    prefix.save(tmp_path / "prefix")
    monkeypatch.setattr(TrainedState, "load_base", lambda *a, **k: pytest.fail("a model loaded"))
    unlabelled = _unlabelled(tmp_path)
    cases = [
        (["distill", "--teacher", str(state), "--teacher", str(state), "--unlabelled", str(unlabelled),
          "--student", "teacher-layers"], "give one --teacher"),
        (["distill", "--teacher", str(state), "--unlabelled", str(unlabelled), "--student", "teacher-layers",
          "--keep-every", "0"], "--keep-every"),
        (["compress", "--state", str(tmp_path / "prefix"), "--int8"], "do not fold into"),
        (["compress", "--student", str(state), "--int8"], "not a student"),
        (["compress", "--student", str(tmp_path / "missing"), "--int8"], "missing"),
    ]  # fmt: skip
    for arguments, named in cases:
        capsys.readouterr()
        try:
            code = main([*arguments, "--out", str(tmp_path / "out")])
        except SystemExit as exit_:  # argparse refuses a bad number itself
            code = exit_.code
        captured = capsys.readouterr()
        assert code == 2 and named in captured.out + captured.err, (arguments, captured)
        assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="from a saved state"):
        layers = DistillConfig(student="teacher-layers")
        distill(lambda e: None, clf.task_, unlabelled, tmp_path / "out", layers, teacher_record={})


def test_the_estimator_distils_itself_into_a_layer_dropped_student(teacher, tmp_path):
    clf, _ = teacher
    student = clf.distill(
        _unlabelled(tmp_path), tmp_path / "student", student="teacher-layers", epochs=1, batch_size=6
    )
    assert student.classes_.tolist() == ["pos", "neg"] and student.predict(TEXTS[:2]).shape == (2,)
    assert json.loads((tmp_path / "student" / "config.json").read_text())["layers"]["kept"] == [1]


def test_an_encoder_student_compresses_to_bf16_and_pruned_folders(teacher, bert_dir, tmp_path):
    from lmbff.distill.compress import compress_student
    from lmbff.distill.config import Compression
    from lmbff.errors import ConfigError

    clf, _ = teacher
    fp32 = clf.distill(_unlabelled(tmp_path), tmp_path / "student", student=str(bert_dir), epochs=1)
    expected = fp32.predict_proba(TEXTS)
    compress_student(tmp_path / "student", tmp_path / "bf16", Compression(weights="bf16"))
    compress_student(tmp_path / "student", tmp_path / "pruned", Compression(prune=0.3))
    bf16 = PromptClassifier.load(tmp_path / "bf16")
    assert next(bf16.student.encoder.parameters()).dtype == torch.bfloat16
    assert np.abs(bf16.predict_proba(TEXTS) - expected).max() < 0.05
    pruned = PromptClassifier.load(tmp_path / "pruned")
    weights = [m.weight for m in pruned.student.encoder.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert 0.29 < zeros < 0.31 and not np.array_equal(pruned.predict_proba(TEXTS), expected)
    config = json.loads((tmp_path / "pruned" / "config.json").read_text())["compression"]
    assert config["weights"] is None and config["prune"] == 0.3 and abs(config["zeros"] - zeros) < 1e-9
    with pytest.raises(ConfigError, match="nothing to compress"):
        compress_student(tmp_path / "student", tmp_path / "none", Compression())
    for bad in ({"prune": 1.0}, {"prune": -0.1}, {"weights": "int4"}):
        with pytest.raises(ConfigError, match="compression"):
            Compression(**bad)
    assert not (tmp_path / "none").exists()


def test_a_student_or_compressed_folder_is_written_whole_or_not_at_all(tmp_path):
    from lmbff.files import staged_folder

    with pytest.raises(RuntimeError, match="interrupted"), staged_folder(tmp_path / "out") as staged:
        (staged / "half").write_text("written before the failure")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging copy
    with staged_folder(tmp_path / "out") as staged:
        (staged / "whole").write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (tmp_path / "out" / "whole").is_file()
    with pytest.raises(FileExistsError, match="already exists"), staged_folder(tmp_path / "out"):
        pytest.fail("an existing folder is refused before anything is written")


def test_intermediate_losses_on_several_rows_per_example_are_refused_and_the_prediction_loss_alone_works(
    bert_dir, tmp_path, capsys
):
    words = ["really good", "really bad"]  # several tokens each: one row per word, not one per example
    clf = PromptClassifier(labels=["pos", "neg"], label_words=words, model=str(bert_dir), max_steps=1,
                           backend="bitfit", verbose=False).fit(TEXTS, LABELS)  # fmt: skip
    assert not clf.prompt_model_.fast_path
    clf.save(tmp_path / "teacher")
    command = ["distill", "--teacher", str(tmp_path / "teacher"), "--unlabelled", str(_unlabelled(tmp_path)),
               "--student", "teacher-layers", "--epochs", "1", "--batch-size", "4"]  # fmt: skip
    assert main([*command, "--out", str(tmp_path / "refused")]) == 2
    assert "--hidden-weight 0 --attention-weight 0" in capsys.readouterr().out.replace("\n", " ")
    assert not (tmp_path / "refused").exists()
    assert (
        main([*command, "--hidden-weight", "0", "--attention-weight", "0", "--out", str(tmp_path / "s")]) == 0
    )
    history = json.loads((tmp_path / "s" / "config.json").read_text())["history"]
    assert set(history[0]) == {"epoch", "loss", "prediction"}
    assert PromptClassifier.load(tmp_path / "s").predict_proba(TEXTS).shape == (len(TEXTS), 2)
