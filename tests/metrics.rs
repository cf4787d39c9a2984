//! Each running ledger owns its metrics: two stacks in one test process must not see each
//! other's counts (in-process test stacks, and any process that runs two ledgers, would read
//! nonsense otherwise), and the endpoint serves OpenMetrics text that parses and names what
//! the ledger exposes.

use domain::Role;
use proto::v1;
use testkit::{as_caller, Stack};

/// Every family the ledger's endpoint serves, by name and type (what dashboards and alerts
/// depend on; a rename must change this list on purpose).
const LEDGER_FAMILIES: [(&str, &str); 20] = [
    ("ips_ledger_events_accepted", "counter"),
    ("ips_ledger_events_rejected", "counter"),
    ("ips_ledger_redeliveries_ignored", "counter"),
    ("ips_ledger_messages_parked", "counter"),
    ("ips_ledger_conflicts_retried", "counter"),
    ("ips_ledger_store_failures", "counter"),
    ("ips_ledger_store_data_refusals", "counter"),
    ("ips_ledger_chain_broken_refusals", "counter"),
    ("ips_ledger_handed_back_at_shutdown", "counter"),
    ("ips_ledger_applied_from_stream", "counter"),
    ("ips_ledger_order_reads", "counter"),
    ("ips_ledger_pins_released", "counter"),
    ("ips_ledger_pins_taken_over", "counter"),
    ("ips_ledger_store_unavailable_since_seconds", "gauge"),
    ("ips_ledger_consumer_pending", "gauge"),
    ("ips_ledger_consumer_ack_pending", "gauge"),
    ("ips_ledger_ledgers_live", "gauge"),
    ("ips_ledger_partitions_assigned", "gauge"),
    ("ips_access_log_entries", "counter"),
    ("ips_calls_refused", "counter"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ledgers_in_one_process_count_only_their_own_activity() -> anyhow::Result<()> {
    let busy = Stack::start().await?;
    let idle = Stack::start().await?;

    let referred = busy
        .municipality()
        .await?
        .refer_participant(as_caller(
            v1::ReferParticipantRequest {
                context: None,
                participant_id: String::new(),
                source: v1::ReferralSource::Vuxenpsykiatri as i32,
                referrer_unit: "hudiksvall-vuxenpsykiatri".into(),
            },
            "coach-17",
            Role::Coach,
            "hudiksvall-ips",
        ))
        .await?
        .into_inner();
    assert_eq!(referred.status, v1::WriteStatus::Accepted as i32);
    let entries = busy
        .timeline()
        .await?
        .get_timeline(testkit::as_auditor(v1::GetTimelineRequest {
            participant_id: referred.participant_id.clone(),
            min_sequence: 1,
            ..Default::default()
        }))
        .await?
        .into_inner()
        .entries;
    assert_eq!(entries.len(), 1);

    let (busy_head, busy_scrape) = tests::ledger_scrape(&busy).await?;
    let (_, idle_scrape) = tests::ledger_scrape(&idle).await?;
    assert!(
        busy_head
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{busy_head}"
    );
    for (family, kind) in LEDGER_FAMILIES {
        assert_eq!(
            busy_scrape.families.get(family).map(String::as_str),
            Some(kind),
            "{family} is served: {busy_scrape:?}"
        );
    }
    for series in [
        "ips_ledger_store_failures_total",
        "ips_ledger_store_unavailable_since_seconds",
        "ips_calls_refused_total{code=\"unauthenticated\"}",
        "ips_calls_refused_total{code=\"permission_denied\"}",
    ] {
        assert_eq!(busy_scrape.value(series), Some(0.0), "{series}");
    }
    for series in [
        "ips_ledger_events_accepted_total",
        "ips_access_log_entries_total",
    ] {
        let busy_value = busy_scrape.value(series);
        assert!(
            busy_value.is_some_and(|value| value >= 1.0),
            "{series} on the busy ledger: {busy_value:?}"
        );
        assert_eq!(
            idle_scrape.value(series),
            Some(0.0),
            "{series} on the idle ledger counts only its own activity"
        );
    }
    busy.stop().await;
    idle.stop().await;
    Ok(())
}
