-- Issue 12: a gate that applies only because of the participant's own statement of a benefit
-- (BenefitSelfReported) is shown as unknown ("confirm with FK") until Försäkringskassan's record
-- of that benefit exists, and waits on no agency's list meanwhile. The read model keeps which
-- gates those are.
ALTER TABLE green_light_gates ADD COLUMN stated_only boolean NOT NULL DEFAULT false;
-- A changed read model starts from the first event: rebuild every read model.
TRUNCATE timeline_entries, caseload_participants, green_light_gates;
DELETE FROM projector_checkpoints WHERE projector_name = 'timeline';
