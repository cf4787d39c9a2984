//! The README's demo, run against a fresh stack: it must drive all twenty participants through
//! the four agencies, refuse the rule it breaks on purpose, report every chain intact, and show
//! the caseload board.

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
    assert!(output.contains(" paused "), "{output}");
    stack.stop().await;
    Ok(())
}
