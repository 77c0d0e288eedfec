"""Deterministic record generation for the simulated site.

Records are generated from a seed, spread over the 7 entity types with realistic variety
(unicode in every script, HTML with things to sanitise, drafts with empty titles and slugs,
duplicate slugs, images that 404, members with several roles...). A fixed ~2 % of every
type is *deliberately bad*: a contract violation the sync engine must report as FAILED.
Which field is broken, per type (``BAD_RULES``):

- article: ``title`` missing (key absent) or ``null``
- member: ``email`` is ``null``
- event: ``start_gmt`` is not a GMT timestamp ("next Tuesday 10am", "2025-02-30T10:00:00")
- document: ``size`` is a string ("482 KB")
- conference: ``start_date`` is not a date ("TBA", "2025-13-01")
- company: ``name`` is ``null``
- notification: ``send_at_gmt`` is not a GMT timestamp

Everything else is valid per the contract, however odd it looks (empty titles on drafts,
duplicate slugs, legacy free-text countries, ``<script>`` in content, broken image URLs).

URLs that point at the site itself are stored with the ``{{site}}`` placeholder and
resolved when the record is rendered, because the port is only known once the server runs.
"""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import quote

SITE = "{{site}}"
GMT = "%Y-%m-%dT%H:%M:%S"

#: Newest timestamp of generated records; changes made later use the site's clock.
ANCHOR = datetime(2024, 11, 30, 11, 0, 0, tzinfo=UTC)
SPAN_SECONDS = 2 * 365 * 24 * 3600

#: Share of each entity type in ``records`` (percent), canonical order.
TYPE_SHARES = (
    ("article", 25),
    ("member", 30),
    ("event", 12),
    ("document", 12),
    ("conference", 5),
    ("company", 8),
    ("notification", 8),
)

#: Every BAD_EVERY-th record of a type (by its per-type index) is deliberately bad: 2 %.
BAD_EVERY = 50
BAD_OFFSET = 17

BAD_RULES = {
    "article": "title missing or null",
    "member": "email is null",
    "event": "start_gmt is not a GMT timestamp",
    "document": "size is not an integer",
    "conference": "start_date is not a date",
    "company": "name is null",
    "notification": "send_at_gmt is not a GMT timestamp",
}

#: The field that is broken in a deliberately bad record.
BAD_FIELDS = {
    "article": "title",
    "member": "email",
    "event": "start_gmt",
    "document": "size",
    "conference": "start_date",
    "company": "name",
    "notification": "send_at_gmt",
}

WORDS = [
    "safety",
    "budget",
    "review",
    "workshop",
    "members",
    "annual",
    "report",
    "policy",
    "training",
    "audit",
    "compliance",
    "meeting",
    "network",
    "standards",
    "community",
    "board",
    "agenda",
    "update",
    "guidance",
    "recall",
    "equipment",
    "certification",
    "insurance",
    "webinar",
    "newsletter",
    "volunteer",
    "regional",
    "chapter",
    "summit",
    "strategy",
    "survey",
    "results",
    "committee",
    "election",
    "health",
    "hazard",
    "inspection",
    "ladder",
    "helmet",
    "fire",
    "exit",
]

TITLES = (
    "Annual report {y}",
    "Safety week: what's new",
    'Tom & Jerry\'s "quoted" title',
    "Rückblick: Sicherheitstage in München",
    "Café, crème brûlée & déjà vu",
    "安全講習会のお知らせ",
    "Новости ассоциации",
    "أخبار الجمعية السنوية",
    "חדשות האגודה",
    "🎉 Summer party {y} 🥳",
    "Łódź chapter meeting — Ørsted visit",
    "Board election results",
    "Guidance on ladder inspections",
    "Webinar: fire exits & signage",
    "Ñandú — Señalización en España",
    "Product recall: ladder X{n}",
)

FIRST_NAMES = [
    "Alice",
    "Zoë",
    "José",
    "Åsa",
    "Øyvind",
    "Łukasz",
    "Ñuño",
    "Chloé",
    "François",
    "Björn",
    "Małgorzata",
    "Siobhán",
    "Ingrid",
    "Mateo",
    "Amélie",
    "Jürgen",
    "Ana",
    "Priya",
    "Omar",
    "Fatima",
    "Yuki",
    "Wei",
    "Olga",
    "Dmitri",
    "Noah",
    "Emma",
]
LAST_NAMES = [
    "Müller",
    "Schäfer",
    "O'Brien",
    "García",
    "Núñez",
    "Dubois",
    "Nowak",
    "Kowalski",
    "Søren",
    "Larsen",
    "Rossi",
    "Smith",
    "Jones",
    "Tanaka",
    "Sato",
    "Chen",
    "Wang",
    "Ivanova",
    "Haddad",
    "Cohen",
    "Levi",
    "Öztürk",
    "Papadopoulos",
]
SPECIAL_NAMES = (
    ("山田", "太郎"),
    ("فاطمة", "الزهراء"),
    ("דוד", "כהן"),
    ("Ólafur", "Þórsson"),
    ("Zoë 🌸", "Smith-Jones"),
)

CITIES = (
    ("Berlin", "10115", "DE"),
    ("München", "80331", "DE"),
    ("Paris", "75001", "FR"),
    ("Amsterdam", "1011", "NL"),
    ("Kraków", "31-001", "PL"),
    ("Zürich", "8001", "CH"),
    ("Wien", "1010", "AT"),
    ("Madrid", "28001", "ES"),
    ("Dublin", "D02", "IE"),
    ("東京", "100-0001", "JP"),
)
STREETS = ("Hauptstraße 5", "Rue de la Paix 12", "Kerkstraat 3", "Main Street 1\nBuilding B")
TIMEZONES = ("Europe/Berlin", "Europe/Paris", "Europe/Amsterdam", "Asia/Tokyo", "UTC")
INDUSTRIES = ("Industrial safety equipment", "Insurance", "Consulting", "Training", None)
CERTIFICATIONS = ("Certified Safety Officer", "ISO 9001 Lead Auditor", "First Aid", "Fire Warden")
CATEGORIES = ("News", "Events", "Tom &amp; Jerry", "Sécurité", "Guidance")
TAGS = ("sync", "webhooks", "ladders", "fire", "training", "安全")
FOLDERS = (
    ("Governance", "Minutes", "2024"),
    ("Governance", "Statutes"),
    ("Policies",),
    ("Recalls", "Ladders"),
    ("Training &amp; Events", "Slides"),
)
ROLE_SETS = (
    ["member"],
    ["member"],
    ["member"],
    ["subscriber", "member"],
    ["pending_member"],
    ["lapsed_member"],
    ["subscriber"],
    ["subscriber", "lapsed_member"],
    ["administrator", "member"],
    ["editor"],
    [],
)
STATUSES = ("publish",) * 17 + ("draft", "future", "pending", "private")

# Untrusted HTML the platform must sanitise (the plugin never does).
NASTY_HTML = (
    "<p>Read this <script>alert('xss')</script> carefully.</p>\n",
    '<p><img src="{{site}}/wp-content/uploads/2024/01/img-1.png" onerror="alert(1)" alt="x"></p>\n',
    '<p><a href="javascript:alert(document.cookie)">Click me</a></p>\n',
    '<p onclick="steal()" style="color:red">Styled paragraph</p>\n',
    '<iframe src="https://evil.example/"></iframe>\n<p>Embedded frame.</p>\n',
)


def gmt(dt: datetime) -> str:
    """Format a UTC datetime as YYYY-MM-DDTHH:MM:SS (isoformat is faster than strftime)."""
    return dt.isoformat(timespec="seconds")[:19]


@lru_cache(maxsize=8192)
def slugify(title: str) -> str:
    """WordPress-like slug: lower-case, dashes, non-ASCII percent-encoded (lower-case hex)."""
    out = []
    for ch in title.lower():
        if ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    slug = "".join(out).strip("-")[:80].strip("-")
    return quote(slug, safe="-").lower()


def texturize(text: str) -> str:
    """A little of wptexturize(): entities WordPress puts in rendered titles."""
    return (
        text.replace("&", "&#038;")
        .replace("'", "&#8217;")
        .replace(' "', " &#8220;")
        .replace('"', "&#8221;")
        .replace(" — ", " &#8212; ")
    )


def is_bad(index: int) -> bool:
    return index % BAD_EVERY == BAD_OFFSET


def _valid_stamp(value, length: int, fmt: str) -> bool:
    if not isinstance(value, str) or len(value) != length:
        return False
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def is_broken(entity_type: str, record: dict) -> bool:
    """Does ``record`` break the contract the way BAD_RULES says (after any edit)?"""
    value = record.get(BAD_FIELDS[entity_type])
    if entity_type in ("event", "notification"):
        return value is not None and not _valid_stamp(value, 19, GMT)
    if entity_type == "conference":
        return value is not None and not _valid_stamp(value, 10, "%Y-%m-%d")
    if entity_type == "document":
        return value is not None and (not isinstance(value, int) or isinstance(value, bool))
    return not isinstance(value, str)  # article title, member email, company name


def type_counts(records: int) -> dict[str, int]:
    """How many records of each type a site with ``records`` records has (sums exactly)."""
    counts = {name: records * share // 100 for name, share in TYPE_SHARES}
    if records >= len(TYPE_SHARES):
        for name in counts:
            counts[name] = max(counts[name], 1)
    diff = records - sum(counts.values())
    order = [name for name, _ in sorted(TYPE_SHARES, key=lambda item: -item[1])]
    i = 0
    while diff:
        name = order[i % len(order)]
        if diff > 0:
            counts[name] += 1
            diff -= 1
        elif counts[name] > 1:
            counts[name] -= 1
            diff += 1
        i += 1
    return counts


class Generator:
    """Produces records; keeps per-type indexes so records added later follow the same rules."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.index = dict.fromkeys(BAD_RULES, 0)
        self.slugs: list[str] = []  # article slugs, for the deliberate duplicates
        self.used_slugs: dict[str, set[str]] = {}
        # Articles given another article's slug on purpose (~2 %): the platform rejects them.
        self.duplicate_slug_ids: set[int] = set()
        self.sentences: list[str] = []

    # --- helpers -----------------------------------------------------------------

    def unique_slug(self, entity_type: str, slug: str) -> str:
        """Like wp_unique_post_slug(): a taken slug gets -2, -3... within its post type."""
        used = self.used_slugs.setdefault(entity_type, set())
        candidate, n = slug, 2
        while candidate in used:
            candidate, n = f"{slug}-{n}", n + 1
        used.add(candidate)
        return candidate

    def words(self, n: int) -> str:
        return " ".join(self.rng.choices(WORDS, k=n))

    def sentence(self) -> str:
        # A pool of sentences built once keeps 100,000-record sites quick to generate.
        if not self.sentences:
            for _ in range(500):
                text = self.words(self.rng.randint(6, 14))
                self.sentences.append(text[0].upper() + text[1:] + ".")
        return self.rng.choice(self.sentences)

    def title(self) -> str:
        template = self.rng.choice(TITLES)
        return template.format(y=self.rng.randint(2019, 2025), n=self.rng.randint(100, 999))

    def html(self, paragraphs: int = 2) -> str:
        parts = [f"<p>{self.sentence()}</p>\n" for _ in range(paragraphs)]
        if self.rng.random() < 0.08:
            parts.insert(1, self.rng.choice(NASTY_HTML))
        return "".join(parts)

    def address(self) -> dict:
        if self.rng.random() < 0.1:
            return {"street": None, "city": None, "postcode": None, "country": None}
        city, postcode, country = self.rng.choice(CITIES)
        if self.rng.random() < 0.03:
            country = "Germany"  # legacy free text, tolerated by the contract
        return {
            "street": self.rng.choice(STREETS),
            "city": city,
            "postcode": postcode,
            "country": country,
        }

    def image(self, record_id: int, name: str, ext: str | None = None) -> str:
        ext = ext or self.rng.choice(("png", "jpg"))
        month = self.rng.randint(1, 12)
        if self.rng.random() < 0.05:  # the file was deleted from the media library: 404
            return f"{SITE}/wp-content/uploads/2024/{month:02d}/missing-{name}-{record_id}.{ext}"
        return f"{SITE}/wp-content/uploads/2024/{month:02d}/{name}-{record_id}.{ext}"

    def common(self, entity_type: str, record_id: int, modified: datetime, title: str) -> dict:
        # password_protected (every post type since contract 1.2) is derived from the id,
        # not drawn from self.rng: the sites every seed generated stay the same.
        status = self.rng.choice(STATUSES)
        date = modified - timedelta(seconds=self.rng.randint(0, 90 * 24 * 3600))
        slug = self.unique_slug(entity_type, slugify(title) or str(record_id))
        if entity_type == "article" and self.slugs and self.rng.random() < 0.02:
            slug = self.rng.choice(self.slugs)  # duplicate slug (imported content)
            self.duplicate_slug_ids.add(record_id)
        if entity_type == "article":
            self.slugs.append(slug)
        path = {"article": "2024/11"}.get(entity_type, entity_type + "s")
        link = f"{SITE}/{path}/{slug}/"
        date_gmt: str | None = gmt(date)
        if status in ("draft", "pending"):
            link = f"{SITE}/?p={record_id}"
            if self.rng.random() < 0.5:
                slug, date_gmt = "", None
        if status == "future":
            date_gmt = gmt(modified + timedelta(days=self.rng.randint(1, 60)))
        return {
            "id": record_id,
            "modified_gmt": gmt(modified),
            "date_gmt": date_gmt,
            "status": status,
            "slug": slug,
            "link": link,
            "password_protected": _protected(entity_type, record_id),
        }

    # --- entity types ------------------------------------------------------------

    def make(self, entity_type: str, record_id: int, modified: datetime) -> tuple[dict, bool]:
        """A new record; returns (record, deliberately_bad)."""
        index = self.index[entity_type]
        self.index[entity_type] += 1
        bad = is_bad(index)
        record = getattr(self, "_" + entity_type)(record_id, modified, bad, index)
        return record, bad

    def _article(self, rid, modified, bad, index):
        raw_title = self.title()
        record = self.common("article", rid, modified, raw_title)
        title = texturize(raw_title)
        if record["status"] == "draft" and self.rng.random() < 0.3:
            title = ""  # untitled draft: valid
        content = self.html(3)
        author = self.rng.choice(((1, "Site Admin"), (2, "Zoë Editor"), (None, None)))
        record.update(
            {
                "title": title,
                "excerpt": f"<p>{self.sentence()[:-1]}&hellip;</p>\n",
                "content": content,
                "author_id": author[0],
                "author_name": author[1],
                "categories": sorted(self.rng.sample(CATEGORIES, self.rng.randint(0, 2))),
                "tags": sorted(self.rng.sample(TAGS, self.rng.randint(0, 3))),
                "featured_image_url": (self.image(rid, "img") if self.rng.random() < 0.6 else None),
                "password_protected": self.rng.random() < 0.03,  # as before contract 1.2
            }
        )
        if bad:
            if index % 2:
                record["title"] = None
            else:
                del record["title"]
        return record

    def _member(self, rid, modified, bad, index):
        if self.rng.random() < 0.06:
            first, last = self.rng.choice(SPECIAL_NAMES)
        else:
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        login = f"{slugify(first)[:12] or 'user'}.{rid}"
        registered = modified - timedelta(seconds=self.rng.randint(0, 400 * 24 * 3600))
        record = {
            "id": rid,
            "modified_gmt": gmt(modified),
            "username": login,
            "email": f"{login.replace('%', '')}@example.net",
            "first_name": first if self.rng.random() > 0.05 else None,
            "last_name": last if self.rng.random() > 0.05 else None,
            "display_name": f"{first} {last}",
            "phone": (
                f"+49 30 {self.rng.randint(1000000, 9999999)}" if self.rng.random() < 0.7 else None
            ),
            "job_title": self.rng.choice(("Head of Compliance", "Safety Officer", "CEO", None)),
            "company": self.rng.choice(("Müller &amp; Söhne GmbH", "Acme Ltd", None)),
            "address": self.address(),
            "certifications": self.rng.sample(CERTIFICATIONS, self.rng.randint(0, 2)),
            "roles": list(self.rng.choice(ROLE_SETS)),
            "registered_gmt": gmt(registered),
        }
        if bad:
            record["email"] = None
        return record

    def _event(self, rid, modified, bad, index):
        title = self.title()
        record = self.common("event", rid, modified, title)
        start = ANCHOR + timedelta(days=self.rng.randint(-300, 300), hours=self.rng.randint(7, 18))
        end = start + timedelta(hours=self.rng.randint(1, 30))
        record.update(
            {
                "title": texturize(title),
                "description": self.html(2),
                "start_gmt": gmt(start),
                "end_gmt": gmt(end) if self.rng.random() < 0.85 else None,
                "timezone": self.rng.choice((*TIMEZONES, None)),
                "venue": self.rng.choice(("Congress Centre, Hall A", "Online", None)),
                "address": self.address(),
                "capacity": self.rng.choice((None, 0, 25, 100, 250)),
                "registration_url": (
                    f"{SITE}/events/{rid}/register/" if self.rng.random() < 0.5 else None
                ),
            }
        )
        if bad:
            record["start_gmt"] = ("next Tuesday 10am", "2025-02-30T10:00:00", "31/12/2025 18:00")[
                index % 3
            ]
        return record

    def _document(self, rid, modified, bad, index):
        title = self.title()
        record = self.common("document", rid, modified, title)
        folder = self.rng.choice((*FOLDERS, ()))
        has_file = self.rng.random() < 0.9
        name = f"{record['slug'] or rid}.pdf"
        record.update(
            {
                "title": texturize(title),
                "kind": self.rng.choice(("document", "document", "policy", "recall")),
                "folder_path": "/".join(folder) if folder else None,
                "folder_segments": list(folder),
                "file_url": f"{SITE}/wp-content/uploads/2024/11/{name}" if has_file else None,
                "file_name": name if has_file else None,
                "mime_type": "application/pdf" if has_file else None,
                "size": self.rng.randint(20_000, 900_000) if has_file else None,
                "access_level": self.rng.choice(("public", "members", "members", "admins")),
            }
        )
        if bad:
            record["size"] = "482 KB"
        return record

    def _conference(self, rid, modified, bad, index):
        title = self.title()
        record = self.common("conference", rid, modified, title)
        start = (ANCHOR + timedelta(days=self.rng.randint(-200, 400))).date()
        city, _, country = self.rng.choice(CITIES)
        record.update(
            {
                "title": texturize(title),
                "start_date": start.isoformat(),
                "end_date": (start + timedelta(days=self.rng.randint(0, 3))).isoformat(),
                "venue": self.rng.choice(("RAI Amsterdam", "Messe Berlin", None)),
                "city": city,
                "country": country,
                "website": self.rng.choice(("https://summit.example.eu/", None)),
                "description": self.html(2),
            }
        )
        if bad:
            record["start_date"] = ("TBA", "2025-13-01", "June 10th")[index % 3]
        return record

    def _company(self, rid, modified, bad, index):
        first = self.rng.choice(LAST_NAMES)
        suffix = self.rng.choice(("GmbH", "Ltd", "SA", "BV"))
        name = f"{first} & {self.rng.choice(LAST_NAMES)} {suffix}"
        record = self.common("company", rid, modified, name)
        record.update(
            {
                "name": texturize(name),
                "website": self.rng.choice(
                    (f"https://{slugify(first) or 'co'}.example.com/", None, "javascript:alert(1)")
                ),
                "industry": self.rng.choice(INDUSTRIES),
                "description": self.html(1),
                "logo_url": self.image(rid, "logo", "png") if self.rng.random() < 0.7 else None,
            }
        )
        if bad:
            record["name"] = None
        return record

    def _notification(self, rid, modified, bad, index):
        title = self.title()
        record = self.common("notification", rid, modified, title)
        send_at = modified + timedelta(hours=self.rng.randint(0, 48))
        record.update(
            {
                "title": texturize(title),
                "body": self.html(1),
                "audience": self.rng.choice(("all", "members", "members", "admins")),
                "send_at_gmt": gmt(send_at) if self.rng.random() < 0.6 else None,
                "priority": self.rng.choice(("low", "normal", "normal", "high", "urgent")),
            }
        )
        if bad:
            record["send_at_gmt"] = "tomorrow 9am"
        return record


def _protected(entity_type: str, record_id: int) -> bool:
    """About 3 % of posts have a password in WordPress (stable per record)."""
    return zlib.crc32(f"{entity_type}:{record_id}".encode()) % 100 < 3
