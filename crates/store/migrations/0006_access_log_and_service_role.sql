-- The access log (HSLF-FS 2016:40, DESIGN.md §7 invariant 6): one entry per read of a
-- participant's data, written before the data is returned. Append-only, like the events.
CREATE TABLE access_log
(
    position         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    read_at          timestamptz NOT NULL DEFAULT now(),
    reader_person_id text        NOT NULL,
    reader_role      text        NOT NULL,
    reader_unit      text        NOT NULL,
    reader_agency    text        NOT NULL,
    participant_id   uuid        NOT NULL,
    action           text        NOT NULL,
    basis            text        NOT NULL
);

CREATE INDEX access_log_by_participant ON access_log (participant_id, position);

CREATE TRIGGER access_log_append_only
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER access_log_no_truncate
    BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- The services' own role: append-only is enforced by the database's grants as well as by the
-- triggers above, so a service that is compromised or buggy cannot rewrite history even if
-- someone drops a trigger. Roles are cluster-wide and tests migrate many databases at once,
-- hence the tolerant creation.
DO
$$
    BEGIN
        CREATE ROLE ips_service LOGIN;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
    END
$$;

DO
$$
    BEGIN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO ips_service', current_database());
    END
$$;

GRANT USAGE ON SCHEMA public TO ips_service;
GRANT SELECT, INSERT ON events, access_log TO ips_service;
GRANT SELECT, INSERT ON parked_messages TO ips_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON projector_checkpoints, timeline_entries,
    caseload_participants, green_light_gates TO ips_service;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ips_service;
