-- Issue 12: the SIP owed after a discharge-ready notice (DOMAIN.md §4: within 3 calendar days)
-- is shown as due, then overdue, on the caseload board until a SIP is held. The read model keeps
-- the notice's day; due and overdue are functions of the business date, computed when read.
ALTER TABLE caseload_participants ADD COLUMN sip_ready_on date;
-- A changed read model starts from the first event: rebuild every read model.
TRUNCATE timeline_entries, caseload_participants, green_light_gates;
DELETE FROM projector_checkpoints WHERE projector_name = 'timeline';
