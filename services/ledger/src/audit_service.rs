//! `ips.v1.AuditService`: the participant's access-log extract (who read their data, when,
//! what, and why), the participant's history replayed on both time axes (`replay.rs`), and a
//! logged read rebuilt from the events (`reconstruct.rs`). Each is itself a read of participant
//! data, logged with the basis `audit` before anything is returned, like every other read, so
//! a participant's extract lists the audits of their data too. Only auditors may call it
//! (`rpc::access`).

use std::sync::Arc;

use proto::v1::{self, audit_service_server::AuditService};
use rpc::{errors, fields};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::clock::Clock;
use crate::config::AuditConfig;

/// Entries per page when the caller does not say.
pub const EXTRACT_PAGE_SIZE_DEFAULT: u32 = 100;
/// Most entries per page.
pub const EXTRACT_PAGE_SIZE_MAX: u32 = 1_000;

const GET_ACCESS_LOG_EXTRACT: &str = "ips.v1.AuditService/GetAccessLogExtract";
const REPLAY_PARTICIPANT: &str = "ips.v1.AuditService/ReplayParticipant";
const RECONSTRUCT_READ: &str = "ips.v1.AuditService/ReconstructRead";

/// The service implementation.
pub struct AuditApi {
    pub(crate) pool: PgPool,
    pub(crate) folds: std::sync::Arc<crate::reading::ReadFolds>,
    pub(crate) access_log: crate::reading::AccessLog,
    pub(crate) config: AuditConfig,
    pub(crate) clock: Arc<dyn Clock>,
}

/// One access-log entry on the wire.
pub(crate) fn access_log_entry(row: store::access_log::LoggedAccess) -> v1::AccessLogEntry {
    v1::AccessLogEntry {
        position: row.position,
        read_at: row
            .read_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        reader: Some(v1::Actor {
            person_id: row.entry.reader_person_id,
            role: row.entry.reader_role,
            unit: row.entry.reader_unit,
        }),
        reader_agency: proto::wire::agency_token_to_wire(&row.entry.reader_agency),
        participant_id: row.entry.participant_id.to_string(),
        action: row.entry.action,
        basis: row.entry.basis,
    }
}

/// Replay pages rendered ahead of the client.
const REPLAY_PAGES_QUEUED_MAX: usize = 2;

/// The basis of every audit read.
const AUDIT_BASIS: &str = "audit";

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn get_access_log_extract(
        &self,
        request: Request<v1::GetAccessLogExtractRequest>,
    ) -> Result<Response<v1::GetAccessLogExtractResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let participant_id = fields::required_participant_id(&request.participant_id)
            .map_err(|error| errors::invalid_input(&error))?;
        let page_size = match request.page_size {
            0 => EXTRACT_PAGE_SIZE_DEFAULT,
            size if size > EXTRACT_PAGE_SIZE_MAX => {
                return Err(errors::invalid_input(&domain::InputError::new(
                    "page_size",
                    format!("must be at most {EXTRACT_PAGE_SIZE_MAX}"),
                )))
            }
            size => size,
        };
        let after_position = if request.page_token.is_empty() {
            0
        } else {
            request
                .page_token
                .strip_prefix("after:")
                .and_then(|number| number.parse::<i64>().ok())
                .ok_or_else(|| {
                    errors::invalid_input(&domain::InputError::new(
                        "page_token",
                        "is not a token this service issued",
                    ))
                })?
        };
        crate::reading::open_one(&self.folds, &reader, participant_id.0).await?;
        let mut rows = store::access_log::extract(
            &self.pool,
            participant_id.0,
            after_position,
            i64::from(page_size) + 1,
        )
        .await
        .map_err(|error| crate::store_errors::from_store(&error))?;
        let next_page_token = if rows.len() > page_size as usize {
            rows.truncate(page_size as usize);
            let last = rows
                .last()
                .expect("a page size is at least 1, so a truncated page keeps a row");
            format!("after:{}", last.position)
        } else {
            String::new()
        };
        crate::reading::log(
            &self.access_log,
            &reader,
            GET_ACCESS_LOG_EXTRACT,
            [(participant_id.0, "audit".to_owned())],
        )
        .await?;
        Ok(Response::new(v1::GetAccessLogExtractResponse {
            participant_id: participant_id.to_string(),
            entries: rows.into_iter().map(access_log_entry).collect(),
            next_page_token,
        }))
    }

    type ReplayParticipantStream =
        tokio_stream::wrappers::ReceiverStream<Result<v1::ReplayParticipantResponse, Status>>;

    async fn replay_participant(
        &self,
        request: Request<v1::ReplayParticipantRequest>,
    ) -> Result<Response<Self::ReplayParticipantStream>, Status> {
        let (_, extensions, request) = request.into_parts();
        let auditor = crate::reading::reader(&extensions)?;
        let replay_request =
            crate::replay::parse_request(&request, &self.config, self.clock.now())?;
        let participant_id = replay_request.participant_id;
        let entries_max = self.config.replay_entries_max;
        // The history is folded as its rows arrive, so the fold costs little beyond the read.
        let mut fold = domain::replay::ReplayFold::new(replay_request.cut, 0);
        let taken = store::events::each_recorded_by(
            &self.pool,
            participant_id,
            replay_request.cut.recorded_at,
            entries_max.saturating_add(1),
            |entry| fold.push(entry),
        )
        .await
        .map_err(|error| crate::store_errors::from_store(&error))?;
        if taken > entries_max {
            return Err(errors::audit_too_large("audit.replay_entries_max"));
        }
        if taken == 0 && crate::reading::recorded_head(&self.pool, participant_id).await? == 0 {
            return Err(errors::participant_not_found(&participant_id.to_string()));
        }
        let page_size = replay_request.page_size as usize;
        let context = crate::reading::ReadContext {
            request: replay_request.record(),
            business_date: replay_request.cut.business_date(),
            projector_checkpoint: None,
        };
        let read = crate::reading::ParticipantRead {
            participant_id: participant_id.0,
            basis: AUDIT_BASIS.to_owned(),
            history_sequence: Some(fold.head_sequence()),
            read_model_sequence: None,
            shown: None,
        };
        // The access-log entry is written while the replay is decided and its first page
        // rendered; nothing is sent before it succeeded.
        let access_log = self.access_log.clone();
        let logging_auditor = auditor.clone();
        let logged = tokio::spawn(async move {
            crate::reading::log_read(
                &access_log,
                &logging_auditor,
                REPLAY_PARTICIPANT,
                &context,
                [read],
            )
            .await
        });
        let prepared = crate::replay::prepare_folded(fold.finish(), replay_request, &auditor);
        // Pages are rendered as they are sent, so the client decodes one while the next is
        // rendered, and a long history is never held twice. The first is rendered while the
        // access-log entry is written, and nothing leaves before that write succeeded.
        let (sender, receiver) = tokio::sync::mpsc::channel(REPLAY_PAGES_QUEUED_MAX);
        tokio::spawn(async move {
            let mut shown = 0;
            {
                let mut entries = prepared.entries();
                let mut page: Vec<v1::ReplayEntry> = entries.by_ref().take(page_size).collect();
                let logged = match logged.await {
                    Ok(logged) => logged,
                    Err(_) => Err(Status::unavailable(
                        "the access log cannot be written, so nothing is returned",
                    )),
                };
                if let Err(status) = logged {
                    let _ = sender.send(Err(status)).await;
                    return;
                }
                while !page.is_empty() {
                    shown += page.len();
                    let message = v1::ReplayParticipantResponse {
                        entries: page,
                        state: None,
                    };
                    if sender.send(Ok(message)).await.is_err() {
                        return;
                    }
                    // Rendering is work without an await: yielding lets the connection write
                    // the page just queued while the next is rendered (otherwise it waits
                    // behind the whole replay, and the client decodes nothing meanwhile).
                    tokio::task::yield_now().await;
                    page = entries.by_ref().take(page_size).collect();
                }
            }
            let last = v1::ReplayParticipantResponse {
                entries: Vec::new(),
                state: Some(prepared.state(shown)),
            };
            let _ = sender.send(Ok(last)).await;
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            receiver,
        )))
    }

    async fn reconstruct_read(
        &self,
        request: Request<v1::ReconstructReadRequest>,
    ) -> Result<Response<v1::ReconstructReadResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let auditor = crate::reading::reader(&extensions)?;
        let position = i64::try_from(request.access_log_position)
            .ok()
            .filter(|position| *position > 0)
            .ok_or_else(|| {
                errors::invalid_input(&domain::InputError::new(
                    "access_log_position",
                    "must be the position of an access-log entry",
                ))
            })?;
        let rebuilt = crate::reconstruct::reconstruct(&self.pool, &self.config, position).await?;
        crate::reading::log(
            &self.access_log,
            &auditor,
            RECONSTRUCT_READ,
            rebuilt
                .participant_ids
                .iter()
                .map(|participant_id| (*participant_id, AUDIT_BASIS.to_owned())),
        )
        .await?;
        Ok(Response::new(rebuilt.response))
    }
}
