//! The `shop` binary end to end: provisioning, and `shop up` supervising stand-in
//! services on a private PostgreSQL and NATS of its own.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use platform::devstack::{self, LocalPostgres};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// `(name, address variable)` of every service `shop up` starts.
const SERVICES: &[(&str, &str)] = &[
    ("inventory", "INVENTORY_ADDR"),
    ("customers", "CUSTOMERS_ADDR"),
    ("orders", "ORDERS_ADDR"),
    ("payments", "PAYMENTS_ADDR"),
    ("projection-worker", "PROJECTIONS_ADDR"),
    ("catalog", "CATALOG_ADDR"),
    ("orders-view", "ORDERS_VIEW_ADDR"),
    ("customers-view", "CUSTOMERS_VIEW_ADDR"),
    ("gateway", "GATEWAY_ADDR"),
];

fn scratch_dir() -> PathBuf {
    let tag = platform::testing::unique_tag();
    let dir = std::env::temp_dir().join(format!("shop-up-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    devstack::pick_port(0).unwrap()
}

/// A `shop` command whose PostgreSQL and NATS URLs point where nothing answers, so
/// `shop up` has to start private ones.
fn shop(state: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
    command
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/postgres", free_port()),
        )
        .env("NATS_URL", format!("nats://127.0.0.1:{}", free_port()))
        .env("SHOP_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (_, variable) in SERVICES {
        command.env(variable, format!("127.0.0.1:{}", free_port()));
    }
    command
}

/// Writes one executable stand-in per service; `script` gets `$ADDR` (the
/// service's bind address) and `$NAME`.
fn stand_ins(dir: &Path, script: impl Fn(&str) -> String) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, variable) in SERVICES {
        let body = format!(
            "#!/bin/sh\nADDR=\"${variable}\"\nNAME={name}\n{}\n",
            script(name)
        );
        let path = bin.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// Every line the child prints, on both streams, as it comes.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let (sender, lines) = mpsc::channel();
    let streams: Vec<Box<dyn std::io::Read + Send>> = vec![
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for stream in streams {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
    }
    lines
}

/// Collects lines until one contains `wanted`; panics with the output so far after
/// `timeout`, or as soon as the output ends without it.
fn read_until(lines: &Receiver<String>, seen: &mut Vec<String>, wanted: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let found = line.contains(wanted);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!(
        "no line with {wanted:?} before the output ended or {timeout:?} passed; output:\n{}",
        seen.join("\n")
    );
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "shop did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn help_explains_every_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_shop"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["up", "provision", "status"] {
        assert!(help.contains(&format!("  {command} ")), "{help}");
    }
    let up = Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["up", "--help"])
        .output()
        .unwrap();
    let up = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.contains("--reset") && up.contains("[env: DATABASE_URL="),
        "{up}"
    );
}

#[tokio::test]
async fn provision_gives_each_service_its_own_role_and_readers_read_only_access() {
    let postgres = LocalPostgres::start_temporary(free_port()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["provision", "--database-url", &postgres.url()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let connect = |role: &str, database: &str| {
        let options = postgres.options().username(role).database(database);
        async move { PgConnection::connect_with(&options).await }
    };
    let mut owner = connect("projections", "read_models").await.unwrap();
    sqlx::query("CREATE TABLE products (sku text)")
        .execute(&mut owner)
        .await
        .unwrap();
    let mut reader = connect("catalog", "read_models").await.unwrap();
    sqlx::query("SELECT * FROM products")
        .execute(&mut reader)
        .await
        .unwrap();
    let write = sqlx::query("INSERT INTO products VALUES ('X')")
        .execute(&mut reader)
        .await;
    assert!(write.is_err(), "the catalog role must not write");
    assert!(connect("inventory", "read_models").await.is_err());
    assert!(connect("inventory", "inventory_es").await.is_ok());
}

#[test]
fn up_starts_every_service_waits_until_ready_and_stops_everything_on_sigterm() {
    assert!(
        devstack::find_binary("python3").is_some(),
        "the stand-in services need python3: apt-get install -y python3"
    );
    let dir = scratch_dir();
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("readyz"), "ok").unwrap();
    let bin = stand_ins(&dir, |name| {
        let database = if name == "inventory" {
            "$INVENTORY_DATABASE_URL"
        } else {
            ""
        };
        format!(
            "echo \"$NAME listening on $ADDR {database}\"\n\
             exec python3 -m http.server \"${{ADDR##*:}}\" --bind 127.0.0.1 --directory '{}'",
            www.display()
        )
    });
    let mut child = shop(&dir.join("state"))
        .args(["up", "--bin-dir"])
        .arg(&bin)
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    read_until(
        &lines,
        &mut seen,
        "press Ctrl-C to stop",
        Duration::from_secs(90),
    );
    let output = seen.join("\n");
    assert!(
        output.contains("inventory         | inventory listening on 127.0.0.1:"),
        "{output}"
    );
    assert!(
        output.contains("postgres://inventory@127.0.0.1:"),
        "{output}"
    );
    assert!(output.contains("/docs"), "{output}");
    let postgres_port = private_postgres_port(&output);

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    read_until(&lines, &mut seen, "stopped", Duration::from_secs(5));
    assert!(status.success(), "{status}; output:\n{}", seen.join("\n"));
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(postgres_port);
    let answers = tokio_runtime().block_on(devstack::postgres_answers(&options));
    assert!(!answers, "the private PostgreSQL must be stopped");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn up_stops_the_stack_and_fails_when_a_service_dies() {
    let dir = scratch_dir();
    let bin = stand_ins(&dir, |name| match name {
        "inventory" => "sleep 1; echo \"$NAME: cannot start\" >&2; exit 3".to_owned(),
        _ => "exec sleep 60".to_owned(),
    });
    let mut child = shop(&dir.join("state"))
        .args(["up", "--reset", "--bin-dir"])
        .arg(&bin)
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    read_until(
        &lines,
        &mut seen,
        "exited on its own",
        Duration::from_secs(90),
    );
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    read_until(&lines, &mut seen, "stopped", Duration::from_secs(5));
    assert_eq!(status.code(), Some(1), "output:\n{}", seen.join("\n"));
    let output = seen.join("\n");
    assert!(
        output.contains("inventory         | inventory: cannot start"),
        "{output}"
    );
    assert!(
        output
            .contains("stopping customers, orders, payments, projection-worker, catalog, orders-view, customers-view, gateway"),
        "{output}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn up_names_the_service_that_is_not_ready_and_shows_its_last_lines() {
    let dir = scratch_dir();
    let bin = stand_ins(&dir, |_| {
        "echo \"$NAME is still warming up\"; exec sleep 60".to_owned()
    });
    let mut child = shop(&dir.join("state"))
        .args(["up", "--ready-timeout", "2", "--bin-dir"])
        .arg(&bin)
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    read_until(
        &lines,
        &mut seen,
        "catalog is not ready after 2 s",
        Duration::from_secs(90),
    );
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    read_until(&lines, &mut seen, "stopped", Duration::from_secs(5));
    assert_eq!(status.code(), Some(1), "output:\n{}", seen.join("\n"));
    let output = seen.join("\n");
    assert!(output.contains("gave connection refused"), "{output}");
    assert!(output.contains("the last lines of catalog:"), "{output}");
    assert!(
        output.contains("    catalog is still warming up"),
        "{output}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The port of the private PostgreSQL that `shop up` announced.
fn private_postgres_port(output: &str) -> u16 {
    let line = output
        .lines()
        .find(|line| line.contains("starting a private one"))
        .unwrap_or_else(|| panic!("no private PostgreSQL started:\n{output}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
