"""The ML core stands alone: importing it never pulls in Django."""

import subprocess
import sys

import pytest

MODULES = [
    "training.ml",
    "training.ml.config",
    "training.ml.data",
    "training.ml.tokenization",
    "training.ml.objectives",
    "training.ml.reward",
    "training.ml.policy",
    "training.ml.contrastive",
    "training.ml.trainer",
    "training.ml.checkpoints",
    "training.ml.api",
    "training.ml.rl",
    "training.ml.rollouts",
    "training.ml.rl_objectives",
    "training.ml.task_parts",
    "training.ml.backbone",
    "training.ml.evaluation",
    "training.ml.version_eval",
]


@pytest.mark.slow
def test_importing_the_ml_core_leaves_django_and_celery_out_of_sys_modules():
    # A fresh interpreter: this test process itself has Django loaded by pytest-django.
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery'))\n"
        "print('LEAKED' if leaked else 'CLEAN', leaked[:5])\n"
    )
    env = {"PATH": "", "HF_HUB_OFFLINE": "1", "PYTHONPATH": "."}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CLEAN"), done.stdout


def test_importing_the_package_does_not_load_torch_until_a_trainer_is_asked_for():
    code = "import sys, training.ml\nprint('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": "."}
    )
    assert done.stdout.strip() == "False", done.stderr
