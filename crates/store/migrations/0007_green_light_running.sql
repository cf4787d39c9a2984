-- Issue 9: a running activity whose approval expires (or expires within 5 days) stays on the
-- coach's board and the deciding agency's list. The read model learns which activities run.
ALTER TABLE green_light_gates ADD COLUMN running boolean NOT NULL DEFAULT false;
CREATE INDEX green_light_gates_running_by_coach ON green_light_gates (coach, valid_to) WHERE running;
CREATE INDEX green_light_gates_running_by_agency ON green_light_gates (deciding_agency, valid_to) WHERE running;
-- A changed read model starts from the first event: rebuild every read model.
TRUNCATE timeline_entries, caseload_participants, green_light_gates;
DELETE FROM projector_checkpoints WHERE projector_name = 'timeline';
