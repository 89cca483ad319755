-- Execution leases replace the session advisory lock that pinned a pooled
-- connection for a whole execution and vanished silently with it. A lease is a
-- row: whoever holds the target renews it while working, and every step checks
-- its fencing token (strictly increasing, from the sequence) is still current.

CREATE SEQUENCE execution_lease_tokens;

CREATE TABLE execution_leases (
    target      text        PRIMARY KEY CHECK (target <> ''),
    request_id  bigint      NOT NULL,
    holder      text        NOT NULL CHECK (holder <> ''),
    token       bigint      NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

---- create above / drop below ----

DROP TABLE execution_leases;
DROP SEQUENCE execution_lease_tokens;
