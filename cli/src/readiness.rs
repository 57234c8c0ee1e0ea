//! Waiting until every service answers `GET /readyz` with 200.

use std::time::Duration;

use tokio::time::Instant;

use crate::logs::Console;
use crate::services::Planned;

/// Pause between two polls of one service.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A service that did not become ready in time, and its last answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// The service's name.
    pub name: &'static str,
    /// The readiness URL that was polled.
    pub url: String,
    /// What the last poll got: a status, or why there was no answer.
    pub last_answer: String,
}

/// Polls every service's `/readyz` until each answers 200 or `timeout` passes,
/// saying so as each one becomes ready. Returns the services that never did.
pub async fn wait_all(
    plans: &[Planned],
    timeout: Duration,
    console: &Console,
) -> Result<(), Vec<NotReady>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let deadline = Instant::now() + timeout;
    let checks = plans.iter().map(|plan| {
        let url = format!("{}/readyz", plan.base_url);
        let client = &client;
        async move {
            match poll_until_ready(client, &url, deadline).await {
                Ok(()) => {
                    console.say(format!("{} is ready", plan.service.name));
                    Ok(())
                }
                Err(last_answer) => Err(NotReady {
                    name: plan.service.name,
                    url,
                    last_answer,
                }),
            }
        }
    });
    let not_ready: Vec<NotReady> = futures::future::join_all(checks)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if not_ready.is_empty() {
        Ok(())
    } else {
        Err(not_ready)
    }
}

/// Polls `url` until it answers 200, or returns the last answer at `deadline`.
async fn poll_until_ready(
    client: &reqwest::Client,
    url: &str,
    deadline: Instant,
) -> Result<(), String> {
    let mut last_answer = "no answer yet".to_owned();
    while Instant::now() < deadline {
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last_answer = format!("HTTP {}", response.status()),
            Err(error) if error.is_connect() => last_answer = "connection refused".to_owned(),
            Err(error) if error.is_timeout() => last_answer = "timed out".to_owned(),
            Err(error) => last_answer = error.to_string(),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Err(last_answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::{plan, SERVICES};
    use sqlx::postgres::PgConnectOptions;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Answers every request on `listener` with `status`.
    fn serve(listener: TcpListener, status: &'static str) {
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let response =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
    }

    #[tokio::test]
    async fn services_that_never_answer_200_are_reported_with_their_last_answer() {
        let ready = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let unavailable = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addresses = [
            ready.local_addr().unwrap().to_string(),
            unavailable.local_addr().unwrap().to_string(),
            closed.local_addr().unwrap().to_string(),
        ];
        drop(closed);
        serve(ready, "200 OK");
        serve(unavailable, "503 Service Unavailable");
        let checked = ["inventory", "projection-worker", "catalog"];
        let lookup = |variable: &str| {
            let service = SERVICES.iter().find(|s| s.address_variable == variable)?;
            let index = checked.iter().position(|name| *name == service.name)?;
            addresses.get(index).cloned()
        };
        let plans: Vec<_> = plan(&PgConnectOptions::new(), "postgres://x", "nats://x", lookup)
            .into_iter()
            .filter(|plan| checked.contains(&plan.service.name))
            .collect();
        let console = Console::new(17);
        let not_ready = wait_all(&plans, Duration::from_secs(1), &console)
            .await
            .unwrap_err();
        let answers: Vec<(&str, &str)> = not_ready
            .iter()
            .map(|n| (n.name, n.last_answer.as_str()))
            .collect();
        assert_eq!(
            answers,
            vec![
                ("projection-worker", "HTTP 503 Service Unavailable"),
                ("catalog", "connection refused")
            ]
        );
    }
}
