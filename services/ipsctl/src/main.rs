//! The `ipsctl` binary: parses the command line ([`ipsctl::cli`]) and prints (`ipsctl token` prints a
//! development JWT); the work is in the
//! library. `ipsctl --help` lists the commands, `ipsctl <command> --help` explains one. Service
//! addresses and the PKI directory come from options or their environment variables
//! (IPS_LEDGER_ADDRESS, IPS_MUNICIPALITY_ADDRESS, IPS_FK_ADDRESS, IPS_AF_ADDRESS,
//! IPS_PSYCHIATRY_ADDRESS, IPS_PKI_DIRECTORY; defaults https://127.0.0.1:7400 to :7404 and
//! deploy/.local/pki).

use anyhow::Context;
use clap::Parser;
use domain::{Agency, Role};
use ipsctl::cli::{Cli, Command};

/// `ipsctl token`: an officer token signed with the organisation's key from the PKI directory.
fn print_token(
    pki_directory: &std::path::Path,
    agency: &str,
    person: &str,
    role: &str,
    unit: &str,
) -> anyhow::Result<()> {
    let agency = Agency::from_token(agency).with_context(|| {
        format!("unknown organisation `{agency}` (municipality, fk, af, psychiatry)")
    })?;
    let role = Role::from_token(role).with_context(|| format!("unknown role `{role}`"))?;
    let path = pki_directory.join(rpc::identity::pki_files::token_signing_key(agency.token()));
    let signer = rpc::identity::TokenSigner::from_file(agency, &path)
        .map_err(|error| anyhow::anyhow!(error))?;
    println!(
        "{}",
        signer.officer_token(person, role, unit, ipsctl::TOKEN_LIFETIME_S)?
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Token {
            organisation,
            person,
            role,
            unit,
        } => {
            return print_token(
                &cli.connection.pki_directory,
                organisation,
                person,
                role,
                unit,
            )
        }
        Command::DevPki { directory } => {
            devpki::generate()?.write_to(directory)?;
            println!("development PKI written to {}", directory.display());
            return Ok(());
        }
        Command::Demo
        | Command::Timeline(_)
        | Command::Verify(_)
        | Command::Status { .. }
        | Command::Caseload { .. }
        | Command::AccessLog(_)
        | Command::Audit(_) => {}
    }
    let mut clients =
        ipsctl::Clients::connect(&cli.connection.addresses(), &cli.connection.pki_directory)
            .await
            .context("cannot reach the services")?;
    if let Some(output) = ipsctl::cli::run_connected(&cli.command, &mut clients).await? {
        print!("{output}");
    }
    Ok(())
}
