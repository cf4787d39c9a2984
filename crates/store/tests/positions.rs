//! Positions the store keeps as BIGINT (stream sequences of parked messages) arrive as `u64`
//! from JetStream. One past `i64::MAX` used to be clamped to `i64::MAX`, so two different
//! messages were stored as one and the second counted as "already parked": a message parked
//! nowhere. Such a position must be refused, naming the column, and nothing stored for it.

use store::{events, ParkedMessage};
use testkit::TestDatabase;

fn parked_at(stream_sequence: u64) -> ParkedMessage {
    ParkedMessage {
        stream_name: "AGENCY_EVENTS".into(),
        stream_sequence,
        subject: "ips.v1.municipality.x".into(),
        payload: b"{}".to_vec(),
        reason: "payload_undecodable".into(),
        delivered_count: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_position_past_the_column_s_range_is_refused_not_clamped() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let pool = database.pool().await?;
    store::migrate(&pool).await?;

    let largest_storable = u64::try_from(i64::MAX)?;
    assert!(events::park(&pool, &parked_at(largest_storable)).await?);
    for beyond in [largest_storable + 1, u64::MAX] {
        let refused = events::park(&pool, &parked_at(beyond)).await;
        let error = refused
            .err()
            .ok_or_else(|| anyhow::anyhow!("parking at {beyond} must be refused, not clamped"))?;
        assert!(
            error
                .to_string()
                .contains("parked_messages.stream_sequence"),
            "{error}"
        );
        assert!(
            events::is_parked(&pool, "AGENCY_EVENTS", beyond)
                .await
                .is_err(),
            "a position that cannot be stored cannot be looked up as parked either"
        );
    }
    let stored = events::parked_messages(&pool, 10).await?;
    assert_eq!(
        stored
            .iter()
            .map(|message| message.stream_sequence)
            .collect::<Vec<_>>(),
        vec![largest_storable]
    );
    pool.close().await;
    database.drop_database().await;
    Ok(())
}
