-- The event store: postgres-es's events table, plus the columns the projector and auditors need.
-- postgres-es ignores the extra columns; they all have defaults or are generated.
-- payload/metadata are jsonb (postgres-es's own init.sql says json); sqlx binds JSON as jsonb.
CREATE TABLE events
(
    aggregate_type  text   NOT NULL,
    aggregate_id    text   NOT NULL,
    sequence        bigint NOT NULL CHECK (sequence >= 1),
    event_type      text   NOT NULL,
    event_version   text   NOT NULL,
    payload         jsonb  NOT NULL,
    metadata        jsonb  NOT NULL,
    -- Commit-independent total order of inserts; with tx_id it is the projector's cursor.
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    -- The inserting transaction, so the projector can wait for slower, older transactions.
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- The submitted event id, unique across all participants: the last guard of exactly-once.
    event_id        uuid GENERATED ALWAYS AS ((payload #>> '{envelope,event_id}')::uuid) STORED,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_event_id_unique ON events (event_id);
CREATE INDEX events_projector_cursor ON events (tx_id, global_position);

-- Events are never updated or deleted (DESIGN.md §7, invariant 3). The grants for the service
-- role come with the access-control work; this trigger holds for every role, owners included.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Messages the ledger could not apply: kept, reported, never dropped.
CREATE TABLE parked_messages
(
    stream_name     text        NOT NULL,
    stream_sequence bigint      NOT NULL,
    subject         text        NOT NULL,
    payload         bytea       NOT NULL,
    reason          text        NOT NULL,
    delivered_count bigint      NOT NULL,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_name, stream_sequence)
);
