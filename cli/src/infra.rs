//! PostgreSQL and NATS for `shop up`: the configured servers when they answer,
//! otherwise private ones with their data in the state directory.

use std::path::{Path, PathBuf};

use anyhow::Context;
use platform::devstack::{self, LocalNats, LocalPostgres};
use sqlx::postgres::PgConnectOptions;

use crate::logs::Console;
use crate::provision::ServerArgs;

/// The servers the stack runs on, and the private ones `shop` has to stop.
pub struct Infrastructure {
    /// Server-level connection options, as a superuser.
    pub server: PgConnectOptions,
    /// The same as a URL, for the services' `DATABASE_URL`.
    pub database_url: String,
    /// The NATS URL for the services.
    pub nats_url: String,
    postgres: Option<LocalPostgres>,
    nats: Option<LocalNats>,
}

impl Infrastructure {
    /// Uses the configured servers when they answer, and starts private ones under
    /// `state_dir` otherwise, on the configured port when it is free.
    pub async fn acquire(
        servers: &ServerArgs,
        state_dir: &Path,
        console: &Console,
    ) -> anyhow::Result<Self> {
        let configured = servers.server()?;
        let mut infrastructure = Self {
            server: configured.clone(),
            database_url: servers.database_url.clone(),
            nats_url: servers.nats_url.clone(),
            postgres: None,
            nats: None,
        };
        if devstack::postgres_answers(&configured).await {
            console.say(format!("PostgreSQL answers at {}", servers.database_url));
        } else {
            let port = devstack::pick_port(configured.get_port())?;
            console.say(format!(
                "PostgreSQL does not answer at {}; starting a private one in {} on port {port}",
                servers.database_url,
                state_dir.join("postgres").display()
            ));
            let dir = state_dir.to_owned();
            let postgres = blocking(move || LocalPostgres::start(&dir, port)).await?;
            infrastructure.server = postgres.options();
            infrastructure.database_url = postgres.url();
            infrastructure.postgres = Some(postgres);
        }
        infrastructure
            .acquire_nats(servers, state_dir, console)
            .await?;
        Ok(infrastructure)
    }

    async fn acquire_nats(
        &mut self,
        servers: &ServerArgs,
        state_dir: &Path,
        console: &Console,
    ) -> anyhow::Result<()> {
        let url = servers.nats_url.clone();
        if blocking(move || Ok(devstack::nats_answers(&url))).await? {
            console.say(format!("NATS answers at {}", servers.nats_url));
            return Ok(());
        }
        let port = devstack::pick_port(devstack::nats_port(&servers.nats_url).unwrap_or(0))?;
        console.say(format!(
            "NATS does not answer at {}; starting a private nats-server -js in {} on port {port}",
            servers.nats_url,
            state_dir.join("nats").display()
        ));
        let dir = state_dir.to_owned();
        let nats = blocking(move || LocalNats::start(&dir, port)).await?;
        self.nats_url = nats.url();
        self.nats = Some(nats);
        Ok(())
    }

    /// Where the private servers keep their data, for the summary.
    pub fn private_dirs(&self) -> Vec<(&'static str, PathBuf)> {
        let postgres = self
            .postgres
            .as_ref()
            .map(|pg| ("PostgreSQL", pg.dir().to_owned()));
        let nats = self
            .nats
            .as_ref()
            .map(|nats| ("NATS", nats.store_dir().to_owned()));
        postgres.into_iter().chain(nats).collect()
    }

    /// Stops the private servers: NATS first, then PostgreSQL.
    pub async fn release(&mut self, console: &Console) {
        if let Some(mut nats) = self.nats.take() {
            console.say("stopping the private NATS");
            if let Err(error) = blocking(move || nats.stop()).await {
                console.say(format!("could not stop NATS: {error:#}"));
            }
        }
        if let Some(mut postgres) = self.postgres.take() {
            console.say("stopping the private PostgreSQL");
            if let Err(error) = blocking(move || postgres.stop()).await {
                console.say(format!("could not stop PostgreSQL: {error:#}"));
            }
        }
    }
}

/// Runs blocking work (process start-up, `pg_ctl`) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("a start-up task panicked")?
}
