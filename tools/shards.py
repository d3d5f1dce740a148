import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ganzoo.cli.shards import main  # noqa: E402

sys.exit(main())
