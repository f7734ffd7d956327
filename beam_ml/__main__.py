"""``python -m beam_ml`` is the same command line as ``python -m beam_ml.run``."""

import sys

from beam_ml.run import main

sys.exit(main())
