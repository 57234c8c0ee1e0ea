//! Service processes under supervision: started with their own environment, their
//! output echoed line by line behind a prefix, and stopped with SIGTERM, then
//! SIGKILL.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::logs::{emit, LogTail, Prefix};

/// How long to wait for a process's last output once it has exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// One running service and what it printed last.
pub struct ServiceProcess {
    /// The service's name, which is also its binary's name.
    pub name: &'static str,
    child: Child,
    tail: LogTail,
    readers: Vec<JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

impl ServiceProcess {
    /// Starts `command` (program, arguments and environment set by the caller). Both
    /// output streams are echoed behind `prefix`.
    pub fn spawn(name: &'static str, mut command: Command, prefix: Prefix) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C in the terminal reaches only `shop`,
            // which then stops the services in order.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        let tail = LogTail::default();
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(echo_lines(stdout, prefix.clone(), tail.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(echo_lines(stderr, prefix, tail.clone()));
        }
        Ok(Self {
            name,
            child,
            tail,
            readers,
            exit: None,
        })
    }

    /// Waits until the process exits. Safe to call again, and to cancel.
    pub async fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        // Waiting only fails if the child was already reaped; that counts as gone.
        let status: ExitStatus = self.child.wait().await.unwrap_or_default();
        self.exit = Some(status);
        status
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
            }
        }
        self.exit.is_some()
    }

    /// Asks the process to shut down gracefully (SIGTERM).
    pub fn terminate(&mut self) {
        if self.has_exited() {
            return;
        }
        if let Some(pid) = self.child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub async fn kill(&mut self) {
        if !self.has_exited() {
            let _ = self.child.kill().await;
            self.wait().await;
        }
    }

    /// The last lines the process printed, once its output has been read to the
    /// end (or for at most a second).
    pub async fn last_lines(&mut self) -> Vec<String> {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, reader).await;
        }
        self.tail.lines()
    }

    /// The last lines the process printed so far, while it runs.
    pub fn recent_lines(&self) -> Vec<String> {
        self.tail.lines()
    }
}

/// Waits until the first of `processes` exits and returns its index and status.
/// With no process it waits forever.
pub async fn first_exit(processes: &mut [ServiceProcess]) -> (usize, ExitStatus) {
    if processes.is_empty() {
        return std::future::pending().await;
    }
    let waits = processes.iter_mut().map(|process| Box::pin(process.wait()));
    let (status, index, _) = futures::future::select_all(waits).await;
    (index, status)
}

/// Echoes every line of `stream` behind `prefix` and remembers it in `tail`.
fn echo_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    prefix: Prefix,
    tail: LogTail,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        // Bytes, not `lines()`: a service that prints invalid UTF-8 must not go quiet.
        while matches!(reader.read_until(b'\n', &mut buffer).await, Ok(n) if n > 0) {
            let line = String::from_utf8_lossy(&buffer);
            emit(&prefix.apply(&line));
            tail.push(&line);
            buffer.clear();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> ServiceProcess {
        let mut command = Command::new("/bin/sh");
        command.args(["-c", script]).env("GREETING", "hello");
        ServiceProcess::spawn("test", command, Prefix::own(4, false)).unwrap()
    }

    #[tokio::test]
    async fn output_from_both_streams_is_kept_with_the_environment_applied() {
        let mut process = shell("echo \"$GREETING\"; echo oops >&2; exit 3");
        let status = process.wait().await;
        assert_eq!(status.code(), Some(3));
        let mut lines = process.last_lines().await;
        lines.sort();
        assert_eq!(lines, vec!["hello", "oops"]);
    }

    #[tokio::test]
    async fn terminate_stops_a_process_that_honours_sigterm() {
        let mut process = shell("exec sleep 30");
        assert!(!process.has_exited());
        process.terminate();
        let status = tokio::time::timeout(Duration::from_secs(5), process.wait())
            .await
            .unwrap();
        assert!(!status.success());
        assert!(process.has_exited());
    }

    #[tokio::test]
    async fn first_exit_names_the_process_that_stopped() {
        let mut processes = vec![shell("exec sleep 30"), shell("exit 7")];
        let (index, status) = first_exit(&mut processes).await;
        assert_eq!((index, status.code()), (1, Some(7)));
        processes[0].kill().await;
        assert!(processes[0].has_exited());
    }
}
