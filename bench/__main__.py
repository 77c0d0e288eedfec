"""`make bench`: run every benchmark module of this package (sorted by name) that has a
`main()`; each prints its own figures. `python -m bench status_polling` runs only that one."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    wanted = set(argv)
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    for name in names:
        if name.startswith("_") or (wanted and name not in wanted):
            continue
        module = importlib.import_module(f"bench.{name}")
        if callable(getattr(module, "main", None)):
            print(f"== bench.{name}", flush=True)
            module.main()


if __name__ == "__main__":
    main(sys.argv[1:])
