"""Connector forms: every field validated with a message an admin can act on."""

import json
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from django import forms
from django.conf import settings
from django.db import models

from connectors.models import Connector
from connectors.wordpress.errors import PLUGIN_SETTINGS, BlockedAddress
from connectors.wordpress.guard import check_host, parse_url
from push.models import PushChannel
from records.mapping import MAPPINGS
from records.models import RECORD_MODELS, EntityType, PlatformRecord

# Bookkeeping columns every record has; a mapping override can only target content fields.
BOOKKEEPING_FIELDS = {field.name for field in PlatformRecord._meta.local_fields}


def mappable_fields(entity_type: str) -> set[str]:
    """Platform fields of one entity type that a field-mapping override may target: the
    record model's content fields, plus whatever the engine's default mapping fills."""
    model = RECORD_MODELS[entity_type]
    fields = {
        field.name
        for field in model._meta.concrete_fields
        if field.name not in BOOKKEEPING_FIELDS and not isinstance(field, models.FileField)
    }
    engine_fields = MAPPINGS.get(entity_type) if isinstance(MAPPINGS, dict) else None
    if isinstance(engine_fields, dict):
        fields |= {name for name in engine_fields if isinstance(name, str)}
    return fields


def normalise_site_url(raw: str) -> str:
    """Validate a WordPress site URL and return it without a trailing slash.

    The form refuses what is wrong on its face: scheme, credentials, malformed hosts and
    ports, and hosts known to be private or local without asking DNS: IP literals in any
    spelling a resolver accepts (2130706433, 0x7f.1, １２７.０.０.１, 127。0。0。1), localhost in
    any spelling (LOCALHOST., ｌｏｃａｌｈｏｓｔ) and the names of /etc/hosts.
    The outbound guard resolves names and checks every address again at connect time
    (connectors/wordpress/guard.py)."""
    value = (raw or "").strip()
    if not value:
        raise forms.ValidationError("Enter the address of your WordPress site.")
    if any(unicodedata.category(char).startswith("C") for char in value):
        raise forms.ValidationError(
            "The address contains invisible control characters: type it again, or paste it "
            "from the browser's address bar."
        )
    try:
        parts = urlsplit(value)
    except ValueError:  # an unbalanced IPv6 bracket: "http://["
        raise forms.ValidationError(
            "This is not a valid address: check the brackets of an IPv6 address, "
            "e.g. https://[2001:db8::1]/."
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise forms.ValidationError(
            "Enter a full address starting with https:// (or http://), "
            "for example https://www.example.org."
        )
    try:
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed or out-of-range port
    except ValueError:
        raise forms.ValidationError(
            "The port in this address must be a number between 1 and 65535."
        ) from None
    if not hostname:
        raise forms.ValidationError("The address has no host name, e.g. https://www.example.org.")
    if parts.username is not None or parts.password is not None:
        raise forms.ValidationError(
            "Remove the user name and password from the address: "
            "the sync API key is the only credential needed."
        )
    if parts.query or parts.fragment:
        raise forms.ValidationError("Remove the ?query or #fragment from the address.")
    try:
        # The guard's own normalisation (NFKC, ideographic dots, trailing dot, IDNA) and its
        # checks that need no DNS (IP literals, localhost, /etc/hosts): what the sync would
        # refuse at fetch time is refused here, when the admin can still correct it.
        check_host(hostname, allow_private=settings.WORDPRESS_ALLOW_PRIVATE_HOSTS)
    except BlockedAddress as exc:
        raise forms.ValidationError(str(exc)) from None
    path = parts.path.rstrip("/")
    normalised = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))
    try:
        # What the form stores, the client must be able to build (the fuzz in
        # tests/reliability/test_url_fuzz.py holds the two to it).
        parse_url(normalised, allow_private=True)
    except BlockedAddress as exc:
        raise forms.ValidationError(str(exc)) from None
    return normalised


def validate_mapping(data) -> dict:
    """{entity_type: {platform_field: source_path}} with known types and fields only."""
    if not isinstance(data, dict):
        raise forms.ValidationError(
            'Field mappings must be a JSON object like {"article": {"title": "title.rendered"}}.'
        )
    errors = []
    for entity_type, mapping in data.items():
        if entity_type not in EntityType.values:
            errors.append(
                f'"{entity_type}" is not an entity type (use one of: '
                f"{', '.join(EntityType.values)})."
            )
            continue
        if not isinstance(mapping, dict):
            errors.append(
                f'The mapping for "{entity_type}" must be an object of '
                "platform field → source path."
            )
            continue
        known = mappable_fields(entity_type)
        for field, source in mapping.items():
            if field not in known:
                errors.append(
                    f'"{field}" is not a field of {entity_type} records '
                    f"(known fields: {', '.join(sorted(known))})."
                )
            elif not isinstance(source, str) or not source.strip() or " " in source.strip():
                errors.append(
                    f"The source path for {entity_type}.{field} must be a non-empty path "
                    'without spaces, e.g. "meta.venue".'
                )
    if errors:
        raise forms.ValidationError(errors)
    return {etype: {f: s.strip() for f, s in m.items()} for etype, m in data.items()}


class ConnectorFieldsMixin:
    """Validation shared by the create form and the settings form."""

    organisation = None

    def clean_name(self):
        name = " ".join((self.cleaned_data.get("name") or "").split())
        if not name:
            raise forms.ValidationError("Give the connector a name.")
        clash = Connector.objects.filter(organisation=self.organisation, name__iexact=name)
        if self.instance is not None and self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(
                f'This organisation already has a connector named "{name}". Choose another name.'
            )
        return name

    def clean_site_url(self):
        return normalise_site_url(self.cleaned_data.get("site_url"))

    def full_clean(self):
        super().full_clean()
        # The key is write-only (never rendered back), so a form returned for another field's
        # error comes back with the key box empty: say so beside it, or the admin resubmits
        # without it (create: "key required"; settings: the old key silently kept).
        typed = (self.data.get("api_key") or "").strip() if self.is_bound else ""
        if typed and self._errors and "api_key" not in self._errors:
            self[
                "api_key"
            ].help_text = (
                "Nothing was saved, so paste the key again: it is never sent back to your browser."
            )

    def clean_entity_types(self):
        chosen = set(self.cleaned_data.get("entity_types") or [])
        if not chosen:
            raise forms.ValidationError("Choose at least one kind of content to sync.")
        return [value for value in EntityType.values if value in chosen]


MAPPING_MAX_CHARS = 20_000
ENTITY_HELP = "What to import from WordPress. You can change this later in Settings."


class ConnectorCreateForm(ConnectorFieldsMixin, forms.ModelForm):
    site_url = forms.CharField(
        label="Site URL",
        max_length=500,
        help_text="The public address of the WordPress site, e.g. https://www.example.org.",
    )
    api_key = forms.CharField(
        label="Sync API key",
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=f"Generate it in {PLUGIN_SETTINGS} (shown once) and paste it here.",
        error_messages={"required": "Paste the sync API key from the WordPress plugin."},
    )
    entity_types = forms.MultipleChoiceField(
        label="What to sync",
        choices=EntityType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=ENTITY_HELP,
    )

    class Meta:
        model = Connector
        # site_url is declared above (our own validation); listing the model's URLField here
        # would build Django's URLField too, with its assume_scheme deprecation warning.
        fields = ["name", "frequency"]
        labels = {"frequency": "Sync frequency"}
        help_texts = {
            "frequency": "How often the platform fetches changes after the import.",
        }

    def __init__(self, *args, organisation, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisation = organisation
        self.fields["name"].error_messages["required"] = "Give the connector a name."
        self.fields["site_url"].error_messages["required"] = (
            "Enter the address of your WordPress site."
        )
        if not self.is_bound:
            self.initial.setdefault("entity_types", list(EntityType.values))


class ConnectorSettingsForm(ConnectorFieldsMixin, forms.ModelForm):
    site_url = forms.CharField(label="Site URL", max_length=500)
    api_key = forms.CharField(
        label="Sync API key",
        max_length=500,
        required=False,
        strip=True,
        # Write-only: never rendered back, blank keeps the stored key.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave blank to keep the stored key.",
    )
    entity_types = forms.MultipleChoiceField(
        label="Content types to import",
        choices=EntityType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Turning a type off stops syncing it; records already imported stay.",
    )
    # Stored on the connector's push channel (push app), not on the connector.
    push_enabled = forms.BooleanField(
        label="Receive changes from WordPress as they happen",
        required=False,
        help_text=(
            "The plugin notifies the platform after each edit and an incremental sync follows "
            "within seconds; the schedule stays as the safety net. Needs plugin 1.2 with push "
            "(Test Connection says whether the site reaches the platform)."
        ),
    )
    field_mapping_overrides = forms.CharField(
        label="Field mapping overrides",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "mono"}),
        help_text=(
            'JSON: {"entity type": {"platform field": "source path"}}, e.g. '
            '{"event": {"venue": "meta.location"}}. Leave empty for the default mapping.'
        ),
    )

    class Meta:
        model = Connector
        fields = [
            "name",
            "frequency",
            "entity_types",
            "mirror_images",
            "store_protected_content",
            "conflict_policy",
            "sync_direction",
            "reconcile_frequency",
            "deletion_guard_percent",
            "deletion_guard_minimum",
        ]
        labels = {
            "frequency": "Sync frequency",
            "mirror_images": "Mirror images and files onto the platform",
            "store_protected_content": "Store the content of password-protected posts",
            "conflict_policy": "When both sides changed a record",
            "sync_direction": "Sync direction",
            "reconcile_frequency": "Reconciliation",
            "deletion_guard_percent": "Deletion guard: hold more than (% of a type)",
            "deletion_guard_minimum": "Deletion guard: and at least (records)",
        }
        help_texts = {
            "deletion_guard_percent": (
                "A full sync that would archive more than this share of a type's records "
                "(and at least the number below) holds those archives for your review on the "
                "Overview: protects against an emptied site or a plugin misconfiguration. "
                "100 turns the guard off."
            ),
            "store_protected_content": (
                "Off: a password-protected post is imported with its title and status, and "
                "its body is not stored (the platform would show it without the password). "
                "Applies to records synced from now on; run a full sync to apply it to all."
            ),
            "reconcile_frequency": (
                "How often every record is compared with WordPress and any difference "
                "repaired; what it finds is shown on the Overview as changes missed by "
                "incremental syncs. Not for paused or manual-only connectors."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisation = self.instance.organisation
        self.fields["name"].error_messages["required"] = "Give the connector a name."
        for name in ("deletion_guard_percent", "deletion_guard_minimum"):
            self.fields[name].required = False
        self.fields["api_key"].widget.attrs["placeholder"] = (
            # Short enough to read whole in the box on a phone (the longer one was cut off).
            "A key is stored: type to replace it"
            if self.instance.has_api_key
            else "No key stored: paste the key"
        )
        self.fields["site_url"].error_messages["required"] = (
            "Enter the address of your WordPress site."
        )
        if not self.is_bound:
            self.initial["site_url"] = self.instance.site_url
            channel = PushChannel.objects.filter(connector=self.instance).first()
            self.initial["push_enabled"] = channel.enabled if channel else True
            overrides = self.instance.field_mapping_overrides
            self.initial["field_mapping_overrides"] = (
                json.dumps(overrides, indent=2, sort_keys=True) if overrides else ""
            )

    def clean_deletion_guard_percent(self):
        value = self.cleaned_data["deletion_guard_percent"]
        if value is None:  # left out (an older form, a script): keeps the current setting
            return self.instance.deletion_guard_percent
        if not 0 <= value <= 100:
            raise forms.ValidationError("A share between 0 and 100 %.")
        return value

    def clean_deletion_guard_minimum(self):
        value = self.cleaned_data["deletion_guard_minimum"]
        return self.instance.deletion_guard_minimum if value is None else value

    def clean_api_key(self):
        key = self.cleaned_data.get("api_key") or ""
        if not key and not self.instance.has_api_key:
            raise forms.ValidationError("Paste the sync API key from the WordPress plugin.")
        return key

    def clean_field_mapping_overrides(self):
        raw = (self.cleaned_data.get("field_mapping_overrides") or "").strip()
        if not raw:
            return {}
        if len(raw) > MAPPING_MAX_CHARS:
            raise forms.ValidationError(
                f"Field mappings are limited to {MAPPING_MAX_CHARS:,} characters."
            )
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
            ) from None
        except (ValueError, RecursionError):
            # Numbers too long to convert, nesting deeper than the parser allows.
            raise forms.ValidationError(
                "This JSON cannot be read: it nests too deeply or holds a huge number."
            ) from None
        return validate_mapping(data)

    def changed_values(self) -> dict:
        """The cleaned values to apply to the connector (the key handled apart)."""
        values = {name: self.cleaned_data[name] for name in self.Meta.fields}
        values["site_url"] = self.cleaned_data["site_url"]
        values["field_mapping_overrides"] = self.cleaned_data["field_mapping_overrides"]
        values["push_enabled"] = self.cleaned_data["push_enabled"]
        return values
