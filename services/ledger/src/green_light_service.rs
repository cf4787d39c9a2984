//! `ips.v1.GreenLightService`: the officers' pending approvals, the coaches' live green lights
//! and the team leaders' lead times, from the green-light read model.
//!
//! Statuses that depend on time (an approval that has expired, or expires within 5 days) are
//! computed against the ledger's clock when read. A watch is pushed from the projected change:
//! it re-reads the participants a projected batch changed (the projector announces them), and
//! everything when the business day turns, the one instant at which a time-driven status can
//! change without any request arriving (a decision expires at the end of its validity). What the answers hold is built in `green_light_view` (no I/O); this file
//! keeps the handlers: the request's checks, the reads, the access log and the watch loop.
//!
//! The lead times are an aggregate over participants, so their disclosure control lives here
//! too: whole ended months only, and a gate's figures withheld unless each of its months holds
//! `reports.lead_time_cell_count_min` decisions (`reported_months`, `lead_time_report`).

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::InputError;
use proto::v1::{self, green_light_service_server::GreenLightService};
use proto::wire::{WireEnum, WireEnumError};
use rpc::{errors, fields};
use sqlx::PgPool;
use store::projector::ProjectedChange;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::clock::Clock;
pub use crate::green_light_view::EXPIRING_WITHIN_DAYS;
use crate::green_light_view::{
    lead_time, lights, parse_page_token, running_approvals_ending_by, sip_due, sip_push, sort_sips,
    watch_basis, watch_push, PendingPage, PendingScan, SipCoach, SIPS_LISTED_MAX,
};

/// Most open gates one watch follows.
pub const WATCHED_GATES_MAX: i64 = 5_000;
/// Updates queued per watch before the watch waits for the client.
pub const WATCH_QUEUE_LENGTH_MAX: usize = 256;

pub(crate) const PENDING_APPROVALS: &str = "ips.v1.GreenLightService/PendingApprovals";
pub(crate) const WATCH_GREEN_LIGHT: &str = "ips.v1.GreenLightService/WatchGreenLight";

/// A `PendingApprovals` request as the read path took it: what the access log keeps so the page
/// can be rebuilt (issue 11).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PendingRequestRecord {
    pub agency: String,
    pub unit: Option<String>,
    pub page_size: u32,
    /// The page token the read continued from (empty: the first page).
    pub after: String,
}

/// A `WatchGreenLight` request as the read path took it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct WatchRequestRecord {
    pub coach_person_id: Option<String>,
    pub participant_id: Option<uuid::Uuid>,
}

/// The service implementation.
pub struct GreenLightApi {
    pub(crate) pool: PgPool,
    pub(crate) folds: std::sync::Arc<crate::reading::ReadFolds>,
    pub(crate) access_log: crate::reading::AccessLog,
    pub(crate) clock: Arc<dyn Clock>,
    /// The projector's announcements of what each batch changed: what wakes a watch (each
    /// watch resubscribes; a receiver, so the stream closes when the projector stops).
    pub(crate) projected_changes: broadcast::Receiver<ProjectedChange>,
    /// `reports.lead_time_cell_count_min`: see [`lead_time_report`].
    pub(crate) lead_time_cell_count_min: u32,
    /// The open watches, bounded by `watch.*`.
    pub(crate) watches: Arc<WatchSlots>,
}

/// The watches open on this ledger, in all and per officer (`watch.watches_max`,
/// `watch.watches_per_caller_max`): each holds a task that re-reads its board on every
/// projected batch touching it, so one credential opening thousands would load every batch.
pub(crate) struct WatchSlots {
    config: crate::config::WatchConfig,
    /// Watches open per officer (agency and person id); the ledger's total is their sum.
    open: std::sync::Mutex<std::collections::HashMap<(domain::Agency, String), u32>>,
}

impl WatchSlots {
    pub(crate) fn new(config: crate::config::WatchConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            open: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// A slot for one more watch by `reader`, given back when the watch ends; or
    /// `RESOURCE_EXHAUSTED` naming the limit reached.
    pub(crate) fn take(self: &Arc<Self>, reader: &domain::Reader) -> Result<WatchSlot, Status> {
        let caller = (reader.agency, reader.actor.person_id.0.clone());
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.values().sum::<u32>() >= self.config.watches_max {
            return Err(errors::limit_reached(
                "watch.watches_max",
                &format!(
                    "watch.watches_max: this ledger already has {} watches open; retry later",
                    self.config.watches_max
                ),
            ));
        }
        let by_caller = open.get(&caller).copied().unwrap_or(0);
        if by_caller >= self.config.watches_per_caller_max {
            return Err(errors::limit_reached(
                "watch.watches_per_caller_max",
                &format!(
                    "watch.watches_per_caller_max: you already have {by_caller} watches open; close one first"
                ),
            ));
        }
        open.insert(caller.clone(), by_caller + 1);
        Ok(WatchSlot {
            slots: self.clone(),
            caller,
        })
    }
}

/// One open watch's place in [`WatchSlots`], given back when dropped (the watch's task ends).
pub(crate) struct WatchSlot {
    slots: Arc<WatchSlots>,
    caller: (domain::Agency, String),
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(by_caller) = open.get_mut(&self.caller) {
            *by_caller = by_caller.saturating_sub(1);
            if *by_caller == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

/// What a watch reads next.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reread {
    /// Its whole board (the first read, a new day, an announcement it fell behind).
    Everything,
    /// Only these participants, which a projected batch changed.
    Participants(Vec<uuid::Uuid>),
}

impl Reread {
    fn and(self, other: Self) -> Self {
        match (self, other) {
            (Self::Participants(mut these), Self::Participants(those)) => {
                these.extend(those);
                these.sort_unstable();
                these.dedup();
                Self::Participants(these)
            }
            _ => Self::Everything,
        }
    }
}

/// What an announcement means for one watch.
enum Wanted {
    /// Read again.
    Reread(Reread),
    /// The projector is gone (the ledger stops): the watch ends.
    Stop,
}

/// The next announcement already waiting, if any (`Err(Lagged)` included: it means "everything").
fn pending_change(
    changes: &mut broadcast::Receiver<ProjectedChange>,
) -> Option<Result<ProjectedChange, broadcast::error::RecvError>> {
    match changes.try_recv() {
        Ok(change) => Some(Ok(change)),
        Err(broadcast::error::TryRecvError::Empty) => None,
        Err(broadcast::error::TryRecvError::Lagged(missed)) => {
            Some(Err(broadcast::error::RecvError::Lagged(missed)))
        }
        Err(broadcast::error::TryRecvError::Closed) => {
            Some(Err(broadcast::error::RecvError::Closed))
        }
    }
}

/// The read-model rows a watch shows, kept between reads so an announcement re-reads only the
/// participants it names.
#[derive(Default)]
struct WatchedBoard {
    rows: BTreeMap<uuid::Uuid, Vec<store::green_light::GateRow>>,
    owed: BTreeMap<uuid::Uuid, store::CaseloadRow>,
    /// The business day the board was read on.
    read_on: Option<chrono::NaiveDate>,
}

impl WatchedBoard {
    /// Takes what a read found: the whole board (`among` none), or the rows of `among`
    /// (replacing theirs; a participant without rows now has left the board).
    fn take(
        &mut self,
        among: Option<&[uuid::Uuid]>,
        rows: Vec<store::green_light::GateRow>,
        owed: Vec<store::CaseloadRow>,
        today: chrono::NaiveDate,
    ) {
        match among {
            None => {
                self.rows.clear();
                self.owed.clear();
                self.read_on = Some(today);
            }
            Some(among) => {
                for participant_id in among {
                    self.rows.remove(participant_id);
                    self.owed.remove(participant_id);
                }
            }
        }
        for row in rows {
            self.rows.entry(row.participant_id).or_default().push(row);
        }
        for row in owed {
            self.owed.insert(row.participant_id.0, row);
        }
    }

    fn beyond_limits(&self) -> bool {
        let gates: usize = self.rows.values().map(Vec::len).sum();
        gates as i64 > WATCHED_GATES_MAX || self.owed.len() as i64 > SIPS_LISTED_MAX
    }

    /// The rows in the order one full read returns them (participant, activity, gate).
    fn rows(&self) -> Vec<store::green_light::GateRow> {
        self.rows.values().flatten().cloned().collect()
    }

    /// The SIPs owed, earliest notice first, as one full read returns them.
    fn owed(&self) -> Vec<store::CaseloadRow> {
        let mut owed: Vec<store::CaseloadRow> = self.owed.values().cloned().collect();
        owed.sort_by_key(|row| (row.sip_ready_on, row.participant_id.0));
        owed
    }

    /// Every participant on the board, sorted.
    fn participants(&self) -> Vec<uuid::Uuid> {
        let mut listed: Vec<uuid::Uuid> =
            self.rows.keys().chain(self.owed.keys()).copied().collect();
        listed.sort_unstable();
        listed.dedup();
        listed
    }

    /// Which of an announcement's participants this watch must read again: those on its
    /// board, the one it watches, and those its coach now has. `None`: none of them.
    fn wanted(
        &self,
        change: Result<ProjectedChange, broadcast::error::RecvError>,
        coach: Option<&domain::PersonId>,
        participant: Option<domain::ParticipantId>,
    ) -> Option<Wanted> {
        let changed = match change {
            Ok(ProjectedChange::Participants(changed)) => changed,
            Ok(ProjectedChange::Everything) | Err(broadcast::error::RecvError::Lagged(_)) => {
                return Some(Wanted::Reread(Reread::Everything))
            }
            Err(broadcast::error::RecvError::Closed) => return Some(Wanted::Stop),
        };
        let wanted: Vec<uuid::Uuid> = changed
            .iter()
            .filter(|(participant_id, coaches)| {
                self.rows.contains_key(*participant_id)
                    || self.owed.contains_key(*participant_id)
                    || participant.is_some_and(|watched| watched.0 == **participant_id)
                    || coach.is_some_and(|coach| coaches.contains(&coach.0))
            })
            .map(|(participant_id, _)| *participant_id)
            .collect();
        (!wanted.is_empty()).then_some(Wanted::Reread(Reread::Participants(wanted)))
    }
}

/// Adds to a social-services officer's first page the SIPs owed among the participants they
/// may open, as they may see them (`Participant::sip_shown_to`), without the coach; each
/// participant shown is added to the page's bases. Returns the participants whose SIP is shown.
pub(crate) fn social_services_sips(
    page: &mut PendingPage,
    reader: &domain::Reader,
    openable: &std::collections::HashMap<uuid::Uuid, domain::Participant>,
    today: chrono::NaiveDate,
) -> std::collections::BTreeSet<uuid::Uuid> {
    let mut shown = std::collections::BTreeSet::new();
    for (participant_id, participant) in openable {
        let Some((sip, basis)) = sip_due(
            *participant_id,
            participant,
            reader,
            today,
            SipCoach::Withheld,
        ) else {
            continue;
        };
        let bases: std::collections::BTreeSet<String> = page
            .bases
            .get(participant_id)
            .into_iter()
            .flat_map(|bases| bases.split(','))
            .map(str::to_owned)
            .chain([basis.log_text()])
            .collect();
        page.bases.insert(
            *participant_id,
            crate::reading::basis_text(&bases, "own_records"),
        );
        page.response.sips_due.push(sip);
        shown.insert(*participant_id);
    }
    sort_sips(&mut page.response.sips_due);
    shown
}

/// The whole calendar months a lead-time report over `[from, to]` covers on business day
/// `today`: from the first day of `from`'s month to the last day of `to`'s month, but no later
/// than the last month that has ended. `None`: no month of the period has ended yet.
///
/// Why whole months, and only ended ones (see [`lead_time_report`] for the cells): a figure
/// over a period the reader chooses to the day could be subtracted from the figure over the
/// same period one day longer, leaving that one day's decisions however large both cells are;
/// and a month still running could be read each evening, each day's decisions being the
/// difference. Periods made of fixed, closed months leave a reader only whole months to
/// subtract, and each month shown holds enough decisions (the cell minimum). For the same
/// reason no minimum period length is configured: a long period reaching one day past
/// another would subtract to that day, so the length alone protects nothing, while a one-day
/// request simply reads its whole month, where the cell minimum applies.
pub(crate) fn reported_months(
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    today: chrono::NaiveDate,
) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    use chrono::Datelike;
    let first_day = |day: chrono::NaiveDate| day.with_day(1).unwrap_or(day);
    let last_day = |day: chrono::NaiveDate| {
        let next_month = first_day(day) + chrono::Duration::days(32);
        first_day(next_month) - chrono::Duration::days(1)
    };
    let start = first_day(from);
    let last_ended = first_day(today) - chrono::Duration::days(1);
    let end = last_day(to).min(last_ended);
    (start <= end).then_some((start, end))
}

/// The report's cells on the wire: (shown, suppressed). A cell (one gate, its deciding agency,
/// the months covered) is shown only when every covered month in which that gate had any
/// decision had at least `cell_count_min` of them; every other gate, those with no decision
/// at all included, is listed as suppressed without figures, so a reader cannot tell a gate
/// decided once from one not decided (which gates apply is itself the agencies' information).
///
/// Nothing a reader receives adds up to a suppressed cell. The report has no total (no "all
/// gates" line or per-agency sum): each gate is decided by exactly one agency, so a cell is
/// the only figure about its decisions and no other returned figure contains them. What could
/// contain them is the same gate over another period, which is why a cell is judged by its
/// thinnest month rather than its total: two reports over different months differ by whole
/// months, and were any month with 1 to `cell_count_min - 1` decisions inside a shown cell,
/// the report over the months without it would subtract to it. A median or 90th percentile
/// cannot be subtracted, and the month-level rule keeps even what two of them bracket to a
/// group of at least `cell_count_min`.
pub(crate) fn lead_time_report(
    cells: Vec<store::green_light::LeadTimeCell>,
    cell_count_min: u32,
) -> (Vec<v1::GateLeadTime>, Vec<v1::GateLeadTime>) {
    let withheld = |gate: String, agency: String| lead_time((gate, agency, 0, 0.0, 0.0));
    let mut shown = Vec::new();
    let mut suppressed = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    for cell in cells {
        listed.insert(cell.gate.clone());
        if cell.fewest_decisions_in_a_month >= i64::from(cell_count_min) {
            shown.push(lead_time((
                cell.gate,
                cell.deciding_agency,
                cell.decisions,
                cell.median_days,
                cell.p90_days,
            )));
        } else {
            suppressed.push(withheld(cell.gate, cell.deciding_agency));
        }
    }
    for gate in domain::gates::GateKind::ALL {
        if !listed.contains(gate.token()) {
            suppressed.push(withheld(
                gate.token().to_owned(),
                gate.deciding_agency().token().to_owned(),
            ));
        }
    }
    shown.sort_by(|a, b| a.gate.cmp(&b.gate));
    suppressed.sort_by(|a, b| a.gate.cmp(&b.gate));
    (shown, suppressed)
}

#[tonic::async_trait]
impl GreenLightService for GreenLightApi {
    async fn pending_approvals(
        &self,
        request: Request<v1::PendingApprovalsRequest>,
    ) -> Result<Response<v1::PendingApprovalsResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let agency = match domain::Agency::from_wire(request.agency) {
            Ok(agency) => agency,
            // Unset: the caller's own agency.
            Err(WireEnumError::Unspecified) => reader.agency,
            Err(WireEnumError::Unknown(_)) => {
                return Err(errors::invalid_input(&InputError::new(
                    "agency",
                    "must name an agency",
                )))
            }
        };
        // Requests are addressed to one agency; only its officers see them.
        if agency != reader.agency {
            return Err(errors::permission_denied(
                &rpc::access::AccessDenied::OtherAgency {
                    service: agency.token(),
                    caller: reader.agency.token(),
                },
            ));
        }
        let agency = agency.token();
        let unit = if request.unit.trim().is_empty() {
            None
        } else {
            Some(
                domain::UnitId::parse(&request.unit)
                    .map_err(|error| errors::invalid_input(&error))?,
            )
        };
        let page_size = match request.page_size {
            0 => 100,
            size if size > 1_000 => {
                return Err(errors::invalid_input(&InputError::new(
                    "page_size",
                    "must be at most 1000",
                )))
            }
            size => size,
        };
        let after = parse_page_token(&request.page_token)?;
        let today = self.clock.today();
        let projector_checkpoint = crate::reading::projector_checkpoint(&self.pool).await;
        // Only rows the reader may see fill the page, and the token names the last one shown:
        // a hidden row's ids and dates never leave the ledger, not even inside a token.
        let mut scan = PendingScan::new(page_size, after);
        while let Some((after, limit)) = scan.next_read() {
            let rows = store::green_light::pending(
                &self.pool,
                agency,
                unit.as_ref().map(|unit| unit.0.as_str()),
                after,
                running_approvals_ending_by(today),
                limit,
            )
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
            let opened = crate::reading::open(&self.folds, &reader, &scan.to_open(&rows)).await?;
            scan.take(rows, limit, opened, &reader, today);
        }
        let (mut page, mut openable) = scan.finish(today, &reader);
        // Social services' list also carries the SIPs owed, once, on the first page.
        let sips_asked = request.page_token.is_empty()
            && reader.party() == Some(domain::ConsentParty::SocialServices);
        let sip_participants = if sips_asked {
            let owed = store::caseload::sips_owed(
                &self.pool,
                store::caseload::SipsAsked::default(),
                SIPS_LISTED_MAX,
            )
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
            let mut owing: Vec<uuid::Uuid> = owed
                .iter()
                .map(|row| row.participant_id.0)
                .filter(|participant_id| !openable.contains_key(participant_id))
                .collect();
            owing.sort_unstable();
            owing.dedup();
            openable.extend(crate::reading::open(&self.folds, &reader, &owing).await?);
            social_services_sips(&mut page, &reader, &openable, today)
        } else {
            std::collections::BTreeSet::new()
        };
        let request_record = PendingRequestRecord {
            agency: agency.to_owned(),
            unit: unit.map(|unit| unit.0),
            page_size,
            after: request.page_token.clone(),
        };
        let context = crate::reading::ReadContext {
            request: serde_json::to_value(&request_record).unwrap_or_default(),
            business_date: today,
            projector_checkpoint,
        };
        let next_page_token = page.response.next_page_token.clone();
        let shown = |participant_id: &uuid::Uuid| {
            if sip_participants.contains(participant_id) {
                serde_json::json!({ "next_page_token": next_page_token, "sip": true })
            } else {
                serde_json::json!({ "next_page_token": next_page_token })
            }
        };
        crate::reading::log_read(
            &self.access_log,
            &reader,
            PENDING_APPROVALS,
            &context,
            page.bases
                .into_iter()
                .map(|(participant_id, basis)| crate::reading::ParticipantRead {
                    participant_id,
                    basis,
                    history_sequence: openable
                        .get(&participant_id)
                        .map(|participant| participant.chain_head().0),
                    read_model_sequence: page.read_model_sequences.get(&participant_id).copied(),
                    shown: Some(shown(&participant_id)),
                }),
        )
        .await?;
        Ok(Response::new(page.response))
    }

    type WatchGreenLightStream = ReceiverStream<Result<v1::GreenLightUpdate, Status>>;

    async fn watch_green_light(
        &self,
        request: Request<v1::WatchGreenLightRequest>,
    ) -> Result<Response<Self::WatchGreenLightStream>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let (coach, participant) = match (
            request.coach_person_id.trim(),
            request.participant_id.trim(),
        ) {
            ("", "") => {
                return Err(errors::invalid_input(&InputError::new(
                    "coach_person_id",
                    "or participant_id is required",
                )))
            }
            (coach, "") => (
                Some(domain::PersonId::parse(coach).map_err(|error| {
                    errors::invalid_input(&InputError::new("coach_person_id", error.reason))
                })?),
                None,
            ),
            ("", participant) => (
                None,
                Some(
                    fields::required_participant_id(participant)
                        .map_err(|error| errors::invalid_input(&error))?,
                ),
            ),
            _ => {
                return Err(errors::invalid_input(&InputError::new(
                    "participant_id",
                    "give either coach_person_id or participant_id, not both",
                )))
            }
        };
        // A participant the reader may not open (another unit, a protected identity) is
        // refused, as on every read by participant id; one not recorded yet is watched until
        // it is, so a watch may be opened before the first event.
        if let Some(participant_id) = participant {
            if let Err(status) =
                crate::reading::open_one(&self.folds, &reader, participant_id.0).await
            {
                if status.code() == tonic::Code::PermissionDenied {
                    return Err(status);
                }
            }
        }
        let slot = self.watches.take(&reader)?;
        let request_record = WatchRequestRecord {
            coach_person_id: coach.as_ref().map(|coach| coach.0.clone()),
            participant_id: participant.map(|participant_id| participant_id.0),
        };
        let (sender, receiver) = mpsc::channel(WATCH_QUEUE_LENGTH_MAX);
        let pool = self.pool.clone();
        let access_log = self.access_log.clone();
        let clock = self.clock.clone();
        // Subscribed before the first read, so nothing projected after it is missed.
        let mut changes = self.projected_changes.resubscribe();
        tokio::spawn(async move {
            // Held for as long as the watch runs.
            let _slot = slot;
            let mut sent: BTreeMap<(uuid::Uuid, uuid::Uuid), v1::ActivityLight> = BTreeMap::new();
            let mut sent_sips: BTreeMap<uuid::Uuid, v1::SipDue> = BTreeMap::new();
            let mut initial = true;
            let mut folded = crate::reading::FoldedParticipants::default();
            let mut board = WatchedBoard::default();
            let mut reread = Reread::Everything;
            loop {
                let today = clock.today();
                // Which rows are on the board depends on the day (an approval's renewal falls
                // due), so a new day re-reads everything.
                if board.read_on != Some(today) {
                    reread = Reread::Everything;
                }
                let among = match &reread {
                    Reread::Everything => None,
                    Reread::Participants(changed) => Some(changed.clone()),
                };
                let projector_checkpoint = crate::reading::projector_checkpoint(&pool).await;
                let rows = match store::green_light::open_gates(
                    &pool,
                    coach.as_ref().map(|coach| coach.0.as_str()),
                    participant,
                    among.as_deref(),
                    running_approvals_ending_by(today),
                    WATCHED_GATES_MAX,
                )
                .await
                {
                    Ok(rows) => rows,
                    Err(error) => {
                        let _ = sender
                            .send(Err(crate::store_errors::from_store(&error)))
                            .await;
                        return;
                    }
                };
                // The SIPs owed on the watched board: time-driven like an expiry (due, then
                // overdue after the last day), and cleared when one is held.
                let owed = match store::caseload::sips_owed(
                    &pool,
                    store::caseload::SipsAsked {
                        coach: coach.as_ref().map(|coach| coach.0.as_str()),
                        participant_id: participant.map(|participant_id| participant_id.0),
                        among: among.as_deref(),
                    },
                    SIPS_LISTED_MAX,
                )
                .await
                {
                    Ok(owed) => owed,
                    Err(error) => {
                        let _ = sender
                            .send(Err(crate::store_errors::from_store(&error)))
                            .await;
                        return;
                    }
                };
                board.take(among.as_deref(), rows, owed, today);
                // Merged piecemeal, the board could outgrow what one full read shows; read it
                // whole, so the limits cut it as they always do.
                if among.is_some() && board.beyond_limits() {
                    reread = Reread::Everything;
                    continue;
                }
                let rows = board.rows();
                let owed = board.owed();
                let listed = board.participants();
                let refreshed = match &among {
                    None => folded.refresh(&pool, &reader, &listed).await,
                    Some(changed) => {
                        folded
                            .refresh_changed(&pool, &reader, &listed, changed)
                            .await
                    }
                };
                let participants = match refreshed {
                    Ok(participants) => participants,
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                // Watching another unit's coach is refused like reading their participants:
                // a board with a participant of another unit that the reader may not open.
                if initial && coach.is_some() {
                    let other_unit = rows
                        .iter()
                        .map(|row| (row.participant_id, row.unit.as_deref()))
                        .chain(
                            owed.iter()
                                .map(|row| (row.participant_id.0, row.unit.as_deref())),
                        )
                        .any(|(participant_id, unit)| {
                            !participants.contains_key(&participant_id)
                                && unit.is_some_and(|unit| unit != reader.actor.unit.0)
                        });
                    if other_unit {
                        let refused = domain::visibility::OpenRefused::OtherUnit {
                            unit: reader.actor.unit.0.clone(),
                        };
                        let _ = sender
                            .send(Err(errors::denied(refused.rule(), &refused.to_string())))
                            .await;
                        return;
                    }
                }
                let current = lights(&rows, today, &reader, &participants);
                // Every update is a read: one entry per participant about to be pushed, with
                // the activities pushed (ids only) so the push can be rebuilt from the events.
                let mut push = watch_push(&sent, &current, initial);
                let current_sips: BTreeMap<uuid::Uuid, v1::SipDue> = owed
                    .iter()
                    .filter_map(|row| {
                        let participant_id = row.participant_id.0;
                        let folded_participant = participants.get(&participant_id)?;
                        let (sip, _) = sip_due(
                            participant_id,
                            folded_participant,
                            &reader,
                            today,
                            SipCoach::Named,
                        )?;
                        Some((participant_id, sip))
                    })
                    .collect();
                sip_push(&mut push, &sent_sips, &current_sips, initial);
                let mut read_model_sequences: BTreeMap<uuid::Uuid, u64> = BTreeMap::new();
                for row in &rows {
                    read_model_sequences.insert(row.participant_id, row.through_sequence);
                }
                let context = crate::reading::ReadContext {
                    request: serde_json::to_value(&request_record).unwrap_or_default(),
                    business_date: today,
                    projector_checkpoint,
                };
                if let Err(status) = crate::reading::log_read(
                    &access_log,
                    &reader,
                    WATCH_GREEN_LIGHT,
                    &context,
                    push.logged.into_iter().map(|(participant_id, updates)| {
                        crate::reading::ParticipantRead {
                            participant_id,
                            basis: watch_basis(&reader, &participants, participant_id, today),
                            history_sequence: participants
                                .get(&participant_id)
                                .map(|participant| participant.chain_head().0),
                            read_model_sequence: read_model_sequences.get(&participant_id).copied(),
                            shown: Some(
                                serde_json::json!({ "initial": initial, "updates": updates }),
                            ),
                        }
                    }),
                )
                .await
                {
                    let _ = sender.send(Err(status)).await;
                    return;
                }
                for update in push.updates {
                    if sender.send(Ok(update)).await.is_err() {
                        return;
                    }
                }
                sent = current;
                sent_sips = current_sips;
                initial = false;
                // Sleep until a projected batch changes one of the watched participants (or
                // one joins the board), or the business day turns: every time-driven status
                // (expired, expiring from D-5, a SIP overdue, a consent ending) is a function
                // of the day, so Stockholm midnight is the next instant any can change.
                reread = loop {
                    tokio::select! {
                        change = changes.recv() => {
                            let wanted = board.wanted(change, coach.as_ref(), participant);
                            match wanted {
                                Some(Wanted::Stop) => return,
                                Some(Wanted::Reread(mut reread)) => {
                                    // Coalesce what is already announced into this one read.
                                    while let Some(wanted) =
                                        pending_change(&mut changes).map(|change| {
                                            board.wanted(change, coach.as_ref(), participant)
                                        })
                                    {
                                        match wanted {
                                            Some(Wanted::Stop) => return,
                                            Some(Wanted::Reread(more)) => reread = reread.and(more),
                                            None => {}
                                        }
                                    }
                                    break reread;
                                }
                                None => {}
                            }
                        }
                        () = crate::clock::day_turns(&*clock, today) => break Reread::Everything,
                        () = sender.closed() => return,
                    }
                };
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn gate_lead_times(
        &self,
        request: Request<v1::GateLeadTimesRequest>,
    ) -> Result<Response<v1::GateLeadTimesResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        // An auditor may replay any participant whole, so withholding a thin cell from them
        // protects no one; they get every figure, to check the programme's reports against.
        let cell_count_min = match reader.actor.role {
            domain::Role::Auditor => 1,
            domain::Role::Coach
            | domain::Role::TeamLeader
            | domain::Role::CaseOfficer
            | domain::Role::System => self.lead_time_cell_count_min,
        };
        let from = fields::required_date("from", &request.from)
            .map_err(|error| errors::invalid_input(&error))?;
        let to = fields::required_date("to", &request.to)
            .map_err(|error| errors::invalid_input(&error))?;
        if to < from {
            return Err(errors::invalid_input(&InputError::new(
                "to",
                "must not be before from",
            )));
        }
        let Some((from, to)) = reported_months(from, to, self.clock.today()) else {
            return Err(errors::invalid_input(&InputError::new(
                "to",
                "must reach a calendar month that has ended: lead times are reported per ended month",
            )));
        };
        let cells = store::green_light::lead_times(&self.pool, from, to)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        let (lead_times, suppressed) = lead_time_report(cells, cell_count_min);
        Ok(Response::new(v1::GateLeadTimesResponse {
            lead_times,
            suppressed,
            from: from.to_string(),
            to: to.to_string(),
            cell_count_min,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> chrono::NaiveDate {
        text.parse().unwrap_or_default()
    }

    fn cell(gate: &str, decisions: i64, fewest: i64) -> store::green_light::LeadTimeCell {
        store::green_light::LeadTimeCell {
            gate: gate.into(),
            deciding_agency: "fk".into(),
            decisions,
            fewest_decisions_in_a_month: fewest,
            median_days: 21.0,
            p90_days: 30.0,
        }
    }

    #[test]
    fn a_report_covers_the_whole_ended_months_of_its_period() {
        let today = day("2026-05-14");
        // One day reads its whole month; the running month is left out.
        assert_eq!(
            reported_months(day("2026-03-10"), day("2026-03-10"), today),
            Some((day("2026-03-01"), day("2026-03-31")))
        );
        assert_eq!(
            reported_months(day("2026-02-27"), day("2026-05-14"), today),
            Some((day("2026-02-01"), day("2026-04-30")))
        );
        assert_eq!(
            reported_months(day("2026-05-01"), day("2026-05-13"), today),
            None
        );
        assert_eq!(
            reported_months(day("2025-12-31"), day("2025-12-31"), day("2026-01-01")),
            Some((day("2025-12-01"), day("2025-12-31")))
        );
    }

    #[test]
    fn a_cell_with_a_thin_month_is_withheld_and_every_gate_is_listed() {
        let (shown, suppressed) = lead_time_report(
            vec![
                cell("fk_activity_decision", 12, 5),
                // Seven in all, but one month held two: its figures are withheld.
                cell("af_subsidy_decision", 7, 2),
            ],
            5,
        );
        assert_eq!(
            shown
                .iter()
                .map(|time| (time.gate.as_str(), time.decisions, time.median_days))
                .collect::<Vec<_>>(),
            [("fk_activity_decision", 12, 21.0)]
        );
        assert_eq!(suppressed.len(), domain::gates::GateKind::ALL.len() - 1);
        assert!(suppressed
            .iter()
            .all(|time| time.decisions == 0 && time.median_days == 0.0 && time.p90_days == 0.0));
        assert!(suppressed
            .iter()
            .any(|time| time.gate == "af_subsidy_decision"));
        assert!(suppressed
            .iter()
            .any(|time| time.gate == "psychiatry_availability"
                && time.deciding_agency == v1::Agency::Psychiatry as i32));
    }
}
