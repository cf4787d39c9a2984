//! The `ipsctl` binary: argument parsing and printing; the work is in the library.
//!
//! Usage:
//!   ipsctl dev-pki <directory>   (what deploy/dev-pki.sh runs)
//!   ipsctl token <organisation> <person> <role> <unit>   (an officer token, a JWT, e.g. for grpcurl)
//!   ipsctl demo
//!   ipsctl timeline <participant-id>
//!   ipsctl verify <participant-id>
//!   ipsctl status <event-id>
//!   ipsctl caseload <unit>
//!   ipsctl access-log <participant-id>   (who read the participant's data, when, and why)
//! Addresses: IPS_LEDGER_ADDRESS, IPS_MUNICIPALITY_ADDRESS, IPS_FK_ADDRESS, IPS_AF_ADDRESS and
//! IPS_PSYCHIATRY_ADDRESS (defaults https://127.0.0.1:7400 to :7404); the PKI from IPS_PKI_DIRECTORY
//! (default deploy/.local/pki).

use anyhow::Context;
use domain::{Agency, Role};
use proto::v1;

/// The CLI reads as a municipal auditor (internal control); every read is logged under it.
fn auditor<T>(message: T) -> tonic::Request<T> {
    ipsctl::as_officer(
        message,
        Agency::Municipality,
        "ipsctl-auditor",
        Role::Auditor,
        "internal-control",
    )
}

const USAGE: &str = "usage: ipsctl dev-pki <directory> | token <organisation> <person> <role> <unit> | demo | timeline <participant-id> | verify <participant-id> | status <event-id> | caseload <unit> | access-log <participant-id>";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if let [command, agency, person, role, unit] = arguments.as_slice() {
        if command == "token" {
            let agency = Agency::from_token(agency).with_context(|| {
                format!("unknown organisation `{agency}` (municipality, fk, af, psychiatry)")
            })?;
            let role = Role::from_token(role).with_context(|| format!("unknown role `{role}`"))?;
            let path = ipsctl::pki_directory()
                .join(rpc::identity::pki_files::token_signing_key(agency.token()));
            let signer = rpc::identity::TokenSigner::from_file(agency, &path)
                .map_err(|error| anyhow::anyhow!(error))?;
            println!(
                "{}",
                signer.officer_token(person, role, unit, ipsctl::TOKEN_LIFETIME_S)?
            );
            return Ok(());
        }
    }
    if let [command, directory] = arguments.as_slice() {
        if command == "dev-pki" {
            devpki::generate()?.write_to(std::path::Path::new(directory))?;
            println!("development PKI written to {directory}");
            return Ok(());
        }
    }
    let addresses = ipsctl::Addresses::from_environment();
    let mut clients = ipsctl::Clients::connect(&addresses, &ipsctl::pki_directory())
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
                .get_timeline(auditor(request))
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
                .verify_chain(auditor(v1::VerifyChainRequest {
                    participant_id: (*participant_id).to_owned(),
                }))
                .await?
                .into_inner();
            println!("{}", ipsctl::print::verification(&result));
        }
        ["status", event_id] => {
            let status = clients
                .timeline
                .get_event_status(ipsctl::as_officer(
                    v1::GetEventStatusRequest {
                        event_id: (*event_id).to_owned(),
                    },
                    Agency::Municipality,
                    "ipsctl",
                    Role::System,
                    "ipsctl",
                ))
                .await?
                .into_inner();
            println!("{status:#?}");
        }
        ["caseload", unit] => {
            let board = clients
                .caseload
                .get_caseload(ipsctl::as_officer(
                    v1::GetCaseloadRequest {
                        unit: (*unit).to_owned(),
                        ..Default::default()
                    },
                    Agency::Municipality,
                    ipsctl::demo::TEAM_LEADER,
                    Role::TeamLeader,
                    unit,
                ))
                .await?
                .into_inner();
            print!("{}", ipsctl::print::caseload_board(&board));
        }
        ["access-log", participant_id] => {
            let extract = clients
                .audit
                .get_access_log_extract(auditor(v1::GetAccessLogExtractRequest {
                    participant_id: (*participant_id).to_owned(),
                    page_size: 1000,
                    ..Default::default()
                }))
                .await?
                .into_inner();
            print!("{}", ipsctl::print::access_log(&extract));
            if !extract.next_page_token.is_empty() {
                println!("  (more: the extract has further pages)");
            }
        }
        _ => anyhow::bail!(USAGE),
    }
    Ok(())
}
