"""``python -m ganzoo list`` prints every registry and its entries."""
import sys

from ganzoo.registry import describe


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in ([], ["list"]):
        print(describe())
        return 0
    print(f"usage: python -m ganzoo list   (unknown command {argv[0]!r})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
