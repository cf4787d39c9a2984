//! The README's demo, run against a fresh stack: it must drive all twenty participants through
//! the four agencies, refuse the rule it breaks on purpose, report every chain intact, and show
//! the caseload board and the green-light board.

use testkit::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_demo_runs_and_every_chain_is_intact() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let addresses = ipsctl::Addresses {
        ledger: format!("https://{}", stack.ledger_address),
        municipality: format!("https://{}", stack.municipality_address),
        forsakringskassan: format!("https://{}", stack.forsakringskassan_address),
        arbetsformedlingen: format!("https://{}", stack.arbetsformedlingen_address),
        psychiatry: format!("https://{}", stack.psychiatry_address),
    };
    let mut clients = ipsctl::Clients::connect(&addresses, &testkit::test_pki().directory).await?;
    let output = ipsctl::demo::run(&mut clients).await?;
    // Anna's own check, plus one summary line per participant.
    assert_eq!(output.matches("chain intact").count(), 21, "{output}");
    assert!(!output.contains("BROKEN"), "{output}");
    assert!(
        output.contains("refused by rule participant_already_enrolled"),
        "{output}"
    );
    assert!(output.contains("Caseload board"), "{output}");
    assert!(
        output.contains("coach-99 (not on her allow-list): PermissionDenied: protected_identity"),
        "{output}"
    );
    assert!(output.contains("Access log extract for"), "{output}");
    assert!(
        output.contains("ips.v1.TimelineService/GetTimeline"),
        "Anna's extract shows the team leader's timeline read: {output}"
    );
    for coach in ["coach-17", "coach-18", "coach-19"] {
        assert!(
            output.contains(coach),
            "{coach} missing from the board: {output}"
        );
    }
    assert!(output.contains(" discharged "), "{output}");
    // The green-light board: FK approved the first planned start, asked for more information on
    // the second and has not decided the rest, so every one but the first waits on FK.
    let board = output
        .split("Green-light board")
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("no green-light board: {output}"))?;
    let lights: Vec<&str> = board
        .lines()
        .filter(|line| line.contains(" praktik ") && !line.contains(" start "))
        .collect();
    assert_eq!(lights.len(), ipsctl::demo::PLANNED_STARTS.len(), "{board}");
    assert!(
        lights[0].contains(" GREEN ") && lights[0].contains("APPROVED"),
        "{board}"
    );
    assert!(
        lights[1].contains(" WAITING ") && lights[1].contains("INFO_NEEDED"),
        "{board}"
    );
    assert!(
        lights[2..]
            .iter()
            .all(|line| line.contains(" WAITING ") && line.contains("REQUESTED")),
        "{board}"
    );
    assert!(
        board.contains(&format!(
            "Waiting on FK (PendingApprovals, as fk-officer-4): {} planned starts,",
            ipsctl::demo::PLANNED_STARTS.len() - 1
        )),
        "{board}"
    );
    assert!(output.contains(" paused "), "{output}");
    stack.stop().await;
    Ok(())
}
