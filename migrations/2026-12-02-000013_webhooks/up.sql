-- Webhooks: an organisation's admins subscribe a URL to events; each delivery is signed with the
-- webhook's secret (sealed like identities).
CREATE TABLE webhooks (
    id                uuid PRIMARY KEY,
    organization_id   uuid NOT NULL REFERENCES organizations (id),
    url               text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    events            text[] NOT NULL CHECK (cardinality(events) >= 1),
    secret_key_id     text NOT NULL,
    secret_nonce      bytea NOT NULL,
    secret_ciphertext bytea NOT NULL,
    disabled          boolean NOT NULL DEFAULT false,
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        uuid NOT NULL REFERENCES users (id),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_by_organization ON webhooks (organization_id);

-- The transactional outbox: an event is a row written in the transaction of the change it tells
-- of, so it exists if and only if that change committed. Ids and codes only.
CREATE TABLE webhook_events (
    id              bigserial PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    event           text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- One delivery per event and subscribed webhook, fanned out in the same transaction; retried with
-- backoff until delivered or given up, and kept as the delivery log.
CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES webhook_events (id),
    webhook_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    response_status integer,
    -- What went wrong, in the sender's words (a status, a timeout): never the receiver's body.
    last_error      text,
    delivered_at    timestamptz,
    UNIQUE (event_id, webhook_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);

-- Events raised by time rather than by a request, each once: a referral left without an answer,
-- a task reaching its due date (again if the date moves).
CREATE TABLE webhook_notices (
    kind      text NOT NULL CHECK (kind IN ('referral.overdue', 'task.due')),
    record_id uuid NOT NULL,
    due       date NOT NULL,
    PRIMARY KEY (kind, record_id, due)
);
