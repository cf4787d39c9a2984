-- Issue 10: the days the read models keep (an activity's requested_on, a gate's decided_on and a
-- planning acceptance's valid_from) are now business days, the Stockholm date of the event,
-- where they were the UTC date: an event between midnight and 01:00/02:00 Swedish time counted
-- on the day before. The domain folds them anew; rebuild every read model from the first event.
TRUNCATE timeline_entries, caseload_participants, green_light_gates;
DELETE FROM projector_checkpoints WHERE projector_name = 'timeline';
