"""Schemathesis hooks for Haven, loaded through SCHEMATHESIS_HOOKS by tests/api/fuzz_api.rs.

Rules of the API that depend on the world rather than on the request cannot be stated by any
schema. For schema-valid (positive) cases only, `map_case` keeps drawn values on the right side of
them; it never touches a negative case, and only ever replaces a value of the documented shape by
another value of that shape, so no case changes from valid to invalid or back:
- path ids drawn as UUIDs name the test world's records (HAVEN_IDS), and report ids, which are
  words, are catalogue ids two times in three, so operations reach real records; in the stateful
  phase an id taken from an earlier step's response is left as it is, since it names a record the
  caller made (the world's may be hidden from that caller);
- ids in a body name records that exist (a referral's victim and receiving organisation, a case's
  caseworkers and a task's assignee: the one caseworker who works the world's case);
- a webhook's `url` becomes one URL of the documented shape that parses;
- a language (`primary_language`, `secondary_language`: three lower-case letters, of which only
  the assigned ISO 639-3 codes are languages) becomes one of a few real ones;
- dates of events (`identified_on`, `provided_on`, `date_of_birth`, a goal's `actual_end_on`) are
  not in the future (UTC), nor is a referral outside Haven's `referred_on`;
- a report window runs forwards (`from` not after `to`) and spans at most 118 months (40 quarters);
- `If-Match` is `*` two times in three, so patches get past the precondition and their bodies are
  judged; the rest keep the drawn tag and meet 412.

`filter_failure` accepts two refusals of schema-valid requests that depend on stored state:
`/me/password` answering 422 about the current password (the generator cannot know it) or the
new one (too guessable, by zxcvbn); and `POST /referrals` answering 422 on `victim_id` when the
victim's case file, which a caseworker's patches may have changed, records no consent to services.
Any other refusal there still fails.

`no_identity_marker`: no response to a caller who is not a caseworker (HAVEN_ROLE) may contain
any of the identity markers the world's victim carries (HAVEN_MARKERS).
"""
import datetime
import json
import os
import re

import schemathesis

IDS = json.loads(os.environ.get("HAVEN_IDS", "{}"))
ROLE = os.environ.get("HAVEN_ROLE", "")
MARKERS = [m.lower() for m in json.loads(os.environ.get("HAVEN_MARKERS", "[]"))]

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
PATH_IDS = (("/api/v1/victims/", "victim"), ("/api/v1/referrals/", "referral"), ("/api/v1/users/", "user"),
            ("/api/v1/tasks/", "task"), ("/api/v1/support-plan-goals/", "goal"), ("/api/v1/transfers/", "transfer"),
            ("/api/v1/webhooks/", "webhook"), ("/api/v1/external-referrals/", "external_referral"),
            ("/api/v1/organizations/", "organization"), ("/api/v1/access-grants/", "grant"))
BODY_IDS = {"victim_id": "victim", "to_organization_id": "other_organization", "assignee_id": "caseworker"}
PAST_DATED = ("identified_on", "provided_on", "date_of_birth", "actual_end_on", "referred_on")

# A webhook URL of the documented shape that also parses as a URL (the pattern alone admits
# strings no URL parser takes, such as a bracket for a host).
WEBHOOK_URL = "https://receiver.example/haven"
LANGUAGE_FIELDS = ("primary_language", "secondary_language")
LANGUAGES = ("wol", "por", "spa", "fra", "pov", "mnk")

_turn = 0


def _next_turn():
    global _turn
    _turn += 1
    return _turn


def _is_uuid(value):
    return isinstance(value, str) and UUID.fullmatch(value) is not None


def _today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def _past(value):
    """A future `YYYY-MM-DD` becomes the same day and month of 2020 (the 28th for 29 February)."""
    if not (isinstance(value, str) and DATE.fullmatch(value)):
        return value
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError:
        return value
    if day <= _today():
        return value
    return day.replace(year=2020, day=min(day.day, 28)).isoformat()


def _adjust_body(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PAST_DATED:
                node[key] = _past(value)
            elif key == "url" and isinstance(value, str) and value.startswith(("http://", "https://")):
                node[key] = WEBHOOK_URL
            elif key in LANGUAGE_FIELDS and isinstance(value, str) and re.fullmatch(r"[a-z]{3}", value):
                node[key] = LANGUAGES[sum(map(ord, value)) % len(LANGUAGES)]
            elif key in BODY_IDS and _is_uuid(value) and BODY_IDS[key] in IDS:
                node[key] = IDS[BODY_IDS[key]]
            elif key == "caseworkers" and isinstance(value, list) and value and all(map(_is_uuid, value)) \
                    and "caseworker" in IDS:
                node[key] = [IDS["caseworker"]]
            else:
                _adjust_body(value)
    elif isinstance(node, list):
        for item in node:
            _adjust_body(item)


def _adjust_path(path, parameters):
    if "id" not in parameters:
        return
    if path.startswith("/api/v1/reports/{id}"):
        reports = IDS.get("reports", [])
        turn = _next_turn()
        if reports and turn % 3:
            parameters["id"] = reports[turn % len(reports)]
        return
    if not _is_uuid(parameters["id"]):
        return
    for prefix, key in PATH_IDS:
        if path.startswith(prefix) and key in IDS:
            parameters["id"] = IDS[key]


def _month_index(value):
    return int(value[:4]) * 12 + int(value[5:7]) - 1


def _month(index):
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _adjust_window(query):
    """A report window that runs backwards is turned round; one longer than 118 months is cut to
    its last 118. Only months of the documented shape are read, and only changed values written."""
    start, end = query.get("from"), query.get("to")
    for value in (start, end):
        if value is not None and not (isinstance(value, str) and MONTH.fullmatch(value)):
            return
    if start is None and end is None:
        return
    today = _today()
    current = today.year * 12 + today.month - 1
    last = _month_index(end) if end else current
    first = _month_index(start) if start else last - 35
    if first > last:
        first, last = last, first
    first = max(first, last - 117)
    if start is not None and _month(first) != start:
        query["from"] = _month(first)
    if end is not None and _month(last) != end:
        query["to"] = _month(last)
    if end is None and first > current:
        query["to"] = _month(last)


def _from_a_response(case):
    """In the stateful phase a path id comes from the response of an earlier step (a link): it
    names a record the caller made, which the world's ids must not replace."""
    phase = getattr(getattr(getattr(case, "meta", None), "phase", None), "name", None)
    return getattr(phase, "value", phase) == "stateful"


def _is_positive(case):
    meta = getattr(case, "meta", None)
    generation = getattr(meta, "generation", None)
    mode = getattr(generation, "mode", None)
    return mode is not None and mode.is_positive


@schemathesis.hook
def map_case(ctx, case):
    """Applied to the cases of every phase (the coverage phase runs no other map hook)."""
    if not _is_positive(case):
        return case
    path = ctx.operation.path
    if case.path_parameters and not _from_a_response(case):
        _adjust_path(path, case.path_parameters)
    if isinstance(case.query, dict) and path.startswith("/api/v1/reports/"):
        _adjust_window(case.query)
    if isinstance(case.body, (dict, list)):
        _adjust_body(case.body)
    if isinstance(case.headers, dict) and "If-Match" in case.headers and _next_turn() % 3:
        case.headers["If-Match"] = "*"
    return case


STATE_REFUSALS = {
    ("POST", "/api/v1/me/password"): ("current_password", "new_password"),
    ("POST", "/api/v1/referrals"): ("victim_id",),
}


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """Keeps every failure but the state-dependent refusals listed above."""
    fields = STATE_REFUSALS.get((case.operation.method.upper(), case.operation.path))
    if type(failure).__name__ != "RejectedPositiveData" or fields is None:
        return True
    if response.status_code != 422:
        return True
    try:
        errors = json.loads(response.text).get("errors", [])
    except ValueError:
        return True
    return not errors or any(e.get("field") not in fields for e in errors)


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
