//! The fault probe's short mode, in the test suite: a few thousand events through the whole
//! system as processes while at least two of each fault land (ledger kills, NATS node restarts,
//! the stream leader's among them, PostgreSQL crashes, pauses shorter and longer than the pin
//! timeout). The probe's own checks decide; this test fails, with the probe's report, when it
//! finds anything lost, duplicated, misordered, broken, parked or wedged.
//!
//! A fresh seed each run (printed in the report), so the suite explores; `IPS_PROBE_SEED`
//! repeats one.

use std::process::Command;

#[test]
fn the_fault_probe_short_mode_finds_nothing_lost_duplicated_or_misordered() -> anyhow::Result<()> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fault_probe"));
    command.arg("--short");
    if let Ok(seed) = std::env::var("IPS_PROBE_SEED") {
        command.args(["--seed", &seed]);
    }
    let output = command.output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the fault probe failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains(": PASSED"), "{stdout}");
    Ok(())
}
