"""Hostile input shared by the abuse tests: XSS vectors for WordPress content and error
messages, and form input an attacker (or a careless paste) can send."""

from html.parser import HTMLParser

# Each vector is something a browser would execute if it reached the page unescaped. The
# `markers` are the substrings that must never appear raw in a rendered page.
XSS_VECTORS = [
    "<script>alert('xss-script')</script>",
    "<img src=x onerror=\"alert('xss-img')\">",
    "<svg onload=alert('xss-svg')>",
    "<a href=\"javascript:alert('xss-href')\">click</a>",
    "<iframe src=\"javascript:alert('xss-iframe')\"></iframe>",
    "<div style=\"background:url(javascript:alert('xss-style'))\">styled</div>",
    "<body onload=alert('xss-body')>",
    "<input autofocus onfocus=\"alert('xss-focus')\">",
    "<details open ontoggle=alert('xss-toggle')>",
    "&lt;script&gt;alert('xss-entity')&lt;/script&gt;",
    "&#60;img src=x onerror=alert('xss-numeric')&#62;",
    '"><script>alert("xss-break")</script>',
    "'><svg/onload=alert('xss-quote')>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('xss-mxss')>",
    "<object data=\"javascript:alert('xss-object')\"></object>",
    "<form action=\"javascript:alert('xss-form')\"><button>go</button></form>",
]
XSS_TEXT = " ".join(XSS_VECTORS)

# Substrings whose raw presence in HTML means a vector survived as markup.
RAW_MARKERS = [
    "<script>alert",
    "<img src=x onerror",
    "<svg onload",
    "<svg/onload",
    'href="javascript:',
    'src="javascript:',
    'data="javascript:',
    'action="javascript:',
    '="background:url(javascript',
    "<iframe",
    "<body onload",
    "<input autofocus onfocus",
    "<details open ontoggle",
    "<object",
    "<mglyph",
]

LONG = "A" * 20_000
HOSTILE_STRINGS = [
    LONG,
    "Ωmega ✓ — 日本語 🚀 \u202e reversed \u200b zero-width",
    XSS_VECTORS[0],
    XSS_VECTORS[1],
    "'; DROP TABLE connectors_connector; --",
    "1' OR '1'='1",
    "nul\x00byte",
    "line\r\nbreak\tand tab",
    "   ",
    "{{ 7*7 }} {% debug %}",
    "%s%s%s%n",
    "../../../../etc/passwd",
]

# Site URLs the outbound guard must refuse when private hosts are not allowed.
INTERNAL_URLS = [
    "http://127.0.0.1",
    "http://127.0.0.1:8000/",
    "http://localhost",
    "http://169.254.169.254",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]",
    "http://[::ffff:127.0.0.1]",
    "http://2130706433",
    "http://0x7f000001",
    "http://0177.0.0.1",
    "http://10.0.0.1",
    "http://192.168.1.1",
    "http://0.0.0.0",
    "http://foo.localhost",
]
BAD_URLS = [
    "",
    "not a url",
    "javascript:alert(1)",
    "ftp://example.org",
    "file:///etc/passwd",
    "http://",
    "http://user:pass@example.org",
    "https://example.org:99999",
    "https://exa mple.org",
    "http://example.org/?q=1#frag",
    "gopher://example.org:70/_",
    "https://" + "a" * 600 + ".org",
    "https://example.org/\x00",
    "//example.org",
]


def assert_no_raw_vector(html: str, where: str = "page") -> None:
    lowered = html.lower()
    found = [marker for marker in RAW_MARKERS if marker.lower() in lowered]
    assert not found, f"unescaped XSS vector(s) {found} in {where}"


class TagCollector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed", "style", "svg", "math", "form", "base"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"{tag}[{name}]")
            if (
                value
                and name in ("href", "src", "action", "data", "formaction")
                and (
                    "".join(value.split())
                    .lower()
                    .startswith(("javascript:", "data:text", "vbscript:"))
                )
            ):
                self.problems.append(f"{tag}[{name}={value}]")


def dangerous_markup(html: str) -> list[str]:
    parser = TagCollector()
    parser.feed(html)
    parser.close()
    return parser.problems


class InlineCodeCollector(HTMLParser):
    """What a strict CSP (script-src 'self'; style-src 'self') would block on a whole page:
    inline <script>, <style>, style="" and on*="" attributes, javascript: URLs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name == "style":
                self.problems.append(f'<{tag} style="{value}">')
            if (
                value
                and name in ("href", "src", "action", "formaction", "data")
                and "".join(value.split()).lower().startswith(("javascript:", "vbscript:"))
            ):
                self.problems.append(f"<{tag} {name}={value}>")


def inline_code(html: str) -> list[str]:
    parser = InlineCodeCollector()
    parser.feed(html)
    parser.close()
    return parser.problems
