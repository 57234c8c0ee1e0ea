use clap::Parser;
use orders::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(config.common.log_format, "info");
    orders::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
