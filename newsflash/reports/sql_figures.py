"""An edition's figures counted by SQLite, from the event store's rollup: the usual way.

`figures.compute` counts rows handed to Python: every recipient's outcome wrapped in a tuple,
and each of 50k clicks of a big edition judged, grouped and counted one by one. Here SQLite
does what it does well where the rows lie (`recipient_facts`, `event_facts`,
state/events.sqlite): the clicks are judged (scanner rules), grouped per link, item, hour,
rule and partner, and the bounces per type, and a few hundred rows come back (one per partner
who clicked). What SQL cannot know stays in Python: which recipients the ledger says were
sent to and each one's organisation (as the send froze it: `sources.organisations_of`), which
link belongs to which item, which user agents are scanners. The figures are made from these
counts by `assemble`, as `figures.compute` makes them; tests/test_report_sql.py holds the two
to the same figures.

Measured, and so left out: joining the ledger in SQL (ATTACH) cost a lookup of each of 100k
recipients' rows in ledger.sqlite, 0.2-0.4 s per query that joined it, so the accepted
recipients are read once, as the other way reads them; and grouping the recipients by their
flags in SQL sorted 100k rows, which cost more than reading each one's flags and events
beside the id that tells a stranger (another send's, a hand-made test). The few strangers go
into a temporary table that every later query leaves out.

Only temporary tables are written (SQLite's own temporary store, never a state file), and
everything is read in one snapshot of the event store, so the clicks agree with the rollup.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from itertools import compress, filterfalse, repeat
from operator import and_, itemgetter

from newsflash.config import Config
from newsflash.reports.assemble import (
    NO_ITEM,
    NO_ORGANISATION,
    count_of,
    delivery_of,
    group_rows,
    hour_buckets,
    item_rows,
    link_rows,
    notes_of,
    rate,
    sweep_needs,
)
from newsflash.reports.figures import SCANNER_AGENTS, SWEEP_SECONDS
from newsflash.reports.rows import (
    EditionReport,
    Engagement,
    GroupClicks,
    Scanners,
    Trust,
)
from newsflash.reports.sources import Known, accepted, organisations_of, read_only
from newsflash.state.event_rollup import (
    BOUNCED,
    HUMAN_OPENED,
    OPENED,
    SPAM,
    UNSUBSCRIBED,
    is_filled,
)
from newsflash.subscriber_list import recipient_id

__all__ = ["counted_in_sqlite"]

_FIRST, _SECOND, _THIRD = itemgetter(0), itemgetter(1), itemgetter(2)

# One statement each: executescript would commit, and end the snapshot read so far.
_TEMP = (
    "CREATE TEMP TABLE strangers (rid TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TEMP TABLE clicks (rid TEXT NOT NULL, at INTEGER, url TEXT NOT NULL, useragent TEXT)",
    "CREATE TEMP TABLE scanner_agents (useragent TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TEMP TABLE link_items (url TEXT PRIMARY KEY, item TEXT NOT NULL) WITHOUT ROWID",
)
_MINE = "edition_id = :ed AND recipient_id NOT IN strangers"
# Each recipient's flags and events are read once, beside their id (which tells a stranger):
# 0.08-0.11 s for 100k, where a GROUP BY by flags (it sorts them) took ~0.1 s on top of reading
# the ids. The bounce types are grouped in SQL, over the bounced only.
_OUTCOMES = "SELECT recipient_id, flags, events FROM recipient_facts WHERE edition_id = :ed"
_BOUNCES = (
    "SELECT bounce_type, bounce_status, count(*) FROM recipient_facts "
    f"WHERE {_MINE} AND flags & :bounced GROUP BY 1, 2"
)
# A click's url as the figures key it (no url: ''); an event without a recipient id is keyed
# by its address, hashed in Python as the rollup hashed it.
_CLICKS_BY_ID = (
    "INSERT INTO clicks SELECT recipient_id, happened_at, coalesce(url, ''), useragent "
    f"FROM event_facts WHERE {_MINE} AND event = 'click' AND recipient_id != '' "
    "ORDER BY recipient_id"
)
_CLICKS_BY_ADDRESS = (
    "SELECT email, happened_at, coalesce(url, ''), useragent FROM event_facts "
    "WHERE edition_id = :ed AND event = 'click' AND recipient_id = ''"
)
_WINDOW = "d IS NOT NULL AND at IS NOT NULL AND at - d BETWEEN 0 AND :sweep_seconds"
# Each click with the rule that marks it a scanner's (NULL: a partner's), in the order
# figures.scanner_rule tries them; `d` is the recipient's first delivery.
_JUDGED = f"""
CREATE TEMP TABLE judged AS
WITH timed AS (
    SELECT c.rid, c.at, c.url, c.useragent, f.delivered_at AS d FROM clicks c
    LEFT JOIN recipient_facts f ON f.edition_id = :ed AND f.recipient_id = c.rid
), swept AS (
    SELECT rid FROM timed WHERE {_WINDOW} GROUP BY rid HAVING count(DISTINCT url) >= :needed
)
SELECT rid, at, url, CASE
    WHEN useragent IN scanner_agents THEN 'user agent'
    WHEN at IS NOT NULL AND ((d IS NOT NULL AND at < d) OR (:started IS NOT NULL AND at < :started))
        THEN 'before delivery'
    WHEN {_WINDOW} AND rid IN swept THEN 'link sweep'
END AS rule FROM timed
"""
_RULES = "SELECT rule, count(*) FROM judged WHERE rule IS NOT NULL GROUP BY 1"
_FLAGGED = "SELECT count(DISTINCT rid) FROM judged WHERE rule IS NOT NULL"
_PER_LINK = "SELECT url, count(*), count(DISTINCT rid) FROM judged WHERE rule IS NULL GROUP BY 1"
_PER_ITEM = (
    "SELECT coalesce(l.item, :no_item), count(*), count(DISTINCT j.rid) FROM judged j "
    "LEFT JOIN link_items l ON l.url = j.url WHERE j.rule IS NULL GROUP BY 1"
)
_PER_CLICKER = "SELECT rid, count(*) FROM judged WHERE rule IS NULL GROUP BY 1"
# `at >= :started`: a partner's click is never before the send, and SQL's integer division
# truncates where Python's floors, so no negative hour may reach it.
_PER_HOUR = (
    "SELECT (at - :started) / 3600, count(*) FROM judged "
    "WHERE rule IS NULL AND at >= :started GROUP BY 1"
)


def counted_in_sqlite(config: Config, known: Known) -> EditionReport | None:
    """The report of the edition `known` describes, or None when the event store is missing
    or not rolled up yet (then `figures.compute` counts its events one by one)."""
    path = config.state_dir / "events.sqlite"
    if not path.exists():
        return None
    with read_only(path) as conn:
        conn.execute("PRAGMA temp_store = MEMORY")  # the temporary tables: no scratch file
        conn.execute("BEGIN")  # one snapshot: the clicks agree with the rollup
        if not is_filled(conn):
            return None
        rows = accepted(known.ledger_path, known.edition_id)
        found, notes = organisations_of(config, rows)
        sent = dict(zip(map(_FIRST, rows), map(_SECOND, rows), strict=True))
        groups = dict(zip(sent, found, strict=True))
        return _counted(conn, known, sent, (groups, notes))


def _counted(
    conn: sqlite3.Connection,
    known: Known,
    sent: Mapping[str, str],
    organisations: tuple[Mapping[str, str], list[str]],
) -> EditionReport:
    args: dict[str, object] = {"ed": known.edition_id}
    for table in _TEMP:
        conn.execute(table)
    outcomes = conn.execute(_OUTCOMES, args).fetchall()
    strangers = list(filterfalse(sent.__contains__, map(_FIRST, outcomes)))
    conn.executemany("INSERT INTO strangers VALUES (?)", zip(strangers))
    mine = [o for o in outcomes if o[0] in sent] if strangers else outcomes
    flags = Counter(map(_SECOND, mine))
    events = sum(map(_THIRD, outcomes))
    unmatched = events - sum(map(_THIRD, mine)) if strangers else 0
    bounces = {(t, s): n for t, s, n in conn.execute(_BOUNCES, {**args, "bounced": BOUNCED})}
    delivery = delivery_of(len(sent), flags, bounces)
    trust = _trust(mine, flags, known.one_click & sent.keys(), delivery.delivered)
    _judge(conn, known, sent)
    engagement = _engagement(conn, known, sent, organisations[0], flags, delivery.delivered)
    by_rule = dict(conn.execute(_RULES))
    (flagged,) = conn.execute(_FLAGGED).fetchone()
    scanners = Scanners(sum(by_rule.values()), flagged, by_rule)
    notes = notes_of((*organisations[1], *known.notes), events, unmatched)
    return EditionReport(
        known.edition_id, events, unmatched, delivery, trust, engagement, scanners, notes
    )


def _trust(
    mine: Sequence[tuple[str, int, int]],
    flags: Mapping[int, int],
    one_click: AbstractSet[str],
    delivered: int,
) -> Trust:
    """Unsubscribes join SendGrid's (list and group) with newsflash's own one-click ones."""
    spam = count_of(flags, SPAM)
    theirs = compress(map(_FIRST, mine), map(and_, map(_SECOND, mine), repeat(UNSUBSCRIBED)))
    unsub = len(one_click | set(theirs))
    return Trust(spam, rate(spam, delivered), unsub, rate(unsub, delivered))


def _judge(conn: sqlite3.Connection, known: Known, sent: Mapping[str, str]) -> None:
    """Fill `judged`: every click of a recipient sent to, with its scanner rule or none."""
    args = {"ed": known.edition_id}
    conn.execute(_CLICKS_BY_ID, args)
    by_address = (
        (rid, at, url, agent)
        for email, at, url, agent in conn.execute(_CLICKS_BY_ADDRESS, args)
        if (rid := recipient_id(email)) in sent
    )
    conn.executemany("INSERT INTO clicks VALUES (?, ?, ?, ?)", list(by_address))
    agents = conn.execute("SELECT DISTINCT useragent FROM clicks WHERE useragent != ''")
    scanners = [(a,) for (a,) in agents if SCANNER_AGENTS.search(a)]
    conn.executemany("INSERT INTO scanner_agents VALUES (?)", scanners)
    conn.executemany("INSERT INTO link_items VALUES (?, ?)", known.link_items.items())
    needed = sweep_needs(known.link_items)
    conn.execute(
        _JUDGED,
        {**args, "needed": needed, "started": known.started_at, "sweep_seconds": SWEEP_SECONDS},
    )


def _engagement(
    conn: sqlite3.Connection,
    known: Known,
    sent: Mapping[str, str],
    organisation: Mapping[str, str],
    flags: Mapping[int, int],
    delivered: int,
) -> Engagement:
    """The partners' clicks (judged) and opens (flags); `organisation`: of each id sent to."""
    openers = count_of(flags, OPENED)
    links = link_rows(conn.execute(_PER_LINK), known.link_items)
    items = {key: (n, who) for key, n, who in conn.execute(_PER_ITEM, {"no_item": NO_ITEM})}
    per_clicker = conn.execute(_PER_CLICKER).fetchall()
    clicks = sum(n for _, n in per_clicker)
    organisations, domains = _groups(sent, organisation, per_clicker)
    started = known.started_at
    per_hour = conn.execute(_PER_HOUR, {"started": started}) if started is not None else ()
    hours, later = hour_buckets(per_hour)
    return Engagement(
        unique_opens=openers,
        machine_opens=openers - count_of(flags, HUMAN_OPENED),
        open_rate=rate(openers, delivered),
        unique_clicks=len(per_clicker),
        clicks=clicks,
        click_rate=rate(len(per_clicker), delivered),
        items=item_rows(
            {k: n for k, (n, _) in items.items()},
            {k: who for k, (_, who) in items.items()},
            known.item_titles,
            links,
        ),
        links=tuple(links),
        organisations=organisations,
        domains=domains,
        hours=hours,
        later_clicks=later,
    )


def _groups(
    sent: Mapping[str, str],
    organisation: Mapping[str, str],
    per_clicker: Iterable[tuple[str, int]],
) -> tuple[tuple[GroupClicks, ...], tuple[GroupClicks, ...]]:
    """Per organisation and per email domain: every recipient sent to is counted in its group
    (100k addresses, in C-level maps), each partner who clicked once with their clicks."""
    emails = list(sent.values())
    org_members = Counter(organisation.values())
    domain_members = Counter(map(itemgetter(2), map(str.rpartition, emails, repeat("@"))))
    org_clickers: Counter[str] = Counter()
    org_clicks: Counter[str] = Counter()
    domain_clickers: Counter[str] = Counter()
    domain_clicks: Counter[str] = Counter()
    for rid, n in per_clicker:
        email = sent[rid]
        org = organisation[rid] or NO_ORGANISATION
        domain = email.rpartition("@")[2] or NO_ORGANISATION
        org_clickers[org] += 1
        org_clicks[org] += n
        domain_clickers[domain] += 1
        domain_clicks[domain] += n
    return (
        group_rows(org_members, org_clickers, org_clicks),
        group_rows(domain_members, domain_clickers, domain_clicks),
    )
