"""The configs the run form starts with (run kind -> config), kept apart from the views so that
``bench/demo_loop.py`` starts the demo's runs with exactly what the form's button sends."""

# Small enough to finish in minutes on a laptop CPU with the bundled models. Measured on the demo
# (58 votes, 2 busy shared cores): a reward-model step took ~7 s and a DPO step ~13 s after ~3 min
# of loading and reference log-probs, so 60 + 20 steps made a ~17 min loop; 30 + 10 steps see
# each demo vote ~4 times (reward) and a third of them (DPO: enough to move a LoRA and show the
# loop, not to tune a good policy).
DEMO_CONFIGS = {
    "reward_model": {"model": "minilm-l6", "max_steps": 30, "batch_size": 8, "lr": 5e-5,
                     "eval_every": 10, "checkpoint_every": 10, "max_length": 256},
    "dpo": {"model": "smollm2-135m", "max_steps": 10, "batch_size": 2, "lr": 5e-5, "lora": True,
            "eval_every": 5, "checkpoint_every": 5, "max_length": 256},
    "contrastive": {"model": "minilm-l6", "max_steps": 60, "batch_size": 8, "objective": "info_nce",
                    "eval_every": 10, "checkpoint_every": 10, "max_length": 256},
}  # fmt: skip
