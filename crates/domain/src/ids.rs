//! Newtype identifiers, so a participant id can never be passed where an event id is meant.
//!
//! Ids that the system mints (participant, event, consent, correlation) are UUIDs; the minting
//! happens at the edges (services), never here, to keep the domain free of clocks and randomness.
//! People and units are pseudonymous strings owned by each agency's directory: the personnummer
//! never appears anywhere in this crate.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

use crate::errors::InputError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Parses the canonical hyphenated form; the nil UUID is refused because it is what
            /// an unset protobuf field decodes to.
            pub fn parse(text: &str) -> Result<Self, InputError> {
                let uuid = Uuid::from_str(text.trim()).map_err(|_| InputError::new($field, "must be a UUID"))?;
                if uuid.is_nil() {
                    return Err(InputError::new($field, "must not be the nil UUID"));
                }
                Ok(Self(uuid))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(formatter)
            }
        }
    };
}

uuid_id!(
    /// The random, pseudonymous id of a participant. It is the aggregate id and the last token of
    /// the bus subject, so it must never be derived from the personnummer.
    ParticipantId,
    "participant_id"
);
uuid_id!(
    /// The id of one submitted event (UUID v7 when minted by a service). Also the JetStream
    /// `Nats-Msg-Id`, and the key the aggregate uses to make re-delivery a no-op.
    EventId,
    "event_id"
);
uuid_id!(
    /// Ties together the events of one piece of work, e.g. a green-light request.
    CorrelationId,
    "correlation_id"
);
uuid_id!(
    /// Names one granted consent so that a withdrawal can point at it.
    ConsentId,
    "consent_id"
);
uuid_id!(
    /// Names one proposed activity or job start: the thing green-light gates and agency
    /// decisions refer to, and that later starts and ends.
    ActivityId,
    "activity_id"
);
uuid_id!(
    /// Names one Arbetsförmedlingen programme assignment.
    ProgrammeId,
    "programme_id"
);

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Longest accepted id, in bytes: pseudo-ids are short tokens, not free text.
            pub const LENGTH_MAX_BYTES: usize = 64;

            /// Accepts a short token of letters, digits, `-`, `_`, `.` and `:`.
            pub fn parse(text: &str) -> Result<Self, InputError> {
                let text = text.trim();
                if text.is_empty() {
                    return Err(InputError::new($field, "is required"));
                }
                if text.len() > Self::LENGTH_MAX_BYTES {
                    return Err(InputError::new($field, "is longer than 64 bytes"));
                }
                if !text.chars().all(|character| character.is_ascii_alphanumeric() || "-_.:".contains(character)) {
                    return Err(InputError::new($field, "may contain only letters, digits, '-', '_', '.' and ':'"));
                }
                Ok(Self(text.to_owned()))
            }

            /// Whether this id is one [`Self::parse`] would have produced. An id that reached
            /// a body without the edge's parse (a correction's JSON, a body from the bus) is
            /// held to the same rule: an id of kilobytes would be refused by the read models'
            /// indexes and stall their projector for good.
            pub fn check(&self) -> Result<(), InputError> {
                match Self::parse(&self.0) {
                    Ok(parsed) if parsed == *self => Ok(()),
                    Ok(_) => Err(InputError::new($field, "may not begin or end with spaces")),
                    Err(error) => Err(error),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(formatter)
            }
        }
    };
}

text_id!(
    /// A person's pseudonymous id in their organisation's directory (officer, coach, psychiatrist).
    PersonId,
    "person_id"
);
text_id!(
    /// An organisational unit, e.g. `hudiksvall-ips` or `fk-lfc-gavle`.
    UnitId,
    "unit"
);
