"""The platform's own records: one model per entity type synced from WordPress.

Every record keeps what the sync engine needs to decide CREATE / UPDATE / SKIP / CONFLICT
without reading anything else: the source's external id, the hash of the mapped fields,
the source's modified time, when it was last synced, and when it was last changed on the
platform itself (conflict detection compares the last two).

Post-based records (every type but member) also keep WordPress's publish status and whether
the post is password-protected (PostRecord): a draft, scheduled, pending, private or
protected record is stored as such and is never treated as published (`published()`,
`Notification.objects.sendable()`).
"""

import uuid

from django.db import models
from django.urls import reverse


class EntityType(models.TextChoices):
    ARTICLE = "article", "Article"
    MEMBER = "member", "Member"
    EVENT = "event", "Event"
    DOCUMENT = "document", "Document"
    CONFERENCE = "conference", "Conference"
    COMPANY = "company", "Company"
    NOTIFICATION = "notification", "Notification"


def _slug_field():
    # Not indexed on its own (db_index=False, SlugField's default is two indexes, one of them
    # for LIKE): slugs are only ever looked up within an organisation, which the partial
    # unique (organisation, slug) index serves, and each index is a cost of every sync.
    return models.SlugField(max_length=200, blank=True, allow_unicode=True, db_index=False)


class PlatformRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database constraints on the two foreign keys (db_constraint=False), as on the sync
    # log: PostgreSQL checks each once per inserted row, and the two checks were a fifth of a
    # cold import's page write (bench/engine_sync.py). Django's collector still cascades
    # (and sets null) on delete; the sync's page statement writes no record once its
    # connector row is gone (PageWrites._json_upsert_sql), and a connector cannot be deleted
    # while one of its jobs is in flight (connectors.services.delete_connector).
    organisation = models.ForeignKey("accounts.Organisation", models.CASCADE, db_constraint=False)
    # Deleting a connector keeps the records it imported: they are the association's data.
    # No index of its own (db_index=False): the unique (connector, external_id) constraint
    # starts with it and serves every lookup by connector. A second index cost each insert,
    # and the planner took it for the archive walk (DjangoStore.archive_walk_sql): a bitmap
    # scan of all of a connector's records for every batch, 40 ms per 1,000 at 100,000.
    connector = models.ForeignKey(
        "connectors.Connector",
        models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,
        db_constraint=False,
    )
    external_id = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64, blank=True)
    source_modified_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # Set when someone edits the record on the platform (Django admin, two-way sync source).
    platform_modified_at = models.DateTimeField(null=True, blank=True)
    # Two-way: the platform_modified_at of an edit WordPress refused for good (a 4xx such as a
    # validation error). That edit is not pushed again; a newer platform edit is.
    push_refused_at = models.DateTimeField(null=True, blank=True)
    # Set when the record disappeared from WordPress: archived, never hard-deleted.
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    entity_type: str = ""
    has_slug = False

    class Meta:
        abstract = True

    @classmethod
    def unique_per_connector(cls, name: str):
        # Serves the engine's lookup "which of these external ids do we already have?"
        # and makes a re-run after a crash unable to create duplicates.
        return models.UniqueConstraint(
            fields=["connector", "external_id"], name=f"{name}_unique_external_id"
        )

    @classmethod
    def pending_push_index(cls, name: str):
        # Serves the two-way incremental sync's "which live records of this connector were
        # edited on the platform and not pushed yet?" (DjangoStore.pending_pushes): partial,
        # so it holds only the few edited records and costs the import path nearly nothing.
        return models.Index(
            fields=["connector", "external_id"],
            condition=models.Q(platform_modified_at__isnull=False, archived_at__isnull=True),
            name=f"{name}_pending_push_idx",
        )

    @classmethod
    def unique_slug_per_organisation(cls, name: str):
        return models.UniqueConstraint(
            fields=["organisation", "slug"],
            condition=~models.Q(slug=""),
            name=f"{name}_unique_slug_per_org",
        )

    def get_absolute_url(self):
        return reverse("records:detail", args=[self.organisation.slug, self.entity_type, self.pk])

    @property
    def label(self) -> str:
        return getattr(self, "title", None) or getattr(self, "name", None) or str(self.pk)

    def __str__(self) -> str:
        return self.label


class PublishStatus(models.TextChoices):
    """WordPress's post statuses the plugin serves (contract §5.3)."""

    PUBLISH = "publish", "Published"
    FUTURE = "future", "Scheduled"
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending review"
    PRIVATE = "private", "Private"


class PostRecordQuerySet(models.QuerySet):
    def published(self):
        """What the platform may show or use as published: live, `publish` in WordPress and
        not behind a password. Drafts, scheduled, pending, private and protected posts are
        stored (so a later publish is an update, not a surprise) but never count here."""
        return self.filter(
            archived_at__isnull=True, status=PublishStatus.PUBLISH, password_protected=False
        )


class PostRecord(PlatformRecord):
    """A record of a WordPress post type: its publish status and password protection."""

    # Blank only for records stored before the status was imported for their type: the
    # next full sync or reconciliation fills it (the content hash includes it).
    status = models.CharField(max_length=20, blank=True, choices=PublishStatus.choices)
    # The post has a password in WordPress. Unless its connector says otherwise, its body
    # was not stored (see SyncEngine's protected-content rule).
    password_protected = models.BooleanField(default=False)

    objects = PostRecordQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_published(self) -> bool:
        return (
            self.archived_at is None
            and self.status == PublishStatus.PUBLISH
            and not self.password_protected
        )


class Article(PostRecord):
    entity_type = EntityType.ARTICLE
    has_slug = True

    title = models.CharField(max_length=500)
    slug = _slug_field()
    excerpt = models.TextField(blank=True)
    content = models.TextField(blank=True, help_text="Sanitised HTML")
    author_name = models.CharField(max_length=200, blank=True)
    categories = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True)
    featured_image_url = models.URLField(max_length=1000, blank=True)
    featured_image = models.FileField(upload_to="mirrored/articles/", blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            PlatformRecord.unique_per_connector("article"),
            PlatformRecord.unique_slug_per_organisation("article"),
        ]
        indexes = [PlatformRecord.pending_push_index("article")]


class Member(PlatformRecord):
    entity_type = EntityType.MEMBER

    class MembershipStatus(models.TextChoices):
        ACTIVE = "active", "Active"
        PENDING = "pending", "Pending"
        LAPSED = "lapsed", "Lapsed"
        # Kept for records stored before contract §10 was followed; the sync no longer
        # stores it (a user without a recognised role has no membership: NONE).
        INACTIVE = "inactive", "Inactive"
        NONE = "", "No membership"

    email = models.EmailField(max_length=254, blank=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    display_name = models.CharField(max_length=250, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    job_title = models.CharField(max_length=200, blank=True)
    company = models.CharField(max_length=200, blank=True)
    address = models.TextField(blank=True)
    certifications = models.JSONField(default=list, blank=True)
    membership_status = models.CharField(
        max_length=20,
        choices=MembershipStatus.choices,
        default=MembershipStatus.ACTIVE,
        blank=True,
    )
    joined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [PlatformRecord.unique_per_connector("member")]
        indexes = [PlatformRecord.pending_push_index("member")]

    @property
    def label(self) -> str:
        return self.display_name or self.email or str(self.pk)


class Event(PostRecord):
    entity_type = EntityType.EVENT
    has_slug = True

    title = models.CharField(max_length=500)
    slug = _slug_field()
    description = models.TextField(blank=True, help_text="Sanitised HTML")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    venue = models.CharField(max_length=300, blank=True)
    address = models.TextField(blank=True)
    capacity = models.PositiveIntegerField(null=True, blank=True)
    registration_url = models.URLField(max_length=1000, blank=True)

    class Meta:
        constraints = [
            PlatformRecord.unique_per_connector("event"),
            PlatformRecord.unique_slug_per_organisation("event"),
        ]
        indexes = [PlatformRecord.pending_push_index("event")]


class Document(PostRecord):
    entity_type = EntityType.DOCUMENT
    has_slug = True

    class Kind(models.TextChoices):
        DOCUMENT = "document", "Document"
        POLICY = "policy", "Policy"
        RECALL = "recall", "Recall"

    class AccessLevel(models.TextChoices):
        PUBLIC = "public", "Public"
        MEMBERS = "members", "Members"
        ADMINS = "admins", "Admins"

    title = models.CharField(max_length=500)
    slug = _slug_field()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DOCUMENT)
    folder_path = models.CharField(max_length=500, blank=True)
    file_url = models.URLField(max_length=1000, blank=True)
    file = models.FileField(upload_to="mirrored/documents/", blank=True)
    mime_type = models.CharField(max_length=100, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    access_level = models.CharField(
        max_length=20, choices=AccessLevel.choices, default=AccessLevel.MEMBERS
    )

    class Meta:
        constraints = [
            PlatformRecord.unique_per_connector("document"),
            PlatformRecord.unique_slug_per_organisation("document"),
        ]
        indexes = [PlatformRecord.pending_push_index("document")]


class Conference(PostRecord):
    entity_type = EntityType.CONFERENCE
    has_slug = True

    title = models.CharField(max_length=500)
    slug = _slug_field()
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    venue = models.CharField(max_length=300, blank=True)
    city = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, blank=True)
    website = models.URLField(max_length=1000, blank=True)
    description = models.TextField(blank=True, help_text="Sanitised HTML")

    class Meta:
        constraints = [
            PlatformRecord.unique_per_connector("conference"),
            PlatformRecord.unique_slug_per_organisation("conference"),
        ]
        indexes = [PlatformRecord.pending_push_index("conference")]


class Company(PostRecord):
    entity_type = EntityType.COMPANY
    has_slug = True

    name = models.CharField(max_length=300)
    slug = _slug_field()
    website = models.URLField(max_length=1000, blank=True)
    industry = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True, help_text="Sanitised HTML")
    logo_url = models.URLField(max_length=1000, blank=True)

    class Meta:
        verbose_name_plural = "companies"
        constraints = [
            PlatformRecord.unique_per_connector("company"),
            PlatformRecord.unique_slug_per_organisation("company"),
        ]
        indexes = [PlatformRecord.pending_push_index("company")]


class NotificationQuerySet(PostRecordQuerySet):
    def sendable(self):
        """Notifications the platform may send: published ones only. A draft, scheduled,
        pending, private or protected notification keeps its audience and send time but is
        never sent."""
        return self.published()


class Notification(PostRecord):
    entity_type = EntityType.NOTIFICATION

    class Audience(models.TextChoices):
        ALL = "all", "Everyone"
        MEMBERS = "members", "Members"
        ADMINS = "admins", "Admins"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    title = models.CharField(max_length=500)
    body = models.TextField(blank=True)
    audience = models.CharField(max_length=20, choices=Audience.choices, default=Audience.ALL)
    send_at = models.DateTimeField(null=True, blank=True)
    priority = models.CharField(max_length=20, choices=Priority.choices, default=Priority.NORMAL)

    class Meta:
        constraints = [PlatformRecord.unique_per_connector("notification")]
        indexes = [PlatformRecord.pending_push_index("notification")]

    objects = NotificationQuerySet.as_manager()

    @property
    def is_sendable(self) -> bool:
        return self.is_published


RECORD_MODELS: dict[str, type[PlatformRecord]] = {
    model.entity_type: model
    for model in (Article, Member, Event, Document, Conference, Company, Notification)
}
