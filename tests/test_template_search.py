"""Automatic templates: joint beam search on a tiny T5, pool mode on a planted model, the command."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from torch import nn

from lmbff.cli import main
from lmbff.data import Example
from lmbff.search.template_candidates import template_from_spans, valid_template
from lmbff.search.templates import (
    TemplateSearchConfig,
    generate_templates,
    generator_inputs,
    joint_beam_search,
    pool_candidates,
    search_templates,
)
from prompts.library import load_task, parse_task_file

from .conftest import DEMO_DATA

SST2 = load_task("SST-2")


def data() -> list[Example]:
    good = [Example({"text_a": f"a good film number {i}"}, "1") for i in range(4)]
    bad = [Example({"text_a": f"a bad film number {i}"}, "0") for i in range(4)]
    return good + bad


def test_joint_beam_search_scores_spans_over_all_inputs(t5):
    model, tokenizer, _ = t5
    inputs = generator_inputs("{text_a} <X> {word} <Y>", data()[:3], {"0": "terrible", "1": "great"})
    assert inputs[0] == "a good film number 0 <extra_id_0> great <extra_id_1>"
    spans = joint_beam_search(model, tokenizer, inputs, beam=4, max_new_tokens=5)
    assert len(spans) >= 4  # the budget forces every beam to finish
    assert [s[2] for s in spans] == sorted((s[2] for s in spans), reverse=True)
    sentinels = tokenizer.convert_tokens_to_ids(["<extra_id_0>", "<extra_id_1>", "<extra_id_2>"])
    for _, _, score, target in spans[:2]:
        assert target[0] == sentinels[0] and target.count(sentinels[1]) == 1
        assert target[-1] in (sentinels[2], tokenizer.eos_token_id) and len(target) <= 6
        # joint: the score is the sum over all inputs of the spans' teacher-forced log-likelihood
        total = 0.0
        with torch.no_grad():
            for text in inputs:
                enc = tokenizer(text, return_tensors="pt")
                decoder = torch.tensor([[model.config.decoder_start_token_id, *target[:-1]]])
                logits = model(**enc, decoder_input_ids=decoder).logits[0].float().log_softmax(-1)
                total += float(logits[torch.arange(1, len(target)), torch.tensor(target[1:])].sum())
        assert total == pytest.approx(score, abs=1e-3)


def test_generated_templates_are_distinct_valid_and_render_in_the_sandbox(t5):
    model, tokenizer, _ = t5
    config = TemplateSearchConfig(beam=6, max_span_tokens=6)
    candidates = generate_templates(
        model, tokenizer, SST2.task, data(), {"0": "terrible", "1": "great"}, config
    )
    assert candidates and len({c.text for c in candidates}) == len(candidates)
    for c in candidates:
        assert valid_template(c.text, ["text_a"]) and "{{ text_a }}" in c.text and "{{ mask }}" in c.text


def test_spans_with_jinja_syntax_are_neutralised():
    text = template_from_spans("{text_a} <X> {word} <Y>", "{{ config }}", "{% for x in y %} .")
    assert valid_template(text, ["text_a"]) and "config" in text and "{%" not in text


class PlantedLM(nn.Module):
    """A masked LM that knows sentiment only when the prompt contains the word "summary": then its
    features at every position point at "great" for inputs with "good" and "terrible" otherwise."""

    def __init__(self, tokenizer):
        super().__init__()
        self.config = type("Config", (), {})()
        self.key, self.good = tokenizer.convert_tokens_to_ids(["summary", "good"])
        great, terrible = tokenizer.convert_tokens_to_ids(["great", "terrible"])
        self.head = nn.Linear(2, len(tokenizer), bias=False)
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.weight[great, 0] = self.head.weight[terrible, 1] = 5.0

    def get_output_embeddings(self):
        return self.head

    def forward(self, input_ids, attention_mask=None):
        has_key = (input_ids == self.key).any(1, keepdim=True).float()
        good = (input_ids == self.good).any(1, keepdim=True).float()
        features = has_key * torch.cat([good, 1 - good], dim=1)  # no key: no preference
        return self.head(features[:, None, :].expand(-1, input_ids.shape[1], -1))


def test_pool_mode_picks_the_template_a_planted_model_prefers(bert_tokenizer):
    lm = PlantedLM(bert_tokenizer)
    best, _ = search_templates(
        lm,
        bert_tokenizer,
        "masked",
        SST2.task,
        {"0": ["terrible"], "1": ["great"]},
        data(),
        data(),
        TemplateSearchConfig(top=3),
        progress=False,
    )
    assert best[0].text == "{{ text_a }} In summary, it was {{ mask }}." and best[0].score == 1.0
    assert best[1].score == 0.5


def test_pool_templates_are_validated():
    with pytest.raises(ValueError, match="does not render"):
        pool_candidates(SST2.task, ["{{ text_b }} {{ mask }}"])
    with pytest.raises(ValueError, match="exactly one"):
        pool_candidates(SST2.task, ["{{ text_a }} no slot"])


def test_search_templates_command_writes_a_block_that_loads_as_a_task_file(t5, bert_dir, tmp_path, capsys):
    out = tmp_path / "templates"
    task = DEMO_DATA / "task.yaml"
    assert main(f"split --task {task} --data-dir {DEMO_DATA} --k 4 --seeds 13 --out {tmp_path}".split()) == 0
    base = f"search-templates --task {task} --data-dir {tmp_path / '4-13'} --model {bert_dir} --top 3"
    assert main(f"{base} --out {out}".split()) == 0
    result = json.loads((out / "templates.json").read_text())
    assert len(result["templates"]) == 3 and result["templates"][0]["source"] == "built-in pool"
    # the block pasted into a task file is a valid task file
    block = yaml.safe_load((out / "templates.yaml").read_text())
    task_block = yaml.safe_load(task.read_text())["task"]
    merged = tmp_path / "merged.yaml"
    merged.write_text(yaml.safe_dump({"task": task_block, "default_template": "auto_1", **block}))
    loaded, errors = parse_task_file(merged)
    assert not errors and loaded.prompt().template.text == result["templates"][0]["text"]
    assert (
        main(f"{base} --generator {t5[2]} --beam 4 --max-span-tokens 4 --out {tmp_path / 'gen'}".split()) == 0
    )
    assert (
        "generated" in json.loads((tmp_path / "gen" / "templates.json").read_text())["templates"][0]["source"]
    )
    pool = tmp_path / "pool.yaml"
    pool.write_text("- '{{ text_a }} {{ mask }}!'\n- 'Oops {{ nothing }} {{ mask }}'\n")
    assert main(f"{base} --pool {pool} --out {tmp_path / 'p'}".split()) == 2
    assert "does not render" in capsys.readouterr().out
