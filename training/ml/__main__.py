"""`python -m training.ml ...`: see training/ml/cli.py."""

import sys

from training.ml.cli import main

sys.exit(main())
