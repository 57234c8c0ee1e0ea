use clap::Parser;
use payments::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(
        config.common.log_format,
        "info,payments=debug,platform=info",
    );
    payments::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
