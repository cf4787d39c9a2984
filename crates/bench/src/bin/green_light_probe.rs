//! Green-light probe (issue 4's figures): decision → coach push latency over `decisions` FK
//! approvals, and `PendingApprovals` latency with `open_gates` open gates, printed beside the
//! raw ceilings measured in the same run (bare JetStream publish with awaited ack, bare
//! PostgreSQL one-row transactions).
//!
//! `cargo run --release -p bench --bin green_light_probe -- [open_gates] [decisions]`
//! (defaults 10000 and 1000). The open gates are made through the real gRPC APIs: referral,
//! enrolment, FK sjukpenning, an arbetsträning proposal each, 20 participants per coach (the
//! caseload limit). The coaches of the first `decisions` participants each watch their board, as
//! coaches would, and those streams receive the pushes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::percentile;
use chrono::Utc;
use domain::Role;
use futures::future::join_all;
use proto::v1;
use tokio::sync::Mutex;
use tokio_stream::StreamExt;

const PARTICIPANTS_PER_COACH: usize = 20;

fn coach_of(index: usize) -> String {
    format!("coach-{}", index / PARTICIPANTS_PER_COACH)
}
const SEEDING_CLIENTS: usize = 32;

fn as_caller<T>(message: T, person: &str, role: Role) -> tonic::Request<T> {
    testkit::as_caller(message, person, role, "hudiksvall-ips")
}

fn at(days_from_today: i64) -> String {
    (domain::business_date(Utc::now()) + chrono::Duration::days(days_from_today)).to_string()
}

/// Makes one participant with an open FK gate; returns (participant, activity).
async fn open_gate(stack: &testkit::Stack, coach: &str) -> anyhow::Result<(String, String)> {
    let mut municipality = stack.municipality().await?;
    let mut fk = stack.forsakringskassan().await?;
    let referral = v1::ReferParticipantRequest {
        source: v1::ReferralSource::Ifo as i32,
        ..Default::default()
    };
    let participant_id = municipality
        .refer_participant(as_caller(referral, coach, Role::Coach))
        .await?
        .into_inner()
        .participant_id;
    let enrolment = v1::EnrollParticipantRequest {
        participant_id: participant_id.clone(),
        unit: "hudiksvall-ips".into(),
        coach_person_id: coach.into(),
        ..Default::default()
    };
    municipality
        .enroll_participant(as_caller(enrolment, coach, Role::Coach))
        .await?;
    // The coach sees FK's decisions, and FK the IPS unit's requests, only under consent; and
    // the light is GREEN only with consent from every gate-deciding party (without them it
    // stays UNKNOWN, and no push would ever count).
    for (discloser, recipient, category) in testkit::CONSENTS_FOR_THE_COACH_S_GREEN_LIGHT
        .into_iter()
        .chain([testkit::CONSENT_FOR_FK_TO_SEE_REQUESTS])
    {
        municipality
            .grant_consent(as_caller(
                v1::GrantConsentRequest {
                    participant_id: participant_id.clone(),
                    discloser: discloser as i32,
                    recipient: recipient as i32,
                    data_categories: vec![category as i32],
                    valid_from: at(-30),
                    valid_to: at(300),
                    ..Default::default()
                },
                coach,
                Role::Coach,
            ))
            .await?;
    }
    let write = || {
        Some(v1::ParticipantWrite {
            participant_id: participant_id.clone(),
            ..Default::default()
        })
    };
    let benefit = v1::RegisterBenefitRequest {
        write: write(),
        benefit: v1::BenefitKind::Sjukpenning as i32,
        degree_percent: 100,
        period: Some(v1::Period {
            from: at(-30),
            to: at(300),
        }),
        employed: false,
    };
    fk.register_benefit(testkit::as_fk_officer(benefit)).await?;
    let proposal = v1::ProposeActivityRequest {
        write: write(),
        kind: v1::ActivityKind::Arbetstraning as i32,
        hours_per_week: 20,
        planned_start: at(14),
        ..Default::default()
    };
    let activity_id = municipality
        .propose_activity(as_caller(proposal, coach, Role::Coach))
        .await?
        .into_inner()
        .created_id;
    Ok((participant_id, activity_id))
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = bench::numeric_arguments();
    let open_gates = arguments.first().copied().unwrap_or(10_000);
    let decisions = arguments.get(1).copied().unwrap_or(1_000).min(open_gates);
    // Every coach's board is watched through one test identity, so the per-officer limit on
    // open watches is lifted to the ledger's whole limit for this probe.
    let watch = ledger::config::WatchConfig::default();
    let stack = testkit::Stack::start_with(testkit::StackOptions {
        ledger_watch: Some(ledger::config::WatchConfig {
            watches_per_caller_max: watch.watches_max,
            ..watch
        }),
        ..testkit::StackOptions::default()
    })
    .await?;
    println!("green-light probe: {open_gates} open gates, {decisions} decisions pushed to their coaches' watches, fresh database and stream");

    let publish_ceiling = bench::ceilings::jetstream_publish_loop(&stack.bus_config, 2_000).await?;
    let insert_ceiling = bench::ceilings::postgres_insert_loop(&stack.database.url, 2_000).await?;

    // Seed through the real APIs, 32 clients at a time.
    let seeding = Instant::now();
    let mut watched = Vec::with_capacity(decisions);
    let mut next = 0;
    while next < open_gates {
        let batch: Vec<usize> = (next..(next + SEEDING_CLIENTS).min(open_gates)).collect();
        next += batch.len();
        let made = join_all(batch.iter().map(|index| {
            let coach = coach_of(*index);
            let stack = &stack;
            async move { open_gate(stack, &coach).await.map(|gate| (*index, gate)) }
        }))
        .await;
        for result in made {
            let (index, gate) = result?;
            if index < decisions {
                watched.push(gate);
            }
        }
    }
    let seeding = seeding.elapsed();

    // PendingApprovals with every gate open: first page and a deep page.
    let mut green_light = stack
        .green_light_as(domain::Agency::Forsakringskassan)
        .await?;
    let mut pending_latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let request = v1::PendingApprovalsRequest {
            agency: v1::Agency::Forsakringskassan as i32,
            page_size: 1000,
            ..Default::default()
        };
        let total = {
            let mut total = 0;
            let mut request = request.clone();
            loop {
                let page = green_light
                    .pending_approvals(testkit::as_fk_officer(request.clone()))
                    .await?
                    .into_inner();
                total += page.approvals.len();
                if page.next_page_token.is_empty() {
                    break total;
                }
                request.page_token = page.next_page_token;
            }
        };
        if total >= open_gates || Instant::now() > deadline {
            anyhow::ensure!(
                total >= open_gates,
                "only {total} of {open_gates} gates were projected"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..200 {
        let request = v1::PendingApprovalsRequest {
            agency: v1::Agency::Forsakringskassan as i32,
            unit: "hudiksvall-ips".into(),
            page_size: 100,
            ..Default::default()
        };
        let started = Instant::now();
        let page = green_light
            .pending_approvals(testkit::as_fk_officer(request))
            .await?
            .into_inner();
        pending_latencies.push(started.elapsed());
        anyhow::ensure!(page.approvals.len() == 100, "a full first page");
    }
    pending_latencies.sort();

    // Each watched coach's stream; record when each activity turns GREEN.
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let (arrivals, mut arrived) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watched_coaches = decisions.div_ceil(PARTICIPANTS_PER_COACH);
    for coach in 0..watched_coaches {
        let request = v1::WatchGreenLightRequest {
            coach_person_id: coach_of(coach * PARTICIPANTS_PER_COACH),
            ..Default::default()
        };
        let mut watch = stack
            .green_light()
            .await?
            .watch_green_light(testkit::as_coach(request))
            .await?
            .into_inner();
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Some(Ok(update)) = watch.next().await {
                if let Some(activity) = update
                    .activity
                    .filter(|activity| !update.initial && activity.light == v1::Light::Green as i32)
                {
                    if arrivals
                        .send((activity.activity_id, Instant::now()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
    }
    drop(arrivals);
    let receiver = {
        let (sent, committed) = (sent.clone(), committed.clone());
        tokio::spawn(async move {
            let mut from_send = Vec::new();
            let mut from_commit = Vec::new();
            while let Some((activity_id, at)) = arrived.recv().await {
                if let Some(started) = sent.lock().await.get(&activity_id) {
                    from_send.push(at - *started);
                }
                if let Some(verdict) = committed.lock().await.get(&activity_id) {
                    from_commit.push(at.saturating_duration_since(*verdict));
                }
                if from_send.len() == decisions {
                    break;
                }
            }
            (from_send, from_commit)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut fk = stack.forsakringskassan().await?;
    for (participant_id, activity_id) in &watched {
        let decision = v1::ActivityDecisionRequest {
            write: Some(v1::ParticipantWrite {
                participant_id: participant_id.clone(),
                ..Default::default()
            }),
            activity_id: activity_id.clone(),
            outcome: v1::DecisionOutcome::Approved as i32,
            valid: Some(v1::Period {
                from: at(0),
                to: at(90),
            }),
            reason: String::new(),
        };
        sent.lock()
            .await
            .insert(activity_id.clone(), Instant::now());
        fk.decide_activity(testkit::as_fk_officer(decision)).await?;
        committed
            .lock()
            .await
            .insert(activity_id.clone(), Instant::now());
    }
    let (mut from_send, mut from_commit) =
        tokio::time::timeout(Duration::from_secs(120), receiver).await??;
    from_send.sort();
    from_commit.sort();

    println!(
        "  raw ceiling: bare JetStream publish, ack awaited         : {:>8.2} ms each",
        milliseconds(publish_ceiling) / 2_000.0
    );
    println!(
        "  raw ceiling: bare PostgreSQL one-row transaction         : {:>8.2} ms each",
        milliseconds(insert_ceiling) / 2_000.0
    );
    println!(
        "  seeding {open_gates} open gates through gRPC (9 writes each): {:.1} s",
        seeding.as_secs_f64()
    );
    println!(
        "  decision sent → coach push (GREEN), {} decisions        : p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        from_send.len(),
        milliseconds(percentile(&from_send, 50.0)),
        milliseconds(percentile(&from_send, 99.0)),
        milliseconds(percentile(&from_send, 100.0))
    );
    println!(
        "  decision verdict returned → coach push                 : p50 {:.1} ms, p99 {:.1} ms",
        milliseconds(percentile(&from_commit, 50.0)),
        milliseconds(percentile(&from_commit, 99.0))
    );
    println!(
        "  PendingApprovals (first page of 100) with {open_gates} open : p50 {:.1} ms, p99 {:.1} ms",
        milliseconds(percentile(&pending_latencies, 50.0)),
        milliseconds(percentile(&pending_latencies, 99.0))
    );
    stack.stop().await;
    Ok(())
}
