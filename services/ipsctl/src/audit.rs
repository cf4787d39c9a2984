//! `ipsctl audit replay` and `ipsctl audit read`: an auditor's replay of a participant's history
//! (as recorded at T, optionally cut at business time T', optionally through a party's eyes) and
//! a logged read rebuilt from the events (issue 11).
//!
//! The work and the rendering live here; the arguments are clap's ([`ReplayArguments`] is the
//! `audit replay` subcommand of [`crate::cli`], and [`ReplayArguments::parse`] parses the same
//! arguments from a slice, for tests and the scenario harness).

use std::fmt::Write as _;

use anyhow::Context;
use domain::{Agency, ConsentParty, DataCategory};
use proto::v1;
use proto::wire::{WireEnum, WireEnumError};
use serde_json::{json, Value};

use crate::Clients;

/// The auditor `ipsctl` reads as (internal control); every audit is logged under it.
pub const AUDITOR: &str = "ipsctl-auditor";
/// The auditor's unit.
pub const AUDITOR_UNIT: &str = "internal-control";

/// Wraps `message` in a request carrying the CLI auditor's token.
pub fn as_auditor<T>(message: T) -> tonic::Request<T> {
    crate::as_officer(
        message,
        domain::Agency::Municipality,
        AUDITOR,
        domain::Role::Auditor,
        AUDITOR_UNIT,
    )
}

/// What `ipsctl audit replay` is asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct ReplayArguments {
    /// Whose history (the participant id, a UUID).
    pub participant_id: String,
    /// System time T (RFC 3339): only entries recorded by then.
    #[arg(long, value_name = "RFC3339")]
    pub recorded_at: String,
    /// Business time T' (RFC 3339): only entries that occurred by then.
    #[arg(long, value_name = "RFC3339")]
    pub occurred_at: Option<String>,
    /// The reader whose view is replayed: `<party>:<role>:<unit>[:<person>]`.
    #[arg(long = "as", value_name = "PARTY:ROLE:UNIT[:PERSON]")]
    pub as_reader: Option<String>,
    /// Corrections as corrected (the current version of each fact) rather than as recorded.
    #[arg(long)]
    pub as_corrected: bool,
    /// Prints JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl ReplayArguments {
    /// Parses `<participant-id> --recorded-at T [--occurred-at T'] [--as …] [--as-corrected]
    /// [--json]`.
    pub fn parse(arguments: &[&str]) -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        #[command(name = "ipsctl audit replay")]
        struct Replay {
            #[command(flatten)]
            arguments: ReplayArguments,
        }
        let parsed = <Replay as clap::Parser>::try_parse_from(
            std::iter::once("replay").chain(arguments.iter().copied()),
        )
        .map_err(|error| anyhow::anyhow!("{error}"))?;
        Ok(parsed.arguments)
    }

    /// The request these arguments ask for.
    pub fn request(&self) -> anyhow::Result<v1::ReplayParticipantRequest> {
        Ok(v1::ReplayParticipantRequest {
            participant_id: self.participant_id.clone(),
            recorded_at: self.recorded_at.clone(),
            occurred_at: self.occurred_at.clone().unwrap_or_default(),
            as_reader: self.as_reader.as_deref().map(parse_reader).transpose()?,
            corrections: if self.as_corrected {
                v1::CorrectionView::AsCorrected as i32
            } else {
                v1::CorrectionView::AsRecorded as i32
            },
            page_size: 1_000,
        })
    }
}

/// `<party>:<role>:<unit>[:<person>]`, e.g. `ips_unit:coach:hudiksvall-ips:coach-17`.
pub fn parse_reader(text: &str) -> anyhow::Result<v1::ReplayReader> {
    let parts: Vec<&str> = text.split(':').collect();
    let (party, role, unit, person_id) = match parts.as_slice() {
        [party, role, unit] => (*party, *role, *unit, ""),
        [party, role, unit, person] => (*party, *role, *unit, *person),
        _ => anyhow::bail!("--as takes <party>:<role>:<unit>[:<person>], got {text}"),
    };
    // A party's token, or the agency token of the two authorities that are parties whole.
    let token = match party {
        "fk" => "forsakringskassan",
        "af" => "arbetsformedlingen",
        other => other,
    };
    let Some(party) = ConsentParty::from_token(token) else {
        anyhow::bail!(
            "unknown party {party} (ips_unit, social_services, forsakringskassan, arbetsformedlingen, psychiatry)"
        );
    };
    Ok(v1::ReplayReader {
        party: party.to_wire(),
        role: role.to_owned(),
        unit: unit.to_owned(),
        person_id: person_id.to_owned(),
    })
}

/// Runs a replay and renders it (text or JSON).
pub async fn replay(clients: &mut Clients, arguments: &ReplayArguments) -> anyhow::Result<String> {
    let mut stream = clients
        .audit
        .replay_participant(as_auditor(arguments.request()?))
        .await?
        .into_inner();
    let mut entries = Vec::new();
    let mut state = None;
    while let Some(message) = stream.message().await? {
        entries.extend(message.entries);
        if message.state.is_some() {
            state = message.state;
        }
    }
    let state = state.context("the replay ended without the participant's state")?;
    Ok(if arguments.json {
        format!(
            "{:#}\n",
            json!({
                "entries": entries.iter().map(replay_entry_json).collect::<Vec<_>>(),
                "state": state_json(&state),
            })
        )
    } else {
        replay_text(arguments, &entries, &state)
    })
}

/// Rebuilds the read logged at `position` and renders it (text or JSON).
pub async fn read(clients: &mut Clients, position: u64, json: bool) -> anyhow::Result<String> {
    let rebuilt = clients
        .audit
        .reconstruct_read(as_auditor(v1::ReconstructReadRequest {
            access_log_position: position,
        }))
        .await?
        .into_inner();
    Ok(if json {
        format!("{:#}\n", reconstructed_json(&rebuilt))
    } else {
        reconstructed_text(&rebuilt)
    })
}

fn agency_token(agency: i32) -> &'static str {
    Agency::from_wire(agency).map_or("unknown", Agency::token)
}

fn party_token(party: i32) -> &'static str {
    ConsentParty::from_wire(party).map_or("unknown", ConsentParty::token)
}

/// A category's token; an unset one is `unspecified` and one this build does not know empty.
fn category_token(category: i32) -> String {
    match DataCategory::from_wire(category) {
        Ok(category) => category.token().to_owned(),
        Err(WireEnumError::Unspecified) => "unspecified".to_owned(),
        Err(WireEnumError::Unknown(_)) => String::new(),
    }
}

fn actor_json(actor: Option<&v1::Actor>) -> Value {
    actor.map_or(
        Value::Null,
        |actor| json!({ "person_id": actor.person_id, "role": actor.role, "unit": actor.unit }),
    )
}

fn timeline_entry_json(entry: &v1::TimelineEntry) -> Value {
    json!({
        "sequence": entry.sequence,
        "event_id": entry.event_id,
        "event_type": entry.event_type,
        "agency": agency_token(entry.agency),
        "actor": actor_json(entry.actor.as_ref()),
        "occurred_at": entry.occurred_at,
        "recorded_at": entry.recorded_at,
        "body": serde_json::from_str::<Value>(&entry.body_json).unwrap_or(Value::Null),
        "rejected_rule": entry.rejected_rule,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    })
}

fn replay_entry_json(entry: &v1::ReplayEntry) -> Value {
    let mut value = entry
        .entry
        .as_ref()
        .map(timeline_entry_json)
        .unwrap_or_else(|| json!({}));
    value["basis"] = json!(entry.basis);
    if !entry.superseded_by_event_id.is_empty() {
        value["superseded_by_event_id"] = json!(entry.superseded_by_event_id);
    }
    if let Some(correction) = &entry.correction {
        value["correction"] = json!({
            "event_id": correction.event_id,
            "sequence": correction.sequence,
            "agency": agency_token(correction.agency),
            "author": actor_json(correction.author.as_ref()),
            "occurred_at": correction.occurred_at,
            "recorded_at": correction.recorded_at,
            "reason": correction.reason,
        });
    }
    value
}

fn gate_status(status: i32) -> &'static str {
    match v1::GateStatus::try_from(status) {
        Ok(status) => status.as_str_name().trim_start_matches("GATE_STATUS_"),
        Err(_) => "UNKNOWN",
    }
}

fn light_name(light: i32) -> &'static str {
    match v1::Light::try_from(light) {
        Ok(light) => light.as_str_name().trim_start_matches("LIGHT_"),
        Err(_) => "UNKNOWN",
    }
}

fn light_json(light: &v1::ActivityLight) -> Value {
    json!({
        "participant_id": light.participant_id,
        "activity_id": light.activity_id,
        "activity_kind": light.activity_kind,
        "planned_start": light.planned_start,
        "light": light_name(light.light),
        "running": light.running,
        "gates": light.gates.iter().map(|gate| json!({
            "gate": gate.gate,
            "deciding_agency": agency_token(gate.deciding_agency),
            "status": gate_status(gate.status),
            "requested_on": gate.requested_on,
            "decided_on": gate.decided_on,
            "valid_from": gate.valid_from,
            "valid_to": gate.valid_to,
            "expiring": gate.expiring,
            "waiting_days": gate.waiting_days,
            "guidance": gate.guidance,
        })).collect::<Vec<_>>(),
    })
}

fn state_json(state: &v1::ReplayState) -> Value {
    json!({
        "participant_id": state.participant_id,
        "recorded_at": state.recorded_at,
        "occurred_at": state.occurred_at,
        "business_date": state.business_date,
        "opened": state.opened,
        "refused_rule": state.refused_rule,
        "entries_recorded": state.entries_recorded,
        "entries_in_cut": state.entries_in_cut,
        "entries_shown": state.entries_shown,
        "head_sequence": state.head_sequence,
        "head_hash": state.head_hash,
        "lifecycle": state.lifecycle,
        "unit": state.unit,
        "coach_person_id": state.coach_person_id,
        "social_services_unit": state.social_services_unit,
        "consents_in_force": state.consents_in_force.iter().map(|consent| json!({
            "consent_id": consent.consent_id,
            "discloser": party_token(consent.discloser),
            "recipient": party_token(consent.recipient),
            "data_categories": consent.data_categories.iter().map(|category| category_token(*category)).collect::<Vec<_>>(),
            "valid_from": consent.valid_from,
            "valid_to": consent.valid_to,
        })).collect::<Vec<_>>(),
        "protected_identity": state.protected_identity,
        "allowed_readers": state.allowed_readers,
        "allowed_persons": state.allowed_persons.iter().map(|allowed| json!({
            "agency": agency_token(allowed.agency),
            "person_id": allowed.person_id,
        })).collect::<Vec<_>>(),
        "activities": state.activities.iter().map(|activity| json!({
            "activity_id": activity.activity_id,
            "kind": activity.kind,
            "status": activity.status,
            "planned_start": activity.planned_start,
            "started_on": activity.started_on,
            "ended_on": activity.ended_on,
            "hours_per_week": activity.hours_per_week,
            "subsidy": activity.subsidy,
            "employer": activity.employer,
            "light": activity.light.as_ref().map_or(Value::Null, light_json),
        })).collect::<Vec<_>>(),
    })
}

fn replay_text(
    arguments: &ReplayArguments,
    entries: &[v1::ReplayEntry],
    state: &v1::ReplayState,
) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Replay of participant {} as recorded at {}{}{}",
        state.participant_id,
        state.recorded_at,
        if state.occurred_at.is_empty() {
            String::new()
        } else {
            format!(", occurred by {}", state.occurred_at)
        },
        arguments
            .as_reader
            .as_ref()
            .map(|reader| format!(", as {reader} saw it"))
            .unwrap_or_default()
    );
    if !state.opened {
        let _ = writeln!(
            text,
            "  the reader could not open this participant: {}",
            state.refused_rule
        );
        return text;
    }
    let _ = writeln!(
        text,
        "  {} entries recorded by then, {} in the cut, {} shown; chain head {} {}",
        state.entries_recorded,
        state.entries_in_cut,
        state.entries_shown,
        state.head_sequence,
        state.head_hash.get(..8).unwrap_or(&state.head_hash)
    );
    for entry in entries {
        let Some(timeline_entry) = &entry.entry else {
            continue;
        };
        let mut note = String::new();
        if !timeline_entry.rejected_rule.is_empty() {
            let _ = write!(note, " refused: {}", timeline_entry.rejected_rule);
        }
        if !entry.superseded_by_event_id.is_empty() {
            let _ = write!(note, " superseded by {}", entry.superseded_by_event_id);
        }
        if let Some(correction) = &entry.correction {
            let _ = write!(
                note,
                " corrected by {} at {}{}",
                correction
                    .author
                    .as_ref()
                    .map(|author| author.person_id.as_str())
                    .unwrap_or_default(),
                correction.recorded_at,
                if correction.reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", correction.reason)
                }
            );
        }
        let _ = writeln!(
            text,
            "  {:>4}  occurred {}  recorded {}  {:<12} {:<26} [{}]{}\n        {}",
            timeline_entry.sequence,
            timeline_entry.occurred_at,
            timeline_entry.recorded_at,
            agency_token(timeline_entry.agency),
            timeline_entry.event_type,
            entry.basis,
            note,
            timeline_entry.body_json
        );
    }
    let _ = writeln!(text, "State on {}:", state.business_date);
    if arguments.as_reader.is_none() {
        let _ = writeln!(
            text,
            "  lifecycle {}, IPS unit {}, coach {}, social services {}",
            or_dash(&state.lifecycle),
            or_dash(&state.unit),
            or_dash(&state.coach_person_id),
            or_dash(&state.social_services_unit)
        );
        for consent in &state.consents_in_force {
            let _ = writeln!(
                text,
                "  consent {} {} → {} ({} categories in force) {}..{}",
                consent.consent_id,
                party_token(consent.discloser),
                party_token(consent.recipient),
                consent.data_categories.len(),
                consent.valid_from,
                consent.valid_to
            );
        }
        if state.protected_identity {
            let _ = writeln!(
                text,
                "  protected identity; allow-list: {}",
                state
                    .allowed_persons
                    .iter()
                    .map(|allowed| format!(
                        "{} ({})",
                        allowed.person_id,
                        agency_token(allowed.agency)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    for activity in &state.activities {
        let light = activity.light.as_ref();
        let _ = writeln!(
            text,
            "  activity {} {} {} planned {}: {}",
            activity.activity_id,
            activity.kind,
            or_dash(&activity.status),
            activity.planned_start,
            light.map_or("-", |light| light_name(light.light))
        );
        for gate in light
            .map(|light| light.gates.as_slice())
            .unwrap_or_default()
        {
            let _ = writeln!(
                text,
                "      {} ({}): {}{}",
                gate.gate,
                agency_token(gate.deciding_agency),
                gate_status(gate.status),
                if gate.guidance.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", gate.guidance)
                }
            );
        }
    }
    text
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

fn reconstructed_json(rebuilt: &v1::ReconstructReadResponse) -> Value {
    let read = match &rebuilt.read {
        Some(v1::reconstruct_read_response::Read::Timeline(page)) => json!({
            "timeline": {
                "participant_id": page.participant_id,
                "entries": page.entries.iter().map(timeline_entry_json).collect::<Vec<_>>(),
                "next_page_token": page.next_page_token,
                "chain_broken_at_sequence": page.chain_broken_at_sequence,
                "chain_broken_reason": page.chain_broken_reason,
            }
        }),
        Some(v1::reconstruct_read_response::Read::PendingApprovals(page)) => json!({
            "pending_approvals": {
                "approvals": page.approvals.iter().map(|approval| json!({
                    "participant_id": approval.participant_id,
                    "activity_id": approval.activity_id,
                    "activity_kind": approval.activity_kind,
                    "planned_start": approval.planned_start,
                    "gate": approval.gate,
                    "status": gate_status(approval.status),
                    "requested_on": approval.requested_on,
                    "waiting_days": approval.waiting_days,
                    "running": approval.running,
                })).collect::<Vec<_>>(),
                "next_page_token": page.next_page_token,
            }
        }),
        Some(v1::reconstruct_read_response::Read::GreenLightPush(push)) => json!({
            "green_light_push": push.updates.iter().map(|update| json!({
                "initial": update.initial,
                "removed": update.removed,
                "activity": update.activity.as_ref().map_or(Value::Null, light_json),
            })).collect::<Vec<_>>(),
        }),
        None => Value::Null,
    };
    json!({
        "entry": rebuilt.entry.as_ref().map_or(Value::Null, |entry| json!({
            "position": entry.position,
            "read_at": entry.read_at,
            "reader": actor_json(entry.reader.as_ref()),
            "reader_agency": agency_token(entry.reader_agency),
            "participant_id": entry.participant_id,
            "action": entry.action,
            "basis": entry.basis,
        })),
        "request": serde_json::from_str::<Value>(&rebuilt.request_json).unwrap_or(Value::Null),
        "business_date": rebuilt.business_date,
        "history_sequence": rebuilt.history_sequence,
        "read_model_sequence": rebuilt.read_model_sequence,
        "projector_checkpoint": rebuilt.projector_checkpoint,
        "participant_ids": rebuilt.participant_ids,
        "read": read,
    })
}

fn reconstructed_text(rebuilt: &v1::ReconstructReadResponse) -> String {
    let mut text = String::new();
    if let Some(entry) = &rebuilt.entry {
        let _ = writeln!(
            text,
            "Access-log entry {}: {} ({}, {}) read {} at {} through {} [{}]",
            entry.position,
            entry
                .reader
                .as_ref()
                .map(|reader| reader.person_id.as_str())
                .unwrap_or_default(),
            entry
                .reader
                .as_ref()
                .map(|reader| reader.role.as_str())
                .unwrap_or_default(),
            agency_token(entry.reader_agency),
            entry.participant_id,
            entry.read_at,
            entry.action,
            entry.basis
        );
    }
    let _ = writeln!(
        text,
        "  request {}\n  business date {}, history at {}, read model at {}, projector checkpoint {}\n  participants in the read: {}",
        rebuilt.request_json,
        rebuilt.business_date,
        rebuilt.history_sequence,
        rebuilt.read_model_sequence,
        rebuilt.projector_checkpoint,
        rebuilt.participant_ids.join(", ")
    );
    match &rebuilt.read {
        Some(v1::reconstruct_read_response::Read::Timeline(page)) => {
            text.push_str(&crate::print::timeline(
                "What the read returned",
                &page.participant_id,
                &page.entries,
            ));
            if !page.next_page_token.is_empty() {
                let _ = writeln!(text, "  (next page token {})", page.next_page_token);
            }
        }
        Some(v1::reconstruct_read_response::Read::PendingApprovals(page)) => {
            let _ = writeln!(
                text,
                "What the read returned: {} pending approvals",
                page.approvals.len()
            );
            for approval in &page.approvals {
                let _ = writeln!(
                    text,
                    "  {} {} {} {} requested {} ({} days)",
                    approval.participant_id,
                    approval.activity_kind,
                    approval.gate,
                    gate_status(approval.status),
                    approval.requested_on,
                    approval.waiting_days
                );
            }
        }
        Some(v1::reconstruct_read_response::Read::GreenLightPush(push)) => {
            let _ = writeln!(
                text,
                "What the watch pushed: {} updates",
                push.updates.len()
            );
            for update in &push.updates {
                let Some(light) = &update.activity else {
                    continue;
                };
                let _ = writeln!(
                    text,
                    "  {} {} {}{}",
                    light.participant_id,
                    light.activity_id,
                    if update.removed {
                        "removed"
                    } else {
                        light_name(light.light)
                    },
                    if update.initial { " (initial)" } else { "" }
                );
            }
        }
        None => {}
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_arguments_and_readers_parse_and_bad_ones_are_named() {
        let parsed = ReplayArguments::parse(&[
            "0193-p",
            "--recorded-at",
            "2026-03-01T09:00:00Z",
            "--as",
            "ips_unit:coach:hudiksvall-ips",
            "--json",
        ]);
        assert_eq!(
            parsed.ok(),
            Some(ReplayArguments {
                participant_id: "0193-p".into(),
                recorded_at: "2026-03-01T09:00:00Z".into(),
                occurred_at: None,
                as_reader: Some("ips_unit:coach:hudiksvall-ips".into()),
                as_corrected: false,
                json: true,
            })
        );
        assert!(
            ReplayArguments::parse(&["0193-p"]).is_err(),
            "T is required"
        );
        assert!(ReplayArguments::parse(&["0193-p", "--recorded-at"]).is_err());
        assert!(ReplayArguments::parse(&["0193-p", "--recorded-at", "x", "--bogus"]).is_err());
        let reader = parse_reader("fk:case_officer:fk-lfc:fk-officer-4").ok();
        assert_eq!(
            reader,
            Some(v1::ReplayReader {
                party: v1::ConsentParty::Forsakringskassan as i32,
                role: "case_officer".into(),
                unit: "fk-lfc".into(),
                person_id: "fk-officer-4".into(),
            })
        );
        assert!(parse_reader("ips_unit:coach").is_err());
        assert!(parse_reader("mayor:coach:x").is_err());
    }
}
