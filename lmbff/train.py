"""Prompt-based tuning: the loss is cross-entropy over the label words' class scores (LM-BFF), or the
two-pole KL divergence for regression; AdamW with a linear schedule; best-on-dev model selection."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from prompts.library import Task

from .data import Example
from .demonstrations import Demonstrations
from .evaluate import score_examples
from .model import PromptModel, regression_targets
from .tuning import TuningConfig, trainable_summary


@dataclass
class TrainingArguments:
    """LM-BFF's defaults (Gao et al. 2021): 1000 steps, evaluate every 100, batch 8."""

    max_steps: int = field(default=1000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "examples per optimizer step"})
    learning_rate: float | None = field(default=None, metadata={"help": "default: the backend's own"})
    eval_every: int = field(
        default=100, metadata={"help": "evaluate on dev every N steps (0: only at the end)"}
    )
    warmup_ratio: float = field(default=0.0, metadata={"help": "fraction of steps of linear warm-up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    eval_batch_size: int = field(default=32, metadata={"help": "batch size for dev/test scoring"})
    seed: int = field(default=42, metadata={"help": "seed for sampling and initialisation"})


@dataclass
class TrainResult:
    best_step: int
    best_dev: float | None
    history: list[dict]
    trainable_parameters: int
    total_parameters: int


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
            raise ValueError("no training examples")
        self.model, self.task, self.tuning, self.args = prompt_model, task, tuning, args
        self.train_examples, self.dev_examples = list(train), list(dev or [])
        self.demonstrations = demonstrations
        self.params = tuning.apply(prompt_model.lm)
        self.trainable, self.total = trainable_summary(prompt_model.lm)

    def loss(self, examples: Sequence[Example], encodings) -> torch.Tensor:
        batch = self.model.collate(encodings).to(self.model.device)
        log_scores = self.model.class_log_scores(batch, calibrate=False)
        if self.task.is_regression:
            target = regression_targets([float(e.label) for e in examples], self.task.value_range)
            return F.kl_div(log_scores, target.to(log_scores.device), reduction="batchmean")
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
        return score_examples(self.task, examples, scores, "dev").score

    def _batch_encodings(self, index: list[int], cached, rng: np.random.Generator, embeddings):
        """The batch's encodings: cached, or with a fresh demonstration set per example (LM-BFF)."""
        if self.demonstrations is None:
            return [cached[i] for i in index]
        demos = [
            self.demonstrations.sample(rng, None if embeddings is None else embeddings[i], exclude=i)
            for i in index
        ]
        return self.model.encode([self.train_examples[i] for i in index], demos)

    def train(self, progress: bool = True) -> TrainResult:
        args = self.args
        set_seed(args.seed)
        self.model.calibration = None
        lr = args.learning_rate if args.learning_rate is not None else self.tuning.learning_rate
        optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=args.weight_decay)
        schedule = get_linear_schedule_with_warmup(
            optimizer, int(args.warmup_ratio * args.max_steps), args.max_steps
        )
        encodings = self.model.encode(self.train_examples) if self.demonstrations is None else None
        embeddings = (
            self.demonstrations.query_embeddings(self.train_examples) if self.demonstrations else None
        )
        demo_rng = np.random.default_rng(args.seed)
        generator = torch.Generator().manual_seed(args.seed)
        order: list[int] = []
        history: list[dict] = []
        best_step, best_dev, best_state = 0, None, None
        self.model.lm.train()
        bar = tqdm(range(1, args.max_steps + 1), desc="training", disable=not progress, unit="step")
        for step in bar:
            if len(order) < args.batch_size:  # epochs: reshuffle when the current one is used up
                order += torch.randperm(len(self.train_examples), generator=generator).tolist()
            index, order = order[: args.batch_size], order[args.batch_size :]
            batch = self._batch_encodings(index, encodings, demo_rng, embeddings)
            loss = self.loss([self.train_examples[i] for i in index], batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, args.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            record = {"step": step, "loss": loss.item()}
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            at_eval = (args.eval_every and step % args.eval_every == 0) or step == args.max_steps
            if at_eval and self.dev_examples:
                record["dev"] = self.evaluate(self.dev_examples)
                self.model.lm.train()
                if best_dev is None or record["dev"] > best_dev:
                    best_step, best_dev = step, record["dev"]
                    best_state = [p.detach().clone() for p in self.params]
            history.append(record)
        if best_state is not None:
            with torch.no_grad():
                for p, saved in zip(self.params, best_state, strict=True):
                    p.copy_(saved)
        else:
            best_step = args.max_steps
        self.model.lm.eval()
        return TrainResult(best_step, best_dev, history, self.trainable, self.total)

    def config(self) -> dict:
        return {"training": asdict(self.args), "tuning": self.tuning.to_dict()}
