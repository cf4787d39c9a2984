-- The caseload read model now follows a corrected coach assignment (the participant counts with
-- the corrected coach, as the aggregate folds it); rows projected before that still count with
-- the coach first named, so every read model is rebuilt from the first event, as 0004 says a
-- changed read model does.
TRUNCATE timeline_entries, caseload_participants, green_light_gates;
DELETE FROM projector_checkpoints WHERE projector_name = 'timeline';

-- The SIPs owed (social services' PendingApprovals, the caseload board) are read earliest notice
-- first among the few participants that owe one: a partial index in that order, instead of a
-- scan of every participant.
CREATE INDEX caseload_participants_sips_owed
    ON caseload_participants (sip_ready_on, participant_id)
    WHERE sip_ready_on IS NOT NULL;
