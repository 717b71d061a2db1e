"""Which curves the run page draws for a run's kind: one entry per chart, each a list of lines
(a metric key of one phase of the run's ``RunMetric`` series). ``static/js/run.js`` draws them
live from the run's API; metrics of a similar scale share a chart."""

from training.models import RL_RUN_KINDS, RunKind


def _line(key: str, *, phase: str = "train", name: str = "", dashed: bool = False) -> dict:
    return {"key": key, "phase": phase, "name": name or key, "dashed": dashed}


PAIRWISE_CHARTS = [
    {"id": "loss", "title": "Loss",
     "lines": [_line("loss", name="train"), _line("loss", phase="eval", name="eval", dashed=True)]},
    {"id": "accuracy", "title": "Accuracy", "percent": True,
     "lines": [_line("accuracy", name="train"), _line("accuracy", phase="eval", name="eval", dashed=True)]},
]  # fmt: skip

RL_CHARTS = [
    {"id": "reward", "title": "Reward (rollout mean and spread)",
     "lines": [_line("reward"), _line("reward_std")]},
    {"id": "kl", "title": "KL to the reference", "lines": [_line("kl"), _line("kl_coef", dashed=True)]},
    {"id": "loss", "title": "Loss", "lines": [_line("loss")]},
    {"id": "advantages", "title": "Advantages", "lines": [_line("advantage_mean"), _line("advantage_std")]},
    {"id": "entropy", "title": "Entropy and truncation",
     "lines": [_line("entropy"), _line("truncated_fraction", dashed=True)]},
    {"id": "length", "title": "Response length (tokens)", "lines": [_line("response_length")]},
    {"id": "throughput", "title": "Samples per second", "lines": [_line("samples_per_second")]},
]  # fmt: skip

PPO_CHARTS = [
    {"id": "ppo-losses", "title": "PPO losses", "lines": [_line("policy_loss"), _line("value_loss")]},
    {"id": "ppo-clipping", "title": "PPO clipping", "lines": [_line("clip_fraction"), _line("approx_kl")]},
]


def charts_for_kind(kind: str) -> list[dict]:
    """The charts of a run of ``kind``, in page order, each with an SVG label naming its metrics."""
    if kind in RL_RUN_KINDS:
        charts = RL_CHARTS + (PPO_CHARTS if kind == RunKind.PPO else [])
    else:
        charts = PAIRWISE_CHARTS
    return [
        {**chart, "label": " and ".join(dict.fromkeys(line["key"] for line in chart["lines"])) + " by step"}
        for chart in charts
    ]
