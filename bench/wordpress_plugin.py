"""The Association App plugin on a real WordPress with 10,000 posts (issue 8).

Builds a real site with tests/wordpress_real/harness.py (Debian's WordPress, MariaDB, php -S on
loopback), bulk-loads BENCH_WP_POSTS articles (default 10,000; each with a category, two tags,
a featured image and an author) and BENCH_WP_USERS members with profile meta, then times pages
of 100 records over HTTP: the first, a middle and the last full page by number, a keyset page
(modified_after + after_id) and a page of members. The baseline measured in the same run is
`ping` (WordPress bootstrap + key check, no data). It also counts the SQL queries one page
costs over HTTP (whole request) for 10 and for 100 records: equal counts mean no query per
record.

Needs the packages `wordpress php-cli php-mysql` and MariaDB on 127.0.0.1:3306 (root, no
password); uses the database `wp_assoc_bench` (dropped afterwards).
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.wordpress_real.harness import HarnessError, build_site

POSTS = int(os.environ.get("BENCH_WP_POSTS", "10000"))
USERS = int(os.environ.get("BENCH_WP_USERS", "2000"))
REPEAT = int(os.environ.get("BENCH_WP_REPEAT", "7"))

BULK_LOAD = """<?php
global $wpdb;
$posts = %(posts)d; $users = %(users)d;
$author = get_user_by( 'login', 'admin' )->ID;
$thumb = wp_insert_attachment(
    array( 'post_mime_type' => 'image/png', 'post_title' => 'bench', 'post_status' => 'inherit' ),
    'bench.png'
);
$cats = array(); $tags = array();
foreach ( range( 1, 20 ) as $i ) {
    $cats[] = wp_insert_term( "Category $i", 'category' )['term_taxonomy_id'];
    $tags[] = wp_insert_term( "tag-$i", 'post_tag' )['term_taxonomy_id'];
}
$base = time() - $posts;
for ( $start = 0; $start < $posts; $start += 500 ) {
    $rows = array();
    for ( $i = $start; $i < min( $posts, $start + 500 ); $i++ ) {
        $gmt = gmdate( 'Y-m-d H:i:s', $base + $i );
        $rows[] = $wpdb->prepare(
            "(%%d, %%s, %%s, %%s, %%s, '', 'publish', %%s, %%s, %%s, 'post', '', '', '')",
            $author, $gmt, $gmt,
            "<!-- wp:paragraph --><p>Body of bench article $i, <em>some</em> markup.</p>"
            . "<!-- /wp:paragraph -->",
            "Bench article $i", "bench-article-$i", $gmt, $gmt
        );
    }
    $wpdb->query(
        "INSERT INTO {$wpdb->posts} (post_author, post_date, post_date_gmt, post_content,"
        . " post_title, post_excerpt, post_status, post_name, post_modified, post_modified_gmt,"
        . " post_type, to_ping,"
        . " pinged, post_content_filtered) VALUES " . implode( ',', $rows )
    );
}
$ids = $wpdb->get_col( "SELECT ID FROM {$wpdb->posts} WHERE post_name LIKE 'bench-article-%%'" );
foreach ( array_chunk( $ids, 500 ) as $chunk ) {
    $meta = array(); $rel = array();
    foreach ( $chunk as $id ) {
        $meta[] = $wpdb->prepare( '(%%d, %%s, %%s)', $id, '_thumbnail_id', $thumb );
        $rel[] = $wpdb->prepare( '(%%d, %%d)', $id, $cats[ $id %% 20 ] );
        $rel[] = $wpdb->prepare( '(%%d, %%d)', $id, $tags[ $id %% 20 ] );
        $rel[] = $wpdb->prepare( '(%%d, %%d)', $id, $tags[ ( $id + 7 ) %% 20 ] );
    }
    $wpdb->query( "INSERT INTO {$wpdb->postmeta} (post_id, meta_key, meta_value) VALUES "
        . implode( ',', $meta ) );
    $wpdb->query( "INSERT INTO {$wpdb->term_relationships} (object_id, term_taxonomy_id) VALUES "
        . implode( ',', $rel ) );
}
for ( $start = 0; $start < $users; $start += 500 ) {
    $rows = array();
    for ( $i = $start; $i < min( $users, $start + 500 ); $i++ ) {
        $rows[] = $wpdb->prepare(
            '(%%s, %%s, %%s, %%s, %%s, %%s)', "bench.user$i", 'x', "bench-user-$i",
            "bench.user$i@example.net", gmdate( 'Y-m-d H:i:s', $base + $i ), "Bench User $i"
        );
    }
    $wpdb->query(
        "INSERT INTO {$wpdb->users} (user_login, user_pass, user_nicename, user_email,"
        . " user_registered, display_name) VALUES " . implode( ',', $rows )
    );
}
$uids = $wpdb->get_col( "SELECT ID FROM {$wpdb->users} WHERE user_login LIKE 'bench.user%%'" );
foreach ( array_chunk( $uids, 250 ) as $chunk ) {
    $meta = array();
    foreach ( $chunk as $id ) {
        foreach ( array(
            $wpdb->prefix . 'capabilities' => serialize( array( 'member' => true ) ),
            'first_name' => 'Bench', 'last_name' => "User $id", '_association_phone' => '+49 30 1',
            '_association_job_title' => 'Tester', '_association_address_city' => 'Berlin',
            '_association_certifications' => serialize( array( 'First aid' ) ),
        ) as $k => $v ) {
            $meta[] = $wpdb->prepare( '(%%d, %%s, %%s)', $id, $k, $v );
        }
    }
    $wpdb->query( "INSERT INTO {$wpdb->usermeta} (user_id, meta_key, meta_value) VALUES "
        . implode( ',', $meta ) );
}
wp_cache_flush();
echo wp_json_encode( array( 'posts' => count( $ids ), 'users' => count( $uids ) ) );
"""


def timed(client: httpx.Client, path: str, params: dict | None = None) -> tuple[float, dict]:
    samples, body = [], {}
    for _ in range(REPEAT):
        started = time.perf_counter()
        response = client.get(path, params=params)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
        body = response.json()
    return statistics.median(samples), body


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-wp-") as tmp:
        try:
            # WP_DEBUG off: timed as a production site runs.
            site = build_site(Path(tmp), "wp_assoc_bench", seed=False, debug=False, workers=1)
        except HarnessError as exc:
            print(f"cannot build the real WordPress: {exc}")
            raise SystemExit(1) from exc
        try:
            started = time.perf_counter()
            loaded = site.php(BULK_LOAD % {"posts": POSTS, "users": USERS}, timeout=600)
            print(
                f"loaded {loaded['posts']} articles and {loaded['users']} members in "
                f"{time.perf_counter() - started:.1f} s"
            )
            site.php("<?php update_option( 'association_app_rate_limit', 0 );")
            headers = {"X-Association-Sync-Key": site.key}
            with httpx.Client(
                base_url=site.url + "/api/v1/sync/", headers=headers, timeout=60
            ) as c:
                c.get("articles", params={"per_page": 100})  # warm OPcache
                ping, _ = timed(c, "ping")
                first, body = timed(c, "articles", {"per_page": 100})
                total_pages = body["total_pages"]
                # the last page that is full: the deepest OFFSET that still returns 100 records
                deepest = body["total"] // 100
                pages = [("1", first, body)]
                for page in (deepest // 2, deepest):
                    seconds, page_body = timed(c, "articles", {"per_page": 100, "page": page})
                    pages.append((str(page), seconds, page_body))
                mark = body["items"][-1]
                keyset, keyset_body = timed(
                    c,
                    "articles",
                    {
                        "per_page": 100,
                        "modified_after": mark["modified_gmt"],
                        "after_id": mark["id"],
                    },
                )
                members, members_body = timed(c, "members", {"per_page": 100})
                # SQL queries of one whole HTTP request (the harness's X-Harness-Queries header:
                # WordPress bootstrap + key check + the page), for 10 and for 100 records.
                queries = {
                    endpoint: [
                        int(
                            c.get(endpoint, params={"per_page": n, "page": 2}).headers[
                                "x-harness-queries"
                            ]
                        )
                        for n in (10, 100)
                    ]
                    for endpoint in ("articles", "members")
                }
        finally:
            site.stop()
            site.drop_database()
    print(f"articles served: {body['total']} ({total_pages} pages of 100); median of {REPEAT}")
    print(f"  ping (baseline: bootstrap + key check)    {ping * 1000:7.1f} ms")
    rows = [(f"articles page {page}", seconds, page_body) for page, seconds, page_body in pages]
    rows += [
        ("articles keyset page", keyset, keyset_body),
        ("members page 1", members, members_body),
    ]
    for label, seconds, page_body in rows:
        label = f"{label}, {len(page_body['items'])} records"
        print(f"  {label:<40}  {seconds * 1000:7.1f} ms  ({seconds / ping:4.1f}x ping)")
    for endpoint, (ten, hundred) in queries.items():
        print(f"  SQL queries per request, page of 10 / 100 {endpoint}: {ten} / {hundred}")


if __name__ == "__main__":
    main()
