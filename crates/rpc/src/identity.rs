//! Who is calling. Every write carries an actor (person pseudo-id, role, unit) into the envelope.
//!
//! Today the identity arrives in request metadata (`ips-person-id`, `ips-role`, `ips-unit`),
//! unsigned: enough for the walking skeleton and its tests, and not an authentication. The
//! identity-and-authorisation issue replaces the body of [`caller`] with verification of a signed
//! officer token over mTLS; every handler already goes through this one function.

use domain::{Actor, PersonId, Role, UnitId};
use tonic::metadata::MetadataMap;
use tonic::Status;

/// Metadata key for the caller's pseudonymous person id.
pub const PERSON_ID_HEADER: &str = "ips-person-id";
/// Metadata key for the caller's role token (`coach`, `case_officer`, ...).
pub const ROLE_HEADER: &str = "ips-role";
/// Metadata key for the caller's unit.
pub const UNIT_HEADER: &str = "ips-unit";

/// The calling actor, or `UNAUTHENTICATED` naming what is missing.
pub fn caller(metadata: &MetadataMap) -> Result<Actor, Status> {
    let text = |key: &str| -> Result<String, Status> {
        metadata
            .get(key)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| {
                Status::unauthenticated(format!(
                    "missing caller identity: metadata `{key}` is required"
                ))
            })
    };
    let person_id = PersonId::parse(&text(PERSON_ID_HEADER)?)
        .map_err(|error| Status::unauthenticated(format!("caller identity: {error}")))?;
    let role_token = text(ROLE_HEADER)?;
    let role = Role::from_token(&role_token).ok_or_else(|| {
        Status::unauthenticated(format!("caller identity: unknown role `{role_token}`"))
    })?;
    let unit = UnitId::parse(&text(UNIT_HEADER)?)
        .map_err(|error| Status::unauthenticated(format!("caller identity: {error}")))?;
    Ok(Actor {
        person_id,
        role,
        unit,
    })
}

/// Adds an identity to outgoing request metadata (for clients, the demo and tests).
pub fn attach(metadata: &mut MetadataMap, person_id: &str, role: Role, unit: &str) {
    for (key, value) in [
        (PERSON_ID_HEADER, person_id),
        (ROLE_HEADER, role.token()),
        (UNIT_HEADER, unit),
    ] {
        if let Ok(value) = value.parse() {
            metadata.insert(key, value);
        }
    }
}
