"""The configs the run form starts with (run kind -> config), kept apart from the views so that
``bench/demo_loop.py`` starts the demo's runs with exactly what the form's button sends."""

# Small enough to finish in minutes on a laptop CPU with the bundled models: 30 reward-model steps
# see each of the demo's 58 votes ~4 times, 10 DPO steps a third of them (enough to move a LoRA and
# show the loop, not to tune a good policy). bench/demo_loop.py times the loop with these: ~100 s
# from starting both runs to an annotator served a tuned-vs-base item (2 cores, 29 Nov 2026).
DEMO_CONFIGS = {
    "reward_model": {"model": "minilm-l6", "max_steps": 30, "batch_size": 8, "lr": 5e-5,
                     "eval_every": 10, "checkpoint_every": 10, "max_length": 256},
    "dpo": {"model": "smollm2-135m", "max_steps": 10, "batch_size": 2, "lr": 5e-5, "lora": True,
            "eval_every": 5, "checkpoint_every": 5, "max_length": 256},
    "contrastive": {"model": "minilm-l6", "max_steps": 60, "batch_size": 8, "objective": "info_nce",
                    "eval_every": 10, "checkpoint_every": 10, "max_length": 256},
    # Online RL against the active scorer (the server fills in reward_model): 2 prompts x k samples
    # per rollout, short replies, a LoRA on the bundled policy.
    "rloo": {"model": "smollm2-135m", "max_steps": 10, "batch_size": 2, "k": 4, "max_new_tokens": 48,
             "checkpoint_every": 5, "max_length": 256},
    "ppo": {"model": "smollm2-135m", "max_steps": 12, "batch_size": 2, "k": 2, "ppo_epochs": 2,
            "max_new_tokens": 48, "checkpoint_every": 4, "max_length": 256},
    "soft_q": {"model": "smollm2-135m", "max_steps": 10, "batch_size": 2, "k": 2, "max_new_tokens": 48,
               "checkpoint_every": 5, "max_length": 256},
}  # fmt: skip
