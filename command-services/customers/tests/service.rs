//! The customers process as `shop up` runs it: built from its configuration, on
//! its own database and stream namespace, relaying what it stores to CUSTOMERS.

use std::time::{Duration, Instant};

use clap::Parser;
use platform::nats::StreamSpec;
use platform::testing::{nats_url, test_namespace, TestDb};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_registration_reaches_the_customers_stream_with_its_event_id_and_correlation() {
    let db = TestDb::new(&[]).await.expect("test database");
    let namespace = test_namespace();
    let config = customers::Config::try_parse_from([
        "customers".to_owned(),
        "--addr=127.0.0.1:0".to_owned(),
        format!("--customers-database-url={}", db.url()),
        format!("--nats-url={}", nats_url()),
        format!("--stream-namespace={namespace}"),
    ])
    .expect("configuration");
    let service = customers::build(config).await.expect("customers service");
    let base_url = format!("http://127.0.0.1:{}", service.port());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run(shutdown.clone()));

    let http = reqwest::Client::new();
    // NATS connects in the background, so readiness may take a moment.
    let deadline = Instant::now() + WAIT;
    loop {
        let ready = http.get(format!("{base_url}/readyz")).send().await;
        if ready.is_ok_and(|answer| answer.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the service never became ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let response = http
        .post(format!("{base_url}/api/customers"))
        .header("x-request-id", "req-register-1")
        .json(&json!({"name": "Grace Hopper", "email": "grace@example.com", "credit_limit_cents": 100}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("body");
    let id = created["id"].as_str().expect("id").to_owned();

    let client = platform::nats::connect(&nats_url()).await.expect("NATS");
    let jetstream = async_nats::jetstream::new(client);
    let spec = StreamSpec::in_namespace(&namespace, "customers");
    let deadline = Instant::now() + WAIT;
    let message = loop {
        if let Ok(stream) = jetstream.get_stream(&spec.name).await {
            if let Ok(message) = stream.get_raw_message(1).await {
                break message;
            }
        }
        assert!(Instant::now() < deadline, "the relay published nothing");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let event_id = format!("customers:Customer:{id}:1");
    assert_eq!(
        message.subject.as_str(),
        format!("{namespace}.customers.Customer.{id}.CustomerRegistered")
    );
    let msg_id = message
        .headers
        .get("Nats-Msg-Id")
        .map(|v| v.as_str().to_owned());
    assert_eq!(msg_id, Some(event_id.clone()));
    let envelope: Value = serde_json::from_slice(&message.payload).expect("envelope");
    assert_eq!(envelope["event_id"], event_id);
    assert_eq!(envelope["metadata"]["correlation_id"], "req-register-1");
    assert_eq!(envelope["payload"]["credit_limit_cents"], 100);

    shutdown.cancel();
    let stopped = tokio::time::timeout(WAIT, running).await;
    stopped
        .expect("stops in time")
        .expect("task")
        .expect("stops cleanly");
    let _ = jetstream.delete_stream(&spec.name).await;
}
