"""`python -m bench [--quick] [--no-litellm] [--out DIR]`."""

import sys

from bench.run import main

sys.exit(main())
