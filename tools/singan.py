"""SinGAN applications: ``python tools/singan.py <app> --checkpoint C --out DIR ...`` (see docs/singan.md)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganzoo.cli.singan import main  # noqa: E402

sys.exit(main())
