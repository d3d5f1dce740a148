import os
import sys

# tests/toy_gan.py is imported as "tests.toy_gan" (config types), so the repository root must be importable
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# No test may reach the internet: a missing weights file is a one-line error, never a download. Tests of the
# fetch path (tests/test_fetch.py) turn this off for themselves and serve files from 127.0.0.1.
os.environ["GANZOO_OFFLINE"] = "1"
