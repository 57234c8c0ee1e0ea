use clap::Parser;
use inventory::Config;

/// mimalloc rather than glibc's malloc: the services allocate many small,
/// short-lived objects (decision 0021).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(
        config.common.log_format,
        "info,inventory=debug,platform=info",
    );
    inventory::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
