"""How long `lensblur --help` and each subcommand's `--help` take: the median of several fresh processes.

The command line imports torch (a second or more) only when a command runs, so asking for help, or a
mistake argparse catches, costs only Python's start-up and the parser.

    python bench/startup.py            # 5 runs each
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    from lensblur.cli import COMMANDS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"median of {args.runs} runs of `python -m lensblur ... --help`")
    print("| command | seconds |")
    print("|---|---:|")
    for name in ("", *COMMANDS):
        argv = [sys.executable, "-m", "lensblur", *([name] if name else []), "--help"]
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        print(f"| lensblur {name} --help | {statistics.median(times):.3f} |")


if __name__ == "__main__":
    main()
