//! The `ipsctl` binary: argument parsing and printing; the work is in the library.
//!
//! Usage:
//!   ipsctl demo
//!   ipsctl timeline <participant-id>
//!   ipsctl verify <participant-id>
//!   ipsctl status <event-id>
//!   ipsctl caseload <unit>
//! Addresses: IPS_LEDGER_ADDRESS, IPS_MUNICIPALITY_ADDRESS, IPS_FK_ADDRESS, IPS_AF_ADDRESS and
//! IPS_PSYCHIATRY_ADDRESS (defaults http://127.0.0.1:7400 to :7404).

use anyhow::Context;
use proto::v1;

const USAGE: &str = "usage: ipsctl demo | timeline <participant-id> | verify <participant-id> | status <event-id> | caseload <unit>";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let addresses = ipsctl::Addresses::from_environment();
    let mut clients = ipsctl::Clients::connect(&addresses)
        .await
        .context("cannot reach the services")?;
    match arguments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["demo"] => print!("{}", ipsctl::demo::run(&mut clients).await?),
        ["timeline", participant_id] => {
            let request = v1::GetTimelineRequest {
                participant_id: (*participant_id).to_owned(),
                page_size: 1000,
                ..Default::default()
            };
            let entries = clients
                .timeline
                .get_timeline(request)
                .await?
                .into_inner()
                .entries;
            print!(
                "{}",
                ipsctl::print::timeline("timeline", participant_id, &entries)
            );
        }
        ["verify", participant_id] => {
            let result = clients
                .timeline
                .verify_chain(v1::VerifyChainRequest {
                    participant_id: (*participant_id).to_owned(),
                })
                .await?
                .into_inner();
            println!("{}", ipsctl::print::verification(&result));
        }
        ["status", event_id] => {
            let status = clients
                .timeline
                .get_event_status(v1::GetEventStatusRequest {
                    event_id: (*event_id).to_owned(),
                })
                .await?
                .into_inner();
            println!("{status:#?}");
        }
        ["caseload", unit] => {
            let board = clients
                .caseload
                .get_caseload(v1::GetCaseloadRequest {
                    unit: (*unit).to_owned(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            print!("{}", ipsctl::print::caseload_board(&board));
        }
        _ => anyhow::bail!(USAGE),
    }
    Ok(())
}
