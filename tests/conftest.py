import os
import sys

# tests/toy_gan.py is imported as "tests.toy_gan" (config types), so the repository root must be importable
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
