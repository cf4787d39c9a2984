-- The caseload read model: where each participant is on the IPS path, with whom, and since
-- when. Derived from events by the projector (same checkpoint as the timeline); rebuildable.
CREATE TABLE caseload_participants
(
    participant_id    uuid PRIMARY KEY,
    unit              text,
    coach             text,
    lifecycle         text        NOT NULL,
    referred_at       timestamptz,
    enrolled_at       timestamptz,
    waiting_since     timestamptz,
    offered_coach     text,
    place_offered_at  timestamptz,
    last_follow_up_at timestamptz,
    updated_at        timestamptz NOT NULL
);

CREATE INDEX caseload_participants_by_unit ON caseload_participants (unit, lifecycle);
