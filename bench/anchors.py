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


# The key vault's table (src/privacy/vault.rs), copied into the anchors' database: the service
# reads and writes it in a database of its own (HAVEN_KEY_VAULT_URL, D116), and pgbench speaks to
# one database, so the anchors do the vault's share of the work here (D133). A commit costs the same
# in either database of one cluster: they share its write-ahead log.
VAULT_TABLE = ("CREATE TABLE bench_vault_keys (victim_id uuid PRIMARY KEY, key_id uuid NOT NULL, wrap_key_id text NOT NULL, "
               "wrap_nonce bytea NOT NULL, wrapped_key bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")


def audited_read(ctx):
    """GET as a caseworker: the case file, the victim's data key from the vault, and the sealed
    identity read by the statement that writes the audit row (D136; a durable commit of its own,
    the service returns the identity only from that statement)."""
    target = "(SELECT id FROM bench_ids WHERE n = :n)"
    return (_pick(ctx) + f"SELECT v.* FROM victims v WHERE v.id = {target};\n"
            f"SELECT k.* FROM bench_vault_keys k WHERE k.victim_id = {target};\n"
            f"WITH sealed AS (SELECT i.* FROM victim_identities i WHERE i.victim_id = {target}), "
            "recorded AS (INSERT INTO audit_events (organization_id, actor_user_id, actor_role, action, target_type, target_id, "
            f"outcome, request_id, client_address, details) SELECT '{ctx.org}'::uuid, '{ctx.user}'::uuid, 'caseworker', "
            "'victim.identity_read', 'victim', sealed.victim_id, 'success', 'bench-request-id-0000', '127.0.0.1', '{}'::jsonb "
            "FROM sealed) SELECT * FROM sealed;\n")


def insert(ctx):
    """POST: the victim's data key in the vault (a durable commit), then next case number, the case
    file, its sealed identity and the audit row, in one durable transaction. Rows are copies of a seeded victim and its identity with a new id."""
    ctx.psql("DROP TABLE IF EXISTS bench_templates; CREATE TABLE bench_templates AS "
             "SELECT to_jsonb(v) AS victim, to_jsonb(i) AS identity FROM victims v JOIN victim_identities i ON i.victim_id = v.id "
             "WHERE v.id = (SELECT id FROM bench_ids WHERE n = 1)")
    # Time-ordered ids like the service's (UUID v7): random ones would scatter index inserts over
    # a million-row index and make the anchor slower than it need be.
    ctx.psql("CREATE OR REPLACE FUNCTION bench_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$ "
             "SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING "
             "substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6), "
             "52, 1), 53, 1), 'hex')::uuid $$")
    # The new victim's data key, committed in the vault before the case file (a commit of its own).
    vault = ("INSERT INTO bench_vault_keys (victim_id, key_id, wrap_key_id, wrap_nonce, wrapped_key) "
             "SELECT bench_uuid_v7(), gen_random_uuid(), k.wrap_key_id, k.wrap_nonce, k.wrapped_key "
             "FROM bench_vault_keys k WHERE k.victim_id = (SELECT id FROM bench_ids WHERE n = 1);\n")
    return (vault + "BEGIN;\n"
            f"UPDATE case_counters SET last_number = last_number + 1 WHERE organization_id = '{ctx.org}' RETURNING last_number AS cn \\gset\n"
            "WITH t AS (SELECT victim, identity FROM bench_templates), "
            "v AS (INSERT INTO victims SELECT r.* FROM t, jsonb_populate_record(NULL::victims, t.victim || "
            "jsonb_build_object('id', bench_uuid_v7(), 'case_number', :cn, 'created_at', now(), 'updated_at', now())) r RETURNING id), "
            "i AS (INSERT INTO victim_identities SELECT r.* FROM t, v, jsonb_populate_record(NULL::victim_identities, t.identity || "
            "jsonb_build_object('victim_id', v.id)) r RETURNING victim_id) "
            + _audit(ctx.org, ctx.user, "caseworker", "victim.create", "(SELECT victim_id FROM i)").rstrip(";\n")
            + ";\nCOMMIT;\n")


def _shape(ctx, report, bounded):
    dims = ",".join(report["dimensions"]) + ";"
    like = f"b%:{dims}%" if bounded else f"{dims}%"
    return ctx.psql(f"SELECT shape FROM report_rollup_shapes WHERE bounded = {str(bounded).lower()} AND shape LIKE '{like}' "
                    "ORDER BY length(shape) LIMIT 1").replace("'", "''")


def _budget(ctx):
    """The service's budget query (budget::current): a period's spending is the sum of its months."""
    return ("SELECT coalesce(sum(rho) FILTER (WHERE organization_id = "
            f"'{ctx.host}'), 0), coalesce(sum(releases) FILTER (WHERE organization_id = '{ctx.host}'), 0)::bigint, "
            f"coalesce(sum(rho), 0), (SELECT allowance FROM report_allowances WHERE organization_id = '{ctx.host}') "
            "FROM report_spend WHERE period >= date_trunc('month', now())::date "
            "AND period < (date_trunc('month', now()) + interval '1 month')::date;\n")


def _audit_report(ctx, role, report):
    return ("INSERT INTO audit_events (organization_id, actor_user_id, actor_role, action, outcome, request_id, client_address, details) "
            f"VALUES ('{ctx.host}', '{ctx.user}', '{role}', 'report.run', 'success', 'bench-request-id-0000', '127.0.0.1', "
            f"'{{\"report\": \"{report['id']}\", \"question\": {{\"report\": \"{report['id']}\"}}, \"guarded\": true, "
            f"\"repeat\": false, \"rho\": 0.25, \"cells\": 100}}');\n")


def _lookup(ctx, question):
    return ("SELECT id, released_at, release FROM report_releases WHERE organization_id = "
            f"'{ctx.host}' AND period = date_trunc('month', now())::date AND question = {question};\n")


_READ_POOLED = ("SELECT key[1], key[2], key[3], sum(n)::bigint FROM ( "
                "SELECT r.key, r.n FROM report_rollups_pooled r WHERE r.shape = '{s}' AND r.month >= {since} AND r.month < {until} "
                "UNION ALL SELECT r.key, -r.n FROM report_rollups r WHERE r.shape = '{s}' AND r.organization_id = '{host}' "
                "AND r.consent AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = '{host}' AND o.shares_statistics) "
                "AND r.month >= {since} AND r.month < {until}) t GROUP BY key HAVING sum(n) > 0;\n")


def report_fresh(ctx, report):
    """A partner's new question (a window not asked before): the ledger lookup that misses, the
    budget, the rollup upkeep check and the pooled rollup read, then under the spending lock the
    ledger lookup again, the budget, the ledger row (with a release of this report's size), the
    running total and the audit event; the budget once more for the answer."""
    s = _shape(ctx, report, True)
    sample = ctx.psql(f"SELECT id FROM report_releases WHERE report_id = '{report['id']}' AND release IS NOT NULL LIMIT 1")
    window = "\\set a random(0, 119)\n\\set l random(1, 120 - :a)\n\\set q random(1, 2000000000)\n"
    question = "'bench-' || :q"
    idle = (f"SELECT NOT EXISTS (SELECT 1 FROM report_rollup_dirty) AND EXISTS (SELECT 1 FROM report_rollup_shapes WHERE shape = '{s}');\n")
    read = _READ_POOLED.format(s=s, host=ctx.host, since="(date '2017-01-01' + make_interval(months => :a))",
                               until="(date '2017-01-01' + make_interval(months => :a + :l))")
    return (window + _lookup(ctx, question) + _budget(ctx) + idle + read
            + "BEGIN;\nSELECT pg_advisory_xact_lock(79445457456706);\n" + _lookup(ctx, question) + _budget(ctx)
            + "INSERT INTO report_releases (user_id, organization_id, report_id, parameters, k, cells_released, cells_suppressed, "
            "epsilon_spent, period, question, rho, mechanism, release) SELECT user_id, organization_id, report_id, parameters, k, "
            "cells_released, cells_suppressed, epsilon_spent, period, 'bench-' || :q, rho, mechanism, release "
            f"FROM report_releases WHERE id = {sample} "
            # Random questions of different rounds may meet; the service's question is new by
            # construction. Skipping a rare collision keeps the work the same.
            "ON CONFLICT DO NOTHING;\n"
            "INSERT INTO report_spend (period, organization_id, rho, releases) VALUES (date_trunc('month', now())::date, "
            f"'{ctx.host}', 0, 1) ON CONFLICT (period, organization_id) DO UPDATE SET rho = report_spend.rho + EXCLUDED.rho, "
            "releases = report_spend.releases + 1;\n"
            + _audit_report(ctx, "partner", report) + "COMMIT;\n" + _budget(ctx))


def report_repeat(ctx, report):
    """A partner's repeated question: the ledger lookup that finds the release, the audit event and
    the budget for the answer."""
    question = "'" + ctx.psql(f"SELECT question FROM report_releases WHERE report_id = '{report['id']}' AND question IS NOT NULL "
                              "ORDER BY id LIMIT 1") + "'"
    return _lookup(ctx, question) + _audit_report(ctx, "partner", report) + _budget(ctx)


def report_exact(ctx, report):
    """A caseworker's own figures: the rollup upkeep check, the organisation's exact rollup read and
    the audit event."""
    s = _shape(ctx, report, False)
    grain = next((d.split("_")[1] for d in report["dimensions"] if d.startswith("identified_")), None)
    start = {"month": "date_trunc('month', now()) - interval '35 months'", "quarter": "date_trunc('quarter', now()) - interval '33 months'",
             "year": "date_trunc('year', now()) - interval '9 years'"}.get(grain, "NULL::date")
    idle = (f"SELECT NOT EXISTS (SELECT 1 FROM report_rollup_dirty) AND EXISTS (SELECT 1 FROM report_rollup_shapes WHERE shape = '{s}');\n")
    read = (f"SELECT r.key[1], r.key[2], r.key[3], sum(r.n)::bigint FROM report_rollups r WHERE r.shape = '{s}' "
            f"AND r.organization_id = '{ctx.org}' AND r.month >= date '2023-12-01' GROUP BY r.key;\n")
    return idle + read + _audit_report(ctx, "caseworker", report)
