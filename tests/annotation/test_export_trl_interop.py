"""The ``trl`` export is what TRL's trainers eat: it loads with ``datasets`` and one step of
``RewardTrainer`` and ``DPOTrainer`` runs on it, with tiny models built from configs and a tiny
byte-level tokenizer trained on the spot (no model hub)."""

import pytest

from annotation.services.export_jobs import export_to_file
from annotation.services.exports import ExportOptions
from tests.factories import ComparisonFactory, MembershipFactory, judgement

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture
def trl_files(project, tmp_path):
    ann, bob = (MembershipFactory(project=project, user__username=name).user for name in ("ann", "bob"))
    for i in range(4):
        comparison = ComparisonFactory.create_pair(
            project=project, texts=(f"A kind, careful answer number {i}.", f"No. {i}")
        )
        judgement(comparison, ann, "a")
        judgement(comparison, bob, "a" if i else "b")  # one split, dropped by the majority rule
    ComparisonFactory.create_pair(project=project, texts=("Imported yes.", "Imported no."), prior_choice="b")
    paths = {}
    for name, conversational in (("plain", False), ("conversational", True)):
        path = tmp_path / f"{name}.jsonl"
        options = ExportOptions.from_dict({"format": "trl", "conversational": conversational})
        export = export_to_file(project=project, options=options, path=path)
        assert export.rows == 4
        paths[name] = path
    return paths


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<pad>", "<eos>", "<|user|>", "<|assistant|>", "<|system|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(["A kind, careful answer number.", "No. Imported yes."], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_llama(tokenizer, cls):
    import torch
    from transformers import LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=1,
    )
    return cls(config)


def common_args(tmp_path):
    return {
        "output_dir": str(tmp_path / "out"),
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-2,
        "use_cpu": True,
        "bf16": False,
        "report_to": [],
        "save_strategy": "no",
        "logging_steps": 1,
        "dataloader_num_workers": 0,
    }


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def assert_one_step_ran(trainer, before):
    import math

    assert trainer.state.global_step == 1
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert losses and math.isfinite(losses[0])
    after = dict(trainer.model.named_parameters())
    assert any(not (after[name].detach() == value).all() for name, value in before.items())


@pytest.mark.parametrize("layout", ["plain", "conversational"])
def test_the_trl_export_trains_a_reward_model_for_one_step(trl_files, tmp_path, layout):
    from datasets import load_dataset
    from transformers import LlamaForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    dataset = load_dataset("json", data_files=str(trl_files[layout]), split="train")
    assert dataset.column_names == ["chosen", "prompt", "rejected"]
    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, LlamaForSequenceClassification)
    before = snapshot(model)
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(**common_args(tmp_path), max_length=128),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    assert_one_step_ran(trainer, before)


@pytest.mark.parametrize("layout", ["plain", "conversational"])
def test_the_trl_export_trains_dpo_for_one_step(trl_files, tmp_path, layout):
    from datasets import load_dataset
    from transformers import LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    dataset = load_dataset("json", data_files=str(trl_files[layout]), split="train")
    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer, LlamaForCausalLM)
    reference = tiny_llama(tokenizer, LlamaForCausalLM)  # same seed: a frozen copy of the start
    before = snapshot(model)
    trainer = DPOTrainer(
        model=model,
        ref_model=reference,
        args=DPOConfig(**common_args(tmp_path), max_length=128),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    assert_one_step_ran(trainer, before)
