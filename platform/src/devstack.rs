//! A private PostgreSQL and NATS for the local stack (`shop up`) and for tests, started
//! from the programs installed on the machine when no server answers at the
//! configured URLs.
//!
//! PostgreSQL refuses to run as root, so when this process is root its programs run
//! as the unprivileged `postgres` user (or `nobody`) through `setpriv` or `runuser`.

mod nats;
mod postgres;
mod process;

pub use nats::LocalNats;
pub use postgres::LocalPostgres;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// How long a probe waits for a server to answer before calling it absent.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// PostgreSQL's programs, which distributions often keep off `PATH`.
const POSTGRES_PROGRAMS: &[&str] = &["initdb", "pg_ctl", "postgres", "pg_isready", "psql"];

/// Whether a PostgreSQL server accepts these options and answers `SELECT 1` within a
/// few seconds. A refused login counts as not answering.
pub async fn postgres_answers(options: &PgConnectOptions) -> bool {
    let attempt = async {
        let mut conn = PgConnection::connect_with(options).await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        conn.close().await
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
        Ok(Ok(()))
    )
}

/// Whether a NATS server answers at `url` (`nats://[user:pass@]host[:port][,…]`):
/// it accepts a connection and greets with its `INFO` line.
pub fn nats_answers(url: &str) -> bool {
    let Some(address) = nats_address(url) else {
        return false;
    };
    let Ok(addresses) = address.to_socket_addrs() else {
        return false;
    };
    addresses
        .into_iter()
        .any(|address| greets_as_nats(&address))
}

/// The port of the first server in a NATS URL, 4222 when the URL names none.
pub fn nats_port(url: &str) -> Option<u16> {
    let address = nats_address(url)?;
    address.rsplit_once(':')?.1.parse().ok()
}

fn greets_as_nats(address: &SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(address, PROBE_TIMEOUT) else {
        return false;
    };
    if stream.set_read_timeout(Some(PROBE_TIMEOUT)).is_err() {
        return false;
    }
    let mut greeting = String::new();
    BufReader::new(stream).read_line(&mut greeting).is_ok() && greeting.starts_with("INFO ")
}

/// `host:port` of the first server in a NATS URL.
fn nats_address(url: &str) -> Option<String> {
    let first = url.split(',').next()?.trim();
    let without_scheme = first.split_once("://").map_or(first, |(_, rest)| rest);
    let without_user = without_scheme
        .rsplit_once('@')
        .map_or(without_scheme, |(_, rest)| rest);
    let host_port = without_user.split('/').next()?;
    if host_port.is_empty() {
        return None;
    }
    let has_port = !host_port.ends_with(']')
        && host_port
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    Some(if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:4222")
    })
}

/// A port on 127.0.0.1 for a private server: `preferred` when it is free, otherwise
/// one that the kernel picks.
pub fn pick_port(preferred: u16) -> anyhow::Result<u16> {
    if preferred != 0 && TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
        return Ok(preferred);
    }
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr().context("read the free port")?.port())
}

/// Finds a program on `PATH` or, for PostgreSQL's programs, also in the versioned
/// directories that distributions install them to (`/usr/lib/postgresql/*/bin`,
/// Homebrew's `postgresql@*`), newest version first.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let postgres_dirs = if POSTGRES_PROGRAMS.contains(&name) {
        postgres_install_dirs()
    } else {
        Vec::new()
    };
    path_dirs
        .into_iter()
        .chain(postgres_dirs)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Finds a program, or explains how to install it.
pub fn require_binary(name: &str) -> anyhow::Result<PathBuf> {
    find_binary(name).with_context(|| format!("`{name}` is not installed. {}", install_hint(name)))
}

/// The exact command that installs `binary` on Debian or Ubuntu, and on macOS.
pub fn install_hint(binary: &str) -> String {
    install_hint_for(binary, nix::unistd::geteuid().is_root())
}

fn install_hint_for(binary: &str, root: bool) -> String {
    let sudo = if root { "" } else { "sudo " };
    let packages = if POSTGRES_PROGRAMS.contains(&binary) {
        Some(("postgresql", "postgresql@16"))
    } else if binary == "nats-server" {
        Some(("nats-server", "nats-server"))
    } else if matches!(binary, "setpriv" | "runuser") {
        Some(("util-linux", "util-linux"))
    } else {
        None
    };
    match packages {
        Some((debian, homebrew)) => format!(
            "Install it with `{sudo}apt-get install -y {debian}` (Debian, Ubuntu) \
             or `brew install {homebrew}` (macOS)."
        ),
        None => format!("Install `{binary}` and put it on PATH."),
    }
}

/// `bin` directories of versioned PostgreSQL installs, newest version first.
fn postgres_install_dirs() -> Vec<PathBuf> {
    let roots = [
        ("/usr/lib/postgresql", ""),
        ("/opt/homebrew/opt", "postgresql@"),
        ("/usr/local/opt", "postgresql@"),
    ];
    let mut versioned: Vec<(u32, PathBuf)> = Vec::new();
    for (root, prefix) in roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = name
                .strip_prefix(prefix)
                .and_then(|v| v.parse::<u32>().ok());
            if let Some(version) = version {
                versioned.push((version, entry.path().join("bin")));
            }
        }
    }
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versioned.into_iter().map(|(_, dir)| dir).collect()
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::process::shell_line;
    use super::*;

    #[test]
    fn nats_urls_resolve_to_host_and_port() {
        assert_eq!(
            nats_address("nats://127.0.0.1:4333").as_deref(),
            Some("127.0.0.1:4333")
        );
        assert_eq!(
            nats_address("nats://a:b@nats").as_deref(),
            Some("nats:4222")
        );
        assert_eq!(
            nats_address("localhost:1,other:2").as_deref(),
            Some("localhost:1")
        );
        assert_eq!(nats_port("nats://127.0.0.1"), Some(4222));
        assert_eq!(nats_address("nats://"), None);
    }

    #[test]
    fn install_hints_name_the_package_for_each_platform() {
        let postgres = install_hint_for("initdb", true);
        assert!(
            postgres.contains("`apt-get install -y postgresql`"),
            "{postgres}"
        );
        assert!(
            postgres.contains("`brew install postgresql@16`"),
            "{postgres}"
        );
        let nats = install_hint_for("nats-server", false);
        assert!(
            nats.contains("`sudo apt-get install -y nats-server`"),
            "{nats}"
        );
        assert!(nats.contains("`brew install nats-server`"), "{nats}");
    }

    #[test]
    fn a_missing_program_is_not_found_and_the_error_says_how_to_install() {
        assert_eq!(find_binary("surely-no-such-program-here"), None);
        let error = require_binary("surely-no-such-program-here").unwrap_err();
        assert!(error.to_string().contains("is not installed"), "{error}");
        assert!(find_binary("sh").is_some());
    }

    #[test]
    fn shell_words_are_quoted() {
        let mut command = Command::new("rm");
        command.args(["-rf", "/tmp/it's here"]);
        assert_eq!(shell_line(&command), r"'rm' '-rf' '/tmp/it'\''s here'");
    }

    #[test]
    fn a_taken_preferred_port_is_replaced_by_a_free_one() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let picked = pick_port(port).unwrap();
        assert_ne!(picked, port);
        drop(taken);
        assert_eq!(pick_port(port).unwrap(), port);
    }
}
