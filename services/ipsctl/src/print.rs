//! Text rendering of timelines and chain checks for the terminal.

use std::fmt::Write as _;

use domain::Agency;
use proto::v1;
use proto::wire::WireEnum;

/// The agency as the terminal tables name it (the authorities by their usual abbreviations).
fn agency_name(agency: i32) -> &'static str {
    match Agency::from_wire(agency) {
        Ok(Agency::Municipality) => "municipality",
        Ok(Agency::Forsakringskassan) => "FK",
        Ok(Agency::Arbetsformedlingen) => "AF",
        Ok(Agency::Psychiatry) => "psychiatry",
        Err(_) => "?",
    }
}

/// One participant's timeline as a table.
pub fn timeline(label: &str, participant_id: &str, entries: &[v1::TimelineEntry]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "\n{label} — participant {participant_id}");
    let _ = writeln!(
        text,
        "  {:>3}  {:<20}  {:<22}  {:<13}  {:<22}  {:<8}  note",
        "seq", "occurred", "event", "agency", "actor", "hash"
    );
    for entry in entries {
        let actor = entry
            .actor
            .as_ref()
            .map(|actor| format!("{} ({})", actor.person_id, actor.role))
            .unwrap_or_default();
        let occurred = entry
            .occurred_at
            .get(..16)
            .unwrap_or(&entry.occurred_at)
            .replace('T', " ");
        let note = if entry.rejected_rule.is_empty() {
            String::new()
        } else {
            format!("refused: {}", entry.rejected_rule)
        };
        let _ = writeln!(
            text,
            "  {:>3}  {:<20}  {:<22}  {:<13}  {:<22}  {:<8}  {}",
            entry.sequence,
            occurred,
            entry.event_type,
            agency_name(entry.agency),
            actor,
            entry.hash.get(..8).unwrap_or(&entry.hash),
            note
        );
    }
    // Sequences are the participant's own, so a gap is an entry this reader may not see.
    let mut hidden = Vec::new();
    let mut expected = 1;
    for entry in entries {
        hidden.extend((expected..entry.sequence).map(|sequence| sequence.to_string()));
        expected = entry.sequence + 1;
    }
    if !hidden.is_empty() {
        let _ = writeln!(
            text,
            "  not shown to this reader: {} (no consent in force for another agency's events)",
            hidden.join(", ")
        );
    }
    text
}

/// A chain check's result in one line.
pub fn verification(result: &v1::VerifyChainResponse) -> String {
    if result.intact {
        format!(
            "  chain intact: {} entries, head {}",
            result.verified_entries,
            result.head_hash.get(..16).unwrap_or(&result.head_hash)
        )
    } else {
        format!(
            "  CHAIN BROKEN at entry {} ({}); {} entries verified before it",
            result.first_broken_sequence, result.first_broken_reason, result.verified_entries
        )
    }
}

/// A unit's caseload board: active participants per coach, the waiting list, follow-ups due.
pub fn caseload_board(board: &v1::GetCaseloadResponse) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "\nCaseload board — {}", board.unit);
    let _ = writeln!(text, "  coach          active");
    for coach in &board.coaches {
        let _ = writeln!(
            text,
            "  {:<14} {:>6}",
            coach.coach_person_id, coach.active_participants
        );
    }
    let _ = writeln!(
        text,
        "  waiting list: {}",
        if board.waiting_list.is_empty() {
            "empty".to_owned()
        } else {
            board.waiting_list.len().to_string()
        }
    );
    for waiting in &board.waiting_list {
        let offered = if waiting.offered_coach_person_id.is_empty() {
            String::new()
        } else {
            format!(", offered to {}", waiting.offered_coach_person_id)
        };
        let _ = writeln!(
            text,
            "    {} waiting since {}{offered}",
            waiting.participant_id,
            waiting.waiting_since.get(..10).unwrap_or_default()
        );
    }
    let _ = writeln!(
        text,
        "  follow-ups due within 14 days (overdue included): {}",
        board.follow_ups_due.len()
    );
    for due in &board.follow_ups_due {
        let _ = writeln!(
            text,
            "    {} (coach {}) due {}",
            due.participant_id, due.coach_person_id, due.follow_up_due_on
        );
    }
    text
}

/// A participant's access-log extract: who read their data, when, what and why.
pub fn access_log(extract: &v1::GetAccessLogExtractResponse) -> String {
    let mut text = format!(
        "\nAccess log extract for {} ({} reads, oldest first)\n",
        extract.participant_id,
        extract.entries.len()
    );
    for entry in &extract.entries {
        let reader = entry.reader.clone().unwrap_or_default();
        let _ = writeln!(
            text,
            "  {}  {:<14} {:<12} {:<48} {}",
            entry.read_at.get(..19).unwrap_or(&entry.read_at),
            reader.person_id,
            reader.role,
            entry.action,
            entry.basis
        );
    }
    text
}

fn gate_status_name(status: i32) -> String {
    v1::GateStatus::try_from(status)
        .map(|status| {
            status
                .as_str_name()
                .trim_start_matches("GATE_STATUS_")
                .to_owned()
        })
        .unwrap_or_else(|_| "?".into())
}

fn light_name(light: i32) -> String {
    v1::Light::try_from(light)
        .map(|light| light.as_str_name().trim_start_matches("LIGHT_").to_owned())
        .unwrap_or_else(|_| "?".into())
}

/// The green-light board: each planned start's light and gates as a coach's watch pushes it,
/// then what waits on Försäkringskassan, as its officers see it.
pub fn green_light_board(
    lights: &[(String, v1::ActivityLight)],
    pending: &v1::PendingApprovalsResponse,
    labels: &std::collections::BTreeMap<&str, String>,
) -> String {
    let mut text = String::from("\nGreen-light board — planned starts (WatchGreenLight)\n");
    let _ = writeln!(
        text,
        "  {:<16} {:<13} {:<11} {:<8}  gates",
        "participant", "activity", "start", "light"
    );
    for (label, light) in lights {
        let gates: Vec<String> = light
            .gates
            .iter()
            .map(|gate| {
                let mut state = format!(
                    "{} by {}: {}",
                    gate.gate,
                    agency_name(gate.deciding_agency),
                    gate_status_name(gate.status)
                );
                if gate.waiting_days > 0 {
                    let _ = write!(state, ", waiting {} days", gate.waiting_days);
                }
                if !gate.valid_to.is_empty() {
                    let _ = write!(state, ", valid to {}", gate.valid_to);
                }
                state
            })
            .collect();
        let _ = writeln!(
            text,
            "  {:<16} {:<13} {:<11} {:<8}  {}",
            label,
            light.activity_kind,
            light.planned_start,
            light_name(light.light),
            if gates.is_empty() {
                "none needed".to_owned()
            } else if light.running {
                format!("running, renew: {}", gates.join("; "))
            } else {
                gates.join("; ")
            }
        );
    }
    let renewals = pending
        .approvals
        .iter()
        .filter(|approval| approval.running)
        .count();
    let _ = writeln!(
        text,
        "\nWaiting on FK (PendingApprovals, as fk-officer-4): {} planned starts, {} running activities whose approval has expired or expires within 5 days",
        pending.approvals.len() - renewals,
        renewals
    );
    for approval in &pending.approvals {
        let _ = writeln!(
            text,
            "  {:<16} {:<13} start {}  {:<22} {:<18} requested {}, {}{}",
            labels
                .get(approval.participant_id.as_str())
                .map_or(approval.participant_id.as_str(), String::as_str),
            approval.activity_kind,
            approval.planned_start,
            approval.gate,
            gate_status_name(approval.status),
            approval.requested_on,
            if approval.valid_to.is_empty() {
                format!("waiting {} days", approval.waiting_days)
            } else {
                format!("valid to {}", approval.valid_to)
            },
            if approval.running {
                "  (running: renew)"
            } else {
                ""
            }
        );
    }
    text
}
