-- Case records: victims (non-identifying case data), their encrypted identities, assistance and
-- referrals. Every tenant table carries organization_id (ready for distribution by organisation).

CREATE TABLE case_counters (
    organization_id uuid PRIMARY KEY REFERENCES organizations (id),
    last_number     integer NOT NULL
);

CREATE TABLE victims (
    id                       uuid PRIMARY KEY,
    organization_id          uuid NOT NULL REFERENCES organizations (id),
    case_number              integer NOT NULL,
    status                   text NOT NULL CHECK (status IN ('active', 'follow_up', 'closed', 'closed_referred')),
    trafficking_status       text NOT NULL CHECK (trafficking_status IN ('possible', 'actual', 'not_a_victim')),
    identified_on            date NOT NULL,
    identified_in            char(3),
    identified_by            text CHECK (identified_by IN ('police', 'ngo', 'court_or_prosecution', 'government', 'self', 'other')),
    operation                text CHECK (length(operation) BETWEEN 1 AND 100),
    gender                   text NOT NULL CHECK (gender IN ('woman', 'man', 'trans_or_non_conforming', 'unknown')),
    age_at_identification    smallint CHECK (age_at_identification BETWEEN 0 AND 120),
    is_minor                 boolean NOT NULL,
    citizenship              text[] NOT NULL DEFAULT '{}',
    migrant_status           text,
    country_of_exploitation  char(3),
    exploitation_types       text[] NOT NULL DEFAULT '{}',
    labour_sector            char(1) CHECK (labour_sector ~ '^[A-U]$'),
    recruitment_methods      text[] NOT NULL DEFAULT '{}',
    means_of_control         text[] NOT NULL DEFAULT '{}',
    recruiter_relation       text,
    route                    jsonb NOT NULL DEFAULT '[]'::jsonb,
    consent_services         boolean NOT NULL DEFAULT false,
    consent_share_with_referral_partners boolean NOT NULL DEFAULT false,
    consent_anonymised_statistics boolean NOT NULL DEFAULT false,
    consent_recorded_at      timestamptz,
    -- Keyed digest (HMAC) of the create request as first received: a repeated create with the same id and body
    -- returns the record, with another body it is a conflict.
    create_digest            bytea NOT NULL,
    version                  integer NOT NULL DEFAULT 1,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    created_by               uuid NOT NULL REFERENCES users (id),
    updated_by               uuid NOT NULL REFERENCES users (id),
    UNIQUE (organization_id, case_number),
    CHECK (age_at_identification IS NULL OR is_minor = (age_at_identification < 18)),
    -- Bounds the reports' noise calibration relies on (one victim's reach into a table).
    CHECK (cardinality(citizenship) <= 5 AND cardinality(exploitation_types) <= 10
           AND cardinality(recruitment_methods) <= 9 AND cardinality(means_of_control) <= 17)
);
CREATE INDEX victims_org_idx ON victims (organization_id, id);
CREATE INDEX victims_org_updated_idx ON victims (organization_id, updated_at, id);

-- One row per victim. The identity (names, aliases, date of birth, contacts, address, document,
-- notes) is one AEAD ciphertext bound to the victim id; key_id names the key for rotation. Search
-- uses keyed blind indexes (HMAC), never plaintext.
CREATE TABLE victim_identities (
    victim_id       uuid PRIMARY KEY REFERENCES victims (id),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    key_id          text NOT NULL,
    nonce           bytea NOT NULL,
    ciphertext      bytea NOT NULL,
    name_index      bytea[] NOT NULL DEFAULT '{}',
    document_index  bytea,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX victim_identities_name_idx ON victim_identities USING gin (name_index);
CREATE INDEX victim_identities_document_idx ON victim_identities (organization_id, document_index);
CREATE INDEX victim_identities_key_idx ON victim_identities (key_id);

CREATE TABLE assistance_records (
    id              uuid PRIMARY KEY,
    victim_id       uuid NOT NULL REFERENCES victims (id),
    -- The organisation that recorded it (the victim's, or one it was referred to).
    organization_id uuid NOT NULL REFERENCES organizations (id),
    kind            text NOT NULL,
    provided_on     date NOT NULL,
    provided_by     uuid NOT NULL REFERENCES organizations (id),
    -- Identity-grade free text, encrypted like identities.
    notes_key_id    text,
    notes_nonce     bytea,
    notes_ciphertext bytea,
    create_digest   bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      uuid NOT NULL REFERENCES users (id),
    -- A sealed value is all three parts or none.
    CHECK ((notes_key_id IS NULL) = (notes_nonce IS NULL) AND (notes_nonce IS NULL) = (notes_ciphertext IS NULL))
);
CREATE INDEX assistance_victim_idx ON assistance_records (victim_id, provided_on, id);

CREATE TABLE referrals (
    id                   uuid PRIMARY KEY,
    victim_id            uuid NOT NULL REFERENCES victims (id),
    from_organization_id uuid NOT NULL REFERENCES organizations (id),
    from_user_id         uuid NOT NULL REFERENCES users (id),
    to_organization_id   uuid NOT NULL REFERENCES organizations (id),
    service              text NOT NULL,
    urgency              text NOT NULL,
    reason_key_id        text,
    reason_nonce         bytea,
    reason_ciphertext    bytea,
    status               text NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'completed', 'cancelled')),
    identity_shared      boolean NOT NULL,
    decline_reason       text CHECK (decline_reason IN ('no_capacity', 'service_not_offered', 'not_eligible', 'victim_declined', 'duplicate', 'other')),
    create_digest        bytea NOT NULL,
    version              integer NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    accepted_at          timestamptz,
    declined_at          timestamptz,
    completed_at         timestamptz,
    cancelled_at         timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (from_organization_id <> to_organization_id),
    CHECK ((reason_key_id IS NULL) = (reason_nonce IS NULL) AND (reason_nonce IS NULL) = (reason_ciphertext IS NULL))
);
CREATE INDEX referrals_from_idx ON referrals (from_organization_id, id);
CREATE INDEX referrals_to_idx ON referrals (to_organization_id, id);
CREATE INDEX referrals_victim_idx ON referrals (victim_id);
