"""The platform fields of each entity type: where each comes from in WordPress and goes back to."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from connectors.wordpress import contract


class _Missing:
    """Sentinel for "no default" (None is a legitimate default)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

FIELD_TYPES = (
    "text",
    "html",
    "slug",
    "int",
    "datetime",
    "date",
    "url",
    "email",
    "list",
    "choice",
    "bool",
    "address",
    "country",
    "membership_status",
)


@dataclass(frozen=True)
class FieldSpec:
    name: str  # platform field name (records model field)
    source: str  # dotted path into the WordPress record, e.g. "address.city", "roles"
    type: str  # one of FIELD_TYPES
    required: bool = False
    default: Any = MISSING  # MISSING = no default
    choices: tuple = ()  # for "choice"
    max_length: int | None = None
    # The post's body (content, excerpt, description): of a password-protected post it is
    # stored as "" unless the connector stores protected content (mapping_for), and never
    # pushed back from such a record (its "" is not the WordPress content).
    withheld_when_protected: bool = False

    def __post_init__(self):
        if self.type not in FIELD_TYPES:
            raise ValueError(f"unknown field type {self.type!r} for {self.name}")


# --- The mapping -----------------------------------------------------------------------------

#: Bumped when a change to MAPPINGS changes what is stored for records WordPress did not
#: change (a new field, a new conversion): their next full walk rewrites them, and a
#: reconciliation that does so does not report those rewrites as drift (syncjobs.runner).
#: 2: every post type's status and password protection; no membership without a role.
MAPPING_REVISION = 2

_POST_STATUSES = contract.SERVED_POST_STATUSES


def _common(title_source: str = "title") -> tuple[FieldSpec, ...]:
    return (
        FieldSpec(
            "title" if title_source == "title" else "name",
            title_source,
            "text",
            True,
            max_length=500 if title_source == "title" else 300,
        ),
        FieldSpec("slug", "slug", "slug", max_length=200),
    )


def _visibility() -> tuple[FieldSpec, ...]:
    """Every post type's publish status and password protection (§9.0): a draft, scheduled,
    pending, private or protected record is stored as such, never as published. A plugin
    older than contract 1.2 sends no `password_protected` outside articles: not protected."""
    return (
        FieldSpec("status", "status", "choice", choices=_POST_STATUSES),
        FieldSpec("password_protected", "password_protected", "bool", default=False),
    )


def _body(name: str, source: str | None = None) -> FieldSpec:
    return FieldSpec(name, source or name, "html", withheld_when_protected=True)


MAPPINGS: dict[str, tuple[FieldSpec, ...]] = {
    "article": (
        *_common(),
        _body("excerpt"),
        _body("content"),
        FieldSpec("author_name", "author_name", "text", max_length=200),
        FieldSpec("categories", "categories", "list"),
        FieldSpec("tags", "tags", "list"),
        FieldSpec("featured_image_url", "featured_image_url", "url", max_length=1000),
        FieldSpec("published_at", "date_gmt", "datetime"),
        *_visibility(),
    ),
    "member": (
        FieldSpec("email", "email", "email", required=True, max_length=254),
        FieldSpec("first_name", "first_name", "text", max_length=150),
        FieldSpec("last_name", "last_name", "text", max_length=150),
        FieldSpec("display_name", "display_name", "text", max_length=250),
        FieldSpec("phone", "phone", "text", max_length=50),
        FieldSpec("job_title", "job_title", "text", max_length=200),
        FieldSpec("company", "company", "text", max_length=200),
        FieldSpec("address", "address", "address"),
        FieldSpec("certifications", "certifications", "list"),
        FieldSpec("membership_status", "roles", "membership_status"),
        FieldSpec("joined_at", "registered_gmt", "datetime"),
    ),
    "event": (
        *_common(),
        _body("description"),
        FieldSpec("starts_at", "start_gmt", "datetime", required=True),
        FieldSpec("ends_at", "end_gmt", "datetime"),
        FieldSpec("timezone", "timezone", "text", max_length=64),
        FieldSpec("venue", "venue", "text", max_length=300),
        FieldSpec("address", "address", "address"),
        FieldSpec("capacity", "capacity", "int"),
        FieldSpec("registration_url", "registration_url", "url", max_length=1000),
        *_visibility(),
    ),
    "document": (
        *_common(),
        FieldSpec("kind", "kind", "choice", default="document", choices=contract.DOCUMENT_KINDS),
        FieldSpec("folder_path", "folder_path", "text", max_length=500),
        FieldSpec("file_url", "file_url", "url", max_length=1000),
        FieldSpec("mime_type", "mime_type", "text", max_length=100),
        FieldSpec("size", "size", "int"),
        FieldSpec(
            "access_level",
            "access_level",
            "choice",
            default="members",
            choices=contract.ACCESS_LEVELS,
        ),
        *_visibility(),
    ),
    "conference": (
        *_common(),
        FieldSpec("start_date", "start_date", "date", required=True),
        FieldSpec("end_date", "end_date", "date"),
        FieldSpec("venue", "venue", "text", max_length=300),
        FieldSpec("city", "city", "text", max_length=200),
        FieldSpec("country", "country", "country"),
        FieldSpec("website", "website", "url", max_length=1000),
        _body("description"),
        *_visibility(),
    ),
    "company": (
        *_common("name"),
        FieldSpec("website", "website", "url", max_length=1000),
        FieldSpec("industry", "industry", "text", max_length=200),
        _body("description"),
        FieldSpec("logo_url", "logo_url", "url", max_length=1000),
        *_visibility(),
    ),
    "notification": (
        FieldSpec("title", "title", "text", required=True, max_length=500),
        _body("body"),
        FieldSpec(
            "audience",
            "audience",
            "choice",
            default="members",
            choices=contract.NOTIFICATION_AUDIENCES,
        ),
        FieldSpec("send_at", "send_at_gmt", "datetime"),
        FieldSpec(
            "priority",
            "priority",
            "choice",
            default="normal",
            choices=contract.NOTIFICATION_PRIORITIES,
        ),
        *_visibility(),
    ),
}

_SOURCE_PATH_RE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


def validate_overrides(entity_type: str, overrides: dict | None) -> list[str]:
    """Problems with a connector's overrides for one entity type (empty list = fine)."""
    problems = []
    if entity_type not in MAPPINGS:
        return [f"unknown entity type {entity_type!r}"]
    if not overrides:
        return problems
    if not isinstance(overrides, dict):
        return [f"field mapping overrides for {entity_type} must be an object"]
    names = {spec.name for spec in MAPPINGS[entity_type]}
    for platform_field, source in overrides.items():
        if platform_field not in names:
            problems.append(
                f"{entity_type}: {platform_field!r} is not a platform field "
                f"(fields: {', '.join(sorted(names))})"
            )
        elif not isinstance(source, str) or not _SOURCE_PATH_RE.match(source):
            problems.append(
                f"{entity_type}.{platform_field}: source {source!r} is not a dotted path "
                "of snake_case keys (e.g. address.city)"
            )
    return problems


def mapping_for(
    entity_type: str, overrides: dict | None = None, *, protected_content: bool = False
) -> tuple[FieldSpec, ...]:
    """The field specs of an entity type with the connector's source-path overrides applied;
    `protected_content` (the connector's setting) stores password-protected bodies too.

    Raises ValueError (with every problem listed) for an unknown type or bad overrides.
    """
    problems = validate_overrides(entity_type, overrides)
    if problems:
        raise ValueError("; ".join(problems))
    specs = MAPPINGS[entity_type]
    if protected_content:
        specs = tuple(replace(spec, withheld_when_protected=False) for spec in specs)
    if not overrides:
        return specs
    return tuple(
        replace(spec, source=overrides[spec.name]) if spec.name in overrides else spec
        for spec in specs
    )


_NOT_NULLABLE = frozenset(
    {
        "title",
        "name",
        "display_name",
        "excerpt",
        "content",
        "description",
        "body",
        "status",
        "audience",
        "priority",
        "categories",
        "tags",
        "certifications",
        "access_level",
    }
)
# Platform representations that cannot be turned back into the contract's shape exactly.
_NOT_REVERSIBLE = frozenset({"address", "membership_status", "slug"})


def reverse_map(entity_type: str, values: dict, specs: tuple[FieldSpec, ...] | None = None) -> dict:
    """The PUT body (§7) for a platform record's values: writable fields only, reverse-mapped.

    Fields whose source is not writable in the contract (slug, roles, email, links…) and the
    platform's composed address text are left out: the plugin rejects read-only keys.
    """
    specs = specs or MAPPINGS[entity_type]
    writable = contract.WRITABLE_FIELDS.get(entity_type, frozenset())
    body: dict = {}
    withheld = bool(values.get("password_protected"))
    for spec in specs:
        top = spec.source.split(".", 1)[0]
        if top not in writable or spec.type in _NOT_REVERSIBLE or spec.name not in values:
            continue
        if withheld and spec.withheld_when_protected:
            continue  # stored as "", not the WordPress body: pushing it would erase that
        value = values[spec.name]
        if isinstance(value, datetime):
            value = contract.format_gmt(value)
        elif isinstance(value, date):
            value = contract.format_date(value)
        elif value == "" and top not in _NOT_NULLABLE:
            value = None
        elif top == "status" and value not in contract.WRITABLE_POST_STATUSES:
            continue  # "future" cannot be written back; leave the status alone
        if "." in spec.source:
            node = body.setdefault(top, {})
            parts = spec.source.split(".")
            for part in parts[1:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        else:
            body[top] = value
    return body
