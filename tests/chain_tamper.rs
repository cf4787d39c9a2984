//! An event-store row edited around the append-only triggers (DESIGN.md §7, invariant 3) must
//! not go unnoticed or unanswered: reads of that participant say where the chain broke (the
//! read model still shows what was projected before the edit), auditors can still read it, and
//! the ledger appends nothing more to it, parking the write with the broken entry named and
//! counting it, while other participants go on. And a timeline read-model row altered until it
//! does not read is named on read, never shown as another event or silently left out.

use std::time::{Duration, Instant};

use proto::v1;
use testkit::{as_auditor, as_coach, Stack};

fn refer() -> v1::ReferParticipantRequest {
    v1::ReferParticipantRequest {
        source: v1::ReferralSource::Vuxenpsykiatri as i32,
        ..Default::default()
    }
}

fn enrol(participant_id: &str) -> v1::EnrollParticipantRequest {
    v1::EnrollParticipantRequest {
        context: None,
        participant_id: participant_id.into(),
        unit: "hudiksvall-ips".into(),
        coach_person_id: "coach-17".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_chain_is_reported_on_read_and_gets_nothing_appended() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let mut timeline = stack.timeline().await?;
    let tampered = municipality
        .refer_participant(as_coach(refer()))
        .await?
        .into_inner()
        .participant_id;
    let enrolled = municipality
        .enroll_participant(as_coach(enrol(&tampered)))
        .await?
        .into_inner();
    assert_eq!(enrolled.sequence, 2, "{enrolled:?}");
    let other = municipality
        .refer_participant(as_coach(refer()))
        .await?
        .into_inner()
        .participant_id;
    // Projected before the edit, as the read model would be in production.
    timeline
        .get_timeline(as_auditor(v1::GetTimelineRequest {
            participant_id: tampered.clone(),
            min_sequence: 2,
            ..Default::default()
        }))
        .await?;

    // As the database superuser, around the append-only trigger.
    let pool = stack.database.pool().await?;
    testkit::edit_entry_around_append_guard(
        &pool,
        "payload = jsonb_set(payload, '{envelope,actor,person_id}', '\"someone-else\"')",
        &tampered,
        1,
    )
    .await?;

    // Reads say the chain is broken, and where; an auditor still reads every entry.
    for request in [
        as_auditor(v1::GetTimelineRequest {
            participant_id: tampered.clone(),
            ..Default::default()
        }),
        as_coach(v1::GetTimelineRequest {
            participant_id: tampered.clone(),
            ..Default::default()
        }),
    ] {
        let response = timeline.get_timeline(request).await?.into_inner();
        assert_eq!(response.entries.len(), 2, "{response:?}");
        assert_eq!(response.chain_broken_at_sequence, 1, "{response:?}");
        assert_eq!(
            response.chain_broken_reason, "hash_mismatch",
            "{response:?}"
        );
    }
    let intact_other = timeline
        .get_timeline(as_coach(v1::GetTimelineRequest {
            participant_id: other.clone(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(intact_other.chain_broken_at_sequence, 0, "{intact_other:?}");
    assert_eq!(intact_other.chain_broken_reason, "");
    let verified = timeline
        .verify_chain(as_auditor(v1::VerifyChainRequest {
            participant_id: tampered.clone(),
        }))
        .await?
        .into_inner();
    assert!(!verified.intact, "{verified:?}");
    assert_eq!(verified.first_broken_sequence, 1);
    assert_eq!(verified.first_broken_reason, "hash_mismatch");

    // A write for the tampered participant is parked, not appended.
    let refused = municipality
        .grant_consent(as_coach(v1::GrantConsentRequest {
            context: None,
            participant_id: tampered.clone(),
            consent_id: String::new(),
            discloser: v1::ConsentParty::Forsakringskassan as i32,
            recipient: v1::ConsentParty::IpsUnit as i32,
            data_categories: vec![v1::DataCategory::BenefitDecisions as i32],
            valid_from: "2026-01-01".into(),
            valid_to: "2026-12-31".into(),
        }))
        .await?
        .into_inner();
    assert_eq!(
        refused.status,
        v1::WriteStatus::Pending as i32,
        "no verdict: the ledger refused to append ({refused:?})"
    );
    // Other participants go on.
    let other_enrolled = municipality
        .enroll_participant(as_coach(enrol(&other)))
        .await?
        .into_inner();
    assert_eq!(
        other_enrolled.status,
        v1::WriteStatus::Accepted as i32,
        "{other_enrolled:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut parked: Vec<String> = Vec::new();
    while parked.is_empty() && Instant::now() < deadline {
        parked = sqlx::query_scalar("SELECT reason FROM parked_messages")
            .fetch_all(&pool)
            .await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(
        parked[0].starts_with(&format!(
            "chain_broken: entry 1 of participant {tampered} fails verification (hash_mismatch)"
        )),
        "{parked:?}"
    );
    let tampered_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(&tampered)
            .fetch_one(&pool)
            .await?;
    assert_eq!(tampered_entries, 2, "nothing appended to the broken chain");
    let metrics = tests::ledger_metrics(&stack).await?;
    assert!(
        metrics.contains("\nips_ledger_chain_broken_refusals_total 1\n"),
        "{metrics}"
    );
    pool.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_altered_until_it_no_longer_decodes_is_named_on_read_and_an_auditor_still_verifies(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let mut timeline = stack.timeline().await?;
    let tampered = municipality
        .refer_participant(as_coach(refer()))
        .await?
        .into_inner()
        .participant_id;
    municipality
        .enroll_participant(as_coach(enrol(&tampered)))
        .await?;
    let pool = stack.database.pool().await?;
    testkit::edit_entry_around_append_guard(&pool, "payload = '{\"altered\": true}'", &tampered, 1)
        .await?;

    // A read that must fold the history says why it cannot, with a rule, not INTERNAL.
    let read = timeline
        .get_timeline(as_coach(v1::GetTimelineRequest {
            participant_id: tampered.clone(),
            ..Default::default()
        }))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a history that no longer decodes was read"))?;
    assert_eq!(read.code(), tonic::Code::DataLoss, "{read:?}");
    assert_eq!(
        read.metadata()
            .get("ips-rule")
            .and_then(|value| value.to_str().ok()),
        Some("stored_history_unreadable"),
        "{read:?}"
    );
    // The auditor's check still runs and names the broken entry.
    let verified = timeline
        .verify_chain(as_auditor(v1::VerifyChainRequest {
            participant_id: tampered.clone(),
        }))
        .await?
        .into_inner();
    assert!(!verified.intact, "{verified:?}");
    assert_eq!(verified.first_broken_sequence, 1, "{verified:?}");
    pool.close().await;
    stack.stop().await;
    Ok(())
}

/// The timeline read model is rewritten by the projector, not append-only. Who may see a row is
/// decided from its agency, data category and body, so a row altered until one of them does not
/// read must be named on read (`DATA_LOSS`, `stored_history_unreadable`), not shown as some
/// other event nor silently left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeline_row_that_does_not_read_is_named_not_shown_as_another_nor_left_out(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let mut timeline = stack.timeline().await?;
    let pool = stack.database.pool().await?;
    let alterations = [
        ("body", "UPDATE timeline_entries SET body = '{\"type\": \"NoSuchEvent\"}' WHERE participant_id = $1::uuid AND sequence = 2"),
        ("agency", "UPDATE timeline_entries SET agency = 'nobody' WHERE participant_id = $1::uuid AND sequence = 2"),
        ("data category", "UPDATE timeline_entries SET data_category = 'nothing' WHERE participant_id = $1::uuid AND sequence = 2"),
    ];
    for (altered, alteration) in alterations {
        let participant_id = municipality
            .refer_participant(as_coach(refer()))
            .await?
            .into_inner()
            .participant_id;
        municipality
            .enroll_participant(as_coach(enrol(&participant_id)))
            .await?;
        // Projected first, as it would be in production.
        let projected = timeline
            .get_timeline(as_coach(v1::GetTimelineRequest {
                participant_id: participant_id.clone(),
                min_sequence: 2,
                ..Default::default()
            }))
            .await?
            .into_inner();
        assert_eq!(projected.entries.len(), 2, "{projected:?}");
        sqlx::query(alteration)
            .bind(&participant_id)
            .execute(&pool)
            .await?;
        let read = timeline
            .get_timeline(as_coach(v1::GetTimelineRequest {
                participant_id: participant_id.clone(),
                ..Default::default()
            }))
            .await;
        let refused = read.err().ok_or_else(|| {
            anyhow::anyhow!("a timeline row with an unreadable {altered} was read")
        })?;
        assert_eq!(
            refused.code(),
            tonic::Code::DataLoss,
            "{altered}: {refused:?}"
        );
        assert_eq!(
            refused
                .metadata()
                .get("ips-rule")
                .and_then(|value| value.to_str().ok()),
            Some("stored_history_unreadable"),
            "{altered}: {refused:?}"
        );
        assert!(
            refused.message().contains("timeline entry 2"),
            "{altered}: {refused:?}"
        );
    }
    pool.close().await;
    stack.stop().await;
    Ok(())
}
