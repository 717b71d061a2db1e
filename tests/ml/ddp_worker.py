"""Run by test_ddp.py under `torchrun --nproc_per_node 2`: the same reward training, on two processes."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.ml.conftest import toy_pairs
from training.ml.api import run_training

if __name__ == "__main__":
    config, out = json.loads(sys.argv[1]), Path(sys.argv[2])
    kind = sys.argv[3] if len(sys.argv) > 3 else "reward_model"
    result = run_training(kind, config, toy_pairs(48), output_dir=out)
    if os.environ["RANK"] == "0":  # torchrun interleaves the lines two processes print at once
        print("RESULT", result.steps, result.checkpoint_dir)
