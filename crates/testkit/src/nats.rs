//! nats-server processes of a test's own: a single server (with or without the per-agency
//! users), or a throwaway three-node cluster that a test may kill and restart node by node.
//!
//! Every one is the pinned release binary `deploy/setup.sh` unpacks (`IPS_TEST_NATS_SERVER`
//! overrides the path), on free loopback ports, with its store in a temporary directory removed
//! when the value is dropped. Each runs with `jetstream { sync_interval: always }`, as every
//! server of the project does; only the throughput probe asks for the server's default lazy
//! fsync, to print what `always` costs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

use crate::unique_suffix;

/// The nats-server version `deploy/setup.sh` pins (a test holds the two together).
pub const PINNED_NATS_SERVER_VERSION: &str = "2.15.1";

/// How long a started server or cluster may take to answer (and, for a cluster, to elect its
/// JetStream meta leader).
const NATS_READY_WAIT: Duration = Duration::from_secs(30);

/// The nats-server binary tests start: `IPS_TEST_NATS_SERVER`, else the pinned one
/// `deploy/setup.sh` unpacked into `deploy/.local/`.
pub fn nats_server_binary() -> PathBuf {
    std::env::var_os("IPS_TEST_NATS_SERVER").map_or_else(
        || {
            repository_root()
                .join("deploy/.local")
                .join(format!("nats-server-{PINNED_NATS_SERVER_VERSION}"))
                .join("nats-server")
        },
        PathBuf::from,
    )
}

/// The repository's root directory.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// When JetStream writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `sync_interval: always`: fsync before every acknowledgement (the project's setting).
    Always,
    /// The server's default: fsync on a timer (two minutes), so an acknowledged write can sit
    /// in the page cache. Only for measuring what `Always` costs.
    ServerDefault,
}

/// One nats-server process: its command line, so it can be started again after a kill.
struct ServerProcess {
    arguments: Vec<std::ffi::OsString>,
    environment: Vec<(String, String)>,
    log_path: PathBuf,
    client_port: u16,
    child: Option<std::process::Child>,
}

impl ServerProcess {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let binary = nats_server_binary();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let child = std::process::Command::new(&binary)
            .args(&self.arguments)
            .envs(self.environment.iter().cloned())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (run deploy/setup.sh to unpack the pinned nats-server, or set IPS_TEST_NATS_SERVER)",
                    binary.display()
                )
            })?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + NATS_READY_WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.client_port))
            .await
            .is_err()
        {
            let exited = self
                .child
                .as_mut()
                .map(|child| child.try_wait().ok().flatten().is_some())
                .unwrap_or(true);
            anyhow::ensure!(
                !exited && tokio::time::Instant::now() < deadline,
                "nats-server did not listen on {} ({}); its log: {}",
                self.client_port,
                if exited { "it exited" } else { "timed out" },
                std::fs::read_to_string(&self.log_path).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A single nats-server of the test's own. Stopped and its store removed when dropped.
pub struct NatsServer {
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    process: Mutex<ServerProcess>,
    directory: PathBuf,
}

impl NatsServer {
    /// Starts an open server (no users) with JetStream and `fsync`.
    pub async fn start(fsync: FsyncPolicy) -> anyhow::Result<Arc<Self>> {
        Self::start_with(fsync, None, Vec::new()).await
    }

    async fn start_with(
        fsync: FsyncPolicy,
        users_config: Option<PathBuf>,
        environment: Vec<(String, String)>,
    ) -> anyhow::Result<Arc<Self>> {
        let directory = std::env::temp_dir().join(format!("ips-test-nats-{}", unique_suffix()));
        std::fs::create_dir_all(&directory)?;
        let config = match users_config {
            // The users file sets `sync_interval: always` itself, as the demo runs it.
            Some(users_config) => users_config,
            None => {
                let path = directory.join("server.conf");
                let jetstream = match fsync {
                    FsyncPolicy::Always => "jetstream { sync_interval: always }\n",
                    FsyncPolicy::ServerDefault => "jetstream {}\n",
                };
                std::fs::write(&path, jetstream)?;
                path
            }
        };
        let port = crate::ports::free_ports(1)?[0];
        let mut process = ServerProcess {
            arguments: vec![
                "-c".into(),
                config.into_os_string(),
                "-js".into(),
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string().into(),
                "-sd".into(),
                directory.join("store").into_os_string(),
            ],
            environment,
            log_path: directory.join("nats-server.log"),
            client_port: port,
            child: None,
        };
        process.spawn()?;
        if let Err(error) = process.wait_listening().await {
            process.kill();
            let _ = std::fs::remove_dir_all(&directory);
            return Err(error);
        }
        Ok(Arc::new(Self {
            url: format!("nats://127.0.0.1:{port}"),
            process: Mutex::new(process),
            directory,
        }))
    }
}

impl ServerProcess {
    /// A copy to wait on without holding the lock across an await; the child moves with it.
    fn take_for_wait(&mut self) -> Self {
        Self {
            arguments: self.arguments.clone(),
            environment: self.environment.clone(),
            log_path: self.log_path.clone(),
            client_port: self.client_port,
            child: self.child.take(),
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Ok(mut process) = self.process.lock() {
            process.kill();
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// A nats-server of the test's own, with JetStream and the per-agency users of
/// `deploy/nats/agency-users.conf` (random passwords). Stopped when dropped.
pub struct NatsWithUsers {
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    passwords: std::collections::BTreeMap<String, String>,
    _server: Arc<NatsServer>,
}

/// The users `deploy/nats/agency-users.conf` defines.
pub const NATS_USERS: [&str; 5] = ["municipality", "fk", "af", "psychiatry", "ledger"];

impl NatsWithUsers {
    /// Starts the pinned nats-server ([`nats_server_binary`]) on a free port with the
    /// repository's users file (which also sets `sync_interval: always`).
    pub async fn start() -> anyhow::Result<Arc<Self>> {
        let config = repository_root().join("deploy/nats/agency-users.conf");
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
        let environment = passwords
            .iter()
            .map(|(user, password)| {
                (
                    format!("IPS_NATS_PASSWORD_{}", user.to_uppercase()),
                    password.clone(),
                )
            })
            .collect();
        let server = NatsServer::start_with(FsyncPolicy::Always, Some(config), environment).await?;
        Ok(Arc::new(Self {
            url: server.url.clone(),
            passwords,
            _server: server,
        }))
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

/// A throwaway three-node JetStream cluster on loopback, each node with
/// `sync_interval: always`, on ports and in directories of its own. A test may kill a node
/// (SIGKILL, as a crash or power cut of that machine) and start it again. Stopped and removed
/// when dropped.
pub struct NatsCluster {
    nodes: Vec<Mutex<ServerProcess>>,
    directory: PathBuf,
}

/// How many nodes a [`NatsCluster`] has.
pub const NATS_CLUSTER_NODES: usize = 3;

impl NatsCluster {
    /// Starts three nodes and waits until JetStream answers on each (a meta leader is elected).
    pub async fn start() -> anyhow::Result<Self> {
        let suffix = unique_suffix();
        let directory = std::env::temp_dir().join(format!("ips-test-nats-cluster-{suffix}"));
        let ports = crate::ports::free_ports(2 * NATS_CLUSTER_NODES)?;
        let (client_ports, route_ports) = ports.split_at(NATS_CLUSTER_NODES);
        let routes = route_ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::with_capacity(NATS_CLUSTER_NODES);
        for node in 0..NATS_CLUSTER_NODES {
            let node_directory = directory.join(format!("node-{node}"));
            std::fs::create_dir_all(&node_directory)?;
            let config = node_directory.join("node.conf");
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{client}\n\
                     jetstream {{ store_dir: \"{store}\", sync_interval: always }}\n\
                     cluster {{ name: ips-test-{suffix}, listen: 127.0.0.1:{route}, routes: [{routes}] }}\n",
                    name = Self::node_name(node),
                    client = client_ports[node],
                    store = node_directory.join("store").display(),
                    route = route_ports[node],
                ),
            )?;
            nodes.push(Mutex::new(ServerProcess {
                arguments: vec!["-c".into(), config.into_os_string()],
                environment: Vec::new(),
                log_path: node_directory.join("nats-server.log"),
                client_port: client_ports[node],
                child: None,
            }));
        }
        let cluster = Self { nodes, directory };
        for node in 0..NATS_CLUSTER_NODES {
            cluster.nodes[node].lock().expect("node lock").spawn()?;
        }
        for node in 0..NATS_CLUSTER_NODES {
            cluster.wait_ready(node).await?;
        }
        Ok(cluster)
    }

    /// The server name of node `node` (0-based), as stream info reports leaders.
    pub fn node_name(node: usize) -> String {
        format!("n{node}")
    }

    /// Every node's URL, comma-separated (what `bus.nats_url` takes).
    pub fn url(&self) -> String {
        (0..NATS_CLUSTER_NODES)
            .map(|node| self.node_url(node))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One node's URL.
    pub fn node_url(&self, node: usize) -> String {
        format!(
            "nats://127.0.0.1:{}",
            self.nodes[node].lock().expect("node lock").client_port
        )
    }

    /// Kills node `node` with SIGKILL: no flush, no goodbye to its peers.
    pub fn kill(&self, node: usize) {
        self.nodes[node].lock().expect("node lock").kill();
    }

    /// Starts node `node` again on its ports and store, and waits until its JetStream answers.
    pub async fn restart(&self, node: usize) -> anyhow::Result<()> {
        self.nodes[node].lock().expect("node lock").spawn()?;
        self.wait_ready(node).await
    }

    async fn wait_ready(&self, node: usize) -> anyhow::Result<()> {
        let mut waiting = self.nodes[node].lock().expect("node lock").take_for_wait();
        let listening = waiting.wait_listening().await;
        self.nodes[node].lock().expect("node lock").child = waiting.child.take();
        listening?;
        let client = async_nats::connect(self.node_url(node)).await?;
        let jetstream = async_nats::jetstream::new(client);
        let deadline = tokio::time::Instant::now() + NATS_READY_WAIT;
        loop {
            // A short bound per ask: a request made before the meta leader is known can go
            // unanswered for the client's whole default timeout (10 s).
            match tokio::time::timeout(Duration::from_millis(500), jetstream.query_account()).await
            {
                Ok(Ok(_)) => return Ok(()),
                outcome => anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "node {node}'s JetStream did not answer within {NATS_READY_WAIT:?}: {outcome:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node that leads `stream` now, asked of any node that answers. Right after a node
    /// was killed the answer waits for elections (the stream's, and the JetStream meta
    /// leader's when that node held it too), so each ask is short and they go on until
    /// [`NATS_READY_WAIT`] has passed.
    pub async fn stream_leader(&self, stream: &str) -> anyhow::Result<usize> {
        let client = async_nats::connect(self.url().split(',').collect::<Vec<_>>()).await?;
        let jetstream = async_nats::jetstream::new(client);
        let deadline = tokio::time::Instant::now() + NATS_READY_WAIT;
        let leader = loop {
            let ask = async {
                let mut stream = jetstream.get_stream(stream).await?;
                let info = stream.info().await?;
                anyhow::Ok(
                    info.cluster
                        .as_ref()
                        .and_then(|cluster| cluster.leader.clone()),
                )
            };
            let outcome = tokio::time::timeout(Duration::from_secs(2), ask).await;
            match outcome {
                Ok(Ok(Some(leader))) => break leader,
                outcome => anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "stream {stream} has no leader after {NATS_READY_WAIT:?}: {outcome:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        (0..NATS_CLUSTER_NODES)
            .find(|node| Self::node_name(*node) == leader)
            .with_context(|| format!("leader {leader} is not one of this cluster's nodes"))
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Ok(mut process) = node.lock() {
                process.kill();
            }
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pinned version lives in `deploy/setup.sh` (with its checksums); the scripts that run
    /// the binary and this crate name the same one.
    #[test]
    fn every_script_names_the_version_setup_pins() -> anyhow::Result<()> {
        let root = repository_root();
        let setup = std::fs::read_to_string(root.join("deploy/setup.sh"))?;
        assert!(
            setup.contains(&format!("\nNATS_VERSION={PINNED_NATS_SERVER_VERSION}\n")),
            "deploy/setup.sh pins another nats-server than testkit's {PINNED_NATS_SERVER_VERSION}"
        );
        for script in ["deploy/demo.sh", "deploy/nats-cluster.sh"] {
            let text = std::fs::read_to_string(root.join(script))?;
            assert!(
                text.contains(&format!("nats-server-{PINNED_NATS_SERVER_VERSION}"))
                    || text.contains(&format!("NATS_VERSION={PINNED_NATS_SERVER_VERSION}")),
                "{script} runs another nats-server than the pinned {PINNED_NATS_SERVER_VERSION}"
            );
        }
        Ok(())
    }

    /// Every server configuration the project ships fsyncs before acknowledging.
    #[test]
    fn every_shipped_server_config_syncs_always() -> anyhow::Result<()> {
        let root = repository_root();
        let mut configs = vec![
            root.join("deploy/nats/single.conf"),
            root.join("deploy/nats/agency-users.conf"),
        ];
        for entry in std::fs::read_dir(root.join("deploy/nats/cluster"))? {
            configs.push(entry?.path());
        }
        assert_eq!(configs.len(), 2 + NATS_CLUSTER_NODES);
        for config in configs {
            let text = std::fs::read_to_string(&config)?;
            assert!(
                text.lines()
                    .any(|line| line.trim() == "sync_interval: always"),
                "{} lacks `sync_interval: always`",
                config.display()
            );
        }
        Ok(())
    }
}
