//! Two ledgers on one database and one stream, each with its own consumer, so both are handed
//! every message and race on every participant: the setup of the tests that prove the store
//! decides (a stale cached participant, a conflict inside a batch), not one ledger's memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::TestDatabase;

/// Two running ledgers racing on every message, with a publisher onto their stream.
pub struct RivalLedgers {
    /// Their one database.
    pub database: TestDatabase,
    /// Their stream and subjects (the consumer name is each ledger's own).
    pub bus_config: bus::BusConfig,
    /// Publishes submissions as an agency service would.
    pub publisher: bus::SubmissionPublisher,
    /// Both ledgers, `ledger-a` then `ledger-b`.
    pub ledgers: Vec<ledger::RunningLedger>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl RivalLedgers {
    /// Starts both on a fresh database and stream, each ledger's config first passed to
    /// `configure`; `connection_name` names the publisher's NATS connection.
    pub async fn start(
        connection_name: &str,
        configure: impl Fn(&mut ledger::LedgerConfig),
    ) -> anyhow::Result<Self> {
        let database = TestDatabase::create().await?;
        let bus_config = crate::unique_bus_config();
        let (shutdown, receiver) = tokio::sync::watch::channel(false);
        let mut ledgers = Vec::new();
        for consumer in ["ledger-a", "ledger-b"] {
            // Its own consumer: each ledger is handed every message.
            let mut config = crate::ledger_config(
                &database,
                &bus::BusConfig {
                    consumer_name: consumer.into(),
                    ..bus_config.clone()
                },
            );
            configure(&mut config);
            ledgers.push(
                ledger::start(
                    config,
                    Arc::new(ledger::clock::SystemClock),
                    receiver.clone(),
                )
                .await?,
            );
        }
        let client = bus::connect(&bus_config, connection_name).await?;
        let publisher = bus::SubmissionPublisher::new(client, &bus_config);
        Ok(Self {
            database,
            bus_config,
            publisher,
            ledgers,
            shutdown,
        })
    }

    /// A counter summed over both ledgers.
    pub fn sum(&self, counter: impl Fn(&ledger::IngestCounters) -> u64) -> u64 {
        self.ledgers
            .iter()
            .map(|ledger| counter(&ledger.counters))
            .sum()
    }

    /// Waits until each ledger has answered `answered` messages (recorded, or found already
    /// recorded), or fails with each one's count after `within`.
    pub async fn wait_until_each_answered(
        &self,
        answered: u64,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let each: Vec<u64> = self
                .ledgers
                .iter()
                .map(|ledger| {
                    let counters = &ledger.counters;
                    counters.accepted.get() + counters.rejected.get() + counters.duplicates.get()
                })
                .collect();
            if each.iter().all(|count| *count >= answered) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "answered per ledger {each:?} after {within:?}, expected {answered} each"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops both, then drops the database and the stream.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for ledger in self.ledgers {
            ledger.wait().await;
        }
        self.database.drop_database().await;
        crate::delete_streams(&self.bus_config).await;
    }
}
