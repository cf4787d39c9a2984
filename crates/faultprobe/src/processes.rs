//! The services as processes of their own, so a fault hits them as it would in production:
//! `kill -9` (no drain, no goodbye), SIGSTOP/SIGCONT (a process that is alive but does nothing,
//! like a long GC pause or a frozen VM) and SIGTERM (the graceful drain at the end).
//!
//! Each is started from the binary built from its service's own `main.rs` (see this crate's
//! manifest), configured through `IPS_*` variables as `deploy/demo.sh` does, on a port fixed at
//! its first start so a restarted ledger is found where it was.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

/// How long a started service may take to listen.
const LISTEN_WAIT: Duration = Duration::from_secs(60);

/// How long a SIGTERMed service may take to drain before it is killed.
const DRAIN_WAIT: Duration = Duration::from_secs(30);

/// One service process and how to start it again.
pub struct ServiceProcess {
    /// A name for logs and reports (`ledger-1`, `municipality`).
    pub name: String,
    binary: PathBuf,
    environment: Vec<(String, String)>,
    log_path: PathBuf,
    /// The gRPC port.
    pub port: u16,
    child: Option<Child>,
}

impl ServiceProcess {
    /// A process that is not started yet.
    pub fn new(
        name: &str,
        binary: PathBuf,
        environment: Vec<(String, String)>,
        log_directory: &Path,
        port: u16,
    ) -> Self {
        Self {
            name: name.to_owned(),
            binary,
            environment,
            log_path: log_directory.join(format!("{name}.log")),
            port,
            child: None,
        }
    }

    /// The empty slot a process leaves when it is taken out to be stopped.
    pub fn stopped(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            binary: PathBuf::new(),
            environment: Vec::new(),
            log_path: PathBuf::new(),
            port: 0,
            child: None,
        }
    }

    /// Starts it (its stderr appended to its log).
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let child = Command::new(&self.binary)
            .env_clear()
            .envs(
                ["PATH", "HOME", "TMPDIR"]
                    .into_iter()
                    .filter_map(|name| std::env::var(name).ok().map(|value| (name, value))),
            )
            .envs(self.environment.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (build the probe's service binaries: cargo build -p faultprobe --bins)",
                    self.binary.display()
                )
            })?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(description)` when it has exited by itself.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Ok(None)) => None,
            Some(Err(error)) => Some(error.to_string()),
            None => Some("not running".into()),
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`) with the system's `kill`, since the workspace
    /// forbids the unsafe a direct system call would need.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .with_context(|| format!("{} is not running", self.name))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// SIGTERM, then waits for the drain (SIGKILL if it takes longer than [`DRAIN_WAIT`]).
    /// Whether it exited by itself in time.
    pub async fn terminate(&mut self) -> bool {
        if self.signal("TERM").is_err() {
            return false;
        }
        let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
        while tokio::time::Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
        false
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // A stopped process must be continued to die of SIGKILL promptly.
        let _ = self.signal("CONT");
        self.kill();
    }
}

/// Waits until something listens on `port`, failing early (with the log) when `exited`
/// reports that the process died.
pub async fn wait_listening(
    name: &str,
    port: u16,
    mut exited: impl FnMut() -> Option<(String, String)>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + LISTEN_WAIT;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            // The port was free when chosen, but another process (a parallel test) may have
            // taken it since: then the connection reached that process and ours died on bind.
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Some((status, log)) = exited() {
                anyhow::bail!(
                    "{name} exited ({status}) although {port} answered (another process holds it?); its log:\n{log}"
                );
            }
            return Ok(());
        }
        if let Some((status, log)) = exited() {
            anyhow::bail!("{name} exited ({status}) before listening on {port}; its log:\n{log}");
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{name} did not listen on {port} within {LISTEN_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The directory holding the probe's service binaries: the probe's own (`cargo build -p
/// faultprobe` puts them side by side), or `IPS_PROBE_BINARIES` when set.
pub fn binaries_directory() -> anyhow::Result<PathBuf> {
    if let Some(directory) = std::env::var_os("IPS_PROBE_BINARIES") {
        return Ok(PathBuf::from(directory));
    }
    let executable = std::env::current_exe()?;
    executable
        .parent()
        .map(Path::to_path_buf)
        .context("the probe's executable has no directory")
}
