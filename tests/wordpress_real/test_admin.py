"""WP Admin → Settings → Association App, driven over HTTP as the site's administrator."""

import contextlib
import html
import re

import httpx
import pytest

from tests.wordpress_real.harness import ADMIN_PASSWORD

pytestmark = pytest.mark.wordpress

KEY_INPUT = re.compile(r'<input[^>]*value="([^"]+)"[^>]*id="association-app-key"')


def nonce_for(page: str, action: str) -> dict:
    """The hidden fields of the form that posts `action` on the settings page."""
    form = page.split(f'value="{action}"', 1)[1].split("</form>", 1)[0]
    return {
        "action": action,
        "_wpnonce": re.search(r'name="_wpnonce" value="([^"]+)"', form).group(1),
        "_wp_http_referer": html.unescape(
            re.search(r'name="_wp_http_referer" value="([^"]+)"', form).group(1)
        ),
    }


@contextlib.contextmanager
def log_in(url: str, login: str, password: str):
    """A browser (cookie jar) logged into WP Admin as `login`."""
    with httpx.Client(base_url=url, follow_redirects=True, timeout=30) as browser:
        browser.get("/wp-login.php")  # sets the test cookie
        logged_in = browser.post(
            "/wp-login.php",
            data={
                "log": login,
                "pwd": password,
                "wp-submit": "Log In",
                "testcookie": "1",
                "redirect_to": f"{url}/wp-admin/",
            },
        )
        assert logged_in.status_code == 200 and "wp-admin" in str(logged_in.url), logged_in.text[
            :500
        ]
        yield browser


@pytest.fixture
def admin(real_wp):
    with log_in(real_wp.url, "admin", ADMIN_PASSWORD) as browser:
        yield browser


SETTINGS = "/wp-admin/options-general.php"


def settings_page(browser: httpx.Client) -> httpx.Response:
    page = browser.get(SETTINGS, params={"page": "association-app"})
    assert page.status_code == 200
    return page


def post_generate(browser: httpx.Client, page: str, **kwargs) -> httpx.Response:
    """Clicks "Generate key" / "Regenerate key" on a settings page the browser has open."""
    return browser.post(
        SETTINGS,
        params={"page": "association-app", "tab": "sync"},
        data=nonce_for(page, "association_app_generate_key"),
        **kwargs,
    )


def key_created(real_wp) -> str:
    return real_wp.php(
        "<?php echo wp_json_encode( get_option( 'association_app_sync_key_created_gmt' ) );"
    )


def waiting_keys(real_wp) -> dict:
    """The plugin's key transients in wp_options: name => [value, autoload]."""
    return real_wp.php(
        r"""<?php global $wpdb;
        $rows = $wpdb->get_results(
            "SELECT option_name, option_value, autoload FROM {$wpdb->options}
             WHERE option_name LIKE '%association\\_app\\_new\\_key%'"
        );
        $out = array();
        foreach ( $rows as $row ) {
            $out[ $row->option_name ] = array( $row->option_value, $row->autoload );
        }
        echo wp_json_encode( (object) $out );"""
    )


def test_generate_redirects_and_a_reload_shows_no_key_and_makes_none(real_wp, api, admin):
    """Post/Redirect/Get: the POST answers with a redirect, never with the key; the page it lands
    on shows the key once; reloading that page shows nothing and leaves the key working."""
    page = settings_page(admin).text
    posted = post_generate(admin, page, follow_redirects=False)
    assert posted.status_code == 303, posted.text[:300]
    landing = httpx.URL(posted.headers["location"])
    site = httpx.URL(real_wp.url)
    assert (landing.host, landing.port, landing.path) == (site.host, site.port, SETTINGS)
    assert landing.params["page"] == "association-app"
    assert not KEY_INPUT.search(posted.text) and "Copy this key now" not in posted.text

    shown = admin.get(landing)
    assert shown.status_code == 200
    match = KEY_INPUT.search(shown.text)
    assert match, "the page the POST redirects to shows the new key"
    new_key = html.unescape(match.group(1))
    assert len(new_key) == 48 and new_key.isalnum()
    assert "Copy this key now" in shown.text and "It is shown only once" in shown.text
    assert "no-store" in shown.headers["cache-control"], "no cache keeps a page with the key"
    old_key, real_wp.key = real_wp.key, new_key
    assert api.get("ping").status_code == 200
    assert api.get("ping", key=old_key).json()["code"] == "association_sync_invalid_key"

    created = key_created(real_wp)
    reloaded = admin.get(landing)
    assert reloaded.status_code == 200
    assert not KEY_INPUT.search(reloaded.text) and new_key not in reloaded.text
    assert "Copy this key now" not in reloaded.text
    assert "A key is configured" in reloaded.text and "It cannot be shown again" in reloaded.text
    assert api.get("ping").status_code == 200, "the reload made no new key"
    assert key_created(real_wp) == created
    assert waiting_keys(real_wp) == {}, "the plaintext is gone once shown"


def test_the_waiting_key_is_short_lived_per_user_and_never_a_dead_one(real_wp, api, admin):
    """Between the POST and the page that shows it, the key waits in a transient of the admin
    who made it: minutes only, not autoloaded, not shown to another admin, and not shown at all
    once something else has replaced it."""
    admin_id = real_wp.php("<?php echo wp_json_encode( get_user_by( 'login', 'admin' )->ID );")
    colleague = "keyadmin"
    password = "colleague-" + real_wp.key[:12]
    colleague_id = real_wp.php(
        f"""<?php $id = username_exists( '{colleague}' );
        if ( ! $id ) {{ $id = wp_insert_user( array( 'user_login' => '{colleague}',
            'user_email' => '{colleague}@example.net', 'user_pass' => '{password}',
            'role' => 'administrator' ) ); }}
        echo wp_json_encode( $id );"""
    )
    name = f"_transient_association_app_new_key_{admin_id}"
    timeout = f"_transient_timeout_association_app_new_key_{admin_id}"
    try:
        posted = post_generate(admin, settings_page(admin).text, follow_redirects=False)
        assert posted.status_code == 303
        waiting = waiting_keys(real_wp)
        assert set(waiting) == {name, timeout}
        key, autoload = waiting[name]
        assert autoload in ("no", "off"), "never loaded on other page views"
        now = real_wp.php("<?php echo wp_json_encode( time() );")
        assert 0 < int(waiting[timeout][0]) - now <= 300, "short-lived: five minutes at most"

        with log_in(real_wp.url, colleague, password) as other:
            theirs = settings_page(other).text
            assert not KEY_INPUT.search(theirs) and key not in theirs, "another admin's key"
        assert name in waiting_keys(real_wp), "the colleague's visit left it waiting"

        mine = settings_page(admin)
        assert html.unescape(KEY_INPUT.search(mine.text).group(1)) == key
        real_wp.key = key
        assert api.get("ping").status_code == 200

        # Made, then replaced (here by WP-CLI) before the admin's page loaded: a key that no
        # longer works is not shown as the one to copy.
        posted = post_generate(admin, mine.text, follow_redirects=False)
        assert posted.status_code == 303
        real_wp.key = real_wp.php("<?php echo wp_json_encode( association_app_generate_key() );")
        stale = settings_page(admin).text
        assert not KEY_INPUT.search(stale) and "A key is configured" in stale
        assert waiting_keys(real_wp) == {}
        assert api.get("ping").status_code == 200
    finally:
        real_wp.php(
            "<?php require_once ABSPATH . 'wp-admin/includes/user.php';"
            f" wp_delete_user( {colleague_id} );"
            f" delete_transient( 'association_app_new_key_{admin_id}' );"
        )


def test_generate_show_once_and_regenerate_the_key(real_wp, api, admin):
    settings = admin.get("/wp-admin/options-general.php", params={"page": "association-app"})
    assert settings.status_code == 200
    page = settings.text
    assert "Sync API key" in page and "A key is configured" in page
    assert f"{real_wp.url}/api/v1/sync/" in page
    assert not KEY_INPUT.search(page), "an existing key is never shown"

    generated = post_generate(admin, page)
    assert generated.status_code == 200
    assert [r.status_code for r in generated.history] == [303], "answered by a redirect"
    shown = KEY_INPUT.search(generated.text)
    assert shown, "the new key is shown after generation"
    new_key = html.unescape(shown.group(1))
    assert "Copy this key now" in generated.text

    old_key = real_wp.key
    real_wp.key = new_key
    assert api.get("ping").status_code == 200
    assert api.get("ping", key=old_key).json()["code"] == "association_sync_invalid_key"

    again = admin.get("/wp-admin/options-general.php", params={"page": "association-app"})
    assert not KEY_INPUT.search(again.text), "the key is shown once only"
    assert new_key not in again.text
    stored = real_wp.php(
        "<?php global $wpdb;"
        ' echo wp_json_encode( $wpdb->get_col( "SELECT option_value FROM {$wpdb->options}" ) );'
    )
    assert not any(new_key in (value or "") for value in stored), "only a hash is stored"


def test_settings_switch_off_and_on(real_wp, api, admin):
    page = admin.get("/wp-admin/options-general.php", params={"page": "association-app"}).text
    fields = nonce_for(page, "association_app_save_settings")
    types = ["article", "member", "event", "document", "conference", "company", "notification"]
    off = admin.post(
        "/wp-admin/admin-post.php",
        data={**fields, "rate_limit": "0", "entity_types[]": types},
    )
    assert "Settings saved." in off.text
    assert api.get("ping").json()["code"] == "association_sync_disabled"
    on = admin.post(
        "/wp-admin/admin-post.php",
        data={**fields, "enabled": "1", "rate_limit": "0", "entity_types[]": types[:3]},
    )
    assert "Settings saved." in on.text
    assert api.get("ping").json()["entity_types"] == types[:3]
    real_wp.php(f"<?php update_option( 'association_app_entity_types', {php_list(types)} );")
    assert api.get("ping").json()["entity_types"] == types


def test_a_forged_settings_post_is_refused(real_wp, api, admin):
    refused = admin.post(
        "/wp-admin/admin-post.php",
        data={"action": "association_app_save_settings", "_wpnonce": "forged", "rate_limit": "0"},
    )
    assert refused.status_code in (403, 200)
    assert "Settings saved." not in refused.text
    forged_key = admin.post(
        "/wp-admin/options-general.php",
        params={"page": "association-app"},
        data={"action": "association_app_generate_key", "_wpnonce": "forged"},
    )
    assert not KEY_INPUT.search(forged_key.text)
    assert api.get("ping").status_code == 200, "the key was not regenerated"


def php_list(values):
    return "array( " + ", ".join(f"'{v}'" for v in values) + " )"


def form_fields(fragment: str) -> dict:
    """name → value of the inputs, selects and textareas in an HTML fragment."""
    fields = {}
    for tag in re.findall(r"<input[^>]*>", fragment):
        name = re.search(r'name=["\']([^"\']+)["\']', tag)
        value = re.search(r'value=["\']([^"\']*)["\']', tag)
        if name:
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', fragment, re.S):
        options = re.findall(r"<option([^>]*)>([^<]*)", body)
        chosen = next((o for o in options if "selected" in o[0]), options[0] if options else None)
        if chosen:
            value = re.search(r'value=["\']([^"\']*)["\']', chosen[0])
            fields[name] = html.unescape(value.group(1) if value else chosen[1].strip())
    for name, body in re.findall(
        r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', fragment, re.S
    ):
        fields[name] = html.unescape(body)
    return fields


def test_the_post_editor_meta_box_saves_the_association_fields(real_wp, api, admin):
    event = real_wp.create_post(
        post_type="event",
        post_title="Meta box event",
        backdate=60,
        meta={"_association_event_venue": "Old hall", "_association_event_capacity": "10"},
    )
    page = admin.get("/wp-admin/post.php", params={"post": event, "action": "edit"}).text
    base = re.search(r'<form class="metabox-base-form">(.*?)</form>', page, re.S).group(1)
    box = page.split('id="association-app-fields"', 1)[1].split("</table>", 1)[0]
    fields = {**form_fields(base), **form_fields(box)}
    assert fields["_association_event_venue"] == "Old hall"
    fields.update(
        {
            "_association_event_venue": "New hall",
            "_association_event_capacity": "120",
            "_association_event_start_gmt": "2026-09-01 08:00:00",
            "_association_event_registration_url": "javascript:alert(1)",
        }
    )
    saved = admin.post("/wp-admin/post.php", data=fields)
    assert saved.status_code == 200
    record = api.get(f"events/{event}").json()
    assert (record["venue"], record["capacity"]) == ("New hall", 120)
    assert record["start_gmt"] == "2026-09-01T08:00:00"
    assert record["registration_url"] is None, "only http(s) URLs are kept"
    assert record["modified_gmt"] > "2000"


def test_the_profile_page_shows_and_saves_member_fields(real_wp, api, admin):
    alice = real_wp.manifest["members"]["alice"]
    page = admin.get("/wp-admin/user-edit.php", params={"user_id": alice}).text
    assert 'value="+49 30 1234567"' in page
    assert "Certified Safety Officer\nISO 9001 Lead Auditor" in page
    form = page.split('id="your-profile"', 1)[1].split("</form>", 1)[0]
    fields = form_fields(form)
    fields.pop("pass1", None)
    fields.pop("pass2", None)
    fields["_association_job_title"] = "Chief Safety Officer"
    fields["_association_certifications"] = "Certified Safety Officer\nISO 9001 Lead Auditor\n"
    saved = admin.post("/wp-admin/user-edit.php", data=fields)
    assert saved.status_code == 200
    assert "User updated." in saved.text, saved.text[:300]
    member = api.get(f"members/{alice}").json()
    assert member["job_title"] == "Chief Safety Officer"
    assert member["certifications"] == ["Certified Safety Officer", "ISO 9001 Lead Auditor"]
    real_wp.php(
        f"<?php update_user_meta( {alice}, '_association_job_title', 'Head of Compliance' );"
    )


def test_a_site_without_a_key_refuses_everything_until_one_is_generated(real_wp, api, admin):
    real_wp.php("<?php AA_Settings::revoke_key();")
    try:
        assert api.get("ping").json()["code"] == "association_sync_invalid_key"
        page = admin.get("/wp-admin/options-general.php", params={"page": "association-app"}).text
        assert "No key yet" in page and "Generate key" in page
        generated = post_generate(admin, page)
        real_wp.key = html.unescape(KEY_INPUT.search(generated.text).group(1))
        assert api.get("ping").status_code == 200
    finally:
        if api.get("ping").status_code != 200:  # leave the other tests a working key
            real_wp.key = real_wp.php(
                "<?php echo wp_json_encode( association_app_generate_key() );"
            )
