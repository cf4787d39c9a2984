-- The green-light read model: one row per gate of every proposed activity, with its latest
-- decision. Derived by the projector from each touched participant's folded history, using the
-- domain's own gate rules; rebuildable. Rows stay after the activity starts (open = false), so
-- lead times keep their history.
CREATE TABLE green_light_gates
(
    participant_id  uuid    NOT NULL,
    activity_id     uuid    NOT NULL,
    gate            text    NOT NULL,
    deciding_agency text    NOT NULL,
    unit            text,
    coach           text,
    activity_kind   text    NOT NULL,
    planned_start   date    NOT NULL,
    requested_on    date    NOT NULL,
    open            boolean NOT NULL,
    decision        text,
    decided_on      date,
    valid_from      date,
    valid_to        date,
    PRIMARY KEY (participant_id, activity_id, gate)
);

-- Pending approvals page in this order, so a page is an index range, not a sort.
CREATE INDEX green_light_gates_pending ON green_light_gates (deciding_agency, requested_on, participant_id, activity_id, gate) WHERE open;
CREATE INDEX green_light_gates_by_coach ON green_light_gates (coach) WHERE open;

-- A new read model starts from the first event: rebuild every read model.
TRUNCATE timeline_entries, caseload_participants;
DELETE FROM projector_checkpoints WHERE projector_name = 'timeline';
