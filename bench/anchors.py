"""The anchors: pgbench scripts doing in PostgreSQL the same database work as each API scenario,
with as few round trips as the SQL allows (the best this machine can do for that work)."""
from dataclasses import dataclass
from typing import Callable

# What the API scenario POSTs: a full case file with an identity (sealed before it is stored).
VICTIM_BODY = {
    "trafficking_status": "actual", "identified_on": "2026-10-14", "identified_in": "SEN", "identified_by": "ngo",
    "operation": "OP-BENCH-2026", "gender": "woman", "age_at_identification": 24, "citizenship": ["PER", "BRA"],
    "migrant_status": "irregular_migrant", "country_of_exploitation": "SEN",
    "exploitation_types": ["forced_criminality", "sexual_exploitation"], "labour_sector": "J",
    "recruitment_methods": ["deceptive_job_offer"], "means_of_control": ["debt_bondage", "withholds_documents"],
    "recruiter_relation": "friend_or_acquaintance",
    "route": [{"kind": "recruitment", "country": "PER", "month": "2026-03"}, {"kind": "transit", "country": "BRA"},
              {"kind": "exploitation", "country": "SEN", "month": "2026-05"}],
    "consent": {"services": True, "share_with_referral_partners": True, "anonymised_statistics": True},
    "identity": {"given_names": "Ana María", "family_names": "Quispe Mamani", "date_of_birth": "2002-02-03",
                 "phone": "+51 900 000 000", "document_type": "passport", "document_number": "PE1234567"},
}

@dataclass
class Context:
    psql: Callable[[str], str]
    org: str
    user: str
    host: str
    nids: int


def _pick(ctx):
    return f"\\set n random(1, {ctx.nids})\n"


def _audit(org, user, role, action, target):
    return ("INSERT INTO audit_events (organization_id, actor_user_id, actor_role, action, target_type, target_id, outcome, "
            f"request_id, client_address, details) VALUES ('{org}', '{user}', '{role}', '{action}', 'victim', {target}, "
            "'success', 'bench-request-id-0000', '127.0.0.1', '{}');\n")


def plain_read(ctx):
    """GET as an admin: one primary-key read of the case file."""
    return _pick(ctx) + "SELECT v.* FROM victims v WHERE v.id = (SELECT id FROM bench_ids WHERE n = :n);\n"


def audited_read(ctx):
    """GET as a caseworker: the case file, its sealed identity, and the audit row, in one durable
    transaction."""
    target = "(SELECT id FROM bench_ids WHERE n = :n)"
    return (_pick(ctx) + "BEGIN;\n"
            f"SELECT v.* FROM victims v WHERE v.id = {target};\n"
            f"SELECT i.* FROM victim_identities i WHERE i.victim_id = {target};\n"
            + _audit(ctx.org, ctx.user, "caseworker", "victim.identity_read", target) + "COMMIT;\n")


def insert(ctx):
    """POST: next case number, the case file, its sealed identity and the audit row, in one durable
    transaction. Rows are copies of a seeded victim and its identity with a new id."""
    ctx.psql("DROP TABLE IF EXISTS bench_templates; CREATE TABLE bench_templates AS "
             "SELECT to_jsonb(v) AS victim, to_jsonb(i) AS identity FROM victims v JOIN victim_identities i ON i.victim_id = v.id "
             "WHERE v.id = (SELECT id FROM bench_ids WHERE n = 1)")
    # Time-ordered ids like the service's (UUID v7): random ones would scatter index inserts over
    # a million-row index and make the anchor slower than it need be.
    ctx.psql("CREATE OR REPLACE FUNCTION bench_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$ "
             "SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING "
             "substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6), "
             "52, 1), 53, 1), 'hex')::uuid $$")
    return ("BEGIN;\n"
            f"UPDATE case_counters SET last_number = last_number + 1 WHERE organization_id = '{ctx.org}' RETURNING last_number AS cn \\gset\n"
            "WITH t AS (SELECT victim, identity FROM bench_templates), "
            "v AS (INSERT INTO victims SELECT r.* FROM t, jsonb_populate_record(NULL::victims, t.victim || "
            "jsonb_build_object('id', bench_uuid_v7(), 'case_number', :cn, 'created_at', now(), 'updated_at', now())) r RETURNING id), "
            "i AS (INSERT INTO victim_identities SELECT r.* FROM t, v, jsonb_populate_record(NULL::victim_identities, t.identity || "
            "jsonb_build_object('victim_id', v.id)) r RETURNING victim_id) "
            + _audit(ctx.org, ctx.user, "caseworker", "victim.create", "(SELECT victim_id FROM i)").rstrip(";\n")
            + ";\nCOMMIT;\n")


def report(ctx, report):
    """A partner's report run: the rollup upkeep check, the pooled rollup read, and the
    budget/ledger/audit transaction under the organisation's lock."""
    prefix = ",".join(report["dimensions"]) + ";"
    shape = ctx.psql(f"SELECT shape FROM report_rollup_shapes WHERE shape LIKE '{prefix}%' ORDER BY length(shape) LIMIT 1")
    s = shape.replace("'", "''")
    host = ctx.host
    spent = f"SELECT sum(epsilon_spent) FROM report_releases WHERE organization_id = '{host}';\n"
    window = "(NULL::date IS NULL OR r.month >= NULL::date) AND (NULL::date IS NULL OR r.month < NULL::date) AND (NULL::text IS NULL OR r.operation = NULL::text)"
    read = ("SELECT key[1] AS d1, key[2] AS d2, key[3] AS d3, sum(n)::bigint AS n FROM ( "
            f"SELECT r.key, r.n FROM report_rollups_pooled r WHERE r.shape = '{s}' AND {window} UNION ALL "
            f"SELECT r.key, -r.n FROM report_rollups r WHERE r.shape = '{s}' AND r.organization_id = '{host}' AND r.consent "
            f"AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = '{host}' AND o.shares_statistics) AND {window} "
            ") t GROUP BY key HAVING sum(n) > 0;\n")
    # Rollup upkeep when nothing changed: the check the service makes before taking its lock.
    idle = (f"SELECT NOT EXISTS (SELECT 1 FROM report_rollup_dirty) AND EXISTS (SELECT 1 FROM report_rollup_shapes "
            f"WHERE shape = '{s}') AS idle;\n")
    return (idle + read
            + f"BEGIN;\nSELECT pg_advisory_xact_lock(hashtext('{host}'));\n" + spent
            + "INSERT INTO audit_events (organization_id, actor_user_id, actor_role, action, outcome, request_id, client_address, details) "
            f"VALUES ('{host}', '{ctx.user}', 'partner', 'report.run', 'success', 'bench-request-id-0000', '127.0.0.1', "
            f"'{{\"report\": \"{report['id']}\", \"parameters\": {{}}, \"cells\": 100, \"suppressed\": 10, \"guarded\": true, \"epsilon\": 1.0}}');\n"
            "INSERT INTO report_releases (user_id, organization_id, report_id, parameters, k, cells_released, cells_suppressed, epsilon_spent) "
            f"VALUES ('{ctx.user}', '{host}', '{report['id']}', '{{}}', 11, 90, 10, 0);\n"
            "COMMIT;\n")
