//! What `shop up` prints once the stack is ready: every URL, and a first request.

use crate::infra::Infrastructure;
use crate::logs::Console;
use crate::services::Planned;

/// Prints where everything is, and how to try it.
pub fn print(console: &Console, plans: &[Planned], infrastructure: &Infrastructure) {
    let gateway = plans
        .iter()
        .find(|plan| plan.service.name == "gateway")
        .map_or("http://127.0.0.1:8080", |plan| plan.base_url.as_str());
    let mut rows = vec![
        ("gateway".to_owned(), gateway.to_owned()),
        ("API docs".to_owned(), format!("{gateway}/docs")),
        ("OpenAPI".to_owned(), format!("{gateway}/api/openapi.json")),
    ];
    for plan in plans.iter().filter(|plan| plan.service.name != "gateway") {
        rows.push((plan.service.name.to_owned(), plan.base_url.clone()));
    }
    rows.push((
        "PostgreSQL".to_owned(),
        redact(&infrastructure.database_url),
    ));
    rows.push(("NATS".to_owned(), redact(&infrastructure.nats_url)));
    for (what, dir) in infrastructure.private_dirs() {
        rows.push((format!("{what} data"), dir.display().to_string()));
    }
    console.say("the stack is up:");
    for (what, url) in rows {
        console.say(format!("  {what:<18} {url}"));
    }
    console.say(format!(
        "try: curl -i {gateway}/api/products -H 'content-type: application/json' \
         -d '{{\"sku\":\"TSHIRT-RED\",\"name\":\"Red T-shirt\",\"price_cents\":1999,\"initial_stock\":10}}'"
    ));
    console.say("press Ctrl-C to stop");
}

/// A URL with its password replaced by `***`, for printing.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_printed_urls() {
        assert_eq!(
            redact("postgres://app:secret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact("postgres://postgres@db/x"),
            "postgres://postgres@db/x"
        );
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
