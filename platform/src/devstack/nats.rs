//! A private `nats-server` with JetStream, supervised by a small shell that stops it
//! when its parent goes away.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::process::{log_tail, temporary_dir};
use super::{nats_answers, require_binary};

/// How long a fresh server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the server and stops it (SIGTERM) when its standard input closes, which
/// happens on [`LocalNats::stop`] or when the parent process exits for any reason.
/// Its arguments: a directory to remove afterwards (or ""), then the server's argv.
const SUPERVISOR: &str = r#"remove="$1"; shift
exec 3<&0
"$@" 3<&- & server=$!
{ read _ <&3; kill "$server"; } & reader=$!
wait "$server"; status=$?
kill -9 "$reader" 2>/dev/null
if [ -n "$remove" ]; then rm -rf "$remove"; fi
exit $status"#;

/// A `nats-server -js` of our own on 127.0.0.1, with its store in `<dir>/nats` and
/// its log in `<dir>/nats/nats-server.log`. It is stopped by [`LocalNats::stop`],
/// when the value is dropped, or when this process exits.
#[derive(Debug)]
pub struct LocalNats {
    store: PathBuf,
    port: u16,
    supervisor: Option<Child>,
}

impl LocalNats {
    /// Starts a server on `port` with its files under `dir`, and waits until it
    /// answers. Streams stored there by an earlier run are kept.
    pub fn start(dir: &Path, port: u16) -> anyhow::Result<Self> {
        let dir = std::path::absolute(dir).context("resolve the state directory")?;
        Self::spawn(dir.join("nats"), port, None)
    }

    /// Starts a throw-away server in a fresh temporary directory that is deleted
    /// when the server stops.
    pub fn start_temporary(port: u16) -> anyhow::Result<Self> {
        let dir = temporary_dir("nats")?;
        Self::spawn(dir.join("nats"), port, Some(&dir))
    }

    fn spawn(store: PathBuf, port: u16, remove: Option<&Path>) -> anyhow::Result<Self> {
        let binary = require_binary("nats-server")?;
        std::fs::create_dir_all(&store).with_context(|| format!("create {}", store.display()))?;
        let log = store.join("nats-server.log");
        let early_errors = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("open {}", log.display()))?;
        let supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(remove.unwrap_or(Path::new("")))
            .arg(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(early_errors)
            // Its own process group: a Ctrl-C meant for the parent must not stop
            // NATS before the services that use it have drained.
            .process_group(0)
            .spawn()
            .context("start nats-server")?;
        let mut server = Self {
            store,
            port,
            supervisor: Some(supervisor),
        };
        server.wait_until_answering()?;
        Ok(server)
    }

    fn wait_until_answering(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if nats_answers(&self.url()) {
                return Ok(());
            }
            let exited = match self.supervisor.as_mut() {
                Some(child) => child.try_wait().context("check on nats-server")?,
                None => None,
            };
            if exited.is_some() || Instant::now() > deadline {
                let problem = if exited.is_some() {
                    "exited"
                } else {
                    "did not answer"
                };
                anyhow::bail!(
                    "nats-server on port {} {problem}; the end of its log:\n{}",
                    self.port,
                    log_tail(&self.log_file(), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port the server listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client URL: `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &Path {
        &self.store
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.store.join("nats-server.log")
    }

    /// Stops the server gracefully (SIGTERM) and waits until it has exited.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut supervisor) = self.supervisor.take() {
            drop(supervisor.stdin.take());
            supervisor.wait().context("wait for nats-server to stop")?;
        }
        Ok(())
    }

    /// Leaves the server running until this process exits, however it exits. Meant
    /// for a server shared by all the tests of one process, which no destructor
    /// would stop.
    pub fn stop_when_process_exits(mut self) {
        if let Some(mut supervisor) = self.supervisor.take() {
            // The supervisor stops the server when this pipe closes, which the
            // kernel does when the process exits.
            std::mem::forget(supervisor.stdin.take());
        }
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
