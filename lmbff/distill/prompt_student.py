"""A prompt model in a folder of its own: the teacher's own language model, with its trained state folded
into the weights (a LoRA delta added, bitfit's biases and ln's norms in place) and, for the layer-dropped
student, every k-th layer kept and trained on the teacher (TinyBERT's intermediate losses,
:mod:`lmbff.layer_drop`, plus the prediction loss). It scores as the teacher scores (its template and
label words), and loads without the teacher's base or state::

    <folder>/config.json   kind lmbff-student, student "prompt": the task, the teacher, the recipe, any
                           compression (lmbff.distill.compress)
    <folder>/model/        the language model and its tokenizer (save_pretrained; an int8 model keeps
                           only its config and tokenizer here)
    <folder>/model_int8.safetensors   an int8 model's weights (lmbff.distill.int8)
    <folder>/state/        a state with nothing to attach but its prototypes (if the teacher scores by
                           them): the scoring (template, label words, mode) and the model's fingerprint

The same folder is what ``lmbff compress --state`` writes for a tuned teacher (its layers all kept).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data import Example
from ..errors import ConfigError, StateError
from ..files import atomic_write_json, staged_folder
from ..layer_drop import LayerTaps, drop_layers, intermediate_losses, kept_layers, transformer_layers
from ..logs import log, shown
from ..memory import PeakMemory
from .config import LAYER_STUDENT, DistillConfig
from .folder import CONFIG, student_header
from .int8 import INT8_MODEL
from .losses import soft_loss, tempered_targets

MODEL, STATE = "model", "state"
PROMPT_STUDENT = "prompt"
# backends whose trained tensors become the base's own weights (merged); the others add modules that act
# on whole sequences (soft prompts, prefixes, adapters, gates) and have no weights to fold them into
MERGEABLE = ("full", "bitfit", "ln", "lora")


def merged_weights(model: torch.nn.Module, fold: bool = True) -> dict[str, torch.Tensor]:
    """The weights of a model with a state attached, the state folded in: peft's LoRA layers as their base
    weight plus ``B A * scaling`` (peft's ``get_delta_weight``), under the base model's own names. A
    state that overwrote the base's tensors (full, bitfit, ln) is already in them. ``fold=False``: the
    base's own weights, without what the state added.

    Raises:
        ConfigError: the model carries added modules that do not fold into weights (with ``fold``).
    """
    from peft.tuners.lora import LoraLayer

    from ..tuning.injection import CONTAINER

    if fold and len(getattr(model, CONTAINER, ())):
        raise ConfigError(
            f"the state adds modules ({', '.join(getattr(model, CONTAINER))}) that do not fold into the "
            f"model's weights; only {', '.join(MERGEABLE)} states do"
        )
    weights = {}
    lora = {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}
    for name, tensor in model.state_dict().items():
        if name.startswith(CONTAINER + "."):
            continue
        owner = next((n for n in lora if name.startswith(n + ".")), None)
        if owner is None:
            weights[name] = tensor
            continue
        rest = name[len(owner) + 1 :]
        if not rest.startswith("base_layer."):
            continue  # lora_A, lora_B: folded into the base weight below
        rest = rest.removeprefix("base_layer.")
        if rest == "weight" and fold:
            layer = lora[owner]
            with torch.no_grad():
                delta = sum(layer.get_delta_weight(a) for a in layer.active_adapters)
                tensor = (tensor.float() + delta.float()).to(tensor.dtype)
        weights[f"{owner}.{rest}"] = tensor
    return weights


class PromptStudent:
    """A prompt model loaded from a folder, with what :class:`lmbff.distill.student.StudentClassifier`
    asks of a student: ``task`` and ``predict_log_proba``."""

    def __init__(self, scorer, state, loaded):
        self.scorer, self.state, self.loaded = scorer, state, loaded

    @property
    def task(self):
        return self.state.scoring.task

    def predict_log_proba(self, examples: Sequence[Example]) -> np.ndarray:
        return self.state.log_scores(self.scorer, list(examples))


def save_prompt_folder(
    folder: str | os.PathLike, model, tokenizer, spec, prototypes: dict, record: dict, kind: str, *, int8=None
) -> Path:
    """Write a prompt model's folder atomically (staged beside it, then renamed into place): ``model``
    with its ``tokenizer``, a state holding ``spec`` (the scoring) and ``prototypes`` (tensors), and
    config.json with ``record``. ``int8``: the int8 tensors of a quantized ``model`` (written instead of
    its float weights). Refuses a folder that exists."""
    from ..pretrained import LoadedModel
    from ..state import base_identity, save_state

    folder = Path(folder)
    with staged_folder(folder) as staged:
        if int8 is None:
            model.save_pretrained(staged / MODEL, safe_serialization=True)
        else:
            from safetensors.torch import save_file

            (staged / MODEL).mkdir()
            model.config.save_pretrained(staged / MODEL)
            save_file(int8, str(staged / INT8_MODEL))
        tokenizer.save_pretrained(staged / MODEL)
        loaded = LoadedModel(model, tokenizer, spec.kind, str(folder / MODEL), path=str(folder / MODEL))
        save_state(
            staged / STATE, prototypes, None, {"method": kind}, scoring=spec, base=base_identity(loaded)
        )
        atomic_write_json(staged / CONFIG, {**student_header(PROMPT_STUDENT, spec.task), **record})
    return folder


def prompt_folder_files(folder: Path, config: dict) -> list[str]:
    """The files a prompt model's folder must hold (named in the error when one is missing)."""
    if (config.get("compression") or {}).get("weights") == "int8":
        weights = INT8_MODEL
    elif (folder / MODEL / "model.safetensors.index.json").is_file():  # saved in shards
        weights = f"{MODEL}/model.safetensors.index.json"
    else:
        weights = f"{MODEL}/model.safetensors"
    required = [f"{MODEL}/config.json", f"{MODEL}/tokenizer_config.json", f"{STATE}/config.json"]
    return [*required, f"{STATE}/trained.safetensors", weights]


def load_prompt_student(folder: str | os.PathLike, config: dict) -> PromptStudent:
    """The prompt model of a folder (its config.json already read as ``config``), on its own model: the
    state's fingerprint must be the model folder's, so a swapped model folder is refused."""
    from ..pretrained import LoadedModel, load_model
    from ..state import TrainedState

    folder = Path(folder)
    state = TrainedState.load(folder / STATE)
    if state.scoring is None:
        raise StateError(f"{folder / STATE}: records no scoring")
    weights = (config.get("compression") or {}).get("weights")
    if weights == "int8":
        from transformers import AutoTokenizer

        from .int8 import Int8Recipe, load_int8_model

        recipe = Int8Recipe.from_dict(config["compression"].get("int8"))
        model = load_int8_model(folder / MODEL, folder / INT8_MODEL, state.scoring.kind, recipe)
        tokenizer = AutoTokenizer.from_pretrained(folder / MODEL)
        loaded = LoadedModel(
            model, tokenizer, state.scoring.kind, str(folder / MODEL), path=str(folder / MODEL)
        )
    else:
        loaded = load_model(str(folder / MODEL), kind=state.scoring.kind, precision=state.precision)
    scorer = state.prompt_model(loaded)  # refuses a model whose fingerprint is not the one saved
    return PromptStudent(scorer, state, loaded)


# ---- the layer-dropped student ------------------------------------------------------------------------
def check_intermediate(scorer, config: DistillConfig) -> bool:
    """Whether the intermediate losses are on (a weight above 0).

    Raises:
        ConfigError: they are on, but the scorer reads several rows per example (a label word of several
            tokens, or text after the slot). The taps would hold every layer of every row (on CLINC150's
            150 intents, thousands of rows a batch: many GB), and the rows of one example repeat its
            prompt; refused rather than left to run out of memory.
    """
    intermediate = config.hidden_weight > 0 or config.attention_weight > 0
    if intermediate and not scorer.fast_path:
        raise ConfigError(
            "the layer-dropped student's intermediate losses read one prompt row per example; this "
            "template and its label words score each example in several rows. Distil it with "
            "--hidden-weight 0 --attention-weight 0 (the prediction loss alone)"
        )
    return intermediate


def train_layer_student(
    teacher_scorer,
    student_scorer,
    keep: Sequence[int],
    examples: Sequence[Example],
    teacher_probabilities: np.ndarray,
    config: DistillConfig,
    labelled: Sequence[Example] = (),
    progress: bool = True,
) -> list[dict]:
    """Train the layer-dropped ``student_scorer`` on each batch: the prediction loss on the teacher's
    probabilities, plus TinyBERT's embedding, hidden-state and attention losses against the teacher's
    layers ``keep`` (both read on the same prompt rows, the teacher's by a forward pass without
    gradients), plus ``gold_weight`` of cross-entropy on the labelled examples. The embeddings stay
    frozen unless ``train_embeddings``; the prototypes, when the teacher scores by them, train too."""
    student = student_scorer.base_lm
    embedding = student.get_input_embeddings().weight
    trained = [p for p in student.parameters() if config.train_embeddings or p is not embedding]
    for p in student.parameters():
        p.requires_grad_(any(p is q for q in trained))
    if student_scorer.prototypes is not None:
        trained += list(student_scorer.prototypes.parameters())
    optimizer = torch.optim.AdamW(trained, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(examples) // config.batch_size)
    total = steps_per_epoch * config.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total))
    generator = torch.Generator().manual_seed(config.seed)
    tempered = tempered_targets(teacher_probabilities, config.temperature)
    labels = list(student_scorer.task.labels)
    gold = [labels.index(str(e.label)) for e in labelled]
    intermediate = check_intermediate(student_scorer, config)
    attentions = config.attention_weight > 0
    history = []
    student.train()
    bar = tqdm(total=total, desc="distilling layers", unit="step", disable=not progress)
    taps = (LayerTaps(teacher_scorer.base_lm, attentions), LayerTaps(student, attentions))
    with contextlib.ExitStack() as stack:
        theirs, ours = (stack.enter_context(tap) for tap in taps) if intermediate else (None, None)
        for epoch in range(config.epochs):
            order = torch.randperm(len(examples), generator=generator).tolist()
            sums: dict[str, float] = {}
            for start in range(0, len(order), config.batch_size):
                chosen = order[start : start + config.batch_size]
                encodings = student_scorer.encode([examples[i] for i in chosen])
                if intermediate:  # one row per example: the same rows for both, and for the taps
                    batch = student_scorer.collate(encodings).to(student_scorer.device)
                    with torch.no_grad():
                        teacher_scorer.class_log_scores(batch, calibrate=False)
                    log_scores = student_scorer.class_log_scores(batch, calibrate=False)
                else:  # the training path's own memory bounds (the shared prefix, chunked vocabulary)
                    log_scores = student_scorer.training_log_scores(encodings)
                parts = {"prediction": soft_loss(log_scores, tempered[chosen], config.temperature)}
                if intermediate:
                    found = intermediate_losses(theirs, ours, keep, batch.attention_mask)
                    parts["hidden"] = config.hidden_weight * (found["embedding"] + found["hidden"])
                    if attentions:
                        parts["attention"] = config.attention_weight * found["attention"]
                loss = sum(parts.values())
                if gold and config.gold_weight > 0:
                    picked = torch.randint(
                        len(gold), (min(config.batch_size, len(gold)),), generator=generator
                    )
                    rows = student_scorer.collate(
                        student_scorer.encode([labelled[i] for i in picked.tolist()])
                    )
                    hard = F.cross_entropy(
                        student_scorer.class_log_scores(rows.to(student_scorer.device), calibrate=False),
                        torch.tensor([gold[i] for i in picked.tolist()]),
                    )
                    loss = (1 - config.gold_weight) * loss + config.gold_weight * hard
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                for name, value in {"loss": loss, **parts}.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach())
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
            history.append({"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()}})
    bar.close()
    student.eval()
    for p in student.parameters():
        p.requires_grad_(False)
    return history


def distill_layers(
    state_folder: str | os.PathLike,
    unlabelled: str | os.PathLike,
    out: str | os.PathLike,
    config: DistillConfig,
    *,
    columns: dict[str, str] | None = None,
    labelled: Sequence[Example] = (),
    progress: bool = True,
) -> dict:
    """Distil one saved state into a copy of its own model with every ``keep_every``-th layer kept
    (:mod:`lmbff.layer_drop`), starting from the teacher's weights with its state folded in
    (:func:`merged_weights`; a state whose modules do not fold in starts the student from the bare base),
    and write it to ``out``. Returns what its config.json records.

    Raises:
        ConfigError: a regression task or a bad recipe; StateError: not a prompt state; DataError: a bad
            unlabelled file; FileExistsError: ``out`` exists. All before any model loads.
    """
    from ..pretrained import LoadedModel
    from ..state import TrainedState
    from .sources import check_distillation, read_unlabelled, teacher_record

    state = TrainedState.load(state_folder)
    task = check_distillation(state, out)
    examples, digest = read_unlabelled(unlabelled, task, columns, config.max_unlabelled)
    memory = PeakMemory()
    with shown(progress):
        base = state.load_base(None, precision=state.precision)
        teacher_scorer = state.prompt_model(base)
        num_layers = len(transformer_layers(base.model))
        keep = kept_layers(num_layers, config.keep_every)  # ConfigErrors before the teacher scores
        check_intermediate(teacher_scorer, config)
        started = time.perf_counter()
        probabilities = np.exp(state.log_scores(teacher_scorer, examples, progress and "teacher"))
        probabilities = probabilities.astype(np.float64)
        labelling_seconds = time.perf_counter() - started
        attached = state.attach(teacher_scorer)  # again: its layers are the intermediate losses' targets
        try:
            try:
                weights, start = merged_weights(base.model), "teacher"
            except ConfigError as why:
                log.info(f"the student starts from the bare base model: {why}")
                weights, start = merged_weights(base.model, fold=False), "base"
            student_lm = drop_layers(base.model, keep, weights).float()
            spec = replace(state.scoring, calibration=None, demonstrations=None, precision="fp32")
            student_scorer = spec.prompt_model(LoadedModel(student_lm, base.tokenizer, base.kind, "student"))
            prototypes = {}
            if student_scorer.prototypes is not None:
                from ..prototypes import split_prototype_tensors

                student_scorer.prototypes.load_named_state(split_prototype_tensors(state.tensors)[1])
            started = time.perf_counter()
            history = train_layer_student(
                teacher_scorer, student_scorer, keep, examples, probabilities, config, labelled, progress
            )
            training_seconds = time.perf_counter() - started
        finally:
            attached.detach()
        if student_scorer.prototypes is not None:
            prototypes = {n: t.detach() for n, t in student_scorer.prototypes.named_state().items()}
        student_probabilities = np.exp(
            student_scorer.predict_log_scores(examples, progress=progress and "student")
        )
        agreement = float(np.mean(student_probabilities.argmax(1) == probabilities.argmax(1)))
        log.info(f"student and teacher agree on {agreement:.3f} of the unlabelled texts")
        record = {
            "teacher": teacher_record([state]),
            "classes": list(task.labels),
            "unlabelled": {"path": str(Path(unlabelled).resolve()), "sha256": digest, "texts": len(examples)},
            "agreement": agreement,
            "distill": asdict(config),
            "layers": {"teacher": num_layers, "kept": keep, "start": start},
            "parameters": sum(p.numel() for p in student_lm.parameters()),
            "labelled_examples": len(labelled),
            "history": history,
            "seconds": {"teacher_labelling": labelling_seconds, "training": training_seconds},
            "peak_memory_mb": memory.peak_mb(),
        }
        save_prompt_folder(out, student_lm, base.tokenizer, spec, prototypes, record, LAYER_STUDENT)
    return record
