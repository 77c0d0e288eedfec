"""A real WordPress on loopback, with the Association App plugin installed and activated.

Plain Python (no pytest): the test fixtures, `scripts/realwp.py` and the plugin benchmark use it.

How the site is built (a few seconds when Debian's packages are present):

1. a dereferenced copy of Debian's /usr/share/wordpress (it ships relative symlinks and a
   wp-config.php that reads /etc/wordpress/config-<host>.php) with our own wp-config.php;
2. a fresh MariaDB database (root, no password, 127.0.0.1:3306);
3. `wp_install()` from a PHP CLI bootstrap, pretty permalinks, then `activate_plugin()` of
   wordpress-plugin/association-app (its activation hook flushes the rewrite rules);
4. PHP's built-in server on a free loopback port with a router script (pretty URLs), started in
   its own session so it and its workers (PHP_CLI_SERVER_WORKERS, which outlive the parent
   otherwise) are stopped together by process group. It is started right after step 2, before
   the install writes the URL anywhere, so a port grabbed meanwhile by another process can still
   be swapped for a free one.

PHP logs every error, warning and notice of the server and of CLI runs to `php-errors.log` in the
site directory; the tests fail on them (tests/wordpress_real/conftest.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "wordpress-plugin" / "association-app"
SEED_SCRIPT = Path(__file__).with_name("seed.php")
WORDPRESS_SRC = Path(os.environ.get("WP_TEST_WORDPRESS_SRC", "/usr/share/wordpress"))
DB_HOST = os.environ.get("WP_TEST_DB_HOST", "127.0.0.1")
DB_PORT = int(os.environ.get("WP_TEST_DB_PORT", "3306"))
DB_USER = os.environ.get("WP_TEST_DB_USER", "root")
DB_PASSWORD = os.environ.get("WP_TEST_DB_PASSWORD", "")
DEFAULT_DB_NAME = os.environ.get("WP_TEST_DB_NAME", "wp_assoc_test")
ADMIN_PASSWORD = "harness-admin-" + "x" * 12
PHP = shutil.which("php") or "php"

INSTALL_PACKAGES_HINT = (
    "install Debian's packages without starting daemons: "
    "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; "
    "apt-get install -y --no-install-recommends wordpress php-cli php-mysql; "
    "rm /usr/sbin/policy-rc.d"
)

ROUTER = r"""<?php
// try_files-style router for php -S: real files are served as-is (PHP files executed),
// everything else goes through WordPress's index.php so pretty permalinks work.
$root = $_SERVER['DOCUMENT_ROOT'];
$path = rawurldecode( parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH ) );
if ( $path !== '/' && strpos( $path, '..' ) === false ) {
    if ( is_file( $root . $path ) ) {
        return false;
    }
    if ( is_dir( $root . $path ) && is_file( rtrim( $root . $path, '/' ) . '/index.php' ) ) {
        return false;
    }
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
chdir( $root );
require $root . '/index.php';
"""

WP_CONFIG = """<?php
define( 'DB_NAME', {db_name} );
define( 'DB_USER', {db_user} );
define( 'DB_PASSWORD', {db_password} );
define( 'DB_HOST', {db_host} );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
{salts}
$table_prefix = 'wp_';
define( 'WP_HOME', {url} );
define( 'WP_SITEURL', {url} );
define( 'WP_DEBUG', {debug} );
define( 'WP_DEBUG_DISPLAY', false );
define( 'WP_DEBUG_LOG', {error_log} );
define( 'DISABLE_WP_CRON', true );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_AUTO_UPDATE_CORE', false );
define( 'FS_METHOD', 'direct' );
if ( ! defined( 'ABSPATH' ) ) {{
    define( 'ABSPATH', __DIR__ . '/' );
}}
require_once ABSPATH . 'wp-settings.php';
"""

# Test-only must-use plugin:
# - a site customisation that breaks the contract for posts flagged with _harness_drop_title
#   (their records lose "title"), so the platform's handling of a record without a title can be
#   proven end to end;
# - X-Harness-Queries on every sync API answer: the SQL queries the request cost, so tests can
#   prove over HTTP that a page of 20 records costs no more queries than a page of 2;
# - no update checks against wordpress.org: the site is offline (WP_HTTP_BLOCK_EXTERNAL) and
#   every failed check is a PHP warning, which would fail the test that opened WP Admin.
MU_PLUGIN = """<?php
add_filter( 'rest_post_dispatch', function ( $response, $server, $request ) {
    global $wpdb;
    if ( $response instanceof WP_HTTP_Response
        && 0 === strpos( $request->get_route(), '/association-app/v1/' ) ) {
        $response->header( 'X-Harness-Queries', (string) $wpdb->num_queries );
    }
    return $response;
}, 1000, 3 );
foreach ( array( 'core', 'plugins', 'themes' ) as $what ) {
    remove_action( 'admin_init', '_maybe_update_' . $what );
}
foreach ( array( 'load-plugins.php', 'load-update.php', 'load-update-core.php' ) as $screen ) {
    remove_action( $screen, 'wp_update_plugins' );
}
foreach ( array( 'load-themes.php', 'load-update.php', 'load-update-core.php' ) as $screen ) {
    remove_action( $screen, 'wp_update_themes' );
}
add_filter( 'association_app_record', function ( $record, $entity, $object ) {
    if ( $object instanceof WP_Post && get_post_meta( $object->ID, '_harness_drop_title', true ) ) {
        unset( $record['title'] );
    }
    return $record;
}, 10, 3 );
"""

THEME_STYLE = "/*\nTheme Name: Harness\nDescription: Minimal theme of the test harness.\n*/\n"
THEME_INDEX = """<?php
// The smallest theme that renders a page: the test site ships no default theme.
?><!doctype html><html><head><meta charset="utf-8"><title><?php bloginfo( 'name' ); ?></title>
<?php wp_head(); ?></head><body><h1><?php bloginfo( 'name' ); ?></h1>
<?php while ( have_posts() ) { the_post(); the_title( '<h2>', '</h2>' ); } ?>
<?php wp_footer(); ?></body></html>
"""


class HarnessError(RuntimeError):
    """The real WordPress could not be built or served; the message says what to fix."""


class PortInUse(HarnessError):
    def __init__(self, port: int):
        super().__init__(f"port {port} was taken by another process before php -S could bind it")


# A PHP error, warning or notice anywhere fails the test that caused it. Deprecations only count
# in our own code: Debian's WordPress 6.1 on PHP 8.2 logs a few of its own (Requests return
# types, trim(null) in wp_authenticate) that no plugin can fix.
PHP_PROBLEM = re.compile(
    r"PHP (Fatal error|Parse error|Recoverable fatal error|Warning|Notice|Deprecated):"
)
OUR_PHP = ("/plugins/association-app/", "/mu-plugins/", "/themes/harness/", "router.php", "/cli-")
# php -S access log: "[pid] [date] 127.0.0.1:port [500]: GET /api/v1/sync/..."
SERVER_ERROR = re.compile(r"\[5\d\d\]: ")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after ")"
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def _read_from(path: Path, offset: int) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def php_str(value: str) -> str:
    """A PHP single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_prerequisites() -> None:
    """Raise HarnessError with the fix when something the real site needs is missing."""
    if not WORDPRESS_SRC.joinpath("wp-includes", "version.php").is_file():
        raise HarnessError(
            f"Debian's WordPress is not installed ({WORDPRESS_SRC}); {INSTALL_PACKAGES_HINT}"
        )
    if not shutil.which("php"):
        raise HarnessError(f"php (CLI) is not installed; {INSTALL_PACKAGES_HINT}")
    modules = subprocess.run([PHP, "-m"], capture_output=True, text=True, check=False).stdout
    if "mysqli" not in modules.lower():
        raise HarnessError(
            f"PHP has no mysqli extension (package php-mysql); {INSTALL_PACKAGES_HINT}"
        )
    try:
        with socket.create_connection((DB_HOST, DB_PORT), timeout=3):
            pass
    except OSError as exc:
        raise HarnessError(
            f"MariaDB is not reachable at {DB_HOST}:{DB_PORT} ({exc}); start it "
            "(e.g. start-stop-daemon --start --background --exec /usr/sbin/mariadbd)"
        ) from exc


@dataclass
class RealWordPress:
    """A built site: its directory, URL, database and (once started) its php -S process."""

    root: Path
    db_name: str
    port: int
    key: str = ""
    manifest: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    # Byte offset into error_log up to which PHP problems were already reported or accepted.
    problems_mark: int = 0
    server_log_mark: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def docroot(self) -> Path:
        return self.root / "wp"

    @property
    def error_log(self) -> Path:
        """Where PHP logs errors: the server, every CLI run and WordPress (WP_DEBUG_LOG)."""
        return self.root / "php-errors.log"

    def php_problems(self) -> list[str]:
        """Since the marks, one line each: PHP errors, warnings and notices (and deprecations in
        our code) from the error log, and 5xx answers from the server's access log (a fatal
        error can end a request before PHP logs anything useful)."""
        problems = []
        for line in _read_from(self.error_log, self.problems_mark).splitlines():
            match = PHP_PROBLEM.search(line)
            if not match:
                continue
            if match.group(1) == "Deprecated" and not any(part in line for part in OUR_PHP):
                continue
            problems.append(line.strip())
        if self.log_path is not None:
            for line in _read_from(self.log_path, self.server_log_mark).splitlines():
                if SERVER_ERROR.search(line):
                    problems.append(line.strip())
        return problems

    def take_php_problems(self) -> list[str]:
        """The problems since the marks; moves the marks to the ends of the logs."""
        problems = self.php_problems()
        self.problems_mark = _size(self.error_log)
        self.server_log_mark = _size(self.log_path)
        return problems

    # --- PHP CLI -------------------------------------------------------------------------

    @property
    def php_flags(self) -> list[str]:
        """OPcache for the CLI with a file cache: every CLI run and the server reuse compiled
        WordPress instead of compiling ~200 files again (about 4x faster per run)."""
        cache = self.root / "opcache"
        cache.mkdir(exist_ok=True)
        return [
            "-d",
            "opcache.enable_cli=1",
            "-d",
            f"opcache.file_cache={cache}",
            "-d",
            "memory_limit=512M",
            "-d",
            "log_errors=1",
            "-d",
            f"error_log={self.error_log}",
        ]

    def php(self, code: str, *, installing: bool = False, timeout: float = 120) -> object:
        """Run PHP code inside WordPress (CLI bootstrap, as the site admin); return its JSON output.

        The code must `echo wp_json_encode(...)` (or nothing: None is returned).
        """
        bootstrap = [
            "<?php",
            "error_reporting( E_ALL & ~E_DEPRECATED & ~E_NOTICE & ~E_WARNING );",
            f"$_SERVER['HTTP_HOST'] = '127.0.0.1:{self.port}';",
            "$_SERVER['REQUEST_URI'] = '/';",
            "$_SERVER['SERVER_NAME'] = '127.0.0.1';",
            "$_SERVER['REQUEST_METHOD'] = 'GET';",
        ]
        if installing:
            bootstrap.append("define( 'WP_INSTALLING', true );")
        bootstrap.append(f"require {php_str(str(self.docroot / 'wp-load.php'))};")
        if not installing:
            bootstrap.append(
                "$admin = get_user_by( 'login', 'admin' );"
                " if ( $admin ) { wp_set_current_user( $admin->ID ); }"
            )
        script = self.root / f"cli-{secrets.token_hex(4)}.php"
        script.write_text("\n".join(bootstrap) + "\n" + code.strip().removeprefix("<?php") + "\n")
        try:
            proc = subprocess.run(
                [
                    PHP,
                    *self.php_flags,
                    "-d",
                    "opcache.file_cache_only=1",
                    "-d",
                    "display_errors=stderr",
                    str(script),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.docroot,
                check=False,
            )
        finally:
            script.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise HarnessError(
                f"PHP failed (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-2000:]} {proc.stdout[-500:]}"
            )
        out = proc.stdout.strip()
        if not out:
            return None
        try:
            return json.loads(out)
        except ValueError as exc:
            raise HarnessError(f"PHP printed something that is not JSON: {out[:1000]!r}") from exc

    def create_post(
        self,
        meta: dict | None = None,
        terms: dict | None = None,
        backdate: int = 0,
        **postarr,
    ) -> int:
        """wp_insert_post() with these fields (+ post meta, + terms by taxonomy); returns the id.

        ``backdate`` moves its modification time that many seconds into the past, so a later
        edit is strictly newer without the test waiting for the clock's next second.
        """
        postarr.setdefault("post_status", "publish")
        payload = php_str(
            json.dumps(
                {"post": postarr, "meta": meta or {}, "terms": terms or {}, "back": backdate}
            )
        )
        return self.php(
            f"""<?php
            $in = json_decode( {payload}, true );
            $id = wp_insert_post( wp_slash( $in['post'] ), true );
            if ( is_wp_error( $id ) ) {{ fwrite( STDERR, $id->get_error_message() ); exit( 1 ); }}
            foreach ( $in['meta'] as $k => $v ) {{ update_post_meta( $id, $k, wp_slash( $v ) ); }}
            foreach ( $in['terms'] as $tax => $names ) {{
                wp_set_object_terms( $id, $names, $tax );
            }}
            if ( $in['back'] ) {{
                global $wpdb;
                $when = gmdate( 'Y-m-d H:i:s', time() - $in['back'] );
                $wpdb->update(
                    $wpdb->posts,
                    array(
                        'post_modified_gmt' => $when,
                        'post_modified'     => get_date_from_gmt( $when ),
                    ),
                    array( 'ID' => $id )
                );
                clean_post_cache( $id );
            }}
            echo wp_json_encode( $id );"""
        )

    def update_post(self, post_id: int, **fields) -> None:
        """wp_update_post(): a real WordPress edit (hooks run, modified time bumped)."""
        payload = php_str(json.dumps(dict(fields, ID=post_id)))
        self.php(f"<?php wp_update_post( wp_slash( json_decode( {payload}, true ) ) );")

    def set_post_modified(self, post_id: int, when: str) -> None:
        """Write post_modified_gmt directly ("Y-m-d H:i:s"), as a past edit would have."""
        self.php(
            f"""<?php
            global $wpdb;
            $wpdb->update(
                $wpdb->posts, array( 'post_modified_gmt' => '{when}' ), array( 'ID' => {post_id} )
            );
            clean_post_cache( {post_id} );"""
        )

    def post_field(self, post_id: int, field: str):
        return self.php(f"<?php echo wp_json_encode( get_post( {post_id} )->{field} );")

    def create_user(self, login: str, role: str = "subscriber") -> int:
        return self.php(
            f"""<?php
            echo wp_json_encode( wp_insert_user( array(
                'user_login' => '{login}',
                'user_email' => '{login}@example.net',
                'user_pass'  => 'x-' . wp_generate_password(),
                'role'       => '{role}',
            ) ) );"""
        )

    def php_file(self, path: Path, **kwargs) -> object:
        return self.php("<?php require " + php_str(str(path)) + ";", **kwargs)

    # --- server --------------------------------------------------------------------------

    def start(self, workers: int = 2) -> None:
        """Serve the site with `workers` PHP workers (PHP_CLI_SERVER_WORKERS); a no-op while it
        is already served. Raises PortInUse if another process took the port meanwhile."""
        if self.process is not None and self.process.poll() is None:
            return
        env = dict(os.environ, PHP_CLI_SERVER_WORKERS=str(workers))
        self.log_path = self.root / "php-server.log"
        log = self.log_path.open("ab")
        log_start = log.tell()
        self.process = subprocess.Popen(
            [
                PHP,
                *self.php_flags,
                "-S",
                f"127.0.0.1:{self.port}",
                "-t",
                str(self.docroot),
                str(self.root / "router.php"),
            ],
            cwd=self.docroot,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: workers are stopped with it
        )
        log.close()

        def answers() -> bool:
            if self.process.poll() is not None:
                self.process = None
                with self.log_path.open("rb") as server_log:
                    server_log.seek(log_start)
                    said = server_log.read().decode(errors="replace")
                if "Address already in use" in said:
                    raise PortInUse(self.port)
                raise HarnessError(f"php -S exited at once: {said[-2000:]}")
            try:
                # A static file: answers before WordPress is even installed, logs nothing.
                httpx.get(self.url + "/harness-ready.txt", timeout=2)
                return True
            except httpx.HTTPError:
                return False

        try:
            wait_until(answers, timeout=20, interval=0.1, what=f"php -S to answer on {self.url}")
        except AssertionError:
            self.stop()
            raise HarnessError(f"php -S did not answer on {self.url} within 20 s") from None

    def stop(self) -> None:
        """Stop php -S and its workers. SIGTERM goes to the whole process group; the workers
        exit a moment after the master, so wait until none is left (SIGKILL after 5 s): a
        worker that outlived the test would keep serving, and holding, the port."""
        if self.process is None:
            return
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=5)

        def all_gone() -> bool:
            return not group_members(group)

        try:
            wait_until(all_gone, timeout=5, what="php -S's workers to exit")
        except AssertionError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            wait_until(all_gone, timeout=5, what="php -S's workers to die (SIGKILL)")
        self.process = None

    def remove_files(self) -> None:
        """Delete the WordPress copy and the OPcache (~60 MB); the logs stay for a post-mortem."""
        shutil.rmtree(self.docroot, ignore_errors=True)
        shutil.rmtree(self.root / "opcache", ignore_errors=True)

    def drop_database(self) -> None:
        _mysql(f"DROP DATABASE IF EXISTS `{self.db_name}`")


def _mysql(sql: str) -> list:
    """Run one SQL statement on the MariaDB server with PHP's mysqli (no client package needed);
    returns the rows of a query as lists of strings."""
    code = (
        "mysqli_report( MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT );"
        f"$db = new mysqli( {php_str(DB_HOST)}, {php_str(DB_USER)}, {php_str(DB_PASSWORD)},"
        f" '', {DB_PORT} );"
        f"$result = $db->query( {php_str(sql)} );"
        "echo json_encode( $result instanceof mysqli_result ? $result->fetch_all() : array() );"
    )
    proc = subprocess.run(
        [PHP, "-r", code], capture_output=True, text=True, check=False, timeout=30
    )
    if proc.returncode != 0:
        raise HarnessError(
            f"MariaDB statement failed: {sql}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return json.loads(proc.stdout or "[]")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def session_db_name() -> str:
    """`{DEFAULT_DB_NAME}_{host}_{pid}` for this test process. Databases left by test processes
    of this host that died without their teardown (killed, machine crash) are dropped first, so
    they never pile up; the host tag keeps a MariaDB shared by several machines or containers
    from losing another host's live database (its pids mean nothing here)."""
    check_prerequisites()
    host = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
    prefix = f"{DEFAULT_DB_NAME}_{host}_"
    for (name,) in _mysql("SHOW DATABASES"):
        suffix = name[len(prefix) :] if name.startswith(prefix) else ""
        if suffix.isdigit() and not _pid_alive(int(suffix)):
            _mysql(f"DROP DATABASE IF EXISTS `{name}`")
    return f"{prefix}{os.getpid()}"


INSTALL_PHP = """<?php
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
$result = wp_install(
    'Association Test Site', 'admin', 'admin@example.org', false, '', ADMIN_PASSWORD_VALUE
);
update_option( 'timezone_string', 'Europe/Berlin' );
update_option( 'blogdescription', 'A loopback-only WordPress to test the Association App plugin' );
update_option( 'template', 'harness' );
update_option( 'stylesheet', 'harness' );
global $wp_rewrite;
$wp_rewrite->set_permalink_structure( '/%year%/%monthnum%/%postname%/' );
wp_set_current_user( $result['user_id'] );
$activated = activate_plugin( 'association-app/association-app.php' );
if ( is_wp_error( $activated ) ) {
    fwrite( STDERR, $activated->get_error_message() );
    exit( 1 );
}
$key = association_app_generate_key();
echo wp_json_encode( array( 'user_id' => $result['user_id'], 'key' => $key ) );
"""


SALT_NAMES = (
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
)


def build_site(
    root: Path,
    db_name: str = DEFAULT_DB_NAME,
    *,
    seed: bool = True,
    debug: bool = True,
    workers: int = 2,
) -> RealWordPress:
    """Copy, configure, serve, install and activate (and seed).

    The server starts before WordPress is installed: the site's URL (and so its port) is written
    into wp-config.php, the database and the seeded content, so the port is taken while it is
    still free to change, and another one is tried if it was grabbed since free_port().
    `debug` turns WP_DEBUG on (notices and deprecations are logged too); the benchmark turns it
    off to time the site as it runs in production. `workers` is PHP_CLI_SERVER_WORKERS."""
    check_prerequisites()
    root.mkdir(parents=True, exist_ok=True)
    site = RealWordPress(root=root, db_name=db_name, port=free_port())
    docroot = site.docroot
    if docroot.exists():
        shutil.rmtree(docroot)
    shutil.copytree(
        WORDPRESS_SRC,
        docroot,
        symlinks=False,
        ignore_dangling_symlinks=True,
        ignore=shutil.ignore_patterns("wp-config.php", ".htaccess", "akismet"),
    )
    salts = "\n".join(
        f"define( '{name}', {php_str(secrets.token_urlsafe(48))} );" for name in SALT_NAMES
    )

    def write_config() -> None:
        (docroot / "wp-config.php").write_text(
            WP_CONFIG.format(
                db_name=php_str(db_name),
                db_user=php_str(DB_USER),
                db_password=php_str(DB_PASSWORD),
                db_host=php_str(f"{DB_HOST}:{DB_PORT}"),
                salts=salts,
                url=php_str(site.url),
                # WP_DEBUG also logs notices and deprecations, so the tests can fail on them.
                debug="true" if debug else "false",
                error_log=php_str(str(site.error_log)),
            )
        )

    theme = docroot / "wp-content" / "themes" / "harness"
    theme.mkdir(parents=True, exist_ok=True)
    (theme / "style.css").write_text(THEME_STYLE)
    (theme / "index.php").write_text(THEME_INDEX)
    shutil.copytree(PLUGIN_SRC, docroot / "wp-content" / "plugins" / "association-app")
    (docroot / "wp-content" / "mu-plugins").mkdir(exist_ok=True)
    (docroot / "wp-content" / "mu-plugins" / "harness.php").write_text(MU_PLUGIN)
    (docroot / "harness-ready.txt").write_text("ready\n")
    (root / "router.php").write_text(ROUTER)

    _mysql(f"DROP DATABASE IF EXISTS `{db_name}`")
    _mysql(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    for attempt in range(5):
        write_config()
        try:
            site.start(workers)
            break
        except PortInUse:
            if attempt == 4:
                raise
            site.port = free_port()
    try:
        installed = site.php(
            INSTALL_PHP.replace("ADMIN_PASSWORD_VALUE", php_str(ADMIN_PASSWORD)),
            installing=True,
        )
        site.key = installed["key"]
        if seed:
            site.manifest = site.php_file(SEED_SCRIPT)
    except BaseException:
        site.stop()
        site.drop_database()
        raise
    return site
