"""Prompt-based tuning: the loss is cross-entropy over the label words' class scores (LM-BFF), or the
two-pole KL divergence for regression; AdamW with a linear schedule; best-on-dev model selection."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup, set_seed  # python, numpy and torch generators

from prompts.library import Task

from .checkpoint import Checkpoint, _LoopState
from .config import TrainingArguments
from .data import Example
from .demonstrations import Demonstrations
from .errors import ConfigError, InputError
from .evaluate import dev_thresholds, score_examples
from .logs import log, shown
from .machine import cpu_seconds
from .model import PromptModel, regression_targets
from .multi_label import soft_targets
from .precision import master_copies, rest_dtype, to_rest
from .prototypes import PREFIX as PROTO
from .tuning import TuningConfig, trainable_summary

HEAD = "head"
OWN = (PROTO, HEAD)  # parameter groups at their own rate, whatever --learning-rate the backend is given

_TIMED_STEPS = 4  # steps timed before the remaining training time is estimated


def _fusable(params: list[torch.Tensor]) -> bool:
    """Whether AdamW's fused kernel takes these parameters: floating point, on CPU or CUDA. It updates
    each tensor in one pass instead of a chain of element-wise operations, which matters most for full
    fine-tuning, whose optimizer step touches every weight (benchmarks/backend_cost.py)."""
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


@dataclass
class TrainResult:
    best_step: int
    best_dev: float | None
    history: list[dict]
    trainable_parameters: int
    total_parameters: int
    # median time of an optimizer step (no evaluation, no checkpoints; robust to the first step's
    # warm-up), over the steps this process ran
    seconds_per_step: float = 0.0
    # A resumed run: the step its checkpoint was at, and the wall and CPU seconds of training that the
    # earlier processes spent up to that checkpoint (work after it was lost and is not counted), so that
    # a run's cost is that of all the training its result is made of, not only this process's share.
    resumed_at_step: int = 0
    earlier_seconds: float = 0.0
    earlier_cpu_seconds: float = 0.0


def multi_label_loss(task: Task, log_scores: torch.Tensor, label_sets: list, kind: str) -> torch.Tensor:
    """A multi-label batch's loss on its class log-probabilities (B, C): ``softmax``, the cross-entropy
    towards each example's labels sharing its target (an example with no label adds nothing); or
    ``binary``, each label's own log-loss on its probability, averaged over examples and labels."""
    targets = torch.as_tensor(soft_targets(task, label_sets), device=log_scores.device)
    if kind == "softmax":
        weights = (targets.sum(dim=1) > 0).float()
        per_example = -(targets * log_scores).sum(dim=1)
        return (per_example * weights).sum() / weights.sum().clamp(min=1.0)
    positive = (targets > 0).float()
    # log(1 - p) from log p without cancellation (log1p(-exp(x)) loses everything as p nears 1)
    log_not = torch.log(-torch.expm1(log_scores.clamp(max=-1e-6)))
    return -(positive * log_scores + (1 - positive) * log_not).mean()


class Trainer:
    """Tunes a PromptModel's language model on few examples through its prompt."""

    def __init__(
        self,
        prompt_model: PromptModel,
        task: Task,
        tuning: TuningConfig,
        args: TrainingArguments,
        train: Sequence[Example],
        dev: Sequence[Example] | None = None,
        demonstrations: Demonstrations | None = None,
    ):
        if not train:
            raise InputError("no training examples")
        self.model, self.task, self.tuning, self.args = prompt_model, task, tuning, args
        self.train_examples, self.dev_examples = list(train), list(dev or [])
        self.demonstrations = demonstrations
        # What a backend adds (MLPs, adapters, LoRA, gates) is initialised from the run's seed, without
        # touching the global random state: the same seed gives the same start, also on resume.
        # The dtype the weights rest in (bf16 or float32): what trains is float32 while it trains and goes
        # back to it when training ends (lmbff.precision).
        self.rest_dtype = rest_dtype(prompt_model.lm)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            self.param_groups = tuning.apply(prompt_model.lm)
        master_copies(prompt_model.lm, [p for g in self.param_groups for p in g["params"]])
        tuning.prepare(prompt_model)
        # The baseline's new head (lmbff.finetune) trains at its own rate, taken out of the body's group.
        if hasattr(prompt_model, "head_parameters"):
            head = prompt_model.head_parameters()
            ids = {id(p) for p in head}
            for group in self.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in ids]
            self.param_groups = [g for g in self.param_groups if g["params"]]
            self.param_groups.append({"params": head, "lr": prompt_model.head_learning_rate, "name": HEAD})
        # Prototypes (lmbff.prototypes) train beside the backend at their own rate, which a
        # --learning-rate for the backend does not override (their scale is not the weights').
        prototypes = getattr(prompt_model, "prototypes", None)
        self.prototype_init: str | None = None  # how the prototypes started, when this run set them
        if prototypes is not None:
            if not prototypes.ready:
                # a multi-label example counts towards each of its labels' prototypes
                members = [
                    (e, label)
                    for e in self.train_examples
                    for label in (e.label if task.multi_label else [task.group_label(e.label)])
                ]
                self.prototype_init = prompt_model.init_prototypes(
                    [e for e, _ in members], [task.labels.index(label) for _, label in members]
                )
            self.param_groups.append(
                {
                    "params": list(prototypes.parameters()),
                    "lr": prototypes.config.learning_rate,
                    "name": PROTO,
                }
            )
        self.saved_tuning = tuning  # replaced by tuning.export() (folded) when training ends
        # In named_parameters order (tied weights once), the order checkpoints name them in.
        self.params = list(self.trainable_state().values())
        self.trainable, self.total = trainable_summary(prompt_model.lm)
        # The run's length: max_steps, or one that covers min_epochs passes over the examples
        self.max_steps, self.eval_every = args.schedule_for(len(self.train_examples))
        if prototypes is not None:
            added = sum(p.numel() for p in prototypes.parameters())
            self.trainable, self.total = self.trainable + added, self.total + added

    def loss(self, examples: Sequence[Example], encodings) -> torch.Tensor:
        if hasattr(self.model, "training_log_scores"):  # a prompt model: the cheapest exact path
            log_scores = self.model.training_log_scores(encodings)
        else:  # the classification head
            log_scores = self.model.class_log_scores(
                self.model.collate(encodings).to(self.model.device), False
            )
        if self.task.is_regression:
            target = regression_targets([float(e.label) for e in examples], self.task.value_range)
            return F.kl_div(log_scores, target.to(log_scores.device), reduction="batchmean")
        if self.task.multi_label:
            # sigmoid prototypes give each label its own probability: only the binary loss fits them
            prototypes = getattr(self.model, "prototypes", None)
            kind = "binary" if prototypes is not None and prototypes.sigmoid else self.args.multi_label_loss
            return multi_label_loss(self.task, log_scores, [e.label for e in examples], kind)
        labels = torch.tensor(
            [self.task.labels.index(str(e.label)) for e in examples], device=log_scores.device
        )
        return F.nll_loss(log_scores, labels)

    def evaluate(self, examples: Sequence[Example]) -> float:
        scores = self.model.predict_log_scores(
            examples,
            batch_size=self.args.eval_batch_size,
            demonstrations=self.demonstrations,
            seed=self.args.seed,
        )
        # a multi-label checkpoint is judged with the thresholds it would be given: chosen on dev
        thresholds = dev_thresholds(self.task, examples, scores) if self.task.multi_label else None
        return score_examples(self.task, examples, scores, "dev", thresholds=thresholds).score

    def _micro_batch(self, encodings, batch_size: int, progress: bool) -> int:
        """Examples per forward pass: the whole batch, or fewer when the step measured on one example
        (:mod:`lmbff.memory_plan`) would not fit the memory available; the estimate is said, and so is
        a split."""
        if encodings is None or not hasattr(self.model, "training_log_scores"):
            return batch_size
        from .memory_plan import measure_step_memory

        memory = measure_step_memory(self.model, encodings, self.params)
        micro = memory.micro_batch(batch_size)
        if micro == batch_size:
            log.info(
                f"memory: a step of {batch_size} examples should take about "
                f"{memory.step_mb(batch_size):,.0f} MB beside the model ({memory.available_mb:,.0f} MB "
                "available)"
            )
        if micro < batch_size:
            passes = -(-batch_size // micro)
            needed = memory.step_mb(batch_size)
            log.info(
                f"memory: a step of {batch_size} examples would take about {needed:,.0f} MB of the "
                f"{memory.available_mb:,.0f} MB available; each step runs as {passes} passes of at most "
                f"{micro} examples (the same gradients)"
            )
        return micro

    def _batch_encodings(self, index: list[int], cached, rng: np.random.Generator, embeddings):
        """The batch's encodings: cached, or with a fresh demonstration set per example (LM-BFF)."""
        if self.demonstrations is None:
            return [cached[i] for i in index]
        demos = [
            self.demonstrations.sample(rng, None if embeddings is None else embeddings[i], exclude=i)
            for i in index
        ]
        return self.model.encode([self.train_examples[i] for i in index], demos)

    def train(
        self, progress: bool = True, checkpoint_dir: str | os.PathLike | None = None, resume: bool = False
    ) -> TrainResult:
        """Run the training loop; the best-on-dev parameters are in the model afterwards.

        With ``checkpoint_dir``, a checkpoint (trainable parameters, best parameters, optimizer
        moments, every random state) is written atomically after each evaluation; ``resume`` continues
        from it and ends with the same result as an uninterrupted run. With ``progress``, its notes
        (the memory plan, a budget that sees fewer examples than given) show on stderr unless logging
        is set up (:mod:`lmbff.logs`).
        """
        with shown(progress):
            return self._train(progress, checkpoint_dir, resume)

    def _train(self, progress: bool, checkpoint_dir: str | os.PathLike | None, resume: bool) -> TrainResult:
        from accelerate import Accelerator

        args = self.args
        set_seed(args.seed)
        self.model.calibration = None
        # Device placement here; under `accelerate launch` also data parallelism: each process takes its
        # share of every step's batch and DDP averages the gradients.
        accelerator = Accelerator()
        base = self.model.lm
        base.to(accelerator.device)
        prototypes = getattr(self.model, "prototypes", None)
        if prototypes is not None:
            prototypes.to(accelerator.device)
        optimizer = self._optimizer()
        encodings = self.model.encode(self.train_examples) if self.demonstrations is None else None
        embeddings = (
            self.demonstrations.query_embeddings(self.train_examples) if self.demonstrations else None
        )
        loop = _LoopState(
            order=[],
            history=[],
            generator=torch.Generator().manual_seed(args.seed),
            demo_rng=np.random.default_rng(args.seed),
        )
        store = Checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
        if resume and store is not None and store.exists():
            loop = store.load(self, optimizer, loop)
        micro = self._micro_batch(encodings, -(-args.batch_size // accelerator.num_processes), progress)
        if accelerator.is_main_process:
            self._say_budget()
        resumed_at, earlier, earlier_cpu = loop.step, loop.seconds, loop.cpu_seconds
        started, started_cpu = time.perf_counter(), cpu_seconds()
        schedule = get_linear_schedule_with_warmup(
            optimizer, int(args.warmup_ratio * self.max_steps), self.max_steps, last_epoch=loop.step - 1
        )
        if accelerator.num_processes > 1:
            self.model.lm, optimizer = accelerator.prepare(base, optimizer)
        if args.batch_size < accelerator.num_processes:
            raise ConfigError(
                f"batch_size {args.batch_size} is smaller than the {accelerator.num_processes} data-parallel "
                "processes"
            )
        self.model.lm.train()
        bar = tqdm(
            range(loop.step + 1, self.max_steps + 1),
            desc="training",
            disable=not progress or not accelerator.is_main_process,
            unit="step",
            initial=loop.step,
            total=self.max_steps,
        )
        step_seconds: list[float] = []
        for step in bar:
            step_started = time.perf_counter()
            loss_value = self._accumulate(loop, encodings, embeddings, micro, accelerator)
            if prototypes is not None and accelerator.num_processes > 1:
                # DDP averages the wrapped model's gradients; the prototypes sit outside it
                for p in prototypes.parameters():
                    if p.grad is not None:
                        p.grad = accelerator.reduce(p.grad, reduction="mean")
            accelerator.clip_grad_norm_(self.params, args.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step_seconds.append(time.perf_counter() - step_started)
            remaining = self.max_steps - step
            if (
                len(step_seconds) == _TIMED_STEPS
                and remaining >= 10
                and progress
                and accelerator.is_main_process
            ):
                self._say_estimate(step_seconds, remaining)
            loop.step = step
            bar.set_postfix(loss=f"{loss_value:.4f}")
            at_eval = (self.eval_every and step % self.eval_every == 0) or step == self.max_steps
            loop.history.append(self._record(step, loss_value, loop, at_eval))
            if at_eval and store is not None:
                loop.seconds = earlier + time.perf_counter() - started
                loop.cpu_seconds = earlier_cpu + cpu_seconds() - started_cpu
                if accelerator.is_main_process:
                    store.save(self, optimizer, loop)
                accelerator.wait_for_everyone()
        self._keep_best(loop, base)
        return TrainResult(
            loop.best_step,
            loop.best_dev,
            loop.history,
            self.trainable,
            self.total,
            float(np.median(step_seconds)) if step_seconds else 0.0,
            resumed_at,
            earlier,
            earlier_cpu,
        )

    def _optimizer(self) -> torch.optim.Optimizer:
        """AdamW over the parameter groups: each backend (each part of a combination) at its own rate
        unless ``learning_rate`` overrides it; prototypes and a new head keep their own (``OWN``)."""
        args = self.args
        groups = [
            {
                **g,
                "lr": args.learning_rate
                if args.learning_rate is not None and g.get("name") not in OWN
                else g["lr"],
            }
            for g in self.param_groups
        ]
        return torch.optim.AdamW(groups, weight_decay=args.weight_decay, fused=_fusable(self.params))

    def _say_budget(self) -> None:
        """A note when ``min_epochs`` lengthened the run, or when the run sees fewer examples than given."""
        args = self.args
        per_step = args.batch_size * args.gradient_accumulation_steps
        seen, given = self.max_steps * per_step, len(self.train_examples)
        if self.max_steps > args.max_steps:
            log.info(
                f"note: {args.max_steps} steps of {per_step} would see {args.max_steps * per_step} of the "
                f"{given} examples; training {self.max_steps} steps ({seen / given:.2f} epochs, min_epochs "
                f"{args.min_epochs:g}), evaluating every {self.eval_every or self.max_steps}"
            )
        elif seen < given:
            # Seen in the trial: 32 steps of 8 saw 256 of 616 rows (77 classes), without a word.
            log.info(
                f"note: {self.max_steps} steps of {per_step} see {seen} examples, fewer than the {given} "
                f"given ({seen / given:.2f} epochs); max_steps {-(-given // per_step)} sees each once"
            )

    def _accumulate(self, loop: _LoopState, encodings, embeddings, micro: int, accelerator) -> float:
        """One optimizer step's gradients (its accumulated batches, this process's share of each), and
        the step's loss."""
        args = self.args
        rank, world = accelerator.process_index, accelerator.num_processes
        loss_value = 0.0
        for _ in range(args.gradient_accumulation_steps):
            if len(loop.order) < args.batch_size:  # epochs: reshuffle when the current one is used up
                loop.order += torch.randperm(len(self.train_examples), generator=loop.generator).tolist()
            index, loop.order = loop.order[: args.batch_size], loop.order[args.batch_size :]
            batch = self._batch_encodings(index, encodings, loop.demo_rng, embeddings)
            mine = range(rank, len(index), world)  # this process's share of the step's batch
            examples = [self.train_examples[index[i]] for i in mine]
            share = [batch[i] for i in mine]
            # A batch too large for memory runs as passes of ``micro`` examples, each weighted by its
            # share of the batch: the same gradients (the losses are means over the batch).
            for start in range(0, len(examples), micro):
                part = examples[start : start + micro]
                loss = self.loss(part, share[start : start + micro]) * (len(part) / len(examples))
                loss = loss / args.gradient_accumulation_steps
                accelerator.backward(loss)
                loss_value += loss.item()
        return loss_value

    def _record(self, step: int, loss_value: float, loop: _LoopState, at_eval: bool) -> dict:
        """The step's history record; at an evaluation, its dev score, keeping the best parameters."""
        record: dict = {"step": step, "loss": loss_value}
        if at_eval and self.dev_examples:
            record["dev"] = self.evaluate(self.dev_examples)
            self.model.lm.train()
            if loop.best_dev is None or record["dev"] > loop.best_dev:
                loop.best_step, loop.best_dev = step, record["dev"]
                loop.best = [p.detach().clone() for p in self.params]
        return record

    def _keep_best(self, loop: _LoopState, base) -> None:
        """The best-on-dev parameters (else the last) into the model, unwrapped, in eval mode, its config
        exported and its weights back in their own precision."""
        if loop.best is not None:
            with torch.no_grad():
                for p, saved in zip(self.params, loop.best, strict=True):
                    p.copy_(saved)
        else:
            loop.best_step = self.max_steps
        self.model.lm = base
        self.model.lm.eval()
        self.saved_tuning = self.tuning.export(base)
        to_rest(base, self.rest_dtype)  # the trained weights in the model's own precision again

    def _say_estimate(self, step_seconds: list[float], remaining: int) -> None:
        """The remaining training time, from the median of the first steps (the first is warm-up)."""
        from .defaults import format_duration

        per_step = float(np.median(step_seconds[1:]))
        evaluations = (remaining // self.eval_every if self.eval_every else 0) + 1
        tqdm.write(
            f"timing: {per_step:.2f} s/step over the first {len(step_seconds)} steps; about "
            f"{format_duration(per_step * remaining)} for the remaining {remaining} steps, plus "
            f"{evaluations} evaluation(s) on {len(self.dev_examples)} dev examples"
        )

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The trained parameters by name (what a saved state holds)."""
        base = getattr(self.model.lm, "module", self.model.lm)
        named = {name: p for name, p in base.named_parameters() if p.requires_grad}
        prototypes = getattr(self.model, "prototypes", None)
        if prototypes is not None:
            named.update(prototypes.named_state())
        return named

    def config(self) -> dict:
        return {"training": asdict(self.args), "tuning": self.tuning.to_dict()}
