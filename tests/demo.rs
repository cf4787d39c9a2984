//! The README's demo, run against a fresh stack: it must complete, refuse the rule it breaks on
//! purpose, and report every chain intact.

use testkit::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_demo_runs_and_every_chain_is_intact() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut clients = ipsctl::Clients::connect(
        &format!("http://{}", stack.municipality_address),
        &format!("http://{}", stack.ledger_address),
    )
    .await?;
    let output = ipsctl::demo::run(&mut clients).await?;
    assert_eq!(output.matches("chain intact").count(), 4, "{output}");
    assert!(!output.contains("BROKEN"), "{output}");
    assert!(
        output.contains("refused: participant_already_enrolled"),
        "{output}"
    );
    assert!(output.contains("ConsentWithdrawn"), "{output}");
    stack.stop().await;
    Ok(())
}
