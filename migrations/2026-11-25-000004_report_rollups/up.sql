-- Pre-aggregated report tables. A "shape" is one report table (its dimensions and fixed filters);
-- its rollup holds, per partition (month of identification, organisation, consent to statistics,
-- operation tag), the distinct-victim count of every grouping set. Partitions are disjoint sets of
-- victims, so summing over partitions gives exact distinct counts for any month range, population
-- and operation. Triggers mark partitions dirty when records change; the next report run rebuilds
-- the dirty partitions before reading, so reports are never stale.

CREATE TABLE report_rollup_shapes (
    shape      text PRIMARY KEY,
    dims       text[] NOT NULL,
    filters    jsonb NOT NULL,
    built_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE report_rollups (
    shape           text NOT NULL REFERENCES report_rollup_shapes (shape),
    key             text[] NOT NULL,
    month           date NOT NULL,
    organization_id uuid NOT NULL,
    consent         boolean NOT NULL,
    operation       text,
    n               bigint NOT NULL
);
CREATE INDEX report_rollups_shape_idx ON report_rollups (shape, organization_id, month);
CREATE INDEX report_rollups_partition_idx ON report_rollups (organization_id, month);

-- The pooled population (consenting victims of sharing organisations) per month: what partner
-- releases read. A caller's own organisation is subtracted using its rows above (organisations
-- are disjoint, so distinct counts subtract exactly).
CREATE TABLE report_rollups_pooled (
    shape     text NOT NULL REFERENCES report_rollup_shapes (shape),
    key       text[] NOT NULL,
    month     date NOT NULL,
    operation text,
    n         bigint NOT NULL
);
CREATE INDEX report_rollups_pooled_idx ON report_rollups_pooled (shape, month);

CREATE TABLE report_rollup_dirty (
    organization_id uuid NOT NULL,
    month           date NOT NULL,
    PRIMARY KEY (organization_id, month)
);

CREATE FUNCTION report_rollup_mark_victim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO report_rollup_dirty VALUES (OLD.organization_id, date_trunc('month', OLD.identified_on)::date)
            ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO report_rollup_dirty VALUES (NEW.organization_id, date_trunc('month', NEW.identified_on)::date)
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER victims_rollup_dirty AFTER INSERT OR UPDATE OR DELETE ON victims
    FOR EACH ROW EXECUTE FUNCTION report_rollup_mark_victim();

-- Assistance and referrals feed some dimensions: their changes dirty their victim's partition.
CREATE FUNCTION report_rollup_mark_related() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    victim uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.victim_id ELSE NEW.victim_id END;
BEGIN
    INSERT INTO report_rollup_dirty
        SELECT v.organization_id, date_trunc('month', v.identified_on)::date FROM victims v WHERE v.id = victim
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE TRIGGER assistance_rollup_dirty AFTER INSERT OR UPDATE OR DELETE ON assistance_records
    FOR EACH ROW EXECUTE FUNCTION report_rollup_mark_related();
CREATE TRIGGER referrals_rollup_dirty AFTER INSERT OR UPDATE OR DELETE ON referrals
    FOR EACH ROW EXECUTE FUNCTION report_rollup_mark_related();

-- An organisation starting or stopping to share statistics changes the pooled population of every
-- month it has victims in.
CREATE FUNCTION report_rollup_mark_organization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.shares_statistics IS DISTINCT FROM OLD.shares_statistics THEN
        INSERT INTO report_rollup_dirty
            SELECT DISTINCT NEW.id, date_trunc('month', v.identified_on)::date FROM victims v WHERE v.organization_id = NEW.id
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER organizations_rollup_dirty AFTER UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION report_rollup_mark_organization();
