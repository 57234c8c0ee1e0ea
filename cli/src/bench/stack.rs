//! `--start-stack`: runs `shop up --no-build` as a child process, times it until
//! every service's `/readyz` answers 200 (the stack's start-up time), and stops it
//! when the benchmark is done.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::Client;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::http::Urls;

/// How long the stack may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long `shop up` gets to stop everything after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A stack this benchmark started.
pub struct StartedStack {
    child: Child,
    /// From spawning `shop up --no-build` until every `/readyz` answered 200.
    pub startup: Duration,
}

/// True when every service of `urls` answers `/readyz` with 200.
pub async fn is_ready(client: &Client, urls: &Urls) -> bool {
    let checks = urls.services().map(|(_, url)| {
        let url = format!("{url}/readyz");
        async move {
            client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
        }
    });
    futures::future::join_all(checks)
        .await
        .into_iter()
        .all(|ready| ready)
}

impl StartedStack {
    /// Starts `shop up --no-build` (this same executable), with its output in
    /// `log`, and waits until the whole stack is ready.
    pub async fn start(client: &Client, urls: &Urls, log: &Path) -> anyhow::Result<Self> {
        if is_ready(client, urls).await {
            anyhow::bail!(
                "a stack already answers at {}; stop it, or run without --start-stack",
                urls.gateway
            );
        }
        let exe = std::env::current_exe().context("find the shop executable")?;
        let output =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let began = Instant::now();
        let mut child = Command::new(exe)
            .args(["up", "--no-build"])
            .stdin(Stdio::null())
            .stdout(output.try_clone().context("share the log file")?)
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .context("start `shop up --no-build`")?;
        while !is_ready(client, urls).await {
            if let Some(status) = child.try_wait().context("check on `shop up`")? {
                anyhow::bail!("`shop up` exited ({status}); see {}", log.display());
            }
            if began.elapsed() > READY_TIMEOUT {
                anyhow::bail!(
                    "the stack was not ready after {} s; see {}",
                    READY_TIMEOUT.as_secs(),
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            child,
            startup: began.elapsed(),
        })
    }

    /// Stops the stack as Ctrl-C would, and kills it if it does not stop in time.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(id) = self.child.id().and_then(|id| i32::try_from(id).ok()) {
            // It may have exited already; then there is nothing to signal.
            let _ = kill(Pid::from_raw(id), Signal::SIGTERM);
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                status.context("wait for `shop up` to stop")?;
            }
            Err(_) => self.child.kill().await.context("kill `shop up`")?,
        }
        Ok(())
    }
}
