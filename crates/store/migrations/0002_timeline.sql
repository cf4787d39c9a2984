-- Read models and the projector's checkpoints. Derived from events; can be dropped and rebuilt.
CREATE TABLE projector_checkpoints
(
    projector_name       text PRIMARY KEY,
    last_tx_id           xid8        NOT NULL,
    last_global_position bigint      NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE timeline_entries
(
    participant_id  uuid        NOT NULL,
    sequence        bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    agency          text        NOT NULL,
    actor_person_id text        NOT NULL,
    actor_role      text        NOT NULL,
    actor_unit      text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    data_category   text        NOT NULL,
    schema_version  integer     NOT NULL,
    body            jsonb       NOT NULL,
    rejected_rule   text,
    prev_hash       text        NOT NULL,
    hash            text        NOT NULL,
    global_position bigint      NOT NULL,
    PRIMARY KEY (participant_id, sequence)
);
