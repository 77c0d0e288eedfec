"""`make bench`: run every benchmark module of this package (sorted by name) that has a
`main()`; each prints its own figures. `python -m bench status_polling` runs only that one.

A module that fails is reported and the others still run; the exit status is then 1."""

import importlib
import pkgutil
import sys
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    wanted = set(argv)
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    failed = []
    for name in names:
        if name.startswith("_") or (wanted and name not in wanted):
            continue
        module = importlib.import_module(f"bench.{name}")
        if not callable(getattr(module, "main", None)):
            continue
        print(f"== bench.{name}", flush=True)
        saved, sys.argv = sys.argv, [f"bench.{name}"]  # module names are not its arguments
        try:
            module.main()
        except SystemExit as exc:
            if exc.code not in (0, None):
                failed.append(name)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        finally:
            sys.argv = saved
        sys.stdout.flush()
    if failed:
        print(f"== failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
