//! Each running ledger owns its metrics: two stacks in one test process must not see each
//! other's counts (in-process test stacks, and any process that runs two ledgers, would read
//! nonsense otherwise), and the endpoint serves OpenMetrics text that parses and names what
//! the ledger exposes.

use domain::Role;
use proto::v1;
use testkit::{as_caller, Stack};

/// The value of the sample named exactly `sample` (labels included) in a scrape.
fn sample_value(scrape: &str, sample: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        line.strip_prefix(sample)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    })
}

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

    let busy_scrape = tests::ledger_metrics(&busy).await?;
    let idle_scrape = tests::ledger_metrics(&idle).await?;
    for (name, busy_at_least) in [
        ("ips_ledger_events_accepted_total", 1.0),
        ("ips_access_log_entries_total", 1.0),
    ] {
        let busy_value = sample_value(&busy_scrape, name);
        assert!(
            busy_value.is_some_and(|value| value >= busy_at_least),
            "{name} on the busy ledger: {busy_value:?}\n{busy_scrape}"
        );
        assert_eq!(
            sample_value(&idle_scrape, name),
            Some(0.0),
            "{name} on the idle ledger counts only its own activity:\n{idle_scrape}"
        );
    }
    busy.stop().await;
    idle.stop().await;
    Ok(())
}
