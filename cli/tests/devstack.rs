//! The private PostgreSQL and NATS that `shop up` and the tests fall back to. Tests
//! usually run as root, so these also exercise the drop to an unprivileged user.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use platform::devstack::{self, LocalNats, LocalPostgres};

fn scratch_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("shop-devstack-{}", platform::testing::unique_tag()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_private_postgres_answers_keeps_its_data_and_stops() {
    let dir = scratch_dir();
    let port = devstack::pick_port(0).unwrap();
    let mut postgres = LocalPostgres::start(&dir, port).unwrap();
    assert_eq!(postgres.port(), port);
    assert!(devstack::postgres_answers(&postgres.options()).await);
    assert!(dir.join("postgres/data/PG_VERSION").is_file());
    assert!(dir.join("postgres/log").is_file());
    if nix::unistd::geteuid().is_root() {
        let owner = std::fs::metadata(dir.join("postgres/data")).unwrap().uid();
        assert_ne!(owner, 0, "the cluster must belong to an unprivileged user");
    }
    platform::db::create_database(&postgres.options(), "kept")
        .await
        .unwrap();

    postgres.stop().unwrap();
    assert!(!devstack::postgres_answers(&postgres.options()).await);

    let postgres = LocalPostgres::start(&dir, port).unwrap();
    let kept = platform::db::database_exists(&postgres.options(), "kept")
        .await
        .unwrap();
    assert!(kept, "a restart keeps the cluster");
    drop(postgres);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_server_left_running_is_taken_over_on_its_own_port() {
    let dir = scratch_dir();
    let port = devstack::pick_port(0).unwrap();
    let first = LocalPostgres::start(&dir, port).unwrap();
    let mut second = LocalPostgres::start(&dir, devstack::pick_port(0).unwrap()).unwrap();
    assert_eq!(second.port(), port);
    std::mem::forget(first);
    second.stop().unwrap();
    assert!(!devstack::postgres_answers(&second.options()).await);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_temporary_postgres_removes_its_files_when_it_stops() {
    let mut postgres = LocalPostgres::start_temporary(devstack::pick_port(0).unwrap()).unwrap();
    let dir = postgres.dir().to_owned();
    assert!(devstack::postgres_answers(&postgres.options()).await);
    postgres.stop().unwrap();
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

#[test]
fn a_private_nats_answers_with_jetstream_and_stops() {
    let dir = scratch_dir();
    let port = devstack::pick_port(0).unwrap();
    let mut nats = LocalNats::start(&dir, port).unwrap();
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
    assert!(devstack::nats_answers(&nats.url()));
    assert!(nats.log_file().is_file());
    nats.stop().unwrap();
    assert!(!devstack::nats_answers(&nats.url()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_temporary_nats_removes_its_store_when_it_stops() {
    let mut nats = LocalNats::start_temporary(devstack::pick_port(0).unwrap()).unwrap();
    let store = nats.store_dir().to_owned();
    assert!(store.is_dir());
    nats.stop().unwrap();
    assert!(!store.exists(), "{} is left behind", store.display());
}

#[test]
fn nats_on_a_taken_port_fails_with_its_log() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = scratch_dir();
    let error = LocalNats::start(&dir, port).unwrap_err().to_string();
    assert!(error.contains("exited"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_test_servers_answer() {
    assert!(devstack::postgres_answers(&platform::testing::server_options()).await);
    assert!(devstack::nats_answers(&platform::testing::nats_url()));
}
