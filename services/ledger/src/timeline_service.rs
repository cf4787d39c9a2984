//! `ips.v1.TimelineService`: a participant's timeline (from the read model), the status of a
//! submitted event, and chain verification (from the event store).
//!
//! Reads are paged and bounded; `min_sequence` lets a caller who just wrote read its own write
//! without polling, waiting at most `read_your_writes_wait_max_ms` for the projector.

use std::time::Duration;

use domain::{EventId, Outcome, ParticipantId};
use proto::v1::{self, timeline_service_server::TimelineService};
use proto::wire::{agency_token_to_wire, data_category_token_to_wire, WireEnum};
use rpc::{errors, fields};
use sqlx::PgPool;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::config::TimelineConfig;

/// The service implementation.
pub struct TimelineApi {
    pub(crate) pool: PgPool,
    pub(crate) folds: std::sync::Arc<crate::reading::ReadFolds>,
    pub(crate) access_log: crate::reading::AccessLog,
    pub(crate) config: TimelineConfig,
    pub(crate) projector_progress: watch::Receiver<u64>,
    pub(crate) clock: std::sync::Arc<dyn crate::clock::Clock>,
}

/// The access log's name for each read.
pub(crate) const GET_TIMELINE: &str = "ips.v1.TimelineService/GetTimeline";
const GET_EVENT_STATUS: &str = "ips.v1.TimelineService/GetEventStatus";
const VERIFY_CHAIN: &str = "ips.v1.TimelineService/VerifyChain";

/// What `reader` sees of one timeline row, and the row as they may see it: the domain's one
/// entry decision (`Participant::view_of_entry`), which an auditor's replay uses too. A row
/// whose stored values do not read is reported (`stored_history_unreadable`), never shown or
/// hidden on a guess.
fn visible_row(
    participant: &domain::Participant,
    reader: &domain::Reader,
    mut row: store::TimelineRow,
    today: chrono::NaiveDate,
) -> Result<Option<(domain::Basis, store::TimelineRow)>, store::StoreError> {
    let view = participant
        .view_of_stored_entry(
            reader,
            &row.agency,
            &row.data_category,
            std::mem::take(&mut row.body),
            today,
        )
        .map_err(|unreadable| {
            store::StoreError::Unreadable(format!("timeline entry {}: {unreadable}", row.sequence))
        })?;
    Ok(view.map(|view| {
        envelope_as_shown(&mut row, &view);
        row.body = view.body;
        (view.basis, row)
    }))
}

/// `row`'s envelope fields as the entry decision shows them (the type it is shown as, hashes
/// and author left out where `view` says): the one place the live read and the replay apply
/// the decision to a row, so they cannot drift.
pub(crate) fn envelope_as_shown<B>(
    row: &mut store::TimelineRow,
    view: &domain::entry_view::EntryView<B>,
) {
    row.event_type = view.shown_event_type(&row.event_type);
    if !view.hashes_shown {
        row.prev_hash.clear();
        row.hash.clear();
    }
    if !view.author_shown {
        row.actor_person_id.clear();
        row.actor_unit.clear();
    }
}

/// A `GetTimeline` request as the read path took it: what the access log keeps so the page can
/// be rebuilt (issue 11).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct TimelineRequestRecord {
    pub participant_id: uuid::Uuid,
    pub page_size: u32,
    pub after_sequence: u64,
    pub agencies: Vec<String>,
    pub event_types: Vec<String>,
    pub occurred_from: Option<chrono::DateTime<chrono::Utc>>,
    pub occurred_to: Option<chrono::DateTime<chrono::Utc>>,
}

impl TimelineRequestRecord {
    /// The rows to fetch: the types asked for, and the types that may be shown as one of
    /// them ([`domain::visibility::stored_types_shown_as`]); `TimelinePageScan` then keeps what is
    /// shown as a type asked for.
    pub(crate) fn filter(&self) -> store::TimelineFilter {
        store::TimelineFilter {
            agencies: self.agencies.clone(),
            event_types: fetched_event_types(&self.event_types),
            occurred_from: self.occurred_from,
            occurred_to: self.occurred_to,
        }
    }
}

/// The stored types to fetch for a filter on `asked` (empty: any).
fn fetched_event_types(asked: &[String]) -> Vec<String> {
    let mut fetched = asked.to_vec();
    for event_type in asked {
        for stored in domain::visibility::stored_types_shown_as(event_type) {
            if !fetched.iter().any(|already| already == stored) {
                fetched.push((*stored).to_owned());
            }
        }
    }
    fetched
}

/// What a page read asked for that decides which rows it shows: its size and the event types
/// it filtered on (as shown to the reader; empty: any).
#[derive(Clone, Copy)]
pub(crate) struct PageAsked<'a> {
    pub page_size: u32,
    pub event_types: &'a [String],
}

/// Rows a page scans past its first shown entry before it is cut short (its token then names
/// its last shown entry, so the next page goes on from there).
pub(crate) const TIMELINE_ROWS_SCANNED_MAX: usize = 10_000;
/// Most rows one statement reads after a page's first (which reads `page_size + 1`); each
/// further statement reads twice as many as the one before, up to this.
pub(crate) const TIMELINE_SCAN_BATCH_ROWS_MAX: i64 = 1_000;

/// A timeline page as `reader` sees it on `today`, built from the read model's rows in
/// sequence order, and the bases it was shown under. Shared by the live read and its rebuild.
///
/// The page holds the first `page_size` entries the reader is shown, and its token names the
/// last of them, only when one more shown entry follows. Rows the reader is not shown are
/// scanned past and never end a page or name its token: a token taken from a hidden row, or
/// a page cut at a hidden row, would tell a reader filtering on a type (or an agency, or a
/// date) they may not see that such an entry exists, and where.
pub(crate) struct TimelinePageScan<'a> {
    participant: &'a domain::Participant,
    reader: &'a domain::Reader,
    today: chrono::NaiveDate,
    asked: PageAsked<'a>,
    entries: Vec<v1::TimelineEntry>,
    bases: std::collections::BTreeSet<String>,
    last_shown_sequence: u64,
    more_shown: bool,
    rows_scanned: usize,
    scanned_through: Option<u64>,
    done: bool,
}

impl<'a> TimelinePageScan<'a> {
    /// An empty page for `reader`.
    pub(crate) fn new(
        participant: &'a domain::Participant,
        reader: &'a domain::Reader,
        today: chrono::NaiveDate,
        asked: PageAsked<'a>,
    ) -> Self {
        TimelinePageScan {
            participant,
            reader,
            today,
            asked,
            entries: Vec::new(),
            bases: std::collections::BTreeSet::new(),
            last_shown_sequence: 0,
            more_shown: false,
            rows_scanned: 0,
            scanned_through: None,
            done: false,
        }
    }

    /// Takes the next rows, in sequence order, until the page is decided.
    pub(crate) fn take(
        &mut self,
        rows: impl IntoIterator<Item = store::TimelineRow>,
    ) -> Result<(), Status> {
        let page_size = self.asked.page_size as usize;
        for row in rows {
            if self.done {
                break;
            }
            self.rows_scanned += 1;
            let sequence = row.sequence;
            self.scanned_through = Some(sequence);
            let visible = visible_row(self.participant, self.reader, row, self.today)
                .map_err(|error| crate::store_errors::from_store(&error))?;
            // Kept only when shown as a type asked for: a stay shown to the IPS unit as
            // `AvailabilityChanged` answers a filter on that type, not on its stored one.
            let shown = visible.filter(|(_, row)| {
                self.asked.event_types.is_empty()
                    || self.asked.event_types.contains(&row.event_type)
            });
            if let Some((basis, row)) = shown {
                if self.entries.len() == page_size {
                    self.more_shown = true;
                    self.done = true;
                    break;
                }
                self.bases.insert(basis.log_text());
                self.entries.push(entry(row)?);
                self.last_shown_sequence = sequence;
            }
            if self.rows_scanned >= TIMELINE_ROWS_SCANNED_MAX && !self.entries.is_empty() {
                self.more_shown = true;
                self.done = true;
            }
        }
        Ok(())
    }

    /// Whether the page is still open: more rows, if there are any, are wanted.
    pub(crate) fn wants_more(&self) -> bool {
        !self.done
    }

    /// The sequence of the last row taken, shown or not: where the next rows start.
    pub(crate) fn scanned_through(&self) -> Option<u64> {
        self.scanned_through
    }

    /// The page, with the chain's state, and the bases its entries were shown under.
    pub(crate) fn finish(
        self,
        participant_id: ParticipantId,
        chain: &domain::chain::ChainReport,
    ) -> (v1::GetTimelineResponse, std::collections::BTreeSet<String>) {
        let next_page_token = if self.more_shown {
            page_token(self.last_shown_sequence)
        } else {
            String::new()
        };
        let response = v1::GetTimelineResponse {
            participant_id: participant_id.to_string(),
            entries: self.entries,
            next_page_token,
            chain_broken_at_sequence: chain
                .first_broken_link
                .as_ref()
                .map_or(0, |link| link.sequence),
            chain_broken_reason: chain
                .first_broken_link
                .as_ref()
                .map(broken_reason)
                .unwrap_or_default(),
        };
        (response, self.bases)
    }
}

/// The last entry a chain verification looked at: every verified one, and the broken one.
pub(crate) fn chain_checked_through(chain: &domain::chain::ChainReport) -> u64 {
    chain
        .first_broken_link
        .as_ref()
        .map_or(chain.verified_entries, |link| link.sequence)
}

/// A broken link's reason as its stored name (`hash_mismatch`, ...).
fn broken_reason(link: &domain::chain::BrokenLink) -> String {
    link.reason.name().to_owned()
}

pub(crate) fn page_token(after_sequence: u64) -> String {
    format!("after:{after_sequence}")
}

pub(crate) fn parse_page_token(token: &str) -> Result<u64, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    token
        .strip_prefix("after:")
        .and_then(|number| number.parse().ok())
        .ok_or_else(|| {
            errors::invalid_input(&domain::InputError::new(
                "page_token",
                "is not a token this service issued",
            ))
        })
}

/// A timeline page with the participant's fold caught up to the same snapshot.
struct PageRead {
    /// The participant as stored (`None`: no history).
    fold: Option<std::sync::Arc<crate::reading::ReadFold>>,
    page: store::TimelinePage,
    projector_checkpoint: i64,
}

impl TimelineApi {
    /// The page and the participant's fold, caught up with each other in one statement: the
    /// page from the read model, and every event stored after the cached fold (with the
    /// append-only guard and the projector's checkpoint). When the read model does not yet
    /// hold `min_sequence`, waits for the next projected batch and reads again, at most
    /// `read_your_writes_wait_max_ms` in all (`DEADLINE_EXCEEDED`); a `reader` who may not
    /// open the participant is refused before waiting, judged on the same statement's fold.
    async fn read_page(
        &self,
        participant_id: ParticipantId,
        after_sequence: u64,
        limit: i64,
        filter: &store::TimelineFilter,
        min_sequence: u64,
        reader: &domain::Reader,
    ) -> Result<PageRead, Status> {
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.config.read_your_writes_wait_max_ms);
        let mut progress = self.projector_progress.clone();
        loop {
            let start = self.folds.start(participant_id.0);
            let read = store::timeline::page_with_stored_tail(
                &self.pool,
                participant_id,
                after_sequence,
                limit,
                filter,
                start.as_ref().map_or(0, |fold| fold.stored_through()),
            )
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
            let store::timeline::TimelineRead {
                page,
                stored_after,
                append_guard_fingerprint,
                projector_checkpoint,
            } = read;
            let caught_up = self
                .folds
                .caught_up(
                    participant_id.0,
                    start,
                    stored_after,
                    &append_guard_fingerprint,
                )
                .map_err(|error| crate::store_errors::from_store(&error))?;
            let fold = match caught_up {
                Some(fold) => Some(fold),
                // The fold was made under another append-only guard: folded afresh, in a
                // statement after the page's, so still not behind it.
                None => self
                    .folds
                    .current(&[participant_id.0])
                    .await
                    .map_err(|error| crate::store_errors::from_store(&error))?
                    .remove(&participant_id.0),
            };
            if page.head_sequence >= min_sequence {
                return Ok(PageRead {
                    fold,
                    page,
                    projector_checkpoint,
                });
            }
            // Whoever may not open the participant is refused before any wait for
            // `min_sequence`: the wait's outcome (and how long it took) would otherwise tell
            // them, polled, how far the history has got, which is every new entry of a
            // participant closed to them. (One not recorded yet is waited for, as before.)
            if let Err(refused) = crate::reading::opened(reader, participant_id.0, fold) {
                if refused.code() == tonic::Code::PermissionDenied {
                    return Err(refused);
                }
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                // The projected head is not named: the entries shown already say what the
                // reader may know of the history's length.
                return Err(Status::deadline_exceeded(format!(
                    "sequence {min_sequence} is not yet in the read models; retry shortly"
                )));
            }
            // Wake on the next projected batch, or re-check soon in case it was already missed.
            let _ =
                tokio::time::timeout(remaining.min(Duration::from_millis(50)), progress.changed())
                    .await;
        }
    }
}

/// Most event types one read may filter on.
const EVENT_TYPE_FILTERS_MAX: usize = 64;

fn timeline_filter(request: &v1::GetTimelineRequest) -> Result<store::TimelineFilter, Status> {
    let invalid =
        |field: &str, reason: &str| errors::invalid_input(&domain::InputError::new(field, reason));
    // Each agency at most once: the list is bounded by the agencies there are, not by the
    // request size (the filter is kept whole in every read's access-log entry).
    if request.agencies.len() > domain::Agency::ALL.len() {
        return Err(invalid("agencies", "names more agencies than there are"));
    }
    let agencies = request
        .agencies
        .iter()
        .map(|value| {
            domain::Agency::from_wire(*value)
                .map(|agency| agency.token().to_owned())
                .map_err(|_| invalid("agencies", "must name agencies"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if (1..agencies.len()).any(|index| agencies[..index].contains(&agencies[index])) {
        return Err(invalid("agencies", "names an agency more than once"));
    }
    if request.event_types.len() > EVENT_TYPE_FILTERS_MAX {
        return Err(invalid("event_types", "names more than 64 event types"));
    }
    if request.event_types.iter().any(|event_type| {
        event_type.is_empty()
            || event_type.len() > 64
            || !event_type
                .chars()
                .all(|character| character.is_ascii_alphanumeric())
    }) {
        return Err(invalid(
            "event_types",
            "must be event type names such as JobStarted",
        ));
    }
    let time = |field: &str, text: &str| {
        fields::optional_timestamp(field, text).map_err(|error| errors::invalid_input(&error))
    };
    Ok(store::TimelineFilter {
        agencies,
        event_types: request.event_types.clone(),
        occurred_from: time("occurred_from", &request.occurred_from)?,
        occurred_to: time("occurred_to", &request.occurred_to)?,
    })
}

pub(crate) fn entry(row: store::TimelineRow) -> Result<v1::TimelineEntry, Status> {
    let body_json = domain::chain::canonical_json(&row.body);
    entry_showing(row, body_json)
}

/// [`entry`] with the body already printed in canonical form (`row.body` is not read).
pub(crate) fn entry_showing(
    row: store::TimelineRow,
    body_json: String,
) -> Result<v1::TimelineEntry, Status> {
    let schema_version = u32::try_from(row.schema_version).map_err(|_| {
        crate::store_errors::from_store(&store::StoreError::Unreadable(format!(
            "timeline entry {}: schema version {} is negative",
            row.sequence, row.schema_version
        )))
    })?;
    Ok(v1::TimelineEntry {
        sequence: row.sequence,
        event_id: row.event_id.to_string(),
        event_type: row.event_type,
        agency: agency_token_to_wire(&row.agency),
        actor: Some(v1::Actor {
            person_id: row.actor_person_id,
            role: row.actor_role,
            unit: row.actor_unit,
        }),
        occurred_at: row
            .occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        recorded_at: row
            .recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        correlation_id: row
            .correlation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        causation_id: row
            .causation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        data_category: data_category_token_to_wire(&row.data_category),
        body_json,
        rejected_rule: row.rejected_rule.unwrap_or_default(),
        prev_hash: row.prev_hash,
        hash: row.hash,
        schema_version,
    })
}

#[tonic::async_trait]
impl TimelineService for TimelineApi {
    async fn get_timeline(
        &self,
        request: Request<v1::GetTimelineRequest>,
    ) -> Result<Response<v1::GetTimelineResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let participant_id = fields::required_participant_id(&request.participant_id)
            .map_err(|error| errors::invalid_input(&error))?;
        let page_size = match request.page_size {
            0 => self.config.page_size_default,
            size if size > self.config.page_size_max => {
                return Err(errors::invalid_input(&domain::InputError::new(
                    "page_size",
                    format!("must be at most {}", self.config.page_size_max),
                )));
            }
            size => size,
        };
        let after_sequence = parse_page_token(&request.page_token)?;
        let filter = timeline_filter(&request)?;
        let fetched_filter = store::TimelineFilter {
            event_types: fetched_event_types(&filter.event_types),
            ..filter.clone()
        };
        // One row more than the page tells whether another page follows, unless rows the
        // reader is not shown are among them (then more are read, below).
        let first_batch_rows = i64::from(page_size) + 1;
        let PageRead {
            fold,
            page,
            projector_checkpoint,
        } = self
            .read_page(
                participant_id,
                after_sequence,
                first_batch_rows,
                &fetched_filter,
                request.min_sequence,
                &reader,
            )
            .await?;
        let fold = crate::reading::opened(&reader, participant_id.0, fold)?;
        let participant = &fold.participant;
        // The page comes from the read model, which keeps what was projected before any edit
        // made around the append-only triggers; only the event store shows the edit, and the
        // fold verified its chain over every stored entry.
        let chain = fold.chain();
        let today = self.clock.today();
        let projector_checkpoint = Some(projector_checkpoint);
        let mut scan = TimelinePageScan::new(
            participant,
            &reader,
            today,
            PageAsked {
                page_size,
                event_types: &filter.event_types,
            },
        );
        let mut batch_rows = first_batch_rows;
        let mut batch_was_full = page.rows.len() as i64 == batch_rows;
        scan.take(page.rows)?;
        // Further rows are read only up to the read model's head as of the first statement
        // (the access log keeps that head, and rows up to it never change), so the page is the
        // one that head stood for.
        while scan.wants_more() && batch_was_full {
            batch_rows = batch_rows
                .saturating_mul(2)
                .min(TIMELINE_SCAN_BATCH_ROWS_MAX);
            let next = store::timeline::page(
                &self.pool,
                participant_id,
                scan.scanned_through().unwrap_or(after_sequence),
                batch_rows,
                &fetched_filter,
            )
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
            let rows: Vec<store::TimelineRow> = next
                .rows
                .into_iter()
                .filter(|row| row.sequence <= page.head_sequence)
                .collect();
            batch_was_full = rows.len() as i64 == batch_rows;
            scan.take(rows)?;
        }
        let (response, bases) = scan.finish(participant_id, &chain);
        let request_record = TimelineRequestRecord {
            participant_id: participant_id.0,
            page_size,
            after_sequence,
            agencies: filter.agencies,
            event_types: filter.event_types,
            occurred_from: filter.occurred_from,
            occurred_to: filter.occurred_to,
        };
        crate::reading::log_read(
            &self.access_log,
            &reader,
            GET_TIMELINE,
            &crate::reading::ReadContext {
                request: serde_json::to_value(&request_record).unwrap_or_default(),
                business_date: today,
                projector_checkpoint,
            },
            [crate::reading::ParticipantRead {
                participant_id: participant_id.0,
                basis: crate::reading::basis_text(&bases, "nothing_visible"),
                history_sequence: Some(participant.chain_head().0),
                read_model_sequence: Some(page.head_sequence),
                shown: Some(serde_json::json!({
                    "chain_checked_through": chain_checked_through(&chain),
                })),
            }],
        )
        .await?;
        if let Some(link) = &chain.first_broken_link {
            tracing::error!(%participant_id, sequence = link.sequence, reason = broken_reason(link), "timeline read of a broken hash chain");
        }
        Ok(Response::new(response))
    }

    async fn get_event_status(
        &self,
        request: Request<v1::GetEventStatusRequest>,
    ) -> Result<Response<v1::GetEventStatusResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let event_id =
            EventId::parse(&request.event_id).map_err(|error| errors::invalid_input(&error))?;
        let recorded = store::events::find_by_event_id(&self.pool, event_id)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        let mut response = v1::GetEventStatusResponse {
            event_id: event_id.to_string(),
            status: v1::EventStatus::Unknown as i32,
            ..Default::default()
        };
        // Only the recording agency learns what became of its event; to anyone else an event
        // id they did not write is as unknown as one never recorded.
        let recorded = recorded.filter(|recorded| recorded.event.envelope.agency == reader.agency);
        // Within the agency, an event of another party (social services' to the IPS unit, and
        // back), or of a participant the reader may not open (another unit, a protected
        // identity they are not on the list of), is as unknown too, unless the reader wrote
        // it (a write refused as `other_unit` must still learn its verdict).
        let recorded = match recorded {
            Some(recorded) if recorded.event.envelope.actor.person_id != reader.actor.person_id => {
                let envelope = &recorded.event.envelope;
                let same_party = domain::visibility::party_of(envelope.agency, envelope.actor.role)
                    == reader.party();
                (same_party
                    && crate::reading::opens(&self.folds, &reader, recorded.participant_id.0)
                        .await?)
                    .then_some(recorded)
            }
            other => other,
        };
        if let Some(recorded) = recorded {
            crate::reading::log(
                &self.access_log,
                &reader,
                GET_EVENT_STATUS,
                [(recorded.participant_id.0, "own_records".to_owned())],
            )
            .await?;
            response.participant_id = recorded.participant_id.to_string();
            response.sequence = recorded.sequence;
            // A refusal's hash commits to the gates it found missing, some of which its
            // submitter may not be told of (`refusal_explained_to`); with the hash they could
            // test guesses at them. An accepted entry's hash is the submitter's receipt.
            if recorded.event.is_accepted() {
                response.hash = recorded.event.hash.clone();
            }
            match &recorded.event.outcome {
                Outcome::Accepted => response.status = v1::EventStatus::Accepted as i32,
                Outcome::Rejected { rule } => {
                    let participant_id = recorded.participant_id.0;
                    let participant =
                        store::participants::load_recorded(&self.pool, participant_id)
                            .await
                            .map_err(|error| crate::store_errors::from_store(&error))?;
                    response.status = v1::EventStatus::Rejected as i32;
                    response.rejected_rule = rule.name().to_owned();
                    response.rejected_reason =
                        participant.refusal_explained_to(rule, &reader, self.clock.today());
                }
            }
        }
        Ok(Response::new(response))
    }

    async fn verify_chain(
        &self,
        request: Request<v1::VerifyChainRequest>,
    ) -> Result<Response<v1::VerifyChainResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let participant_id = fields::required_participant_id(&request.participant_id)
            .map_err(|error| errors::invalid_input(&error))?;
        // Auditors may open every participant, so their check does not fold the history first:
        // a row altered until it no longer decodes is exactly what they must still be shown.
        if reader.actor.role != domain::Role::Auditor {
            crate::reading::open_one(&self.folds, &reader, participant_id.0).await?;
        }
        let report = store::events::verify_chain(&self.pool, participant_id)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        if report.verified_entries == 0 && report.is_intact() {
            return Err(errors::participant_not_found(&participant_id.to_string()));
        }
        let basis = if reader.actor.role == domain::Role::Auditor {
            "audit"
        } else {
            "chain_verification"
        };
        crate::reading::log(
            &self.access_log,
            &reader,
            VERIFY_CHAIN,
            [(participant_id.0, basis.to_owned())],
        )
        .await?;
        let (first_broken_sequence, first_broken_reason) = match &report.first_broken_link {
            Some(link) => (link.sequence, broken_reason(link)),
            None => (0, String::new()),
        };
        Ok(Response::new(v1::VerifyChainResponse {
            participant_id: participant_id.to_string(),
            intact: report.is_intact(),
            verified_entries: report.verified_entries,
            head_hash: report.head_hash,
            first_broken_sequence,
            first_broken_reason,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule a filter is refused by, or `None` when it is taken.
    fn check(agencies: Vec<v1::Agency>, expected: Option<&str>) {
        let request = v1::GetTimelineRequest {
            agencies: agencies.into_iter().map(|agency| agency as i32).collect(),
            ..Default::default()
        };
        let refused = timeline_filter(&request).err();
        assert_eq!(
            refused.as_ref().map(|status| status.message().to_owned()),
            expected.map(str::to_owned),
            "{refused:?}"
        );
    }

    #[test]
    fn an_agency_filter_names_each_agency_at_most_once() {
        check(
            vec![v1::Agency::Psychiatry, v1::Agency::Forsakringskassan],
            None,
        );
        check(
            vec![v1::Agency::Psychiatry, v1::Agency::Psychiatry],
            Some("field `agencies` names an agency more than once"),
        );
        check(
            vec![v1::Agency::Psychiatry; 65_000],
            Some("field `agencies` names more agencies than there are"),
        );
    }
}
