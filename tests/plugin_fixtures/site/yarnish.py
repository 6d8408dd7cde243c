"""An argparse tool in the style of dask-yarn: `main(argv)` that calls sys.exit."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description="yarnish test tool")
    parser.add_argument("--flag")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    print(f"prog={parser.prog}")
    print(f"argv={argv!r}")
    print(f"flag={args.flag}")
    print(f"stdin={sys.stdin.read()!r}")
    sys.exit(3)
