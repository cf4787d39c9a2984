//! A nats-server of a test's own that enforces the per-agency users of
//! `deploy/nats/agency-users.conf`, for the tests of what each agency's credentials may do.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::unique_suffix;

/// A nats-server of the test's own, with JetStream and the per-agency users of
/// `deploy/nats/agency-users.conf` (random passwords). Stopped when dropped.
pub struct NatsWithUsers {
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    passwords: std::collections::BTreeMap<String, String>,
    child: std::sync::Mutex<std::process::Child>,
    store_directory: std::path::PathBuf,
}

/// The users `deploy/nats/agency-users.conf` defines.
pub const NATS_USERS: [&str; 5] = ["municipality", "fk", "af", "psychiatry", "ledger"];

impl NatsWithUsers {
    /// Starts `nats-server` (from `IPS_TEST_NATS_SERVER`, default `/usr/sbin/nats-server`) on a
    /// free port with the repository's users file.
    pub async fn start() -> anyhow::Result<Arc<Self>> {
        let binary = std::env::var("IPS_TEST_NATS_SERVER")
            .unwrap_or_else(|_| "/usr/sbin/nats-server".into());
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/nats/agency-users.conf");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let store_directory =
            std::env::temp_dir().join(format!("ips-test-nats-{}", unique_suffix()));
        let passwords: std::collections::BTreeMap<String, String> = NATS_USERS
            .iter()
            // nats-server parses an environment value as config syntax: start with a letter.
            .map(|user| {
                (
                    (*user).to_owned(),
                    format!("pw{}", uuid::Uuid::new_v4().simple()),
                )
            })
            .collect();
        let mut command = std::process::Command::new(&binary);
        command
            .arg("-c")
            .arg(&config)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store_directory)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(
                store_directory.with_extension("log"),
            )?);
        for (user, password) in &passwords {
            command.env(
                format!("IPS_NATS_PASSWORD_{}", user.to_uppercase()),
                password,
            );
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
        let nats = Arc::new(Self {
            url: format!("nats://127.0.0.1:{port}"),
            passwords,
            child: std::sync::Mutex::new(child),
            store_directory,
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not listen on {port} within 10 s; its log: {}",
                std::fs::read_to_string(nats.store_directory.with_extension("log"))
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(nats)
    }

    /// The password of one of [`NATS_USERS`].
    pub fn password(&self, user: &str) -> String {
        self.passwords.get(user).cloned().unwrap_or_default()
    }

    /// A client connected as `user`; an agency's user gets its agency's inbox prefix, the only
    /// one it may hear replies on.
    pub async fn connect_as(&self, user: &str) -> anyhow::Result<async_nats::Client> {
        let mut options = async_nats::ConnectOptions::new()
            .user_and_password(user.to_owned(), self.password(user));
        if let Some(agency) = domain::Agency::from_token(user) {
            options =
                options.custom_inbox_prefix(bus::Subjects::new("ips.v1").inbox_prefix(agency));
        }
        Ok(options.connect(&self.url).await?)
    }
}

impl Drop for NatsWithUsers {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.store_directory);
        let _ = std::fs::remove_file(self.store_directory.with_extension("log"));
    }
}
