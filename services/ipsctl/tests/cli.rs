//! The `ipsctl` binary itself against a fresh stack: the read commands print JSON with the
//! documented field names under `--json`, and the same reads still print their text without it.

use std::process::Output;

use proto::v1;
use testkit::{as_coach, Stack};

const UNIT: &str = "hudiksvall-ips";

/// Runs the binary with the stack's addresses and the test PKI.
async fn ipsctl(stack: &Stack, arguments: &[&str]) -> anyhow::Result<Output> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ipsctl"))
        .arg("--ledger-address")
        .arg(format!("https://{}", stack.ledger_address))
        .arg("--municipality-address")
        .arg(format!("https://{}", stack.municipality_address))
        .arg("--fk-address")
        .arg(format!("https://{}", stack.forsakringskassan_address))
        .arg("--af-address")
        .arg(format!("https://{}", stack.arbetsformedlingen_address))
        .arg("--psychiatry-address")
        .arg(format!("https://{}", stack.psychiatry_address))
        .arg("--pki-directory")
        .arg(&testkit::test_pki().directory)
        .args(arguments)
        .output()
        .await?;
    Ok(output)
}

async fn ipsctl_json(stack: &Stack, arguments: &[&str]) -> anyhow::Result<serde_json::Value> {
    let output = ipsctl(stack, arguments).await?;
    anyhow::ensure!(
        output.status.success(),
        "{arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).map_err(|error| {
        anyhow::anyhow!(
            "{arguments:?} printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_commands_print_json_with_stable_field_names_and_text_without() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let referred = municipality
        .refer_participant(as_coach(v1::ReferParticipantRequest {
            context: None,
            participant_id: String::new(),
            source: v1::ReferralSource::Vuxenpsykiatri as i32,
            referrer_unit: "hudiksvall-vuxenpsykiatri".into(),
        }))
        .await?
        .into_inner();
    let participant_id = referred.participant_id.as_str();
    let enrolled = municipality
        .enroll_participant(as_coach(v1::EnrollParticipantRequest {
            context: None,
            participant_id: participant_id.into(),
            unit: UNIT.into(),
            coach_person_id: "coach-17".into(),
        }))
        .await?
        .into_inner();
    assert_eq!(enrolled.status, v1::WriteStatus::Accepted as i32);
    // The reads come from the projection: wait until it has both events (`min_sequence`).
    stack
        .timeline()
        .await?
        .get_timeline(testkit::as_auditor(v1::GetTimelineRequest {
            participant_id: participant_id.into(),
            min_sequence: enrolled.sequence,
            ..Default::default()
        }))
        .await?;

    let timeline = ipsctl_json(&stack, &["timeline", participant_id, "--json"]).await?;
    assert_eq!(timeline["participant_id"], participant_id);
    assert_eq!(timeline["more"], false);
    assert_eq!(timeline["not_shown_sequences"], serde_json::json!([]));
    let entries = timeline["entries"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("entries is a list: {timeline}"))?;
    assert_eq!(entries.len(), 2, "{timeline}");
    assert_eq!(entries[0]["sequence"], 1);
    assert_eq!(entries[0]["event_type"], "ParticipantReferred");
    assert_eq!(entries[0]["agency"], "municipality");
    assert_eq!(entries[0]["actor"]["person_id"], "coach-17");
    assert_eq!(entries[0]["event_id"], referred.event_id.as_str());
    assert_eq!(entries[1]["prev_hash"], entries[0]["hash"]);
    assert!(entries[1]["body"].is_object(), "{timeline}");

    let verification = ipsctl_json(&stack, &["verify", participant_id, "--json"]).await?;
    assert_eq!(verification["intact"], true, "{verification}");
    assert_eq!(verification["verified_entries"], 2);
    assert_eq!(verification["head_hash"], entries[1]["hash"]);

    let status = ipsctl_json(&stack, &["status", &referred.event_id, "--json"]).await?;
    assert_eq!(status["status"], "accepted", "{status}");
    assert_eq!(status["sequence"], 1);
    assert_eq!(status["participant_id"], participant_id);

    let caseload = ipsctl_json(&stack, &["caseload", UNIT, "--json"]).await?;
    assert_eq!(caseload["unit"], UNIT);
    assert_eq!(
        caseload["coaches"],
        serde_json::json!([{"coach_person_id": "coach-17", "active_participants": 1}]),
        "{caseload}"
    );
    assert_eq!(caseload["active"][0]["participant_id"], participant_id);

    let extract = ipsctl_json(&stack, &["access-log", participant_id, "--json"]).await?;
    assert_eq!(extract["participant_id"], participant_id);
    let reads = extract["entries"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("entries is a list: {extract}"))?;
    assert!(
        reads.iter().any(
            |read| read["action"] == "ips.v1.TimelineService/GetTimeline"
                && read["reader"]["person_id"] == "ipsctl-auditor"
                && read["reader_agency"] == "municipality"
        ),
        "the timeline read above is in the extract: {extract}"
    );

    // Without --json the same reads print what they printed before.
    let text = ipsctl(&stack, &["timeline", participant_id]).await?;
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout)?;
    assert!(
        text.contains(&format!("timeline — participant {participant_id}")),
        "{text}"
    );
    assert!(text.contains("ParticipantEnrolled"), "{text}");
    let text = String::from_utf8(ipsctl(&stack, &["verify", participant_id]).await?.stdout)?;
    assert!(text.starts_with("  chain intact: 2 entries"), "{text}");

    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn help_names_every_command_and_a_wrong_invocation_fails() -> anyhow::Result<()> {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_ipsctl"))
        .arg("--help")
        .output()?;
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout)?;
    for command in [
        "dev-pki",
        "token",
        "demo",
        "timeline",
        "verify",
        "status",
        "caseload",
        "access-log",
    ] {
        assert!(help.contains(command), "{command} missing: {help}");
    }
    let wrong = std::process::Command::new(env!("CARGO_BIN_EXE_ipsctl"))
        .args(["timeline"])
        .output()?;
    assert_eq!(wrong.status.code(), Some(2), "clap's usage error");
    assert!(
        String::from_utf8(wrong.stderr)?.contains("<PARTICIPANT_ID>"),
        "the error names what is missing"
    );
    Ok(())
}
