//! Every error becomes a gRPC status here, and only here (DESIGN.md §6).
//!
//! - malformed input → `INVALID_ARGUMENT`, with a `BadRequest` detail naming the field;
//! - a broken domain rule → `FAILED_PRECONDITION`, with the rule's name in an `ErrorInfo` detail
//!   and in the `ips-rule` metadata;
//! - unknown participant → `NOT_FOUND` (an unknown event is a status, `UNKNOWN`, not an error);
//! - bus or database trouble → `UNAVAILABLE` (retry later; nothing was half-done);
//! - a stored row that no longer decodes (altered around the triggers) → `DATA_LOSS`, rule
//!   `stored_history_unreadable`;
//! - a request message over `server.request_size_max_bytes` → `RESOURCE_EXHAUSTED` (gRPC's
//!   convention; tonic says `OUT_OF_RANGE`, which [`size_limit_as_resource_exhausted`] rewrites);
//!   a submission too large for the bus once encoded → `INVALID_ARGUMENT` naming `request`;
//! - a request that does not decode (invalid UTF-8 in a string, malformed protobuf) →
//!   `INVALID_ARGUMENT`: the one code set outside this module, by `proto::codec::EdgeCodec`,
//!   because decoding happens in generated code before any handler runs;
//! - text with a character its class refuses (`domain::values::TextClass`: NUL and other
//!   controls, bidi overrides and zero-width characters in names) or a date outside
//!   1900-01-01..=2199-12-31 → `INVALID_ARGUMENT` naming the field, like any malformed input;
//! - an auditor's rebuild of a read the access log kept too little about → `FAILED_PRECONDITION`,
//!   rule `read_not_reconstructible`; an audit over its configured size → `RESOURCE_EXHAUSTED`;
//! - no valid certificate or token → `UNAUTHENTICATED`; a role, agency or allow-list that does
//!   not admit the caller → `PERMISSION_DENIED`; both name the rule like a broken domain rule.

use std::collections::HashMap;

use domain::InputError;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The domain for `ErrorInfo` details.
pub const ERROR_DOMAIN: &str = "ips-samverkan";

/// Metadata key naming the broken rule.
pub const RULE_HEADER: &str = "ips-rule";

/// A malformed field.
pub fn invalid_input(error: &InputError) -> Status {
    let details =
        ErrorDetails::with_bad_request_violation(error.field.clone(), error.reason.clone());
    Status::with_error_details(Code::InvalidArgument, error.to_string(), details)
}

/// The ledger rejected the submission under `rule`.
pub fn rule_broken(rule: &str, reason: &str, event_id: &str) -> Status {
    let metadata = HashMap::from([("event_id".to_owned(), event_id.to_owned())]);
    let details = ErrorDetails::with_error_info(rule, ERROR_DOMAIN, metadata);
    // A unit boundary is an authorisation decision, so its refusal is PERMISSION_DENIED like
    // the ledger's refused reads under the same rule; every other rule is a precondition.
    let code = if rule == "other_unit" {
        Code::PermissionDenied
    } else {
        Code::FailedPrecondition
    };
    let mut status = Status::with_error_details(code, format!("refused by rule {reason}"), details);
    if let Ok(value) = rule.parse() {
        status.metadata_mut().insert("ips-rule", value);
    }
    if let Ok(value) = event_id.parse() {
        status.metadata_mut().insert("ips-event-id", value);
    }
    status
}

/// Nothing is known of this participant.
pub fn participant_not_found(participant_id: &str) -> Status {
    Status::not_found(format!(
        "participant {participant_id} has no recorded history"
    ))
}

/// The bus failed.
pub fn from_bus(error: &bus::BusError) -> Status {
    match error {
        bus::BusError::MessageTooLarge { .. } => {
            invalid_input(&InputError::new("request", format!("is too large once encoded: {error}")))
        }
        // No PubAck: the stream may or may not hold the event (the ack can be lost after the
        // write). The outcome is unknown, and a retry with the same request_id is safe: the
        // event id is derived from it, so JetStream's dedupe or the ledger's `recorded` map
        // answers the first outcome, and the event is stored once either way.
        bus::BusError::PublishNotAcknowledged { .. } => Status::unavailable(format!(
            "outcome unknown: the event bus did not acknowledge the event, which may or may not have been stored; retry with the same request_id, which is safe and answers the first outcome ({error})"
        )),
        // Raised before anything was published (connecting, subscribing to the verdict).
        bus::BusError::Unavailable(_) => Status::unavailable(format!(
            "the event bus is unavailable and nothing was published; retry with the same request_id ({error})"
        )),
        bus::BusError::Setup(_)
        | bus::BusError::Codec(_)
        | bus::BusError::DeliveryUnreadable(_) => Status::internal(error.to_string()),
    }
}

/// What went wrong in storage, as the ledger classifies its store's errors. The classes live
/// here, not the store's error type, so this crate (and every agency service) links no sqlx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageFailure {
    /// The database cannot be reached or answered with a transient error: retry later.
    Unavailable,
    /// A stored row no longer decodes: altered around the append-only triggers, or written by
    /// a newer version.
    Unreadable,
    /// Anything else (a failed migration, a batch over its limit): a defect, not the caller's.
    Internal,
}

/// The database failed; `error` is the store's message.
pub fn from_storage(failure: StorageFailure, error: &dyn std::fmt::Display) -> Status {
    match failure {
        StorageFailure::Unavailable => {
            Status::unavailable(format!("the event store is unavailable: {error}"))
        }
        // Say so, with a rule, rather than an anonymous INTERNAL.
        StorageFailure::Unreadable => with_rule(
            Code::DataLoss,
            "stored_history_unreadable",
            &format!("stored_history_unreadable: {error}; an auditor's VerifyChain shows where the chain broke"),
        ),
        StorageFailure::Internal => Status::internal(error.to_string()),
    }
}

/// The caller is not authenticated; the message and `ips-rule` name the broken rule.
pub fn unauthenticated(error: &crate::identity::IdentityError) -> Status {
    let details = ErrorDetails::with_error_info(error.rule(), ERROR_DOMAIN, HashMap::new());
    let mut status = Status::with_error_details(Code::Unauthenticated, error.to_string(), details);
    if let Ok(value) = error.rule().parse() {
        status.metadata_mut().insert(RULE_HEADER, value);
    }
    status
}

/// The caller may not do this; the message and `ips-rule` name the broken rule.
pub fn permission_denied(error: &crate::access::AccessDenied) -> Status {
    denied(error.rule(), &error.to_string())
}

/// The caller may not do this under `rule` (participant-level decisions: protected identity).
pub fn denied(rule: &str, message: &str) -> Status {
    with_rule(Code::PermissionDenied, rule, message)
}

/// An auditor asked to rebuild a read the access log kept too little about (written before
/// reads kept their context, or a read path that keeps none): `FAILED_PRECONDITION`, rule
/// `read_not_reconstructible`.
pub fn read_not_reconstructible(reason: &str) -> Status {
    with_rule(
        Code::FailedPrecondition,
        "read_not_reconstructible",
        &format!("read_not_reconstructible: {reason}"),
    )
}

/// No access-log entry at this position.
pub fn access_log_entry_not_found(position: u64) -> Status {
    Status::not_found(format!("no access-log entry at position {position}"))
}

/// An audit would hold more than its configured limit (`what` names the limit's key).
pub fn audit_too_large(what: &str) -> Status {
    Status::resource_exhausted(format!("the audit is larger than {what} allows"))
}

/// A named limit on open resources (`limit` is its configuration key) is reached:
/// `RESOURCE_EXHAUSTED`, naming the limit as its rule.
pub fn limit_reached(limit: &str, message: &str) -> Status {
    with_rule(Code::ResourceExhausted, limit, message)
}

/// A status with `code` naming `rule` in an `ErrorInfo` detail and the `ips-rule` metadata.
fn with_rule(code: Code, rule: &str, message: &str) -> Status {
    let details = ErrorDetails::with_error_info(rule, ERROR_DOMAIN, HashMap::new());
    let mut status = Status::with_error_details(code, message, details);
    if let Ok(value) = rule.parse() {
        status.metadata_mut().insert(RULE_HEADER, value);
    }
    status
}

/// gRPC's code for a request over the size limit is `RESOURCE_EXHAUSTED`; tonic answers
/// `OUT_OF_RANGE` ("decoded message length too large") before any handler runs, so every
/// wrapped service's response passes through here (see `access::Authenticated`). Our services
/// never answer `OUT_OF_RANGE` themselves, so any such status in the response headers (where a
/// refused request's status is) is tonic's size limit. Statuses in trailers are left alone.
pub fn size_limit_as_resource_exhausted(
    mut response: http::Response<Body>,
) -> http::Response<Body> {
    let out_of_range = (Code::OutOfRange as i32).to_string();
    let status_header = response.headers_mut().get_mut("grpc-status");
    if let Some(value) = status_header {
        if value.as_bytes() == out_of_range.as_bytes() {
            *value = http::HeaderValue::from(Code::ResourceExhausted as i32);
        }
    }
    response
}
