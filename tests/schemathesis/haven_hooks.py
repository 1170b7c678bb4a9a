"""Schemathesis hooks for Haven, loaded through SCHEMATHESIS_HOOKS by tests/api/fuzz_api.rs.

- Path ids that the generator drew as valid UUIDs are replaced by the records of the test world
  (HAVEN_IDS), so operations reach real records instead of answering 404 to everything; malformed
  ids are left alone, to exercise the parsers.
- `no_identity_marker`: no response to a caller who is not a caseworker (HAVEN_ROLE) may contain
  any of the identity markers the world's victim carries (HAVEN_MARKERS).
"""
import json
import os
import uuid

import schemathesis

IDS = json.loads(os.environ.get("HAVEN_IDS", "{}"))
ROLE = os.environ.get("HAVEN_ROLE", "")
MARKERS = [m.lower() for m in json.loads(os.environ.get("HAVEN_MARKERS", "[]"))]


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if not path_parameters or "id" not in path_parameters:
        return path_parameters
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
