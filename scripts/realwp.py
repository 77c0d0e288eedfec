"""Serve a real WordPress with the Association App plugin on loopback, for trying the product
by hand against the real thing (the tests use the same harness: tests/wordpress_real/harness.py).

    .venv/bin/python scripts/realwp.py            # seeded site, until Ctrl-C
    .venv/bin/python scripts/realwp.py --empty    # plugin installed, no content

Prints the site URL, the Sync API key to paste into a connector, and the WP Admin login.
Needs Debian's `wordpress php-cli php-mysql` and MariaDB on 127.0.0.1:3306 (root, no password).
The database (default `wp_assoc_manual`, WP_TEST_DB_NAME overrides) is dropped on exit.
"""

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.wordpress_real.harness import ADMIN_PASSWORD, HarnessError, build_site


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--empty", action="store_true", help="do not seed content")
    parser.add_argument("--db", default=os.environ.get("WP_TEST_DB_NAME", "wp_assoc_manual"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="realwp-") as tmp:
        try:
            site = build_site(Path(tmp), args.db, seed=not args.empty)
        except HarnessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"WordPress:     {site.url}/")
        print(f"Sync API:      {site.url}/api/v1/sync/ping")
        print(f"Sync API key:  {site.key}")
        print(f"WP Admin:      {site.url}/wp-admin/  (admin / {ADMIN_PASSWORD})")
        print(f"PHP errors:    {site.error_log}")
        print("Ctrl-C stops the server and drops the database.", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            while site.process and site.process.poll() is None:
                time.sleep(1)
            print("php -S exited; see", site.log_path, file=sys.stderr)
        except KeyboardInterrupt:
            pass
        finally:
            site.stop()
            site.drop_database()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
