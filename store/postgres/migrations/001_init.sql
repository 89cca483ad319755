-- drbot's own state. River's tables are created by rivermigrate before this runs.

CREATE TABLE incidents (
    id           bigserial PRIMARY KEY,
    pagerduty_id text        NOT NULL CONSTRAINT incidents_pagerduty_id_key UNIQUE,
    service      text        NOT NULL DEFAULT '',
    title        text        NOT NULL DEFAULT '',
    urgency      text        NOT NULL DEFAULT '',
    url          text        NOT NULL DEFAULT '',
    status       text        NOT NULL CHECK (status IN ('triggered', 'acknowledged', 'resolved')),
    channel      text,
    security     boolean     NOT NULL DEFAULT false,
    opened_at    timestamptz NOT NULL DEFAULT now(),
    acked_at     timestamptz,
    resolved_at  timestamptz,
    rto          interval    NOT NULL DEFAULT '0',
    rpo          interval    NOT NULL DEFAULT '0',
    CHECK (pagerduty_id <> ''),
    CHECK (channel <> '')
);
CREATE UNIQUE INDEX incidents_channel_key ON incidents (channel) WHERE channel IS NOT NULL;
CREATE INDEX incidents_open_idx ON incidents (opened_at DESC) WHERE status <> 'resolved';

CREATE TABLE action_requests (
    id              bigserial PRIMARY KEY,
    incident_id     bigint REFERENCES incidents (id),
    service         text        NOT NULL DEFAULT '',
    kind            text        NOT NULL CHECK (kind <> ''),
    target          text        NOT NULL CHECK (target <> ''),
    -- json, not jsonb: the plan is kept byte for byte so its hash can be recomputed.
    params          json        NOT NULL DEFAULT '{}',
    plan            json,
    plan_hash       text        NOT NULL DEFAULT '',
    requested_by    text        NOT NULL DEFAULT '',
    state           text        NOT NULL CHECK (state IN ('pending', 'approved', 'running', 'verifying',
                                                          'succeeded', 'failed', 'denied', 'expired', 'cancelled')),
    reason          text        NOT NULL DEFAULT '',
    idempotency_key text        NOT NULL DEFAULT '',
    channel         text        NOT NULL DEFAULT '',
    message_ts      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- One request in flight per target.
CREATE UNIQUE INDEX action_requests_in_flight_key ON action_requests (target)
    WHERE state IN ('pending', 'approved', 'running', 'verifying');
CREATE UNIQUE INDEX action_requests_idempotency_key ON action_requests (idempotency_key)
    WHERE idempotency_key <> '';
CREATE INDEX action_requests_incident_idx ON action_requests (incident_id);

CREATE TABLE approvals (
    id         bigserial PRIMARY KEY,
    request_id bigint      NOT NULL REFERENCES action_requests (id),
    plan_hash  text        NOT NULL,
    approver   text        NOT NULL CHECK (approver <> ''),
    decision   text        NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason     text        NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT approvals_once_key UNIQUE (request_id, approver, plan_hash)
);

-- Append-only, hash-chained audit log. hash = sha256(prev_hash || canonical row);
-- see store/postgres/audit.go for the canonical encoding.
CREATE TABLE audit_events (
    seq         bigserial PRIMARY KEY,
    incident_id bigint,
    request_id  bigint,
    actor       text        NOT NULL,
    kind        text        NOT NULL,
    data        jsonb       NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL,
    prev_hash   bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash        bytea       NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_events_incident_idx ON audit_events (incident_id, seq) WHERE incident_id IS NOT NULL;
CREATE INDEX audit_events_request_idx ON audit_events (request_id, seq) WHERE request_id IS NOT NULL;

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE webhook_deliveries (
    delivery_id text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_received_idx ON webhook_deliveries (received_at);
