-- The freshness of each backup location named in the runbook config, as the
-- periodic backups.check job last saw it. A row's stale flag changes in the
-- same transaction as its audit row and the announcement's post job, so a
-- change is announced once, whichever replica checks and across restarts.

CREATE TABLE backup_states (
    service    text        NOT NULL CHECK (service <> ''),
    kind       text        NOT NULL CHECK (kind <> ''),
    name       text        NOT NULL CHECK (name <> ''),
    location   text        NOT NULL,
    newest_key text        NOT NULL DEFAULT '',
    newest_at  timestamptz,
    checked_at timestamptz NOT NULL,
    stale      boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (service, kind, name)
);

---- create above / drop below ----

DROP TABLE backup_states;
