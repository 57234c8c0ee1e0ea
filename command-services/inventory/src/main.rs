use clap::Parser;
use inventory::Config;

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
