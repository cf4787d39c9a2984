-- Issue 11: an auditor rebuilds what a reader was shown from the events, so each access-log
-- entry keeps what the read depended on beyond the events themselves. Old entries keep NULLs
-- (they cannot be rebuilt, and say so).
--   read_id              the read (one RPC call, one watch push): every participant it returned
--   request              the request's parameters, as the read path took them
--   business_date        the day consents and gates were judged on (the ledger clock's today)
--   history_sequence     the participant's event-store head the read folded (consents,
--                        allow-list, units)
--   read_model_sequence  the participant's head in the read model the data came from
--   projector_checkpoint the projector's checkpoint (global position) when the read began
--   shown                what the read handed out beyond the events (a watch's pushed
--                        activities, a page's continuation token), ids only
ALTER TABLE access_log
    ADD COLUMN read_id              uuid,
    ADD COLUMN request              jsonb,
    ADD COLUMN business_date        date,
    ADD COLUMN history_sequence     bigint,
    ADD COLUMN read_model_sequence  bigint,
    ADD COLUMN projector_checkpoint bigint,
    ADD COLUMN shown                jsonb;

CREATE INDEX access_log_by_read ON access_log (read_id) WHERE read_id IS NOT NULL;

-- The green-light read model says which of the participant's entries it was folded from, so a
-- read of it can be rebuilt from the events.
ALTER TABLE green_light_gates ADD COLUMN through_sequence bigint NOT NULL DEFAULT 0;

-- A changed read model starts from the first event: rebuild every read model.
TRUNCATE timeline_entries, caseload_participants, green_light_gates;
DELETE FROM projector_checkpoints WHERE projector_name = 'timeline';
