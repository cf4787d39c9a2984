//! A database of each test's own on the shared PostgreSQL server, and the sweep of databases
//! that crashed runs left behind.

use anyhow::Context;
use sqlx::Connection;

use crate::{admin_database_url, unique_suffix, LEFTOVER_AGE_SWEEP_SECONDS};

/// A fresh database, created for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// A URL connecting to it.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database (migrations are the service's job, as in production).
    pub async fn create() -> anyhow::Result<Self> {
        Self::create_on(&admin_database_url()).await
    }

    /// Creates an empty database on the server of `admin_url` (a [`crate::PrivatePostgres`]'s).
    pub async fn create_on(admin_url: &str) -> anyhow::Result<Self> {
        let admin_url = admin_url.to_owned();
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("cannot reach PostgreSQL at {admin_url}"))?;
        sweep_leftover_databases(&mut admin).await;
        let name = format!("ips_t_{}", unique_suffix());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base)
            .to_owned();
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// A URL connecting to it as the services' role (`ips_service`, created by the migrations).
    pub fn service_url(&self) -> String {
        let (scheme, rest) = self
            .url
            .split_once("://")
            .unwrap_or(("postgres", &self.url));
        let host_and_database = rest.split_once('@').map_or(rest, |(_, after)| after);
        format!("{scheme}://ips_service@{host_and_database}")
    }

    /// A pool on this database, for assertions.
    pub async fn pool(&self) -> anyhow::Result<sqlx::PgPool> {
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await?)
    }

    /// Drops the database (best effort; leftovers are swept by later runs).
    pub async fn drop_database(&self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_database_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await;
        }
    }
}

async fn sweep_leftover_databases(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'ips\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|seconds| seconds.parse::<i64>().ok());
        if created.is_some_and(|created| now - created > LEFTOVER_AGE_SWEEP_SECONDS) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// Edits one stored entry as the database superuser would, around the events table's
/// append-only trigger (disabled for the edit, enabled again after: the one way around it,
/// since it fires in every replication role): how the tamper tests play
/// an intruder with database access. `set` is the `SET` clause, e.g. `payload = '{}'`.
pub async fn edit_entry_around_append_guard(
    pool: &sqlx::PgPool,
    set: &str,
    aggregate_id: &str,
    sequence: i64,
) -> anyhow::Result<()> {
    let mut owner = pool.acquire().await?;
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&mut *owner)
        .await?;
    sqlx::query(&format!(
        "UPDATE events SET {set} WHERE aggregate_id = $1 AND sequence = $2"
    ))
    .bind(aggregate_id)
    .bind(sequence)
    .execute(&mut *owner)
    .await?;
    // As migration 0014 left it: firing in every replication role.
    sqlx::query("ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only")
        .execute(&mut *owner)
        .await?;
    Ok(())
}
