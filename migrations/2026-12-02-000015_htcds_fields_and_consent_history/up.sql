-- HTCDS v2.0 fields the case file lacked (issue 14). All are identity-free case data: codes, an
-- age in years and language codes, never free text.
ALTER TABLE victims
    ADD COLUMN sex_exploitation_types text[] NOT NULL DEFAULT '{}',
    ADD COLUMN recruitment_platforms  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN exploitation_platforms text[] NOT NULL DEFAULT '{}',
    ADD COLUMN perpetrator_roles      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN age_when_trafficked    smallint CHECK (age_when_trafficked BETWEEN 0 AND 120),
    ADD COLUMN primary_language       text CHECK (primary_language ~ '^[a-z]{3}$'),
    ADD COLUMN secondary_language     text CHECK (secondary_language ~ '^[a-z]{3}$'),
    ADD COLUMN consent_method         text CHECK (consent_method IN ('verbal', 'written_form', 'guardian'));

-- Every consent the person gave or withdrew, as it stood after each change: who recorded it, when
-- it was given and how. Append-only, like the audit log: a history that can be edited is no
-- evidence of consent.
CREATE TABLE consent_events (
    id                            bigserial PRIMARY KEY,
    victim_id                     uuid NOT NULL REFERENCES victims (id),
    organization_id               uuid NOT NULL REFERENCES organizations (id),
    services                      boolean NOT NULL,
    share_with_referral_partners  boolean NOT NULL,
    anonymised_statistics         boolean NOT NULL,
    method                        text CHECK (method IN ('verbal', 'written_form', 'guardian')),
    given_at                      timestamptz NOT NULL,
    recorded_by                   uuid NOT NULL REFERENCES users (id),
    recorded_at                   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_events_by_victim ON consent_events (victim_id, id);

CREATE FUNCTION consent_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_events is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER consent_events_no_update BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION consent_events_refuse_change();
CREATE TRIGGER consent_events_no_truncate BEFORE TRUNCATE ON consent_events
    FOR EACH STATEMENT EXECUTE FUNCTION consent_events_refuse_change();

-- Cases made before the history existed start it with the consent they hold.
INSERT INTO consent_events (victim_id, organization_id, services, share_with_referral_partners,
                            anonymised_statistics, given_at, recorded_by, recorded_at)
SELECT id, organization_id, consent_services, consent_share_with_referral_partners,
       consent_anonymised_statistics, coalesce(consent_recorded_at, created_at), updated_by, updated_at
FROM victims;
