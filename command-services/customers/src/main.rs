use clap::Parser;
use customers::Config;

/// mimalloc rather than glibc's malloc: the services allocate many small,
/// short-lived objects (decision 0021).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(
        config.common.log_format,
        "info,customers=debug,platform=info",
    );
    customers::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
