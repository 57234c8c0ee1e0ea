//! A private PostgreSQL cluster: `initdb` once, then `pg_ctl start` and `stop`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;

use super::process::{
    log_tail, program_command, run_when_process_exits, shell_quote, temporary_dir, RunAs,
};
use super::require_binary;

/// Unix socket paths are limited to about 107 bytes; a longer directory gets none.
const MAX_SOCKET_DIR_LEN: usize = 90;

/// A PostgreSQL server of our own, with trust authentication for user `postgres`,
/// listening on 127.0.0.1 only. Its cluster lives in `<dir>/postgres/data`, its log
/// in `<dir>/postgres/log`, and its socket in `<dir>/postgres`.
///
/// The server is stopped by [`LocalPostgres::stop`] or when the value is dropped.
#[derive(Debug)]
pub struct LocalPostgres {
    root: PathBuf,
    port: u16,
    pg_ctl: PathBuf,
    run_as: Option<RunAs>,
    running: bool,
    /// A directory removed with everything in it once the server has stopped.
    remove_after_stop: Option<PathBuf>,
}

impl LocalPostgres {
    /// Starts a server on `port` with its files under `dir`, creating the cluster
    /// first when it does not exist yet. A server already running on that cluster
    /// (left by an earlier run) is taken over, on whatever port it listens.
    pub fn start(dir: &Path, port: u16) -> anyhow::Result<Self> {
        Self::start_with(dir, port, &[])
    }

    /// Starts a throw-away server tuned for tests (no fsync, many connections) in a
    /// fresh temporary directory that is deleted when the server stops.
    pub fn start_temporary(port: u16) -> anyhow::Result<Self> {
        let dir = temporary_dir("postgres")?;
        let settings = [
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=300",
            "shared_buffers=32MB",
        ];
        match Self::start_with(&dir, port, &settings) {
            Ok(mut server) => {
                server.remove_after_stop = Some(dir);
                Ok(server)
            }
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(error)
            }
        }
    }

    /// Like [`LocalPostgres::start`], with extra server settings (`name=value`).
    pub fn start_with(dir: &Path, port: u16, settings: &[&str]) -> anyhow::Result<Self> {
        let initdb = require_binary("initdb")?;
        let pg_ctl = sibling_or_installed(&initdb, "pg_ctl")?;
        let run_as = RunAs::for_postgres()?;
        let root = std::path::absolute(dir)
            .context("resolve the state directory")?
            .join("postgres");
        std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
        if let Some(user) = &run_as {
            user.chown_tree(&root)?;
            user.check_writable(&root)?;
        }
        let mut server = Self {
            root,
            port,
            pg_ctl,
            run_as,
            running: false,
            remove_after_stop: None,
        };
        server.init_cluster(&initdb)?;
        if let Some(running_port) = server.running_port()? {
            server.port = running_port;
        } else {
            server.pg_ctl_start(settings)?;
        }
        server.running = true;
        Ok(server)
    }

    /// The port the server listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server-level URL: `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Connection options for the `postgres` database as user `postgres`.
    pub fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
    }

    /// The directory that holds the cluster, its log and its socket.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Stops the server (`pg_ctl stop -m fast`): open sessions are ended and the
    /// cluster is shut down cleanly.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.running {
            self.running = false;
            let output = self.pg_ctl(&["stop", "-m", "fast", "-w", "-s"])?;
            ensure_success(&output, "pg_ctl stop")?;
        }
        if let Some(dir) = self.remove_after_stop.take() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
        }
        Ok(())
    }

    /// Leaves the server running until this process exits, however it exits, and
    /// stops it (and removes a temporary directory) then. Meant for a server shared
    /// by all the tests of one process, which no destructor would stop.
    pub fn stop_when_process_exits(mut self) -> anyhow::Result<()> {
        let mut commands = vec![self.pg_ctl_command(&["stop", "-m", "immediate", "-w", "-s"])?];
        if let Some(dir) = &self.remove_after_stop {
            let mut remove = Command::new("rm");
            remove.arg("-rf").arg(dir);
            commands.push(remove);
        }
        run_when_process_exits(&commands)?;
        self.running = false;
        self.remove_after_stop = None;
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("log")
    }

    /// Runs `initdb` unless a complete cluster is there already; the remains of an
    /// interrupted `initdb` are cleared first.
    fn init_cluster(&self, initdb: &Path) -> anyhow::Result<()> {
        let data = self.data_dir();
        if data.join("PG_VERSION").exists() {
            return Ok(());
        }
        if data.exists() {
            std::fs::remove_dir_all(&data).context("remove an incomplete cluster")?;
        }
        let mut command = program_command(self.run_as.as_ref(), initdb)?;
        command
            .arg("-D")
            .arg(&data)
            .args([
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .arg("--no-sync")
            .current_dir(&self.root);
        let output = command.output().context("run initdb")?;
        ensure_success(&output, "initdb")
    }

    /// The port of a server already running on this cluster, if one is.
    fn running_port(&self) -> anyhow::Result<Option<u16>> {
        let status = self.pg_ctl(&["status"])?;
        if !status.status.success() {
            return Ok(None);
        }
        // postmaster.pid holds the pid, data directory, start time and port, one a line.
        let pid_file = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .context("read postmaster.pid")?;
        let port = pid_file
            .lines()
            .nth(3)
            .and_then(|line| line.trim().parse().ok());
        Ok(port)
    }

    fn pg_ctl_start(&self, settings: &[&str]) -> anyhow::Result<()> {
        let socket_dir = self.root.to_string_lossy().into_owned();
        let socket_dir = if socket_dir.len() <= MAX_SOCKET_DIR_LEN {
            socket_dir
        } else {
            String::new()
        };
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            shell_quote(socket_dir.as_ref())
        );
        for setting in settings {
            options.push_str(&format!(" -c {}", shell_quote(setting.as_ref())));
        }
        let log = self.log_file().to_string_lossy().into_owned();
        let output = self.pg_ctl(&["start", "-w", "-t", "60", "-s", "-l", &log, "-o", &options])?;
        ensure_success(&output, "pg_ctl start").with_context(|| {
            format!(
                "PostgreSQL did not start; the end of {}:\n{}",
                log,
                log_tail(&self.log_file(), 20)
            )
        })
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.pg_ctl_command(args)?
            .output()
            .with_context(|| format!("run pg_ctl {}", args.first().unwrap_or(&"")))
    }

    /// `pg_ctl -D <data> <args>`, as the right user, in its own process group so
    /// that a Ctrl-C meant for the parent does not shut the server down under it.
    fn pg_ctl_command(&self, args: &[&str]) -> anyhow::Result<Command> {
        use std::os::unix::process::CommandExt;
        let mut command = program_command(self.run_as.as_ref(), &self.pg_ctl)?;
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(args)
            .current_dir(&self.root)
            .process_group(0);
        Ok(command)
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// `name` from the same installation as `program`, so that versions match.
fn sibling_or_installed(program: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let real = program
        .canonicalize()
        .unwrap_or_else(|_| program.to_owned());
    match real.parent().map(|dir| dir.join(name)) {
        Some(sibling) if sibling.is_file() => Ok(sibling),
        _ => require_binary(name),
    }
}

fn ensure_success(output: &Output, what: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}
