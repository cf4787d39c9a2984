//! The unit's places through the public API: a full unit puts an enrolment on the waiting list, a
//! full coach is refused while another has room, a discharge offers the freed place to the
//! longest-waiting, and the caseload board lists active participants, the waiting list and
//! follow-ups due.

use std::time::{Duration, Instant};

use proto::v1;
use testkit::{as_coach, Stack, StackOptions};

fn refer() -> v1::ReferParticipantRequest {
    v1::ReferParticipantRequest {
        source: v1::ReferralSource::OwnInitiative as i32,
        ..Default::default()
    }
}

fn enrol(participant_id: &str, coach: &str, days_ago: i64) -> v1::EnrollParticipantRequest {
    let occurred_at = (chrono::Utc::now() - chrono::Duration::days(days_ago)).to_rfc3339();
    v1::EnrollParticipantRequest {
        context: Some(v1::WriteContext {
            occurred_at,
            ..Default::default()
        }),
        participant_id: participant_id.into(),
        unit: "hudiksvall-ips".into(),
        coach_person_id: coach.into(),
    }
}

/// `count` participants referred by coach-17, their ids in order.
async fn referred(
    municipality: &mut v1::municipality_service_client::MunicipalityServiceClient<
        tonic::transport::Channel,
    >,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut participants = Vec::with_capacity(count);
    for _ in 0..count {
        participants.push(
            municipality
                .refer_participant(as_coach(refer()))
                .await?
                .into_inner()
                .participant_id,
        );
    }
    Ok(participants)
}

/// Waits until the caseload board satisfies `ready` (the read model trails the event store).
async fn board_when(
    stack: &Stack,
    ready: impl Fn(&v1::GetCaseloadResponse) -> bool,
) -> anyhow::Result<v1::GetCaseloadResponse> {
    let mut caseload = stack.caseload().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let board = caseload
            .get_caseload(testkit::as_team_leader(v1::GetCaseloadRequest {
                unit: "hudiksvall-ips".into(),
                ..Default::default()
            }))
            .await?
            .into_inner();
        if ready(&board) || Instant::now() > deadline {
            return Ok(board);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The unit's load as its team leader asks for it: active participants per coach, and the
/// waiting list's length.
async fn unit_load(stack: &Stack) -> anyhow::Result<(Vec<(String, u32)>, u32)> {
    let load = stack
        .caseload()
        .await?
        .get_unit_load(testkit::as_team_leader(v1::GetUnitLoadRequest {
            unit: "hudiksvall-ips".into(),
            include_next_waiting: false,
        }))
        .await?
        .into_inner();
    let coaches = load
        .coaches
        .into_iter()
        .map(|coach| (coach.coach_person_id, coach.active_participants))
        .collect();
    Ok((coaches, load.waiting))
}

fn active_of(board: &v1::GetCaseloadResponse, coach: &str) -> u32 {
    board
        .coaches
        .iter()
        .find(|entry| entry.coach_person_id == coach)
        .map_or(0, |entry| entry.active_participants)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_unit_waits_a_full_coach_is_refused_and_a_freed_place_is_offered(
) -> anyhow::Result<()> {
    let stack = Stack::start_with(StackOptions {
        coach_active_participants_max: 2,
        ..Default::default()
    })
    .await?;
    let mut municipality = stack.municipality().await?;
    let mut timeline = stack.timeline().await?;
    let participants = referred(&mut municipality, 5).await?;

    // Coach A fills up; enrolled 55 days ago, so their follow-ups fall due within 14 days.
    for (count, participant_id) in participants[..2].iter().enumerate() {
        let enrolled = municipality
            .enroll_participant(as_coach(enrol(participant_id, "coach-a", 55)))
            .await?
            .into_inner();
        assert_eq!(enrolled.status, v1::WriteStatus::Accepted as i32);
        board_when(&stack, |board| {
            active_of(board, "coach-a") as usize == count + 1
        })
        .await?;
    }
    // Every known coach is full: the third goes on the waiting list.
    let waiting = municipality
        .enroll_participant(as_coach(enrol(&participants[2], "coach-a", 0)))
        .await?
        .into_inner();
    assert_eq!(waiting.status, v1::WriteStatus::Accepted as i32);
    assert_eq!(waiting.event_type, "PlacedOnWaitingList");
    let board = board_when(&stack, |board| board.waiting_list.len() == 1).await?;
    assert_eq!(board.waiting_list[0].participant_id, participants[2]);

    // A new coach has room; coach A is then refused, naming coach B.
    municipality
        .enroll_participant(as_coach(enrol(&participants[3], "coach-b", 0)))
        .await?;
    board_when(&stack, |board| active_of(board, "coach-b") == 1).await?;
    let refused = municipality
        .enroll_participant(as_coach(enrol(&participants[4], "coach-a", 0)))
        .await
        .err();
    let refused = refused
        .ok_or_else(|| anyhow::anyhow!("a full coach must be refused while another has room"))?;
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        refused
            .metadata()
            .get("ips-rule")
            .and_then(|value| value.to_str().ok()),
        Some("coach_caseload_full")
    );
    assert!(
        refused.message().contains("coach-b"),
        "{}",
        refused.message()
    );

    // Follow-ups due: coach A's two, enrolled 55 days ago, are due within 14 days.
    let board = board_when(&stack, |_| true).await?;
    let mut due: Vec<&str> = board
        .follow_ups_due
        .iter()
        .map(|entry| entry.participant_id.as_str())
        .collect();
    due.sort();
    let mut expected = vec![participants[0].as_str(), participants[1].as_str()];
    expected.sort();
    assert_eq!(due, expected);

    // A discharge frees coach A's place: the longest-waiting is offered it.
    let discharge = v1::DischargeParticipantRequest {
        write: Some(v1::ParticipantWrite {
            participant_id: participants[0].clone(),
            ..Default::default()
        }),
        reason: v1::DischargeReason::EmployedAndStable as i32,
    };
    municipality
        .discharge_participant(as_coach(discharge))
        .await?;
    let board = board_when(&stack, |board| {
        board
            .waiting_list
            .first()
            .is_some_and(|waiting| !waiting.offered_coach_person_id.is_empty())
    })
    .await?;
    assert_eq!(board.waiting_list[0].offered_coach_person_id, "coach-a");
    let entries = timeline
        .get_timeline(testkit::as_auditor(v1::GetTimelineRequest {
            participant_id: participants[2].clone(),
            min_sequence: 3,
            ..Default::default()
        }))
        .await?
        .into_inner()
        .entries;
    let types: Vec<&str> = entries
        .iter()
        .map(|entry| entry.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ParticipantReferred",
            "PlacedOnWaitingList",
            "WaitingListPlaceOffered"
        ]
    );

    // The offered participant takes the place.
    let enrolled = municipality
        .enroll_participant(as_coach(enrol(&participants[2], "coach-a", 0)))
        .await?
        .into_inner();
    assert_eq!(enrolled.status, v1::WriteStatus::Accepted as i32);
    assert_eq!(enrolled.event_type, "ParticipantEnrolled");
    let board = board_when(&stack, |board| {
        board.waiting_list.is_empty() && active_of(board, "coach-a") == 2
    })
    .await?;
    assert_eq!(active_of(&board, "coach-a"), 2, "{board:?}");
    stack.stop().await;
    Ok(())
}

/// The capacity check counts the whole unit. It used to count the first 1,000 active rows (by
/// coach), so in a larger unit a coach sorted past them looked empty and an enrolment with them
/// went through over their limit; and the waiting list stopped at 1,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_unit_s_load_counts_every_participant() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let pool = stack.database.pool().await?;
    // Rows as the projector keeps them, inserted directly: 1,000 with coach-a, then coach-z's.
    for (coach, lifecycle, count) in [
        (Some("coach-a"), "enrolled", 1_000_i64),
        (Some("coach-z"), "enrolled", 7),
        (None, "waiting_list", 1_004),
    ] {
        sqlx::query(
            "INSERT INTO caseload_participants (participant_id, unit, coach, lifecycle, waiting_since, updated_at)
             SELECT gen_random_uuid(), 'hudiksvall-ips', $1, $2, now(), now() FROM generate_series(1, $3)",
        )
        .bind(coach)
        .bind(lifecycle)
        .bind(count)
        .execute(&pool)
        .await?;
    }
    let (coaches, waiting) = unit_load(&stack).await?;
    assert_eq!(
        coaches,
        vec![("coach-a".to_owned(), 1_000), ("coach-z".to_owned(), 7)]
    );
    assert_eq!(waiting, 1_004);
    // The board counts the same way: its lists stop at 1,000 rows, its counts do not.
    let board = board_when(&stack, |_| true).await?;
    assert_eq!(
        ["coach-a", "coach-z"].map(|coach| (coach, active_of(&board, coach))),
        [("coach-a", 1_000), ("coach-z", 7)]
    );
    // Counts are the unit's own: a team leader of another unit is refused, naming the rule,
    // and learns no count.
    let refused = stack
        .caseload()
        .await?
        .get_unit_load(testkit::as_officer(
            v1::GetUnitLoadRequest {
                unit: "hudiksvall-ips".into(),
                include_next_waiting: false,
            },
            domain::Agency::Municipality,
            "team-leader-9",
            domain::Role::TeamLeader,
            "gavle-ips",
        ))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("another unit's team leader read the load"))?;
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(refused.message().contains("other_unit"), "{refused:?}");
    pool.close().await;
    stack.stop().await;
    Ok(())
}

/// A corrected coach assignment moves the participant's place to the coach the correction
/// names, in the unit's load and on the board, as the aggregate folds it (the read model used to
/// keep counting them with the coach first named).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_coach_assignment_moves_the_place_to_the_corrected_coach() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let participant_id = referred(&mut municipality, 1).await?.remove(0);
    municipality
        .enroll_participant(as_coach(enrol(&participant_id, "coach-a", 0)))
        .await?;
    let write = || {
        Some(v1::ParticipantWrite {
            participant_id: participant_id.clone(),
            ..Default::default()
        })
    };
    let assigned = municipality
        .assign_coach(as_coach(v1::AssignCoachRequest {
            write: write(),
            coach_person_id: "coach-b".into(),
        }))
        .await?
        .into_inner();
    assert_eq!(assigned.status, v1::WriteStatus::Accepted as i32);
    board_when(&stack, |board| active_of(board, "coach-b") == 1).await?;

    let corrected = municipality
        .correct_event(as_coach(v1::CorrectEventRequest {
            write: write(),
            supersedes_event_id: assigned.event_id,
            reason: "the assignment named the wrong coach".into(),
            corrected_body_json: serde_json::json!({"type": "CoachAssigned", "coach": "coach-c"})
                .to_string(),
        }))
        .await?
        .into_inner();
    assert_eq!(corrected.status, v1::WriteStatus::Accepted as i32);
    let board = board_when(&stack, |board| active_of(board, "coach-c") == 1).await?;
    let loads: Vec<(&str, u32)> = ["coach-a", "coach-b", "coach-c"]
        .into_iter()
        .map(|coach| (coach, active_of(&board, coach)))
        .collect();
    assert_eq!(loads, [("coach-a", 0), ("coach-b", 0), ("coach-c", 1)]);
    let (coaches, _) = unit_load(&stack).await?;
    assert_eq!(coaches, vec![("coach-c".to_owned(), 1)]);
    stack.stop().await;
    Ok(())
}

/// With the first ledger the municipality asks down, the capacity check asks the next one
/// (`places.ledger_fallback_addresses`) instead of enrolling unchecked: a full coach's next
/// enrolment still goes on the waiting list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capacity_check_asks_the_next_ledger_when_the_first_is_down() -> anyhow::Result<()> {
    // A reserved port nothing listens on: the ledger that is down.
    let down = testkit::free_ports(1)?[0];
    let stack = Stack::start_with(StackOptions {
        coach_active_participants_max: 1,
        places_ledgers_asked_first: vec![format!("https://127.0.0.1:{down}")],
        ..Default::default()
    })
    .await?;
    let mut municipality = stack.municipality().await?;
    let participants = referred(&mut municipality, 2).await?;
    let enrolled = municipality
        .enroll_participant(as_coach(enrol(&participants[0], "coach-a", 0)))
        .await?
        .into_inner();
    assert_eq!(enrolled.event_type, "ParticipantEnrolled");
    board_when(&stack, |board| active_of(board, "coach-a") == 1).await?;
    let second = municipality
        .enroll_participant(as_coach(enrol(&participants[1], "coach-a", 0)))
        .await?
        .into_inner();
    assert_eq!(
        second.event_type, "PlacedOnWaitingList",
        "the full coach's unit was checked through the second ledger"
    );
    stack.stop().await;
    Ok(())
}
