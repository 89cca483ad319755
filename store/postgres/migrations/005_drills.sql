-- Drills (issue 11, points 1 and 2).
--
-- drill_copies: every throwaway database a restore-db drill creates, recorded
-- before it is created. drbot drops a database only when it is recorded here
-- and not dropped yet (and its name is a drill copy's).
--
-- drill_reminders: the due and overdue reminders posted to the announce
-- channel, one of each kind per service, procedure and due date; the row is
-- inserted in the same transaction as its audit row and the post job, so a
-- reminder is posted once whichever replica checks and across restarts.

CREATE TABLE drill_copies (
    server     text        NOT NULL CHECK (server <> ''),
    name       text        NOT NULL CHECK (name LIKE '%\_drill\_%'),
    service    text        NOT NULL,
    database   text        NOT NULL,
    keep       boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    dropped_at timestamptz,
    PRIMARY KEY (server, name)
);

CREATE TABLE drill_reminders (
    service     text        NOT NULL CHECK (service <> ''),
    procedure   text        NOT NULL CHECK (procedure <> ''),
    kind        text        NOT NULL CHECK (kind IN ('drill.due', 'drill.overdue')),
    due_at      timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, procedure, kind, due_at)
);

CREATE INDEX action_requests_drills ON action_requests (service, created_at DESC) WHERE kind = 'drill';

---- create above / drop below ----

DROP INDEX action_requests_drills;
DROP TABLE drill_reminders;
DROP TABLE drill_copies;
