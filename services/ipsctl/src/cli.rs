//! The command line, declared with clap's derive API so that every command and option has its
//! help text and a wrong invocation gets a precise error instead of one usage line; and the read
//! commands, run against connected [`Clients`], as text for people or `--json` for scripts.
//!
//! Kept in the library (not the binary) so the tests parse real argument lists and run the
//! same reads the binary runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use domain::{Agency, Role};
use proto::v1;

use crate::{json, print, Addresses, Clients};

/// How many entries a read command asks for (one page; the output says when there are more).
pub const READ_PAGE_SIZE: u32 = 1000;

/// ipsctl: the command-line client of IPS Samverkan for operators, auditors and the demo.
///
/// Every call is mTLS with an organisation's client certificate plus an officer token signed
/// with that organisation's key, both from the PKI directory.
#[derive(Debug, Parser)]
#[command(name = "ipsctl", version, propagate_version = true)]
pub struct Cli {
    /// Where the services listen, and the PKI to reach them with.
    #[command(flatten)]
    pub connection: ConnectionOptions,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Service addresses and the PKI directory (each also from its environment variable).
#[derive(Clone, Debug, Args)]
pub struct ConnectionOptions {
    /// The ledger (timeline, caseload, audit and green-light services).
    #[arg(
        long,
        global = true,
        env = "IPS_LEDGER_ADDRESS",
        default_value = "https://127.0.0.1:7400"
    )]
    pub ledger_address: String,
    /// The municipality service.
    #[arg(
        long,
        global = true,
        env = "IPS_MUNICIPALITY_ADDRESS",
        default_value = "https://127.0.0.1:7401"
    )]
    pub municipality_address: String,
    /// Försäkringskassan's service.
    #[arg(
        long,
        global = true,
        env = "IPS_FK_ADDRESS",
        default_value = "https://127.0.0.1:7402"
    )]
    pub fk_address: String,
    /// Arbetsförmedlingen's service.
    #[arg(
        long,
        global = true,
        env = "IPS_AF_ADDRESS",
        default_value = "https://127.0.0.1:7403"
    )]
    pub af_address: String,
    /// Psychiatry's service.
    #[arg(
        long,
        global = true,
        env = "IPS_PSYCHIATRY_ADDRESS",
        default_value = "https://127.0.0.1:7404"
    )]
    pub psychiatry_address: String,
    /// The PKI directory: CA and client certificates, and the organisations' token-signing keys.
    #[arg(long, global = true, env = "IPS_PKI_DIRECTORY", default_value = rpc::identity::DEVELOPMENT_PKI_DIRECTORY)]
    pub pki_directory: PathBuf,
}

impl ConnectionOptions {
    /// The service addresses.
    pub fn addresses(&self) -> Addresses {
        Addresses {
            ledger: self.ledger_address.clone(),
            municipality: self.municipality_address.clone(),
            forsakringskassan: self.fk_address.clone(),
            arbetsformedlingen: self.af_address.clone(),
            psychiatry: self.psychiatry_address.clone(),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Writes a fresh development PKI (CA, server and client certificates, token-signing keys)
    /// into DIRECTORY; what deploy/dev-pki.sh runs.
    DevPki {
        /// The directory to write (created if missing).
        directory: PathBuf,
    },
    /// Prints a one-hour officer token signed with ORGANISATION's key, e.g. for grpcurl's
    /// `authorization: Bearer` header.
    Token {
        /// The officer's organisation: municipality, fk, af or psychiatry.
        organisation: String,
        /// The officer's person pseudo-id, e.g. coach-17.
        person: String,
        /// The officer's role, e.g. coach, team_leader, case_officer, auditor.
        role: String,
        /// The officer's unit, e.g. hudiksvall-ips.
        unit: String,
    },
    /// Runs the README's demo: twenty synthetic participants through all four agencies, then
    /// timelines, chain checks, the caseload board, the green-light board and an access-log
    /// extract.
    Demo,
    /// Prints a participant's timeline (first 1,000 entries) as the municipality's auditor.
    Timeline(ParticipantRead),
    /// Verifies a participant's hash chain as the municipality's auditor.
    Verify(ParticipantRead),
    /// Prints whether an event was recorded, accepted or rejected.
    Status {
        /// The event id (a UUID) a write returned.
        event_id: String,
        /// Prints JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Prints a unit's caseload board as its team leader: coaches' loads, the waiting list and
    /// follow-ups due.
    Caseload {
        /// The IPS unit, e.g. hudiksvall-ips.
        unit: String,
        /// Prints JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Prints a participant's access-log extract (who read their data, when, what and why; first
    /// 1,000 entries) as the municipality's auditor.
    AccessLog(ParticipantRead),
    /// The auditor's replay and rebuilt reads (as the municipality's auditor).
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `ipsctl audit …`.
#[derive(Clone, Debug, Subcommand)]
pub enum AuditCommand {
    /// Replays a participant's history as recorded at T, optionally cut at business time T' and
    /// seen through a party's eyes, ending with the folded state at that point.
    Replay(crate::audit::ReplayArguments),
    /// Rebuilds exactly what one logged read returned, from the events and the access log.
    Read {
        /// The access-log position of the read (`ipsctl access-log` prints it).
        position: u64,
        /// Prints JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A read of one participant.
#[derive(Clone, Debug, Args)]
pub struct ParticipantRead {
    /// The participant id (a UUID).
    pub participant_id: String,
    /// Prints JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How a read's result is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Tables and lines for a person.
    Text,
    /// One JSON object (pretty-printed), field names as in [`crate::json`].
    Json,
}

impl OutputFormat {
    fn of(json: bool) -> Self {
        if json {
            Self::Json
        } else {
            Self::Text
        }
    }
}

/// The CLI reads as a municipal auditor (internal control); every read is logged under it.
fn auditor<T>(message: T) -> tonic::Request<T> {
    crate::as_officer(
        message,
        Agency::Municipality,
        "ipsctl-auditor",
        Role::Auditor,
        "internal-control",
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// Runs a command that needs the services (every one but `dev-pki` and `token`) and returns
/// what it prints. `None` for a command that needs no connection.
pub async fn run_connected(
    command: &Command,
    clients: &mut Clients,
) -> anyhow::Result<Option<String>> {
    let output = match command {
        Command::DevPki { .. } | Command::Token { .. } => return Ok(None),
        Command::Demo => crate::demo::run(clients).await?,
        Command::Timeline(read) => timeline(clients, read).await?,
        Command::Verify(read) => verify(clients, read).await?,
        Command::Status { event_id, json } => status(clients, event_id, *json).await?,
        Command::Caseload { unit, json } => caseload(clients, unit, *json).await?,
        Command::AccessLog(read) => access_log(clients, read).await?,
        Command::Audit(AuditCommand::Replay(arguments)) => {
            crate::audit::replay(clients, arguments).await?
        }
        Command::Audit(AuditCommand::Read { position, json }) => {
            crate::audit::read(clients, *position, *json).await?
        }
    };
    Ok(Some(output))
}

async fn timeline(clients: &mut Clients, read: &ParticipantRead) -> anyhow::Result<String> {
    let response = clients
        .timeline
        .get_timeline(auditor(v1::GetTimelineRequest {
            participant_id: read.participant_id.clone(),
            page_size: READ_PAGE_SIZE,
            ..Default::default()
        }))
        .await?
        .into_inner();
    match OutputFormat::of(read.json) {
        OutputFormat::Json => to_json(&json::Timeline::from(&response)),
        OutputFormat::Text => Ok(print::timeline(
            "timeline",
            &read.participant_id,
            &response.entries,
        )),
    }
}

async fn verify(clients: &mut Clients, read: &ParticipantRead) -> anyhow::Result<String> {
    let result = clients
        .timeline
        .verify_chain(auditor(v1::VerifyChainRequest {
            participant_id: read.participant_id.clone(),
        }))
        .await?
        .into_inner();
    match OutputFormat::of(read.json) {
        OutputFormat::Json => to_json(&json::Verification::from(&result)),
        OutputFormat::Text => Ok(print::verification(&result) + "\n"),
    }
}

async fn status(clients: &mut Clients, event_id: &str, json: bool) -> anyhow::Result<String> {
    let status = clients
        .timeline
        .get_event_status(crate::as_officer(
            v1::GetEventStatusRequest {
                event_id: event_id.to_owned(),
            },
            Agency::Municipality,
            "ipsctl",
            Role::System,
            "ipsctl",
        ))
        .await?
        .into_inner();
    match OutputFormat::of(json) {
        OutputFormat::Json => to_json(&json::EventStatus::from(&status)),
        OutputFormat::Text => Ok(format!("{status:#?}\n")),
    }
}

async fn caseload(clients: &mut Clients, unit: &str, json: bool) -> anyhow::Result<String> {
    let board = clients
        .caseload
        .get_caseload(crate::as_officer(
            v1::GetCaseloadRequest {
                unit: unit.to_owned(),
                ..Default::default()
            },
            Agency::Municipality,
            crate::demo::TEAM_LEADER,
            Role::TeamLeader,
            unit,
        ))
        .await?
        .into_inner();
    match OutputFormat::of(json) {
        OutputFormat::Json => to_json(&json::Caseload::from(&board)),
        OutputFormat::Text => Ok(print::caseload_board(&board)),
    }
}

async fn access_log(clients: &mut Clients, read: &ParticipantRead) -> anyhow::Result<String> {
    let extract = clients
        .audit
        .get_access_log_extract(auditor(v1::GetAccessLogExtractRequest {
            participant_id: read.participant_id.clone(),
            page_size: READ_PAGE_SIZE,
            ..Default::default()
        }))
        .await?
        .into_inner();
    match OutputFormat::of(read.json) {
        OutputFormat::Json => to_json(&json::AccessLogExtract::from(&extract)),
        OutputFormat::Text => {
            let mut text = print::access_log(&extract);
            if !extract.next_page_token.is_empty() {
                text.push_str("  (more: the extract has further pages)\n");
            }
            Ok(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_command_and_option_has_help() {
        let command = Cli::command();
        command.clone().debug_assert();
        let arguments_without_help = |owner: &str, command: &clap::Command| -> Vec<String> {
            command
                .get_arguments()
                .filter(|argument| {
                    argument.get_help().is_none()
                        && !["help", "version"].contains(&argument.get_id().as_str())
                })
                .map(|argument| format!("{owner} {}", argument.get_id()))
                .collect()
        };
        let mut missing = arguments_without_help("ipsctl", &command);
        for subcommand in command.get_subcommands() {
            if subcommand.get_about().is_none() {
                missing.push(format!("command {}", subcommand.get_name()));
            }
            missing.extend(arguments_without_help(subcommand.get_name(), subcommand));
        }
        assert!(missing.is_empty(), "without help: {missing:?}");
    }

    #[test]
    fn the_readme_invocations_parse_as_before() {
        let parse = |arguments: &[&str]| {
            Cli::try_parse_from(std::iter::once("ipsctl").chain(arguments.iter().copied()))
                .map(|cli| cli.command)
        };
        assert!(matches!(
            parse(&["timeline", "p-1"]),
            Ok(Command::Timeline(ParticipantRead { ref participant_id, json: false })) if participant_id == "p-1"
        ));
        assert!(matches!(
            parse(&["verify", "p-1", "--json"]),
            Ok(Command::Verify(ParticipantRead { json: true, .. }))
        ));
        assert!(matches!(
            parse(&["status", "e-1"]),
            Ok(Command::Status { json: false, .. })
        ));
        assert!(matches!(
            parse(&["caseload", "hudiksvall-ips", "--json"]),
            Ok(Command::Caseload { json: true, ref unit }) if unit == "hudiksvall-ips"
        ));
        assert!(matches!(
            parse(&["access-log", "p-1"]),
            Ok(Command::AccessLog(_))
        ));
        assert!(matches!(parse(&["demo"]), Ok(Command::Demo)));
        assert!(matches!(
            parse(&["dev-pki", "/tmp/pki"]),
            Ok(Command::DevPki { .. })
        ));
        assert!(matches!(
            parse(&["token", "municipality", "coach-17", "coach", "hudiksvall-ips"]),
            Ok(Command::Token { ref organisation, ref person, ref role, ref unit })
                if (organisation.as_str(), person.as_str(), role.as_str(), unit.as_str())
                    == ("municipality", "coach-17", "coach", "hudiksvall-ips")
        ));
        // What the old parser refused with its usage line is still refused.
        assert!(parse(&["timeline"]).is_err());
        assert!(parse(&["token", "municipality", "coach-17", "coach"]).is_err());
        assert!(parse(&["demo", "--json"]).is_err(), "demo is not a read");
        assert!(parse(&["nonsense"]).is_err());
    }

    #[test]
    fn addresses_come_from_the_options() {
        let cli = Cli::try_parse_from([
            "ipsctl",
            "--ledger-address",
            "https://ledger.example:1",
            "caseload",
            "unit-1",
        ])
        .expect("parses");
        assert_eq!(
            cli.connection.addresses().ledger,
            "https://ledger.example:1"
        );
    }
}
