"""Schemathesis hooks for Haven, loaded through SCHEMATHESIS_HOOKS by tests/api/fuzz_api.rs.

- Path ids that the generator drew as valid UUIDs are replaced by the records of the test world
  (HAVEN_IDS), so operations reach real records instead of answering 404 to everything; malformed
  ids are left alone, to exercise the parsers.
- Three rules of the API depend on the world rather than on the request, so no schema can state
  them; the hooks below keep drawn values on the right side of each, and leave every other value,
  valid or not, as drawn (a value that breaks the schema is never made valid, nor the reverse):
  - dates of events (`identified_on`, `provided_on`, `date_of_birth`) are not in the future;
  - ids in a body name records that exist (a referral's victim and receiving organisation);
  - a report window runs forwards (`from` not after `to`) and lists at most 120 periods.
- `no_identity_marker`: no response to a caller who is not a caseworker (HAVEN_ROLE) may contain
  any of the identity markers the world's victim carries (HAVEN_MARKERS).
"""
import datetime
import json
import os
import re
import uuid

import schemathesis

IDS = json.loads(os.environ.get("HAVEN_IDS", "{}"))
ROLE = os.environ.get("HAVEN_ROLE", "")
MARKERS = [m.lower() for m in json.loads(os.environ.get("HAVEN_MARKERS", "[]"))]


_turn = 0


def map_path_parameters(ctx, path_parameters):
    if not path_parameters or "id" not in path_parameters:
        return path_parameters
    if ctx.operation.path.startswith("/api/v1/reports/{id}"):
        return map_report(ctx, path_parameters)
    try:
        uuid.UUID(str(path_parameters["id"]))
    except ValueError:
        return path_parameters
    path = ctx.operation.path
    for prefix, key in (("/api/v1/victims/", "victim"), ("/api/v1/referrals/", "referral"),
                        ("/api/v1/users/", "user"), ("/api/v1/organizations/", "organization"),
                        ("/api/v1/access-grants/", "grant")):
        if path.startswith(prefix) and key in IDS:
            path_parameters["id"] = IDS[key]
    return path_parameters


PAST_DATED = ("identified_on", "provided_on", "date_of_birth")
BODY_IDS = {"victim_id": "victim", "to_organization_id": "other_organization"}


def _past(value):
    """A future `YYYY-MM-DD` becomes the same day and month of 2020 (the 28th for 29 February)."""
    try:
        day = datetime.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return value
    if day is None or day <= datetime.date.today():
        return value
    return day.replace(year=2020, day=min(day.day, 28)).isoformat()


def _is_uuid(value):
    try:
        uuid.UUID(str(value))
        return isinstance(value, str)
    except ValueError:
        return False


def _adjust(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PAST_DATED:
                node[key] = _past(value)
            elif key in BODY_IDS and _is_uuid(value) and BODY_IDS[key] in IDS:
                node[key] = IDS[BODY_IDS[key]]
            else:
                _adjust(value)
    elif isinstance(node, list):
        for item in node:
            _adjust(item)




MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def _month_index(value):
    return int(value[:4]) * 12 + int(value[5:7]) - 1


def _month(index):
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def map_query(ctx, query):
    """A report window that runs backwards is turned round; one longer than 118 months is cut
    to its last 118. Only months of the documented shape are touched."""
    if not ctx.operation.path.startswith("/api/v1/reports/") or not isinstance(query, dict):
        return query
    today = datetime.date.today()
    current = today.year * 12 + today.month - 1
    start, end = query.get("from"), query.get("to")
    if start is not None and not (isinstance(start, str) and MONTH.match(start)):
        return query
    if end is not None and not (isinstance(end, str) and MONTH.match(end)):
        return query
    last = _month_index(end) if end else current
    first = _month_index(start) if start else last - 35
    if first > last:
        first, last = last, first
    # 118 months overlap at most 40 quarters, however they fall.
    first = max(first, last - 117)
    if start is not None:
        query["from"] = _month(first)
    if end is not None or start is not None and _month_index(query["from"]) > current:
        query["to"] = _month(last)
    return query


@schemathesis.hook
def map_case(ctx, case):
    """Applied to the cases of every phase (the coverage phase runs no other map hook)."""
    if case.path_parameters:
        case.path_parameters = map_path_parameters(ctx, case.path_parameters)
    if case.query:
        case.query = map_query(ctx, case.query)
    if isinstance(case.body, (dict, list)):
        _adjust(case.body)
    return case


def map_report(ctx, path_parameters):
    """Report ids are words, not UUIDs: two drawn ids in three become catalogue ids in turn, so
    reports run (and spend budget) while unknown ids still meet the 404 path."""
    global _turn
    reports = IDS.get("reports", [])
    _turn += 1
    if reports and _turn % 3:
        path_parameters["id"] = reports[_turn % len(reports)]
    return path_parameters


@schemathesis.check
def no_identity_marker(ctx, response, case):
    """Victim identities reach caseworkers only."""
    if ROLE == "caseworker":
        return None
    text = response.text.lower()
    for marker in MARKERS:
        if marker in text:
            raise AssertionError(f"identity marker {marker!r} in a response to a {ROLE or 'anonymous'} caller")
    return None
