-- A referral to a provider outside Haven (a clinic, a lawyer, a consulate): recorded by the case's
-- organisation for its own follow-up, with nothing shared: the provider has no account here and
-- receives nothing from Haven.
CREATE TABLE external_referrals (
    id               uuid PRIMARY KEY,
    victim_id        uuid NOT NULL REFERENCES victims (id),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    provider_name    text NOT NULL CHECK (length(provider_name) BETWEEN 1 AND 200),
    provider_country char(3) NOT NULL,
    service          text NOT NULL,
    referred_on      date NOT NULL,
    status           text NOT NULL DEFAULT 'referred' CHECK (status IN ('referred', 'completed', 'not_provided', 'cancelled')),
    version          integer NOT NULL DEFAULT 1,
    create_digest    bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       uuid NOT NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       uuid NOT NULL REFERENCES users (id)
);
CREATE INDEX external_referrals_by_victim ON external_referrals (victim_id, id);
