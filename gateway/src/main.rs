use clap::Parser;
use gateway::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(config.common.log_format, "info,gateway=debug");
    gateway::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
