"""The simulated WordPress site: records, its clock, changes, writes, faults.

Plain Python, thread-safe (one lock; the HTTP server calls in from many threads). Record
JSON is rendered once and cached, and every entity type keeps its records sorted by
(modified_gmt, id), so a list page is a bisect plus a join of cached bytes.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from connectors.wordpress import contract

from . import data
from .push import Pusher
from .writes import apply_update

__all__ = ["FAULT_KINDS", "Fault", "SimulatedSite", "SiteClock"]

#: Fault kinds, see Fault.
FAULT_KINDS = (
    "latency",  # wait `seconds`, then answer normally
    "status",  # answer `status` (429 with Retry-After `retry_after`, 500 JSON, 502/503/504 HTML)
    "hang",  # accept, never answer for `seconds` (longer than the client's timeout), close
    "reset",  # reset the TCP connection without an answer
    "truncate",  # 200 with the JSON body cut in half (Content-Length matches the cut body)
    "html",  # 200 with an HTML page instead of JSON
    "wrong_total",  # list answers whose body `total` disagrees with total_pages/headers
    "oversize",  # 200 with a body larger than 10 MiB
    "plugin_missing",  # sync routes 404 (theme page), /wp-json works without our namespace
    "permalinks",  # /api/v1/sync/ 404 (rewrite rules not flushed), /wp-json/ routes work
    "disabled",  # 403 association_sync_disabled
    "not_wordpress",  # every URL answers a plain HTML page
)
#: Faults that describe the state of the site rather than one bad answer: they apply to every
#: request (nth/count are ignored) until ``clear_faults()``.
STATE_FAULTS = frozenset({"plugin_missing", "permalinks", "disabled", "not_wordpress"})


def _version(text: str) -> tuple[int, ...]:
    """A plugin version as numbers ("1.1.0" -> (1, 1, 0)); a part not a number counts as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))


class SiteClock:
    """The site's clock (UTC, 1-second resolution). Tests freeze and advance it."""

    def __init__(self, frozen_at: datetime | None = None):
        self._frozen = frozen_at
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            base = self._frozen if self._frozen is not None else datetime.now(UTC)
            return (base + self._offset).replace(microsecond=0)

    def freeze(self, at: datetime | None = None) -> None:
        with self._lock:
            self._frozen = at or datetime.now(UTC).replace(microsecond=0)
            self._offset = timedelta()

    def unfreeze(self) -> None:
        with self._lock:
            self._frozen = None

    def advance(self, seconds: float = 1) -> datetime:
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()


@dataclass
class Fault:
    """A misbehaviour: fires on the ``nth`` matching request from now, for ``count`` requests
    (``None``: every matching request from then on).

    ``endpoint`` scopes it: an endpoint name (``"articles"``, ``"ping"``, ``"deletions"``),
    ``"wp-json"`` (the REST index), ``"uploads"`` (images), or ``None`` for every sync route.
    """

    kind: str
    endpoint: str | None = None
    nth: int = 1
    count: int | None = 1
    seconds: float = 0.0
    status: int = 503
    retry_after: int | None = 1
    id: int = 0
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def __post_init__(self):
        # Entity type names are accepted for their endpoint ("article" -> "articles").
        self.endpoint = contract.ENTITY_ENDPOINTS.get(self.endpoint, self.endpoint)
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.nth < 1:
            raise ValueError("nth counts from 1 (the next matching request)")

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "nth": self.nth,
            "count": self.count,
            "seconds": self.seconds,
            "status": self.status,
            "retry_after": self.retry_after,
            "fired": self.fired,
        }


class SimulatedSite:
    """A WordPress site running the Association App plugin, in memory.

    ``SimulatedSite(records=1000, seed=1, key="k")`` generates ``records`` records over the 7
    entity types (see wpsim.data for the variety and the deliberately bad ones).
    """

    def __init__(
        self,
        records: int = 1000,
        seed: int = 1,
        key: str = "simulated-sync-key-0123456789abcdef",
        *,
        name: str = "Simulated Safety Association",
        clock: SiteClock | None = None,
        rate_limit: int = 0,
        rate_window: float = 60,
        entity_types: tuple[str, ...] | list[str] = contract.ENTITY_TYPES,
        timezone: str = "Europe/Berlin",
        gmt_offset: float = 1,
        plugin_version: str = "1.2.0",
        wordpress_version: str = "6.1.9",
        push: bool = True,
    ) -> None:
        self.key = key
        self.admin_key = key  # guards /__sim/ control routes, survives key rotation
        self.name = name
        self.seed = seed
        self.clock = clock or SiteClock()
        #: At most `rate_limit` sync requests per rolling `rate_window` seconds (0: off). The
        #: plugin's window is 60 s; tests shorten it to see pacing over several windows.
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        #: 429 answers the rate limit gave (a paced client meets none).
        self.rate_limited_count = 0
        self.entity_types = tuple(t for t in contract.ENTITY_TYPES if t in set(entity_types))
        self.timezone = timezone
        self.gmt_offset = gmt_offset
        self.plugin_version = plugin_version
        # Contract 1.1 (inline deletions, §5.6) from plugin 1.1.0; an older version is
        # simulated as it was, ignoring `deleted_since` like any unknown parameter.
        self.inline_deletions = _version(plugin_version) >= (1, 1)
        # Contract 1.2 (§5.7) from plugin 1.2.0: list answers carry the site's clock and the
        # change log's head, and serve the log (`changes_after`) and records by id (`include`).
        self.change_log = _version(plugin_version) >= (1, 2)
        # (seq, entity_type, id, stamp) of every change, as the plugin records them from
        # WordPress's hooks; an entry is served once it is `change_settle` seconds old.
        self._changes: list[tuple[int, str, int, str]] = []
        self._next_seq = 1
        self._pruned_seq = 0
        self.change_settle = contract.CHANGE_SETTLE_SECONDS
        self.wordpress_version = wordpress_version
        # Push (§15): the plugin posts "changes" to subscribed platforms after each change.
        # False simulates a plugin without it (its route answers rest_no_route).
        self.push_supported = push
        self.pusher = Pusher()
        self.base_url = "http://127.0.0.1"
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self._fault_ids = 0
        self.writes: list[dict] = []
        self.request_log: deque = deque(maxlen=2000)
        self.request_count = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests served at once since creation
        self._rate_log: deque = deque()
        self._records: dict[str, dict[int, dict]] = {t: {} for t in contract.ENTITY_TYPES}
        self._order: dict[str, list[tuple[str, int]]] = {t: [] for t in contract.ENTITY_TYPES}
        self._bad: dict[str, set[int]] = {t: set() for t in contract.ENTITY_TYPES}
        self._json: dict[tuple[str, int], bytes] = {}
        self._deletions: list[tuple[str, int, str]] = []
        self._gen = data.Generator(seed)
        self._rng = random.Random(seed * 7919 + 1)
        self._next_post_id = 10
        self._next_user_id = 2
        self._generate(records)

    # --- generation ----------------------------------------------------------------

    def _generate(self, records: int) -> None:
        counts = data.type_counts(records)
        rng = random.Random(self.seed)
        post_types = [t for t in contract.ENTITY_TYPES if t != "member" for _ in range(counts[t])]
        rng.shuffle(post_types)
        plan = [("member", None)] * counts["member"] + [(t, None) for t in post_types]
        start = data.ANCHOR - timedelta(seconds=data.SPAN_SECONDS)
        previous = None
        for entity_type, _ in plan:
            if previous is not None and rng.random() < 0.03:
                modified = previous  # same-second ties: keyset paging must use the id
            else:
                modified = start + timedelta(seconds=rng.randint(0, data.SPAN_SECONDS))
            previous = modified
            record_id = self._new_id(entity_type, gaps=rng)
            record, bad = self._gen.make(entity_type, record_id, modified)
            self._insert(entity_type, record, bad, keep_sorted=False)
        for order in self._order.values():
            order.sort()

    def _new_id(self, entity_type: str, gaps: random.Random | None = None) -> int:
        """Posts and users are separate number spaces; gaps are posts deleted long ago."""
        if entity_type == "member":
            rid = self._next_user_id
            self._next_user_id += 1
            return rid
        if gaps is not None and gaps.random() < 0.02:
            gone = self._next_post_id
            self._next_post_id += 1
            kind = gaps.choice([t for t in contract.ENTITY_TYPES if t != "member"])
            when = data.ANCHOR - timedelta(seconds=gaps.randint(0, 170 * 24 * 3600))
            bisect.insort(self._deletions, (data.gmt(when), gone, kind))
        rid = self._next_post_id
        self._next_post_id += 1
        return rid

    def _insert(self, entity_type: str, record: dict, bad: bool, keep_sorted: bool = True) -> None:
        rid = record["id"]
        self._records[entity_type][rid] = record
        if keep_sorted:
            bisect.insort(self._order[entity_type], (record["modified_gmt"], rid))
        else:
            self._order[entity_type].append((record["modified_gmt"], rid))
        if bad:
            self._bad[entity_type].add(rid)

    def _remove_from_order(self, entity_type: str, record: dict) -> None:
        order = self._order[entity_type]
        key = (record["modified_gmt"], record["id"])
        index = bisect.bisect_left(order, key)
        if index < len(order) and order[index] == key:
            del order[index]

    def _recheck(self, entity_type: str, record: dict) -> None:
        """Keep bad_ids() true to the data after an edit repaired or broke the bad field."""
        if data.is_broken(entity_type, record):
            self._bad[entity_type].add(record["id"])
        else:
            self._bad[entity_type].discard(record["id"])

    def _touch(self, entity_type: str, record: dict, *, modified: str | None = None) -> None:
        """Bump modified_gmt to the site's clock (or `modified`) and re-sort; log the change."""
        self._remove_from_order(entity_type, record)
        record["modified_gmt"] = modified or data.gmt(self.clock.now())
        bisect.insort(self._order[entity_type], (record["modified_gmt"], record["id"]))
        self._changed(entity_type, record)

    def _changed(self, entity_type: str, record: dict) -> None:
        """A change the plugin's hooks see: the cached JSON goes, the change log grows."""
        self._json.pop((entity_type, record["id"]), None)
        self._changes.append(
            (self._next_seq, entity_type, record["id"], data.gmt(self.clock.now()))
        )
        self._next_seq += 1
        self.pusher.changed()

    # --- reading -------------------------------------------------------------------

    def set_base_url(self, url: str) -> None:
        with self.lock:
            self.base_url = url.rstrip("/")
            self._json.clear()

    def record_json(self, entity_type: str, record_id: int) -> bytes:
        """The record as served (cached UTF-8 JSON with the site URL filled in)."""
        cache_key = (entity_type, record_id)
        cached = self._json.get(cache_key)
        if cached is None:
            with self.lock:  # the change thread may be editing this very record
                record = self._records[entity_type][record_id]
                text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                cached = text.replace(data.SITE, self.base_url).encode("utf-8")
                self._json[cache_key] = cached
        return cached

    def record(self, entity_type: str, record_id: int) -> dict:
        """The record as a client would receive it (a copy)."""
        with self.lock:
            return json.loads(self.record_json(entity_type, record_id))

    def has(self, entity_type: str, record_id: int) -> bool:
        return record_id in self._records[entity_type]

    def ids(self, entity_type: str) -> list[int]:
        """Ids in the order the list endpoint serves them ((modified_gmt, id) ascending)."""
        with self.lock:
            return [rid for _, rid in self._order[entity_type]]

    def count(self, entity_type: str | None = None) -> int:
        with self.lock:
            if entity_type is None:
                return sum(len(self._records[t]) for t in self.entity_types)
            return len(self._records[entity_type])

    def bad_ids(self, entity_type: str) -> set[int]:
        """Ids of the deliberately bad records currently served (see wpsim.data.BAD_RULES)."""
        with self.lock:
            return set(self._bad[entity_type])

    def bad_count(self, entity_type: str) -> int:
        with self.lock:
            return len(self._bad[entity_type])

    def duplicate_slug_ids(self) -> set[int]:
        """Articles generated with another article's slug on purpose (FAILED on the platform)."""
        with self.lock:
            return set(self._gen.duplicate_slug_ids)

    @staticmethod
    def bad_reason(entity_type: str) -> str:
        return data.BAD_RULES[entity_type]

    def high_water_mark(self, entity_type: str) -> str | None:
        with self.lock:
            order = self._order[entity_type]
            return order[-1][0] if order else None

    def deletions(self) -> list[dict]:
        with self.lock:
            return [
                {"entity_type": kind, "id": rid, "deleted_gmt": when}
                for when, rid, kind in self._deletions
            ]

    def query(
        self,
        entity_type: str,
        *,
        modified_after: str | None = None,
        after_id: int | None = None,
        page: int = 1,
        per_page: int = 100,
        include: list[int] | None = None,
    ) -> tuple[list[bytes], int]:
        """(JSON of the page's records, total matching) per §5.1/§5.4; `include` keeps only
        those ids (§5.7)."""
        with self.lock:
            order = self._order[entity_type]
            if include is not None:
                wanted = set(include)
                order = [key for key in order if key[1] in wanted]
            start = 0
            if modified_after is not None:
                # Exclusive: (t, after_id) itself and everything before it are excluded.
                bound = after_id if after_id is not None else float("inf")
                start = bisect.bisect_right(order, (modified_after, bound))
            total = len(order) - start
            offset = start + (page - 1) * per_page
            keys = order[offset : offset + per_page] if offset < len(order) else []
            return [self.record_json(entity_type, rid) for _, rid in keys], total

    def query_deletions(
        self,
        *,
        since: str | None = None,
        page: int = 1,
        per_page: int = 100,
        entity_type: str | None = None,
    ) -> tuple[list[dict], int]:
        """(entries of the page, total matching) per §8.2; ``entity_type`` narrows the feed
        to one type, as a list answer's inline ``deleted`` does (§5.6)."""
        with self.lock:
            kinds = self.entity_types if entity_type is None else (entity_type,)
            served = [d for d in self._deletions if d[2] in kinds]
            start = bisect.bisect_right(served, (since, float("inf"), "~")) if since else 0
            total = len(served) - start
            offset = start + (page - 1) * per_page
            chunk = served[offset : offset + per_page]
            items = [{"entity_type": k, "id": rid, "deleted_gmt": w} for w, rid, k in chunk]
            return items, total

    # --- changes -------------------------------------------------------------------

    def _pick(self, entity_type: str, n: int, ids) -> list[int]:
        existing = self._records[entity_type]
        if ids is not None:
            missing = [rid for rid in ids if rid not in existing]
            if missing:
                raise KeyError(f"no {entity_type} with id(s) {missing}")
            return list(ids)
        pool = sorted(existing)
        return self._rng.sample(pool, min(n, len(pool)))

    def edit(self, entity_type: str, n: int = 1, *, ids=None) -> list[int]:
        """Edit ``n`` random records (or ``ids``): a visible field changes, modified_gmt bumps."""
        with self.lock:
            chosen = self._pick(entity_type, n, ids)
            stamp = data.gmt(self.clock.now())
            for rid in chosen:
                record = self._records[entity_type][rid]
                for key in ("title", "name", "display_name"):
                    if isinstance(record.get(key), str):
                        base = record[key].split(" (edited ")[0]
                        record[key] = f"{base} (edited {stamp})"
                        break
                self._touch(entity_type, record)
            return chosen

    def add(self, entity_type: str, n: int = 1) -> list[int]:
        """Publish ``n`` new records (same generator, same 2 % bad ratio)."""
        with self.lock:
            added = []
            for _ in range(n):
                rid = self._new_id(entity_type)
                record, bad = self._gen.make(entity_type, rid, self.clock.now())
                record["modified_gmt"] = data.gmt(self.clock.now())
                if "status" in record:
                    record["status"] = "publish"
                self._insert(entity_type, record, bad)
                self._changed(entity_type, record)
                added.append(rid)
            return added

    def schedule(self, entity_type: str, publish_at: datetime) -> int:
        """A new post scheduled for `publish_at`: WordPress stores the publish date as its
        modification date too (wp_insert_post), so its modified_gmt is in the future."""
        with self.lock:
            rid = self._new_id(entity_type)
            record, bad = self._gen.make(entity_type, rid, self.clock.now())
            record.update(status="future", modified_gmt=data.gmt(publish_at))
            record["date_gmt"] = data.gmt(publish_at)
            self._insert(entity_type, record, bad)
            self._changed(entity_type, record)
            return rid

    def cron_publish(self, entity_type: str, record_id: int) -> dict:
        """WordPress's cron publishing a scheduled post (wp_publish_post): the status changes,
        modified_gmt does not; only the plugin's change log sees it."""
        with self.lock:
            record = self._records[entity_type][record_id]
            record["status"] = "publish"
            self._changed(entity_type, record)
            return self.record(entity_type, record_id)

    def change_quietly(self, entity_type: str, record_id: int, **fields) -> dict:
        """A change that does not bump modified_gmt: post meta or terms set outside a post
        save (update_post_meta, wp_set_object_terms), a renamed term, a replaced image, a role
        change. The plugin's hooks log it."""
        with self.lock:
            record = self._records[entity_type][record_id]
            record.update(fields)
            self._recheck(entity_type, record)
            self._changed(entity_type, record)
            return self.record(entity_type, record_id)

    def prune_changes(self, through_seq: int) -> None:
        """Retention deleted the change log's entries up to this number (a gap for a reader
        positioned before it)."""
        with self.lock:
            self._changes = [c for c in self._changes if c[0] > through_seq]
            self._pruned_seq = max(self._pruned_seq, through_seq)

    def restart_change_log(self) -> None:
        """The change log's table recreated empty (a restored backup): numbers start over."""
        with self.lock:
            self._changes, self._next_seq, self._pruned_seq = [], 1, 0

    def change_head(self) -> int:
        """The newest settled entry's number (§5.7)."""
        with self.lock:
            settled = data.gmt(self.clock.now() - timedelta(seconds=self.change_settle))
            for seq, _, _, stamp in reversed(self._changes):
                if stamp <= settled:
                    return max(seq, self._pruned_seq)
            return self._pruned_seq

    def changes_after(self, entity_type: str, after: int, head: int) -> tuple[list[int], int, bool]:
        """(ids, next, more) of one type's settled entries after `after`, as the plugin serves
        them: at most 100 entries, ids in order of their first entry."""
        with self.lock:
            cap = contract.MAX_CHANGED_IDS
            start = bisect.bisect_right(self._changes, (after, "~", 0, "~"))
            rows = [c for c in self._changes[start:] if c[0] <= head and c[1] == entity_type]
            more = len(rows) > cap
            rows = rows[:cap]
            ids = list(dict.fromkeys(rid for _, _, rid, _ in rows))
            return ids, (rows[-1][0] if more else head), more

    @property
    def pruned_seq(self) -> int:
        return self._pruned_seq

    def delete(self, entity_type: str, n: int = 1, *, ids=None) -> list[int]:
        """Delete ``n`` random records (or ``ids``); each gets a deletions-feed entry."""
        with self.lock:
            chosen = self._pick(entity_type, n, ids)
            stamp = data.gmt(self.clock.now())
            for rid in chosen:
                record = self._records[entity_type].pop(rid)
                self._remove_from_order(entity_type, record)
                self._bad[entity_type].discard(rid)
                self._json.pop((entity_type, rid), None)
                bisect.insort(self._deletions, (stamp, rid, entity_type))
            return chosen

    def update(self, entity_type: str, record_id: int, **fields) -> dict:
        """Change fields as an editor in WordPress would (no PUT validation); bumps modified_gmt."""
        with self.lock:
            record = self._records[entity_type][record_id]
            record.update(fields)
            self._recheck(entity_type, record)
            self._touch(entity_type, record)
            return self.record(entity_type, record_id)

    def tamper(self, entity_type: str, record_id: int, **fields) -> dict:
        """Change fields behind the plugin's back, as a direct SQL UPDATE of the post would:
        nothing an incremental sync reads moves (no modified_gmt bump, no change recorded),
        so only a full walk, such as the platform's reconciliation, can see it (drift)."""
        with self.lock:
            record = self._records[entity_type][record_id]
            record.update(fields)
            self._recheck(entity_type, record)
            self._json.pop((entity_type, record_id), None)
            return self.record(entity_type, record_id)

    def tamper_delete(self, entity_type: str, record_id: int) -> None:
        """Delete a record behind the plugin's back (a direct SQL DELETE): no deletions-feed
        entry, so only a full walk notices it is gone."""
        with self.lock:
            record = self._records[entity_type].pop(record_id)
            self._remove_from_order(entity_type, record)
            self._bad[entity_type].discard(record_id)
            self._json.pop((entity_type, record_id), None)

    def random_changes(self, edits: int = 3, adds: int = 1, deletes: int = 1) -> dict:
        """A burst of activity on random entity types (``--change-every``)."""
        done = {"edited": [], "added": [], "deleted": []}
        with self.lock:
            for _ in range(edits):
                t = self._rng.choice(self.entity_types)
                done["edited"] += [(t, i) for i in self.edit(t, 1)]
            for _ in range(adds):
                t = self._rng.choice(self.entity_types)
                done["added"] += [(t, i) for i in self.add(t, 1)]
            for _ in range(deletes):
                t = self._rng.choice(self.entity_types)
                if self._records[t]:
                    done["deleted"] += [(t, i) for i in self.delete(t, 1)]
        return done

    def write(self, entity_type: str, record_id: int, body: dict) -> tuple[int, dict]:
        """PUT {endpoint}/{id} per §7: returns (HTTP status, JSON body)."""
        with self.lock:
            record = self._records[entity_type].get(record_id)
            # §2.3: a malformed body is a 400 even for an unknown id; then 404; then 409.
            errors, changes = apply_update(entity_type, record, body)
            if errors:
                return 400, invalid_params(errors)
            if record is None:
                return 404, self.not_found(entity_type, record_id)
            since = body.get(contract.IF_UNMODIFIED_SINCE_KEY)
            if since is not None and record["modified_gmt"] > since.rstrip("Z"):
                return 409, {
                    "code": contract.ERROR_CONFLICT,
                    "message": f"The record was modified in WordPress after {since}.",
                    "data": {
                        "status": 409,
                        "modified_gmt": record["modified_gmt"],
                        "current": self.record(entity_type, record_id),
                    },
                }
            for key, value in changes.items():
                if key == "address":
                    record["address"] = {**record["address"], **value}
                else:
                    record[key] = value
            self._recheck(entity_type, record)
            self._touch(entity_type, record)
            self.writes.append(
                {"entity_type": entity_type, "id": record_id, "fields": dict(changes), "body": body}
            )
            return 200, self.record(entity_type, record_id)

    @staticmethod
    def not_found(entity_type: str, record_id: int) -> dict:
        return {
            "code": contract.ERROR_NOT_FOUND,
            "message": f"No {entity_type} with id {record_id}.",
            "data": {"status": 404, "entity_type": entity_type, "id": record_id},
        }

    # --- keys, rate limit, faults ----------------------------------------------------

    def rotate_key(self, new_key: str | None = None) -> str:
        """Regenerate the sync key: the old one gets 401 from now on."""
        with self.lock:
            self.key = new_key or secrets.token_urlsafe(32)
            return self.key

    def check_rate(self) -> int | None:
        """None if allowed, else the Retry-After seconds (rolling window)."""
        return self.take_rate()[0]

    def take_rate(self) -> tuple[int | None, list[tuple[str, str]]]:
        """(Retry-After seconds or None if allowed, the rate limit headers to announce), as
        the plugin does (contract §12): X-RateLimit-Limit / -Remaining / -Reset (seconds
        until the window's oldest request leaves it) and RateLimit-Policy; none when off."""
        if not self.rate_limit:
            return None, []
        now = time.monotonic()
        with self.lock:
            window = self._rate_log
            span = self.rate_window
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= self.rate_limit:
                self.rate_limited_count += 1
                wait = max(1, int(window[0] + span - now) + 1)
                return wait, self._rate_headers(0, wait)
            window.append(now)
            # window[0] - now first: (now + span) - now can round to span + 1e-12 and ceil to 61.
            reset = min(math.ceil(span), max(0, math.ceil(window[0] - now + span)))
            return None, self._rate_headers(self.rate_limit - len(window), reset)

    def _rate_headers(self, remaining: int, reset: int) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(self.rate_limit)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset)),
            ("RateLimit-Policy", f"{self.rate_limit};w={self.rate_window:g}"),
        ]

    def inject(self, kind: str, endpoint: str | None = None, **options) -> Fault:
        """Add a fault (see Fault and FAULT_KINDS). ``every=True`` means count=None."""
        if options.pop("every", False):
            options["count"] = None
        if kind in STATE_FAULTS:
            options["count"] = None
        with self.lock:
            self._fault_ids += 1
            fault = Fault(kind=kind, endpoint=endpoint, id=self._fault_ids, **options)
            self.faults.append(fault)
            return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def state_fault(self, kind: str) -> bool:
        """Is a site-state fault (plugin_missing, not_wordpress...) active right now?"""
        with self.lock:
            return any(f.kind == kind and not f.exhausted for f in self.faults)

    def take_fault(self, scope: str, endpoint: str | None) -> Fault | None:
        """The fault that applies to this request, counting it against every matching fault.

        ``scope`` is "sync", "rest", "uploads" or "other"; ``endpoint`` the sync endpoint name.
        """
        chosen = None
        with self.lock:
            for fault in self.faults:
                if fault.exhausted or fault.kind in STATE_FAULTS:
                    continue
                if fault.endpoint is None:
                    if scope != "sync":
                        continue
                elif fault.endpoint == "wp-json":
                    if scope != "rest":
                        continue
                elif fault.endpoint == "uploads":
                    if scope != "uploads":
                        continue
                elif scope != "sync" or fault.endpoint != endpoint:
                    continue
                fault.seen += 1
                if fault.seen >= fault.nth and chosen is None:
                    fault.fired += 1
                    chosen = fault
            self.faults = [f for f in self.faults if not f.exhausted]
        return chosen

    def request_started(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def request_ended(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def log_request(self, method: str, path: str, status: int, headers: dict) -> None:
        with self.lock:
            self.request_count += 1
            self.request_log.append(
                {"method": method, "path": path, "status": status, "headers": headers}
            )

    # --- plugin info -----------------------------------------------------------------

    def ping(self) -> dict:
        return {
            "plugin": "association-app",
            "plugin_version": self.plugin_version,
            "contract_version": contract.CONTRACT_VERSION,
            "site_name": self.name,
            "site_url": self.base_url,
            "home_url": self.base_url,
            "timezone": self.timezone,
            "gmt_offset": self.gmt_offset,
            "wordpress_version": self.wordpress_version,
            "entity_types": list(self.entity_types),
            "max_per_page": contract.MAX_PER_PAGE,
            "deletions_retention_days": contract.MIN_DELETIONS_RETENTION_DAYS,
            "server_time_gmt": data.gmt(self.clock.now()),
            **({"push": True} if self.push_supported else {}),
            "rate_limit": {"requests": self.rate_limit, "window_seconds": self.rate_window},
        }

    def state(self) -> dict:
        with self.lock:
            return {
                "counts": {t: len(self._records[t]) for t in self.entity_types},
                "bad_counts": {t: len(self._bad[t]) for t in self.entity_types},
                "deletions": len(self._deletions),
                "request_count": self.request_count,
                "writes": len(self.writes),
                "faults": [f.as_dict() for f in self.faults],
                "server_time_gmt": data.gmt(self.clock.now()),
            }


def invalid_params(errors: dict[str, tuple[str, str]]) -> dict:
    """WordPress core's rest_invalid_param body: errors = {param: (detail code, message)}."""
    return {
        "code": contract.ERROR_INVALID_PARAM,
        "message": "Invalid parameter(s): " + ", ".join(errors),
        "data": {
            "status": 400,
            "params": {k: msg for k, (_, msg) in errors.items()},
            "details": {
                k: {"code": code, "message": msg, "data": None} for k, (code, msg) in errors.items()
            },
        },
    }
