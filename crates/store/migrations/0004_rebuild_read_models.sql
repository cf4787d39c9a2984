-- The caseload read model (0003) must start from the first event: reset the shared checkpoint so
-- the projector rebuilds every read model from the events table (the timeline is emptied and
-- rebuilt alongside). Any later migration that adds or changes a read model does the same.
TRUNCATE timeline_entries, caseload_participants;
DELETE FROM projector_checkpoints WHERE projector_name = 'timeline';
