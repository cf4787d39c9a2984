-- The append-only guards fire whatever the session's replication role. Ordinary triggers do not
-- fire in a session with `session_replication_role = replica` (a superuser's setting), and
-- turning them off that way leaves pg_trigger as it was, so the guard fingerprint that kept
-- folds and the aggregate cache watch (store::events::append_guard_fingerprint) would not change
-- and an edit made so would go unseen by them. ENABLE ALWAYS makes such a session refused like
-- any other; going around a guard now takes ALTER TABLE, which changes pg_trigger.
ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only;
ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_truncate;
ALTER TABLE access_log ENABLE ALWAYS TRIGGER access_log_append_only;
ALTER TABLE access_log ENABLE ALWAYS TRIGGER access_log_no_truncate;
