"""`make bench`: run every benchmark module of this package (sorted by name) that has a
`main()`; each prints its own figures. `python -m bench status_polling` runs only that one;
options (`python -m bench fleet --quick`) are handed to every module run.

A module that fails is reported and the others still run; the exit status is then 1."""

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    wanted = {arg for arg in argv if not arg.startswith("-")}
    options = [arg for arg in argv if arg.startswith("-")]
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    failed = []
    for name in names:
        if name.startswith("_") or (wanted and name not in wanted):
            continue
        module = importlib.import_module(f"bench.{name}")
        if not callable(getattr(module, "main", None)):
            continue
        print(f"== bench.{name}", flush=True)
        # Each bench in a fresh interpreter: each points Django at its own database, and
        # Django is set up once per process (run in one process, the second bench silently
        # measured the first one's database, against a server on another).
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *options], cwd=ROOT)
        if code != 0:
            failed.append(name)
        sys.stdout.flush()
    if failed:
        print(f"== failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
