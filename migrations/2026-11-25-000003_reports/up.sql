-- Reporting: the UN M49 regions of countries (filled by the service from the `keshvar` crate at
-- every start), and the ledger of every statistical release to a non-caseworker.

CREATE TABLE country_regions (
    country   char(3) PRIMARY KEY,
    region    text NOT NULL,
    subregion text NOT NULL
);

CREATE TABLE report_releases (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    released_at      timestamptz NOT NULL DEFAULT now(),
    user_id          uuid NOT NULL REFERENCES users (id),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    report_id        text NOT NULL,
    parameters       jsonb NOT NULL,
    k                integer NOT NULL,
    cells_released   integer NOT NULL,
    cells_suppressed integer NOT NULL,
    epsilon_spent    double precision NOT NULL DEFAULT 0
);
CREATE INDEX report_releases_user_idx ON report_releases (user_id, released_at);
CREATE INDEX report_releases_org_idx ON report_releases (organization_id);

-- The ledger is append-only, like the audit log: spent privacy budget cannot be given back by
-- editing it.
CREATE TRIGGER report_releases_no_update BEFORE UPDATE OR DELETE ON report_releases
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER report_releases_no_truncate BEFORE TRUNCATE ON report_releases
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

CREATE INDEX victims_identified_on_idx ON victims (identified_on);
