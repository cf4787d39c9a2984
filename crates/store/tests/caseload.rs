//! A unit's load (the capacity check every enrolment makes) is counted by PostgreSQL, whole:
//! it used to be counted here from at most 1,000 rows read by coach, so in a large unit the
//! coaches sorted last looked empty (room for more) and the waiting list looked shorter.

use store::caseload::{self, UnitLoad};
use testkit::TestDatabase;

/// Inserts `count` rows of one unit, lifecycle and coach straight into the read model.
async fn rows(
    pool: &sqlx::PgPool,
    unit: &str,
    lifecycle: &str,
    coach: Option<&str>,
    offered_coach: Option<&str>,
    count: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO caseload_participants (participant_id, unit, coach, lifecycle, waiting_since, offered_coach, updated_at)
         SELECT gen_random_uuid(), $1, $2, $3, now() - make_interval(secs => n), $4, now()
         FROM generate_series(1, $5) AS n",
    )
    .bind(unit)
    .bind(coach)
    .bind(lifecycle)
    .bind(offered_coach)
    .bind(count)
    .execute(pool)
    .await?;
    Ok(())
}

fn check(given: UnitLoad, expected: UnitLoad) {
    assert_eq!(given, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_s_load_counts_every_participant_however_large_the_unit() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let pool = database.pool().await?;
    store::migrate(&pool).await?;
    let unit = "hudiksvall-ips";
    // More active participants than the old 1,000-row read, the last coach by name beyond it.
    rows(&pool, unit, "enrolled", Some("coach-a"), None, 990).await?;
    rows(&pool, unit, "paused", Some("coach-a"), None, 5).await?;
    rows(&pool, unit, "enrolled", Some("coach-z"), None, 12).await?;
    rows(&pool, unit, "enrolled", None, None, 2).await?;
    rows(&pool, unit, "waiting_list", None, None, 1_003).await?;
    rows(&pool, unit, "waiting_list", None, Some("coach-z"), 4).await?;
    // Not counted: other lifecycles, other units.
    rows(&pool, unit, "discharged", Some("coach-z"), None, 7).await?;
    rows(&pool, unit, "referred", None, None, 3).await?;
    rows(&pool, "gavle-ips", "enrolled", Some("coach-z"), None, 9).await?;

    check(
        caseload::unit_load(&pool, unit).await?,
        UnitLoad {
            coaches: vec![
                (Some("coach-a".into()), 995),
                (Some("coach-z".into()), 12),
                (None, 2),
            ],
            waiting: 1_007,
        },
    );
    check(
        caseload::unit_load(&pool, "empty-ips").await?,
        UnitLoad {
            coaches: Vec::new(),
            waiting: 0,
        },
    );
    // The next waiting participant is looked for among those without an offer, longest first:
    // the 1,003 without an offer waited 1,003 … 1 seconds, the 4 offered 4 … 1.
    let waiting = caseload::waiting_without_offer(&pool, unit, 3).await?;
    let ids: Vec<uuid::Uuid> = waiting
        .iter()
        .map(|participant_id| participant_id.0)
        .collect();
    let seconds_waited: Vec<(f64, Option<String>)> = sqlx::query_as(
        "SELECT extract(epoch FROM (updated_at - waiting_since))::float8, offered_coach
         FROM caseload_participants JOIN unnest($1::uuid[]) WITH ORDINALITY AS asked (id, position)
           ON participant_id = asked.id
         ORDER BY asked.position",
    )
    .bind(&ids)
    .fetch_all(&pool)
    .await?;
    let rounded: Vec<(i64, Option<String>)> = seconds_waited
        .into_iter()
        .map(|(seconds, offered)| (seconds.round() as i64, offered))
        .collect();
    assert_eq!(
        rounded,
        vec![(1_003, None), (1_002, None), (1_001, None)],
        "longest-waiting first, none with an offer"
    );
    pool.close().await;
    database.drop_database().await;
    Ok(())
}
