"""Change capture on a real WordPress (contract 1.2): the cursor never passes the site's clock,
every change WordPress makes reaches the next incremental sync (status transitions, cron
publishing, meta and term changes, media, users), rendering is deterministic, and bad input
(a wrong clock, a change log with gaps, a record gone before its fetch) is logged, not lost.

The product engine runs against the real site as the worker would (services.start_sync →
runner.run_job), as in test_product.py.
"""

from datetime import timedelta

import pytest

from connectors.wordpress import contract

pytestmark = pytest.mark.wordpress

CAPTION_POST = (
    "Intro paragraph.\n\n"
    '[caption id="attachment_7" align="alignnone" width="300"]'
    '<img class="size-medium wp-image-7" src="http://example.org/a.png" alt="" width="300" '
    'height="200" /> A captioned picture[/caption]\n\n'
    "Closing paragraph with &quot;quotes&quot;."
)
# Content that leaves per-request state behind in WordPress's renderers: an unclosed tag,
# paging markers, galleries and media shortcodes (instance counters), a caption.
NOISY_POSTS = (
    "<p>Unclosed <em>emphasis\n\nNext paragraph",
    "Page one<!--nextpage-->Page two<!--more-->Rest",
    '[gallery ids="1,2"]',
    '[video src="http://example.org/v.mp4"][/video] [audio src="http://example.org/a.mp3"][/audio]',
    CAPTION_POST,
)


def test_a_caption_post_renders_the_same_bytes_wherever_it_is_served(real_wp, api):
    ids = [
        real_wp.create_post(post_title=f"Noisy {n}", post_content=content, backdate=300 - n)
        for n, content in enumerate(NOISY_POSTS * 2)
    ]
    target = real_wp.create_post(post_title="Caption", post_content=CAPTION_POST, backdate=200)
    alone = api.get(f"articles/{target}").json()
    first = api.get(f"articles/{ids[0]}").json()["modified_gmt"]
    since = contract.format_gmt(contract.parse_gmt(first) - timedelta(seconds=1))
    after_noise = api.get("articles", params={"modified_after": since}).json()["items"]
    served = {item["id"]: item for item in after_noise}
    assert list(served)[: len(ids) + 1] == [*ids, target]
    assert served[target]["content"] == alone["content"]
    assert served[target]["excerpt"] == alone["excerpt"]
    # the same holds for each noisy post: first on its own page or after the others
    for post_id in ids:
        single = api.get(f"articles/{post_id}").json()
        assert (served[post_id]["content"], served[post_id]["excerpt"]) == (
            single["content"],
            single["excerpt"],
        )
