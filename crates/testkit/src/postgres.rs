//! A PostgreSQL server of the test's own, which a test may stop (as a crash) and start again.
//!
//! The machine's shared PostgreSQL serves every test running in parallel, so a test about the
//! database going away must never restart it. This one is initialised with `initdb` into a
//! temporary directory and listens on a free loopback port; it runs as the `postgres` system
//! user when the tests run as root (PostgreSQL refuses to run as root), with trust
//! authentication. Its binaries are found under `IPS_TEST_POSTGRES_BIN` or
//! `/usr/lib/postgresql/<newest>/bin`. Stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::unique_suffix;

/// A private PostgreSQL server.
pub struct PrivatePostgres {
    binaries: PathBuf,
    directory: PathBuf,
    port: u16,
    run_as_postgres: bool,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn postgres_binaries() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("IPS_TEST_POSTGRES_BIN") {
        return Ok(PathBuf::from(path));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql (set IPS_TEST_POSTGRES_BIN)")?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let binaries = entry.path().join("bin");
            binaries
                .join("initdb")
                .exists()
                .then_some((version, binaries))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, binaries)| binaries)
        .context("no PostgreSQL server binaries under /usr/lib/postgresql")
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| output.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Quotes one word for `su -c`.
fn shell_word(word: &Path) -> String {
    format!("'{}'", word.display().to_string().replace('\'', r"'\''"))
}

impl PrivatePostgres {
    /// Initialises a cluster in a fresh temporary directory and starts it on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        let binaries = postgres_binaries()?;
        let directory = std::env::temp_dir().join(format!("ips-test-pg-{}", unique_suffix()));
        std::fs::create_dir_all(&directory)?;
        let port = crate::ports::free_ports(1)?[0];
        let postgres = Self {
            binaries,
            directory,
            port,
            run_as_postgres: running_as_root(),
        };
        if postgres.run_as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&postgres.directory)
                .status()?;
            anyhow::ensure!(status.success(), "chown of the private cluster's directory");
        }
        postgres.run(
            "initdb",
            &[
                "-D".into(),
                postgres.data_directory(),
                "-U".into(),
                "postgres".into(),
                "-A".into(),
                "trust".into(),
                "--no-sync".into(),
            ],
        )?;
        postgres.start_server().await?;
        Ok(postgres)
    }

    fn data_directory(&self) -> PathBuf {
        self.directory.join("data")
    }

    /// Runs one of the server binaries (as `postgres` when we are root), failing with its output.
    fn run(&self, program: &str, arguments: &[PathBuf]) -> anyhow::Result<()> {
        let binary = self.binaries.join(program);
        let output = if self.run_as_postgres {
            let command_line = std::iter::once(shell_word(&binary))
                .chain(arguments.iter().map(|argument| shell_word(argument)))
                .collect::<Vec<_>>()
                .join(" ");
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &command_line])
                .current_dir(&self.directory)
                .output()?
        } else {
            Command::new(&binary).args(arguments).output()?
        };
        anyhow::ensure!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub async fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=50",
            self.port,
            self.directory.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data_directory(),
                "-l".into(),
                self.directory.join("server.log"),
                "-o".into(),
                options.into(),
                "-w".into(),
                "-t".into(),
                "30".into(),
                "start".into(),
            ],
        )?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the private PostgreSQL did not listen on {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the server at once (`immediate`: no checkpoint, as a crash; it recovers from its
    /// WAL when started again). Connections are cut and new ones refused.
    pub fn crash(&self) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data_directory(),
                "-m".into(),
                "immediate".into(),
                "-w".into(),
                "stop".into(),
            ],
        )
    }

    /// An admin URL (user `postgres`, database `postgres`), for [`crate::TestDatabase::create_on`].
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data_directory(),
                "-m".into(),
                "immediate".into(),
                "stop".into(),
            ],
        );
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}
