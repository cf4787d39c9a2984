-- Issue 14: projectors wake on commit, also in another process. Every statement that inserts
-- events announces it on the channel `ips_events_committed`; PostgreSQL delivers a NOTIFY only
-- when its transaction commits (never for a rolled-back one), and folds the identical
-- notifications of one transaction into one. The payload is empty on purpose: a notification
-- only says "look now"; what to project is still read from the table behind the snapshot
-- horizon, so a lost notification costs latency (until the re-poll), never an event.
CREATE FUNCTION events_announce_commit() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('ips_events_committed', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_announce_commit
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_announce_commit();
