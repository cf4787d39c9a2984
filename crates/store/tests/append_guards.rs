//! The events table and the access log are append-only (DESIGN.md §7, invariant 3), guarded by
//! triggers. A superuser can turn ordinary triggers off for one session (`SET
//! session_replication_role = replica`) without touching `pg_trigger`, so the guard fingerprint
//! the kept folds and the aggregate cache watch would not change, and an edit made that way
//! would go unseen by them until the participant is folded afresh. The guards fire in every
//! replication role (`ENABLE ALWAYS`, migration 0014), so such a session is refused too; going
//! around them now takes an `ALTER TABLE`, which the fingerprint sees.

use testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_append_only_guards_hold_in_a_replica_session() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let pool = database.pool().await?;
    store::migrate(&pool).await?;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Participant', 'guarded', 1, 'ParticipantReferred', '1', '{\"kept\": true}', '{}')",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO access_log (reader_person_id, reader_role, reader_unit, reader_agency, participant_id, action, basis)
         VALUES ('auditor-1', 'auditor', 'internal-control', 'municipality', gen_random_uuid(), 'GetTimeline', 'audit')",
    )
    .execute(&pool)
    .await?;
    let fingerprint_before = store::events::append_guard_fingerprint(&pool).await?;

    for statement in [
        "UPDATE events SET payload = '{\"kept\": false}'",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE access_log SET basis = 'forged'",
        "DELETE FROM access_log",
        "TRUNCATE access_log",
    ] {
        let mut session = pool.acquire().await?;
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut *session)
            .await?;
        let refused = sqlx::query(statement).execute(&mut *session).await;
        sqlx::query("RESET session_replication_role")
            .execute(&mut *session)
            .await?;
        let error = refused
            .err()
            .ok_or_else(|| anyhow::anyhow!("{statement} went through in a replica session"))?;
        assert!(
            error.to_string().contains("append-only"),
            "{statement} refused by the guard, not something else: {error}"
        );
    }

    let kept: bool = sqlx::query_scalar("SELECT (payload->>'kept')::boolean FROM events")
        .fetch_one(&pool)
        .await?;
    assert!(kept, "the entry is as it was written");
    let bases: Vec<String> = sqlx::query_scalar("SELECT basis FROM access_log")
        .fetch_all(&pool)
        .await?;
    assert_eq!(bases, ["audit"], "the access log is as it was written");
    assert_eq!(
        store::events::append_guard_fingerprint(&pool).await?,
        fingerprint_before,
        "nothing changed the guards"
    );
    pool.close().await;
    database.drop_database().await;
    Ok(())
}
