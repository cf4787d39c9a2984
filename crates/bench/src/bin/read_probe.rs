//! Read probe: what authentication and the access log cost on `GetTimeline`.
//!
//! Every read is authenticated (mTLS, an Ed25519 officer token, the access table) and logged
//! (one access-log INSERT before the data is returned), and there is no switch to turn either
//! off. So this probe measures the whole authenticated, logged `GetTimeline` and, in the same
//! run on the same data, each part on its own: token verification, the access-log insert, the
//! read's one statement (the page with the events stored after the ledger's kept fold, here
//! none), a whole-history fold (what a read costs when the participant is not kept folded),
//! and the raw ceiling — the same page read straight from the timeline read model, no gRPC.
//! "Without" is the full call minus the parts; the last line prints the call's p50 as a
//! multiple of the raw page read's (issue 14's target: at most 2×).
//!
//! `cargo run --release -p bench --bin read_probe -- [participants] [reads]` (defaults 50 and
//! 2000). Uses a fresh database and stream, like the tests.

use std::time::{Duration, Instant};

use bench::percentile;
use domain::{Agency, ParticipantId, Role};
use proto::v1;

/// Events per participant: a referral, an enrolment and consents.
const EVENTS_PER_PARTICIPANT: usize = 20;

fn summary(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
    println!(
        "  {name:<58} p50 {:>9.3} ms   p99 {:>9.3} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    (p50, p99)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = bench::numeric_arguments();
    let participants = arguments.first().copied().unwrap_or(50);
    let reads = arguments.get(1).copied().unwrap_or(2000);
    let stack = testkit::Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let mut participant_ids = Vec::new();
    for _ in 0..participants {
        let referred = municipality
            .refer_participant(testkit::as_coach(v1::ReferParticipantRequest {
                source: v1::ReferralSource::Ifo as i32,
                ..Default::default()
            }))
            .await?
            .into_inner();
        let participant_id = referred.participant_id;
        municipality
            .enroll_participant(testkit::as_coach(v1::EnrollParticipantRequest {
                participant_id: participant_id.clone(),
                unit: "hudiksvall-ips".into(),
                coach_person_id: "coach-17".into(),
                ..Default::default()
            }))
            .await?;
        for month in 0..EVENTS_PER_PARTICIPANT - 2 {
            municipality
                .grant_consent(testkit::as_coach(v1::GrantConsentRequest {
                    participant_id: participant_id.clone(),
                    discloser: v1::ConsentParty::SocialServices as i32,
                    recipient: v1::ConsentParty::IpsUnit as i32,
                    data_categories: vec![v1::DataCategory::SocialAssistanceStatus as i32],
                    valid_from: format!("2026-{:02}-01", month % 12 + 1),
                    valid_to: "2027-12-31".into(),
                    ..Default::default()
                }))
                .await?;
        }
        participant_ids.push(participant_id);
    }
    let request = |index: usize| v1::GetTimelineRequest {
        participant_id: participant_ids[index % participant_ids.len()].clone(),
        min_sequence: EVENTS_PER_PARTICIPANT as u64,
        page_size: 100,
        ..Default::default()
    };
    let mut timeline = stack.timeline().await?;
    // Warm up: connections, prepared statements, the projector caught up.
    for index in 0..participants {
        let entries = timeline
            .get_timeline(testkit::as_coach(request(index)))
            .await?
            .into_inner()
            .entries;
        anyhow::ensure!(
            entries.len() == EVENTS_PER_PARTICIPANT,
            "expected {EVENTS_PER_PARTICIPANT} entries, got {}",
            entries.len()
        );
    }

    println!(
        "read probe: {participants} participants × {EVENTS_PER_PARTICIPANT} events, {reads} sequential reads of one page each"
    );
    // The whole authenticated, logged read.
    let mut full = Vec::with_capacity(reads);
    for index in 0..reads {
        let started = Instant::now();
        timeline
            .get_timeline(testkit::as_coach(request(index)))
            .await?;
        full.push(started.elapsed());
    }
    // An authenticated call that reads one row and logs nothing (an unknown event id).
    let mut status_only = Vec::with_capacity(reads);
    for _ in 0..reads {
        let started = Instant::now();
        timeline
            .get_event_status(testkit::as_coach(v1::GetEventStatusRequest {
                event_id: uuid::Uuid::now_v7().to_string(),
            }))
            .await?;
        status_only.push(started.elapsed());
    }

    // The parts, measured on their own against the same database.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&stack.database.service_url())
        .await?;
    let mut raw_page = Vec::with_capacity(reads);
    let mut fold = Vec::with_capacity(reads);
    let mut page_with_tail = Vec::with_capacity(reads);
    let mut log_insert = Vec::with_capacity(reads);
    for index in 0..reads {
        let participant_id = ParticipantId::parse(&participant_ids[index % participant_ids.len()])?;
        let started = Instant::now();
        store::timeline::page(
            &pool,
            participant_id,
            0,
            101,
            &store::TimelineFilter::default(),
        )
        .await?;
        raw_page.push(started.elapsed());
        let started = Instant::now();
        store::timeline::page_with_stored_tail(
            &pool,
            participant_id,
            0,
            101,
            &store::TimelineFilter::default(),
            EVENTS_PER_PARTICIPANT as u64,
        )
        .await?;
        page_with_tail.push(started.elapsed());
        let started = Instant::now();
        store::participants::load(&pool, &[participant_id.0]).await?;
        fold.push(started.elapsed());
        let entry = store::access_log::AccessEntry {
            reader_person_id: "probe".into(),
            reader_role: "coach".into(),
            reader_unit: "hudiksvall-ips".into(),
            reader_agency: "municipality".into(),
            participant_id: participant_id.0,
            action: "probe".into(),
            basis: "own_records".into(),
            read: None,
        };
        let started = Instant::now();
        store::access_log::record(&pool, &[entry]).await?;
        log_insert.push(started.elapsed());
    }
    // The same token each time: a client reuses its officer's token, so after the first call
    // it is a kept one; and, with nothing kept, the Ed25519 check every first call makes.
    let authority = rpc::identity::Authority::from_config(&testkit::identity_config())
        .map_err(|error| anyhow::anyhow!(error))?;
    let authority_keeping_none =
        rpc::identity::Authority::from_config(&rpc::identity::IdentityConfig {
            verified_tokens_kept_max: 0,
            ..testkit::identity_config()
        })
        .map_err(|error| anyhow::anyhow!(error))?;
    let token = testkit::token(
        Agency::Municipality,
        "coach-17",
        Role::Coach,
        "hudiksvall-ips",
    );
    let authorization = format!("Bearer {token}");
    let mut verify = Vec::with_capacity(reads);
    let mut verify_first = Vec::with_capacity(reads);
    for (authority, samples) in [
        (&authority, &mut verify),
        (&authority_keeping_none, &mut verify_first),
    ] {
        for _ in 0..reads {
            let started = Instant::now();
            authority
                .authenticate(
                    Some(&authorization),
                    Some(Agency::Municipality),
                    chrono::Utc::now().timestamp(),
                )
                .map_err(|error| anyhow::anyhow!(error))?;
            samples.push(started.elapsed());
        }
    }

    let (full_p50, _) = summary(
        "GetTimeline: mTLS + token + access table + consent + log",
        full,
    );
    summary(
        "GetEventStatus, unknown id: mTLS + token + 1 lookup, no log",
        status_only,
    );
    let (raw_p50, _) = summary(
        "raw ceiling: the same page from the read model, no gRPC",
        raw_page,
    );
    summary(
        "part: the read's statement: page + stored tail (none) + guard",
        page_with_tail,
    );
    let (fold_p50, _) = summary(
        "part: fold a whole history (a participant not kept folded)",
        fold,
    );
    let (log_p50, _) = summary(
        "part: one access-log INSERT (its own transaction)",
        log_insert,
    );
    let (verify_p50, _) = summary(
        "part: token check, the token kept from an earlier call",
        verify,
    );
    summary(
        "part: token check, first call (Ed25519 + claims)",
        verify_first,
    );
    let without = full_p50.saturating_sub(log_p50 + verify_p50);
    println!(
        "  GetTimeline p50 with authentication and logging {:.3} ms; without them about {:.3} ms ({:.0}% of the call is the token check and the log insert); raw page read {:.3} ms; whole-history fold {:.3} ms",
        full_p50.as_secs_f64() * 1e3,
        without.as_secs_f64() * 1e3,
        100.0 * (log_p50 + verify_p50).as_secs_f64() / full_p50.as_secs_f64().max(f64::MIN_POSITIVE),
        raw_p50.as_secs_f64() * 1e3,
        fold_p50.as_secs_f64() * 1e3,
    );
    println!(
        "  GetTimeline p50 / raw page read p50: {:.2}× (target ≤ 2×); / (raw page read + one access-log INSERT, the two round trips a logged read cannot avoid): {:.2}×",
        full_p50.as_secs_f64() / raw_p50.as_secs_f64().max(f64::MIN_POSITIVE),
        full_p50.as_secs_f64() / (raw_p50 + log_p50).as_secs_f64().max(f64::MIN_POSITIVE)
    );
    pool.close().await;
    stack.stop().await;
    Ok(())
}
