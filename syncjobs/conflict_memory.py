"""The engine's memory of answered conflicts: whether an admin already settled the WordPress
version a sync meets again. Apart from syncjobs.conflicts (the inbox's actions) because the
runner needs it and the inbox imports the services that queue the runner's task."""

from datetime import UTC

from syncjobs.models import ConflictResolution

Action = ConflictResolution.Action


def remembered_answer(connector):
    """The engine's memory of answered conflicts (Plan.conflict_answer): a function of
    (entity type, WordPress id, content hash of the WordPress version met) that returns, in
    words for the record's log row, the answer that already settled that same version (kept
    the platform version, or dismissed), or "" to raise the conflict as usual.

    Only the record's newest answer counts (a later "take WordPress's version" ends what an
    earlier dismissal said). One indexed query per conflicting record, and only for those:
    a sync that meets no conflict never asks."""
    answers = ConflictResolution.objects.filter(connector_id=connector.pk).select_related(
        "resolved_by"
    )

    def answer(entity_type: str, external_id: str, digest: str) -> str:
        newest = (
            answers.filter(entity_type=entity_type, external_id=external_id).order_by("-id").first()
        )
        if (
            newest is None
            or newest.action == Action.TAKE_WORDPRESS
            or not newest.wordpress_hash
            or newest.wordpress_hash != digest
        ):
            return ""
        who = newest.resolved_by.username if newest.resolved_by else "an administrator"
        when = newest.resolved_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"Conflict already answered by {who} on {when} "
            f"({newest.get_action_display().lower()}) for this WordPress version: "
            "not raised again, the WordPress data was not written. A later WordPress edit "
            "raises it again."
        )

    return answer
