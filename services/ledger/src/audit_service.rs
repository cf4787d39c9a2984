//! `ips.v1.AuditService`: the participant's access-log extract (who read their data, when,
//! what, and why). Reading the extract is itself a read of participant data, so it is logged
//! before it is returned, like every other read.

use proto::v1::{self, audit_service_server::AuditService};
use rpc::{errors, fields};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

/// Entries per page when the caller does not say.
pub const EXTRACT_PAGE_SIZE_DEFAULT: u32 = 100;
/// Most entries per page.
pub const EXTRACT_PAGE_SIZE_MAX: u32 = 1_000;

const GET_ACCESS_LOG_EXTRACT: &str = "ips.v1.AuditService/GetAccessLogExtract";

/// The service implementation.
pub struct AuditApi {
    pub(crate) pool: PgPool,
    pub(crate) access_log: crate::reading::AccessLog,
}

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
        crate::reading::open_one(&self.pool, &reader, participant_id.0).await?;
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
            entries: rows
                .into_iter()
                .map(|row| v1::AccessLogEntry {
                    position: row.position,
                    read_at: row
                        .read_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    reader: Some(v1::Actor {
                        person_id: row.entry.reader_person_id,
                        role: row.entry.reader_role,
                        unit: row.entry.reader_unit,
                    }),
                    reader_agency: fields::agency_to_wire(&row.entry.reader_agency),
                    participant_id: participant_id.to_string(),
                    action: row.entry.action,
                    basis: row.entry.basis,
                })
                .collect(),
            next_page_token,
        }))
    }
}
