//! A withdrawn consent is never honoured late (issue 14, reads). The read paths keep each
//! participant folded (consents, allow-list) so a read does not refold a whole history; a read
//! may use a kept fold only once it has caught up with the participant's latest stored event,
//! read in the same statement as the data. These tests warm the kept fold, hold the projector
//! back (the read model then lags the events table), commit a consent withdrawal or an identity
//! protection, and read at once: the data the withdrawal covers must not be shown, and the
//! reader no longer on the allow-list is refused.

use chrono::Utc;
use proto::v1;
use testkit::{as_coach, as_fk_officer, Stack};

fn today() -> String {
    domain::business_date(Utc::now()).to_string()
}

fn write(participant_id: &str) -> Option<v1::ParticipantWrite> {
    Some(v1::ParticipantWrite {
        context: None,
        participant_id: participant_id.to_owned(),
    })
}

fn timeline_request(participant_id: &str, min_sequence: u64) -> v1::GetTimelineRequest {
    v1::GetTimelineRequest {
        participant_id: participant_id.to_owned(),
        min_sequence,
        page_size: 1000,
        ..Default::default()
    }
}

/// A referred, enrolled participant with a vocational profile the coach recorded; returns it
/// and the profile's sequence.
async fn participant_with_profile(stack: &Stack) -> anyhow::Result<(String, u64)> {
    let (participant_id, _) = stack.enrolled_participant("coach-17", None).await?;
    let profile = stack
        .municipality()
        .await?
        .record_profile(as_coach(v1::RecordProfileRequest {
            write: write(&participant_id),
            preferences: "outdoor work, mornings".into(),
            hours_per_week_wanted: 20,
            education_level: v1::EducationLevel::UpperSecondary as i32,
        }))
        .await?
        .into_inner();
    Ok((participant_id, profile.sequence))
}

/// The event types FK's officer is shown on the participant's timeline.
async fn fk_sees(
    stack: &Stack,
    participant_id: &str,
    min_sequence: u64,
) -> anyhow::Result<Vec<String>> {
    Ok(stack
        .timeline_as(domain::Agency::Forsakringskassan)
        .await?
        .get_timeline(as_fk_officer(timeline_request(
            participant_id,
            min_sequence,
        )))
        .await?
        .into_inner()
        .entries
        .into_iter()
        .map(|entry| entry.event_type)
        .collect())
}

/// One of the ledger's read-fold counters, as scraped.
async fn read_folds(stack: &Stack, outcome: &str) -> anyhow::Result<f64> {
    let (_, scrape) = tests::ledger_scrape(stack).await?;
    Ok(scrape
        .value(&format!("ips_read_folds_{outcome}_total"))
        .unwrap_or(0.0))
}

/// Holds the projector back: it cannot insert timeline rows (so it cannot finish a batch or
/// move its checkpoint) while this transaction lives; reads of the table go on.
async fn hold_projector(
    pool: &sqlx::PgPool,
) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut hold = pool.begin().await?;
    sqlx::query("LOCK TABLE timeline_entries IN EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await?;
    Ok(hold)
}

async fn projected_head(pool: &sqlx::PgPool, participant_id: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(max(sequence), 0) FROM timeline_entries WHERE participant_id = $1::uuid",
    )
    .bind(participant_id)
    .fetch_one(pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_withdrawn_before_a_read_is_not_honoured_by_a_kept_fold() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let pool = stack.database.pool().await?;
    let (participant_id, _) = participant_with_profile(&stack).await?;
    let mut municipality = stack.municipality().await?;
    let granted = municipality
        .grant_consent(as_coach(v1::GrantConsentRequest {
            participant_id: participant_id.clone(),
            discloser: v1::ConsentParty::IpsUnit as i32,
            recipient: v1::ConsentParty::Forsakringskassan as i32,
            data_categories: vec![v1::DataCategory::VocationalProfile as i32],
            valid_from: today(),
            valid_to: (domain::business_date(Utc::now()) + chrono::Duration::days(365)).to_string(),
            ..Default::default()
        }))
        .await?
        .into_inner();

    // Under consent FK sees the profile; the second read finds the participant kept folded.
    let seen = fk_sees(&stack, &participant_id, granted.sequence).await?;
    assert!(
        seen.iter().any(|seen| seen == "ProfileRecorded"),
        "{seen:?}"
    );
    let current_before = read_folds(&stack, "current").await?;
    let seen = fk_sees(&stack, &participant_id, granted.sequence).await?;
    assert!(
        seen.iter().any(|seen| seen == "ProfileRecorded"),
        "{seen:?}"
    );
    assert!(
        read_folds(&stack, "current").await? > current_before,
        "the second read must find the participant kept folded, or this test proves nothing"
    );

    // The projector is held back; the withdrawal is committed to the events table only.
    let hold = hold_projector(&pool).await?;
    let withdrawn = municipality
        .withdraw_consent(as_coach(v1::WithdrawConsentRequest {
            participant_id: participant_id.clone(),
            discloser: v1::ConsentParty::IpsUnit as i32,
            recipient: v1::ConsentParty::Forsakringskassan as i32,
            data_categories: vec![v1::DataCategory::VocationalProfile as i32],
            effective_from: today(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert!(
        projected_head(&pool, &participant_id).await? < i64::try_from(withdrawn.sequence)?,
        "the read model must still lag the withdrawal for this test to mean anything"
    );

    // At once, without waiting for any projection: the kept fold is caught up first.
    let extended_before = read_folds(&stack, "extended").await?;
    let seen = fk_sees(&stack, &participant_id, 0).await?;
    assert!(
        !seen.iter().any(|seen| seen == "ProfileRecorded"),
        "a withdrawn consent was honoured: {seen:?}"
    );
    assert!(
        read_folds(&stack, "extended").await? > extended_before,
        "the read must have caught up the kept fold (not folded afresh)"
    );
    // The access log says which head the read judged by: the withdrawal's.
    let judged_by: Option<i64> = sqlx::query_scalar(
        "SELECT history_sequence FROM access_log WHERE participant_id = $1::uuid AND reader_person_id = 'fk-officer-4'
          ORDER BY position DESC LIMIT 1",
    )
    .bind(&participant_id)
    .fetch_one(&pool)
    .await?;
    assert_eq!(judged_by, Some(i64::try_from(withdrawn.sequence)?));

    hold.rollback().await?;
    let seen = fk_sees(&stack, &participant_id, withdrawn.sequence).await?;
    assert!(
        !seen.iter().any(|seen| seen == "ProfileRecorded"),
        "{seen:?}"
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_protected_before_a_read_refuses_a_reader_the_kept_fold_admitted(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let pool = stack.database.pool().await?;
    let (participant_id, profile_sequence) = participant_with_profile(&stack).await?;
    let mut timeline = stack.timeline().await?;

    // The team leader reads (the participant is now kept folded, unprotected).
    timeline
        .get_timeline(testkit::as_team_leader(timeline_request(
            &participant_id,
            profile_sequence,
        )))
        .await?;
    timeline
        .verify_chain(testkit::as_team_leader(v1::VerifyChainRequest {
            participant_id: participant_id.clone(),
        }))
        .await?;

    let hold = hold_projector(&pool).await?;
    let mut municipality = stack.municipality().await?;
    let protected = municipality
        .protect_identity(as_coach(v1::ProtectIdentityRequest {
            write: write(&participant_id),
            allowed_person_ids: vec!["coach-17".into()],
            allowed_readers: Vec::new(),
        }))
        .await?
        .into_inner();
    assert!(
        projected_head(&pool, &participant_id).await? < i64::try_from(protected.sequence)?,
        "the read model must still lag the protection for this test to mean anything"
    );

    // Both read paths refuse at once: the timeline's own statement and `open_one`'s.
    let refused = timeline
        .get_timeline(testkit::as_team_leader(timeline_request(
            &participant_id,
            0,
        )))
        .await
        .expect_err("the team leader is not on the allow-list");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let refused = timeline
        .verify_chain(testkit::as_team_leader(v1::VerifyChainRequest {
            participant_id: participant_id.clone(),
        }))
        .await
        .expect_err("the team leader is not on the allow-list");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    // The coach on the allow-list still reads.
    timeline
        .get_timeline(as_coach(timeline_request(&participant_id, 0)))
        .await?;

    hold.rollback().await?;
    stack.stop().await;
    Ok(())
}
