DELETE FROM report_rollup_dirty a USING report_rollup_dirty b
    WHERE a.organization_id = b.organization_id AND a.month = b.month AND a.txid > b.txid;
ALTER TABLE report_rollup_dirty DROP CONSTRAINT report_rollup_dirty_pkey;
ALTER TABLE report_rollup_dirty DROP COLUMN txid;
ALTER TABLE report_rollup_dirty ADD PRIMARY KEY (organization_id, month);
CREATE OR REPLACE FUNCTION report_rollup_mark_victim() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE OR REPLACE FUNCTION report_rollup_mark_related() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    victim uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.victim_id ELSE NEW.victim_id END;
BEGIN
    INSERT INTO report_rollup_dirty
        SELECT v.organization_id, date_trunc('month', v.identified_on)::date FROM victims v WHERE v.id = victim
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION report_rollup_mark_organization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.shares_statistics IS DISTINCT FROM OLD.shares_statistics THEN
        INSERT INTO report_rollup_dirty
            SELECT DISTINCT NEW.id, date_trunc('month', v.identified_on)::date FROM victims v WHERE v.organization_id = NEW.id
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;
DROP TABLE report_allowances;
DROP TABLE report_spend;
DROP INDEX report_releases_question_idx;
ALTER TABLE report_releases DROP COLUMN release, DROP COLUMN mechanism, DROP COLUMN rho, DROP COLUMN question, DROP COLUMN period;
ALTER TABLE report_rollup_shapes DROP COLUMN bounded;
