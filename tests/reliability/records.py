"""One valid record per entity type, from the contract's examples (docs/wordpress-sync-api.md
§9), used as templates that the property tests and the XSS tests mutate."""

import copy

TEMPLATES = {
    "article": {
        "id": 61,
        "modified_gmt": "2024-11-29T20:00:00",
        "date_gmt": "2024-11-29T20:00:00",
        "status": "publish",
        "slug": "tom-entity",
        "link": "https://association.example.org/2024/11/tom-entity/",
        "title": "Tom &#038; Jerry&#8217;s title",
        "excerpt": "<p>Archive budget replica&hellip;</p>\n",
        "content": "\n<p>Archive budget replica workflow.</p>\n",
        "author_id": 1,
        "author_name": "Site Admin",
        "categories": ["News", "Tom &amp; Jerry"],
        "tags": ["sync", "webhooks"],
        "featured_image_url": "https://association.example.org/wp-content/uploads/a.png",
        "password_protected": False,
    },
    "member": {
        "id": 28,
        "modified_gmt": "2024-10-02T14:21:09",
        "username": "alice.muller26",
        "email": "alice.muller26@example.net",
        "first_name": "Alice",
        "last_name": "Müller",
        "display_name": "Alice Müller",
        "phone": "+49 30 1234567",
        "job_title": "Head of Compliance",
        "company": "Müller &amp; Söhne GmbH",
        "address": {
            "street": "Hauptstraße 5",
            "city": "Berlin",
            "postcode": "10115",
            "country": "DE",
        },
        "certifications": ["Certified Safety Officer"],
        "roles": ["member"],
        "registered_gmt": "2023-12-30T01:03:14",
    },
    "event": {
        "id": 812,
        "modified_gmt": "2024-11-28T09:15:00",
        "date_gmt": "2024-10-01T08:00:00",
        "status": "publish",
        "slug": "annual-general-meeting-2025",
        "link": "https://association.example.org/events/agm/",
        "title": "Annual General Meeting 2025",
        "description": "<p>Agenda, elections and the treasurer&#8217;s report.</p>\n",
        "start_gmt": "2025-03-14T09:00:00",
        "end_gmt": "2025-03-14T16:30:00",
        "timezone": "Europe/Berlin",
        "venue": "Congress Centre, Hall A",
        "address": {
            "street": "Messedamm 22",
            "city": "Berlin",
            "postcode": "14055",
            "country": "DE",
        },
        "capacity": 250,
        "registration_url": "https://association.example.org/events/agm-2025/register/",
    },
    "document": {
        "id": 930,
        "modified_gmt": "2024-11-20T13:02:44",
        "date_gmt": "2024-11-20T13:00:00",
        "status": "publish",
        "slug": "board-minutes-2024-11",
        "link": "https://association.example.org/documents/board-minutes-2024-11/",
        "title": "Board minutes &#8211; November 2024",
        "kind": "document",
        "folder_path": "Governance/Minutes/2024",
        "folder_segments": ["Governance", "Minutes", "2024"],
        "file_url": "https://association.example.org/wp-content/uploads/minutes.pdf",
        "file_name": "minutes.pdf",
        "mime_type": "application/pdf",
        "size": 482113,
        "access_level": "members",
    },
    "conference": {
        "id": 1204,
        "modified_gmt": "2024-09-05T07:30:00",
        "date_gmt": "2024-06-01T10:00:00",
        "status": "publish",
        "slug": "european-safety-summit-2025",
        "link": "https://association.example.org/conferences/summit/",
        "title": "European Safety Summit 2025",
        "start_date": "2025-06-10",
        "end_date": "2025-06-12",
        "venue": "RAI Amsterdam",
        "city": "Amsterdam",
        "country": "NL",
        "website": "https://safetysummit.example.eu/",
        "description": "<p>Three days of talks and workshops.</p>\n",
    },
    "company": {
        "id": 1450,
        "modified_gmt": "2024-11-02T16:11:37",
        "date_gmt": "2023-03-15T09:00:00",
        "status": "publish",
        "slug": "muller-sohne",
        "link": "https://association.example.org/companies/muller-sohne/",
        "name": "Müller &#038; Söhne GmbH",
        "website": "https://mueller-soehne.example.de/",
        "industry": "Industrial safety equipment",
        "description": "<p>Family-owned manufacturer since 1952.</p>\n",
        "logo_url": "https://association.example.org/wp-content/uploads/logo.png",
    },
    "notification": {
        "id": 1502,
        "modified_gmt": "2024-11-30T07:55:00",
        "date_gmt": "2024-11-30T07:55:00",
        "status": "publish",
        "slug": "product-recall-ladder-x200",
        "link": "https://association.example.org/notifications/recall/",
        "title": "Product recall: ladder X200",
        "body": "<p>Stop using ladder model X200 immediately.</p>\n",
        "audience": "members",
        "send_at_gmt": "2024-11-30T08:00:00",
        "priority": "urgent",
    },
}

# The plain-text and HTML fields of each type that a site could fill with hostile markup.
TEXT_FIELDS = {
    "article": ["title", "author_name"],
    "member": ["display_name", "first_name", "last_name", "job_title", "company"],
    "event": ["title", "venue"],
    "document": ["title"],
    "conference": ["title", "venue", "city"],
    "company": ["name", "industry"],
    "notification": ["title"],
}
HTML_FIELDS = {
    "article": ["content", "excerpt"],
    "event": ["description"],
    "conference": ["description"],
    "company": ["description"],
    "notification": ["body"],
}


def record(entity_type: str, record_id: int, **changes) -> dict:
    """A valid record of `entity_type` with its own id and slug, then `changes` applied."""
    data = copy.deepcopy(TEMPLATES[entity_type])
    data["id"] = record_id
    if "slug" in data:
        data["slug"] = f"{entity_type}-{record_id}"
    if "email" in data:
        data["email"] = f"member{record_id}@example.net"
        data["username"] = f"member{record_id}"
    data.update(changes)
    return data
