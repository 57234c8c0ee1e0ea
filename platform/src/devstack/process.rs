//! Running programs for the private servers: as an unprivileged user when this
//! process is root, and clean-up that runs however this process exits.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use nix::unistd::{Gid, Uid, User};

use super::{find_binary, require_binary};

/// The unprivileged account that PostgreSQL's programs run as when this process is
/// root.
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    name: String,
    uid: Uid,
    gid: Gid,
}

impl RunAs {
    /// `None` unless this process is root: then programs run as the current user.
    pub(super) fn for_postgres() -> anyhow::Result<Option<Self>> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        for name in ["postgres", "nobody"] {
            if let Some(user) = User::from_name(name).context("look up system users")? {
                return Ok(Some(Self {
                    name: user.name,
                    uid: user.uid,
                    gid: user.gid,
                }));
            }
        }
        anyhow::bail!(
            "PostgreSQL refuses to run as root, and neither a `postgres` nor a `nobody` \
             user exists to run it as. Create one: `useradd --system postgres`"
        )
    }

    /// A command that runs `program` as this user; `setpriv` keeps the process
    /// itself (signals reach the program), `runuser` is the fallback.
    pub(super) fn command(&self, program: &Path) -> anyhow::Result<Command> {
        if let Some(setpriv) = find_binary("setpriv") {
            let mut command = Command::new(setpriv);
            command
                .arg(format!("--reuid={}", self.uid))
                .arg(format!("--regid={}", self.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            return Ok(command);
        }
        let runuser = require_binary("runuser")?;
        let mut command = Command::new(runuser);
        command.args(["-u", &self.name, "--"]).arg(program);
        Ok(command)
    }

    /// Gives `path` and everything under it to this user.
    pub(super) fn chown_tree(&self, path: &Path) -> anyhow::Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid.as_raw()), Some(self.gid.as_raw()))
            .with_context(|| format!("give {} to user {}", path.display(), self.name))?;
        if path.is_dir() && !path.is_symlink() {
            let entries =
                std::fs::read_dir(path).with_context(|| format!("list {}", path.display()))?;
            for entry in entries {
                self.chown_tree(&entry.context("list directory")?.path())?;
            }
        }
        Ok(())
    }

    /// Fails with an explanation when this user cannot write to `dir`, typically
    /// because a parent directory (such as `/root`) is closed to other users.
    pub(super) fn check_writable(&self, dir: &Path) -> anyhow::Result<()> {
        let mut probe = self.command(Path::new("/bin/sh"))?;
        probe.args(["-c", "test -w \"$1\"", "sh"]).arg(dir);
        let writable = probe.status().is_ok_and(|status| status.success());
        anyhow::ensure!(
            writable,
            "PostgreSQL runs as user `{}`, which cannot write to {}. Make its parent \
             directories searchable (`chmod o+x` on each), use another directory, or \
             point DATABASE_URL at a running server.",
            self.name,
            dir.display()
        );
        Ok(())
    }
}

/// A program, as the right user: `run_as`, or the current one.
pub(super) fn program_command(run_as: Option<&RunAs>, program: &Path) -> anyhow::Result<Command> {
    match run_as {
        Some(user) => user.command(program),
        None => Ok(Command::new(program)),
    }
}

/// Runs `commands` one after the other once this process has exited, however it
/// exits: a shell waits on a pipe whose only writer is this process.
pub(super) fn run_when_process_exits(commands: &[Command]) -> anyhow::Result<()> {
    let script: Vec<String> = commands.iter().map(shell_line).collect();
    let mut watcher = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' INT TERM HUP; read _; {}",
            script.join("; ")
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("start the clean-up watcher")?;
    // The pipe's write end must stay open until this process exits, so it is
    // deliberately never closed. It is close-on-exec, so no other child holds it.
    std::mem::forget(watcher.stdin.take());
    Ok(())
}

/// A command rendered for `sh`, every word quoted.
pub(super) fn shell_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn shell_quote(word: &OsStr) -> String {
    format!("'{}'", word.to_string_lossy().replace('\'', r"'\''"))
}

/// The last `count` lines of a log file, for error messages.
pub(super) fn log_tail(path: &Path, count: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// A fresh directory under the system's temporary directory.
pub(super) fn temporary_dir(kind: &str) -> anyhow::Result<PathBuf> {
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let dir = std::env::temp_dir().join(format!("shop-{kind}-{}", &tag[20..]));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}
