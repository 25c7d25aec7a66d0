"""Makes launcher.py and xxh3.py importable from the tests of this directory."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
