//! The counts, by event id, once the faults are over and the system has drained: every answer
//! that promised storage is stored exactly once, every request that was answered UNAVAILABLE
//! and asked again ends stored exactly once, each participant's history is the writer's order
//! and the stream's order, every chain verifies (in the store and through `VerifyChain`),
//! nothing is parked, and the read models equal a rebuild from the events.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use domain::ParticipantId;
use futures::{StreamExt, TryStreamExt};
use proto::v1;

use crate::schedule::SeededRandom;
use crate::stack::ProbeStack;
use crate::workload::{Answer, ParticipantRecord};

/// How many participants' chains are also verified through the ledger's `VerifyChain` RPC (all
/// of them are verified in the store).
const CHAINS_VERIFIED_BY_RPC_MAX: usize = 200;

/// Most findings of one kind printed in full.
const FINDINGS_LISTED_MAX: usize = 20;

/// The read models the ledger's projector keeps, each with its key order.
const READ_MODELS: [(&str, &str); 3] = [
    ("timeline_entries", "participant_id, sequence"),
    ("caseload_participants", "participant_id"),
    ("green_light_gates", "participant_id, activity_id, gate"),
];

/// Everything counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests sent (each with its own `request_id`).
    pub requests: usize,
    /// Participants driven.
    pub participants: usize,
    /// Definite answers by kind.
    pub accepted: usize,
    /// PENDING answers.
    pub pending: usize,
    /// Rule refusals (FAILED_PRECONDITION): never expected from this workload.
    pub rejected: Vec<String>,
    /// Refused before the stream (never expected).
    pub refused: Vec<String>,
    /// No definite answer in time.
    pub wedged: Vec<String>,
    /// Requests answered UNAVAILABLE at least once, then asked again.
    pub retried_after_unavailable: usize,
    /// Of those, how many ended stored exactly once.
    pub retried_stored_once: usize,
    /// UNAVAILABLE answers in all.
    pub unavailable_answers: u64,
    /// Other unknown-outcome answers (asked again too), by code.
    pub other_unknown_answers: BTreeMap<String, u32>,
    /// Rows in the events table.
    pub stored_events: usize,
    /// Promised (ACCEPTED, PENDING or rejected) but not stored.
    pub lost: Vec<String>,
    /// Stored more than once (by event id).
    pub duplicated: Vec<String>,
    /// Stored, but no request was answered with that event id.
    pub unrequested: Vec<String>,
    /// Participants whose stored history differs from the writer's order or from stream order.
    pub misordered: Vec<String>,
    /// Chains verified in the store, and those that broke.
    pub chains_verified: usize,
    /// Broken chains.
    pub chains_broken: Vec<String>,
    /// Chains verified through the `VerifyChain` RPC, and those it reported broken.
    pub chains_verified_by_rpc: usize,
    /// Broken by the RPC's account, or the RPC failed.
    pub chains_broken_by_rpc: Vec<String>,
    /// Rows in `parked_messages`.
    pub parked: Vec<String>,
    /// Read models whose content differs from a rebuild from the events.
    pub read_model_differences: Vec<String>,
    /// Read-model rows compared.
    pub read_model_rows: usize,
    /// Messages the partition consumers still held at the end.
    pub consumers_outstanding: Option<u64>,
    /// Services that exited by themselves, and ledgers that did not drain on SIGTERM.
    pub crashed_services: Vec<String>,
    /// Faults that could not be carried out.
    pub failed_faults: Vec<String>,
}

impl Counts {
    /// Whether nothing was lost, duplicated, misordered, broken, parked, wedged or different.
    pub fn passed(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.unrequested.is_empty()
            && self.misordered.is_empty()
            && self.chains_broken.is_empty()
            && self.chains_broken_by_rpc.is_empty()
            && self.parked.is_empty()
            && self.read_model_differences.is_empty()
            && self.rejected.is_empty()
            && self.refused.is_empty()
            && self.wedged.is_empty()
            && self.crashed_services.is_empty()
            && self.failed_faults.is_empty()
            && self.retried_stored_once == self.retried_after_unavailable
            && self.consumers_outstanding == Some(0)
    }

    /// Counts the answers the writers collected.
    pub fn from_answers(participants: &[ParticipantRecord]) -> Self {
        let mut counts = Self {
            participants: participants.len(),
            ..Self::default()
        };
        for request in participants.iter().flat_map(|p| &p.requests) {
            counts.requests += 1;
            match &request.answer {
                Answer::Accepted => counts.accepted += 1,
                Answer::Pending => counts.pending += 1,
                Answer::Rejected { rule } => counts.rejected.push(format!(
                    "{} {} event {}: rule {rule}",
                    request.request_id, request.rpc, request.event_id
                )),
                Answer::Refused { status } => counts
                    .refused
                    .push(format!("{} {}: {status}", request.request_id, request.rpc)),
                Answer::Wedged { last } => counts.wedged.push(format!(
                    "{} {}: last answer {last}",
                    request.request_id, request.rpc
                )),
            }
            if request.unavailable_answers > 0 {
                counts.retried_after_unavailable += 1;
            }
            counts.unavailable_answers += u64::from(request.unavailable_answers);
            for (code, times) in &request.other_unknown_answers {
                *counts
                    .other_unknown_answers
                    .entry(code.clone())
                    .or_default() += times;
            }
        }
        counts
    }

    /// Holds the events table to the answers: loss, duplicates, order, chains, parking.
    pub async fn check_store(
        &mut self,
        stack: &ProbeStack,
        participants: &[ParticipantRecord],
        random: &mut SeededRandom,
    ) -> anyhow::Result<()> {
        let pool = stack.database.pool().await?;
        let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT event_id::text, aggregate_id, sequence, (metadata->>'stream_sequence')::bigint
             FROM events ORDER BY aggregate_id, sequence",
        )
        .fetch_all(&pool)
        .await?;
        let participant_ids = self.compare_with_store(participants, &rows);

        // Every chain, in the store.
        let reports: Vec<(ParticipantId, domain::chain::ChainReport)> =
            futures::stream::iter(participant_ids.iter().copied())
                .map(|participant_id| {
                    let pool = pool.clone();
                    async move {
                        let report = store::events::verify_chain(&pool, participant_id).await?;
                        anyhow::Ok((participant_id, report))
                    }
                })
                .buffer_unordered(4)
                .try_collect()
                .await?;
        self.chains_verified = reports.len();
        self.chains_broken = reports
            .iter()
            .filter(|(_, report)| !report.is_intact())
            .map(|(participant_id, report)| {
                format!("{participant_id}: {:?}", report.first_broken_link)
            })
            .collect();

        // A sample through the ledger's own RPC, as an auditor would ask.
        let mut sample = participant_ids.clone();
        random.shuffle(&mut sample);
        sample.truncate(CHAINS_VERIFIED_BY_RPC_MAX);
        let mut timeline = v1::timeline_service_client::TimelineServiceClient::new(
            testkit::channel_as(stack.ledger_address(0), domain::Agency::Municipality).await?,
        );
        for participant_id in sample {
            let request = v1::VerifyChainRequest {
                participant_id: participant_id.to_string(),
            };
            self.chains_verified_by_rpc += 1;
            match timeline
                .verify_chain(testkit::as_team_leader(request))
                .await
            {
                Ok(response) if response.get_ref().intact => {}
                Ok(response) => self
                    .chains_broken_by_rpc
                    .push(format!("{participant_id}: {:?}", response.into_inner())),
                Err(status) => self
                    .chains_broken_by_rpc
                    .push(format!("{participant_id}: VerifyChain failed: {status:?}")),
            }
        }

        let parked: Vec<(i64, String)> =
            sqlx::query_as("SELECT stream_sequence, reason FROM parked_messages ORDER BY 1")
                .fetch_all(&pool)
                .await?;
        self.parked = parked
            .into_iter()
            .map(|(position, reason)| format!("stream position {position}: {reason}"))
            .collect();
        pool.close().await;
        Ok(())
    }

    /// Holds the stored rows (event id, participant, sequence, stream position; ordered by
    /// participant and sequence) to the answers; the participants found in the store.
    fn compare_with_store(
        &mut self,
        participants: &[ParticipantRecord],
        rows: &[(String, String, i64, Option<i64>)],
    ) -> Vec<ParticipantId> {
        self.stored_events = rows.len();
        let mut stored_times: BTreeMap<&str, usize> = BTreeMap::new();
        let mut histories: BTreeMap<&str, Vec<(&str, Option<i64>)>> = BTreeMap::new();
        for (event_id, participant_id, _, stream_sequence) in rows {
            *stored_times.entry(event_id).or_default() += 1;
            histories
                .entry(participant_id)
                .or_default()
                .push((event_id, *stream_sequence));
        }
        self.duplicated = stored_times
            .iter()
            .filter(|(_, times)| **times > 1)
            .map(|(event_id, times)| format!("{event_id} stored {times} times"))
            .collect();

        let mut answered: BTreeSet<&str> = BTreeSet::new();
        for participant in participants {
            for request in &participant.requests {
                if request.event_id.is_empty() {
                    continue;
                }
                answered.insert(&request.event_id);
                let times = stored_times
                    .get(request.event_id.as_str())
                    .copied()
                    .unwrap_or(0);
                if request.answer.promises_storage() && times == 0 {
                    self.lost.push(format!(
                        "{} {} answered {:?} (after {} UNAVAILABLE) as event {} of participant {}: not stored",
                        request.request_id,
                        request.rpc,
                        request.answer,
                        request.unavailable_answers,
                        request.event_id,
                        participant.participant_id
                    ));
                }
                if request.unavailable_answers > 0 && times == 1 {
                    self.retried_stored_once += 1;
                }
            }
            // The stored history must be the writer's order, each promised event once, and
            // its stream positions must rise with it.
            let expected: Vec<&str> = participant
                .requests
                .iter()
                .filter(|request| request.answer.promises_storage())
                .map(|request| request.event_id.as_str())
                .collect();
            let stored = histories
                .get(participant.participant_id.as_str())
                .cloned()
                .unwrap_or_default();
            let stored_ids: Vec<&str> = stored.iter().map(|(event_id, _)| *event_id).collect();
            let stream_order_holds = stored
                .windows(2)
                .all(|pair| matches!((pair[0].1, pair[1].1), (Some(a), Some(b)) if a < b));
            let stream_positions_known = stored.iter().all(|(_, position)| position.is_some());
            if stored_ids != expected || !stream_order_holds || !stream_positions_known {
                self.misordered.push(format!(
                    "participant {}: sent {expected:?}; stored (event id, stream position) {stored:?}",
                    participant.participant_id
                ));
            }
        }
        self.unrequested = stored_times
            .keys()
            .filter(|event_id| !answered.contains(*event_id))
            .map(|event_id| format!("{event_id} stored, answered to no request"))
            .collect();

        histories
            .keys()
            .filter_map(|id| uuid::Uuid::parse_str(id).ok().map(ParticipantId))
            .collect()
    }

    /// Compares the read models the ledgers projected with a rebuild from the events (the
    /// ledgers must be stopped, so nothing projects meanwhile).
    pub async fn check_read_models(&mut self, stack: &ProbeStack) -> anyhow::Result<()> {
        let pool = stack.database.pool().await?;
        for (table, _) in READ_MODELS {
            sqlx::query(&format!("CREATE TABLE probe_live_{table} AS TABLE {table}"))
                .execute(&pool)
                .await?;
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pool)
                .await?;
            self.read_model_rows += usize::try_from(rows)?;
        }
        let tables = READ_MODELS.map(|(table, _)| table).join(", ");
        sqlx::query(&format!("TRUNCATE {tables}"))
            .execute(&pool)
            .await?;
        sqlx::query("DELETE FROM projector_checkpoints")
            .execute(&pool)
            .await?;
        let projector =
            store::TimelineProjector::new(pool.clone(), store::ProjectorConfig::default());
        while projector.project_batch().await? > 0 {}
        for (table, key) in READ_MODELS {
            let only = |left: &str, right: &str| {
                format!(
                    "SELECT count(*) FROM (TABLE {left} EXCEPT ALL TABLE {right}) AS difference"
                )
            };
            let live = format!("probe_live_{table}");
            let only_live: i64 = sqlx::query_scalar(&only(&live, table))
                .fetch_one(&pool)
                .await?;
            let only_rebuilt: i64 = sqlx::query_scalar(&only(table, &live))
                .fetch_one(&pool)
                .await?;
            if only_live != 0 || only_rebuilt != 0 {
                let mut example = String::new();
                let first: Option<String> = sqlx::query_scalar(&format!(
                    "SELECT t::text FROM (TABLE {live} EXCEPT ALL TABLE {table}) t ORDER BY {key} LIMIT 1"
                ))
                .fetch_optional(&pool)
                .await?;
                if let Some(first) = first {
                    let _ = write!(example, "; first live-only row {first}");
                }
                self.read_model_differences.push(format!(
                    "{table}: {only_live} rows only in the live read model, {only_rebuilt} only in the rebuild{example}"
                ));
            }
        }
        pool.close().await;
        Ok(())
    }

    /// The report's lines.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let mut line = |line: String| {
            text.push_str(&line);
            text.push('\n');
        };
        line(format!(
            "requests {} over {} participants: ACCEPTED {}, PENDING {}, rule refusals {}, other refusals {}, wedged {}",
            self.requests,
            self.participants,
            self.accepted,
            self.pending,
            self.rejected.len(),
            self.refused.len(),
            self.wedged.len()
        ));
        line(format!(
            "UNAVAILABLE answers {}; requests answered UNAVAILABLE then retried {}, of which stored exactly once {}",
            self.unavailable_answers, self.retried_after_unavailable, self.retried_stored_once
        ));
        line(format!(
            "other unknown-outcome answers, retried: {:?}",
            self.other_unknown_answers
        ));
        line(format!(
            "stored events {}; lost {}; duplicated {}; stored but never answered {}; participants misordered {}",
            self.stored_events,
            self.lost.len(),
            self.duplicated.len(),
            self.unrequested.len(),
            self.misordered.len()
        ));
        line(format!(
            "chains verified in the store {} (broken {}); through VerifyChain {} (broken or failed {})",
            self.chains_verified,
            self.chains_broken.len(),
            self.chains_verified_by_rpc,
            self.chains_broken_by_rpc.len()
        ));
        line(format!(
            "parked {}; read-model rows {} compared with a rebuild, differing tables {}; messages left in the consumers {}",
            self.parked.len(),
            self.read_model_rows,
            self.read_model_differences.len(),
            self.consumers_outstanding
                .map_or("unknown (cluster did not answer)".to_owned(), |count| count.to_string())
        ));
        for (name, findings) in [
            ("LOST", &self.lost),
            ("DUPLICATED", &self.duplicated),
            ("NEVER ANSWERED", &self.unrequested),
            ("MISORDERED", &self.misordered),
            ("CHAIN BROKEN", &self.chains_broken),
            ("CHAIN BROKEN (RPC)", &self.chains_broken_by_rpc),
            ("PARKED", &self.parked),
            ("READ MODEL", &self.read_model_differences),
            ("RULE REFUSAL", &self.rejected),
            ("REFUSED", &self.refused),
            ("WEDGED", &self.wedged),
            ("SERVICE", &self.crashed_services),
            ("FAULT FAILED", &self.failed_faults),
        ] {
            for finding in findings.iter().take(FINDINGS_LISTED_MAX) {
                line(format!("  {name}: {finding}"));
            }
            if findings.len() > FINDINGS_LISTED_MAX {
                line(format!(
                    "  {name}: ... and {} more",
                    findings.len() - FINDINGS_LISTED_MAX
                ));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::RequestRecord;

    const PARTICIPANT: &str = "0190a0b0-0000-7000-8000-000000000001";

    fn request(event_id: &str, answer: Answer, unavailable_answers: u32) -> RequestRecord {
        RequestRecord {
            request_id: format!("request-{event_id}"),
            rpc: "RecordProfile",
            event_id: event_id.to_owned(),
            answer,
            unavailable_answers,
            other_unknown_answers: BTreeMap::new(),
        }
    }

    /// Three requests: accepted, pending, and one answered UNAVAILABLE before it was accepted.
    fn sent() -> Vec<ParticipantRecord> {
        vec![ParticipantRecord {
            participant_id: PARTICIPANT.into(),
            requests: vec![
                request("e1", Answer::Accepted, 0),
                request("e2", Answer::Pending, 0),
                request("e3", Answer::Accepted, 2),
            ],
        }]
    }

    fn row(
        event_id: &str,
        sequence: i64,
        stream_position: i64,
    ) -> (String, String, i64, Option<i64>) {
        (
            event_id.into(),
            PARTICIPANT.into(),
            sequence,
            Some(stream_position),
        )
    }

    fn compared(rows: &[(String, String, i64, Option<i64>)]) -> Counts {
        let participants = sent();
        let mut counts = Counts::from_answers(&participants);
        counts.consumers_outstanding = Some(0);
        counts.compare_with_store(&participants, rows);
        counts
    }

    #[test]
    fn a_store_that_holds_every_answer_once_in_order_passes() {
        let counts = compared(&[row("e1", 1, 10), row("e2", 2, 11), row("e3", 3, 15)]);
        assert!(counts.passed(), "{}", counts.render());
        assert_eq!(counts.retried_stored_once, 1);
    }

    #[test]
    fn loss_duplicates_strangers_and_misorder_are_each_found() {
        let lost = compared(&[row("e1", 1, 10), row("e3", 2, 15)]);
        assert_eq!(lost.lost.len(), 1, "{}", lost.render());
        assert!(!lost.passed());

        let lost_retry = compared(&[row("e1", 1, 10), row("e2", 2, 11)]);
        assert_eq!(lost_retry.retried_stored_once, 0);
        assert!(!lost_retry.passed());

        let duplicated = compared(&[
            row("e1", 1, 10),
            row("e2", 2, 11),
            row("e3", 3, 15),
            row("e3", 4, 16),
        ]);
        assert_eq!(duplicated.duplicated.len(), 1);
        assert!(!duplicated.passed());

        let stranger = compared(&[
            row("e1", 1, 10),
            row("e2", 2, 11),
            row("e3", 3, 15),
            row("e9", 4, 16),
        ]);
        assert_eq!(stranger.unrequested.len(), 1);
        assert!(!stranger.passed());

        let swapped = compared(&[row("e1", 1, 10), row("e3", 2, 15), row("e2", 3, 11)]);
        assert_eq!(swapped.misordered.len(), 1);
        assert!(!swapped.passed());

        let against_the_stream = compared(&[row("e1", 1, 10), row("e2", 2, 16), row("e3", 3, 15)]);
        assert_eq!(against_the_stream.misordered.len(), 1);
        assert!(!against_the_stream.passed());
    }
}
