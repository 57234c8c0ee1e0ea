//! Stream creation against a real NATS server.

use platform::nats::ensure_stream;
use platform::testing::{nats_url, test_stream};

#[tokio::test]
async fn services_racing_to_create_one_stream_all_get_it() {
    let mut services = Vec::new();
    for _ in 0..8 {
        let client = platform::nats::connect(&nats_url()).await.expect("NATS");
        services.push(async_nats::jetstream::new(client));
    }
    let spec = test_stream("orders");
    let racers = services
        .iter()
        .map(|jetstream| ensure_stream(jetstream, &spec));
    let results = futures::future::join_all(racers).await;
    let jetstream = &services[0];
    for result in results {
        let mut stream = result.expect("every racer gets the stream");
        let info = stream.info().await.expect("stream info");
        assert_eq!(info.config.name, spec.name);
        assert_eq!(info.config.subjects, vec![spec.all_subjects()]);
    }
    jetstream.delete_stream(&spec.name).await.expect("clean up");
}
