//! The participant aggregate and everything it is made of, with no I/O at all.
//!
//! This crate is the single place where the cross-agency rules live (consent, lifecycle, and later
//! the green-light gates). It is pure on purpose: no tonic, no sqlx, no NATS, no clock reading. The
//! ledger feeds it what it needs (the submitted event and the time it was recorded), so every rule
//! can be tested given/when/then without a database, and replayed by an auditor to the same result.
//!
//! Map of the crate:
//! - [`ids`]: newtype identifiers (participant, event, person, unit, consent).
//! - [`envelope`]: the common envelope every agency event carries (DESIGN.md §3).
//! - [`events`]: the submission and the recorded event with its hash-chain link; in it,
//!   `bodies` (the event bodies, past tense), `catalogue` (each body's type name, recording
//!   agency and data category) and `validation` (the input checks that need no history).
//! - [`commands`]: what the ledger asks the aggregate to do with a submission.
//! - [`aggregate`]: `handle` decides (accept or record a rejection), `apply` only assigns; in
//!   it, `state` (the folded state and its accessors), `rules` (`decide` and its checks) and
//!   `assign` (the state change each accepted body makes).
//! - [`values`]: small value types (activity kinds, benefits, subsidies, periods, limits).
//! - [`chain`]: the canonical encoding and SHA-256 hash chain, and its verifier.
//! - [`classification`]: every field of every event body: how it may be shared, whose record
//!   it is, whether it survives disposal; the shared view's allow-list.
//! - [`clock`]: the business day (Stockholm's date, [`business_date`]) and the `Clock` trait.
//! - [`errors`]: the named rules a submission can break, and the input checks.
//! - [`entry_view`]: what a reader is shown of one entry, the one decision of live reads and
//!   replays alike.
//! - [`replay`]: a history cut on both time axes (recorded at T, occurred at T') and folded.

pub mod aggregate;
pub mod canonical;
pub mod chain;
pub mod classification;
pub mod clock;
pub mod commands;
pub mod entry_view;
pub mod envelope;
pub mod errors;
pub mod events;
pub mod gates;
pub mod ids;
pub mod replay;
pub mod values;
pub mod visibility;

pub use aggregate::{
    InpatientStay, Lifecycle, Participant, SipDeadline, SipDeadlineStatus, PARTICIPANT_EVENTS_MAX,
    SIP_DUE_WITHIN_DAYS,
};
pub use clock::{business_date, Clock, BUSINESS_TIME_ZONE};
pub use commands::ParticipantCommand;
pub use envelope::{Actor, Agency, DataCategory, Envelope, RetentionClass, Role};
pub use errors::{InputError, ParticipantError, RuleViolation};
pub use events::{
    AllowedReader, ConsentParty, EventBody, Outcome, ParticipantEvent, ReferralSource, Submission,
    CURRENT_SCHEMA_VERSION,
};
pub use ids::{
    ActivityId, ConsentId, CorrelationId, EventId, ParticipantId, PersonId, ProgrammeId, UnitId,
};
pub use visibility::{Basis, Reader, Sight};
