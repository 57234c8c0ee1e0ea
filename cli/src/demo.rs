//! `shop up --demo`: sample products and customers, and a handful of orders that
//! end in every status, placed through the gateway like any client would.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::logs::Console;

const PRODUCTS: &[(&str, &str, i64, i64)] = &[
    ("TSHIRT-RED", "Red T-shirt", 1999, 50),
    ("MUG-CLASSIC", "Classic mug", 1250, 40),
    ("POSTER-RUST", "Ferris poster", 899, 20),
    ("HOODIE-GREY", "Grey hoodie", 4999, 2),
];

/// Loads the demo data and waits until every order has settled.
pub async fn load(gateway: &str, console: &Console) -> anyhow::Result<()> {
    let api = Api {
        client: reqwest::Client::new(),
        base: gateway.trim_end_matches('/').to_owned(),
    };
    for (sku, name, price_cents, stock) in PRODUCTS {
        let body =
            json!({"sku": sku, "name": name, "price_cents": price_cents, "initial_stock": stock});
        api.send_allowing_conflict("/api/products", &body).await?;
    }
    let ada = api
        .customer("Ada Lovelace", "ada@example.com", 100_000)
        .await?;
    let grace = api
        .customer("Grace Hopper", "grace@example.com", 3_000)
        .await?;

    let confirmed = api
        .order(&ada, &[("TSHIRT-RED", 2), ("MUG-CLASSIC", 1)])
        .await?;
    let shipped = api.order(&ada, &[("POSTER-RUST", 3)]).await?;
    let cancelled = api.order(&ada, &[("MUG-CLASSIC", 2)]).await?;
    let out_of_stock = api
        .order(&ada, &[("TSHIRT-RED", 1), ("HOODIE-GREY", 5)])
        .await?;
    let no_credit = api.order(&grace, &[("HOODIE-GREY", 1)]).await?;
    for order in [&confirmed, &shipped, &cancelled, &out_of_stock, &no_credit] {
        api.settled(order).await?;
    }
    api.post(&format!("/api/orders/{shipped}/ship"), &json!({}))
        .await?;
    api.post(
        &format!("/api/orders/{cancelled}/cancel"),
        &json!({"reason": "changed my mind"}),
    )
    .await?;
    let pending = api.order(&grace, &[("POSTER-RUST", 1)]).await?;

    console.say("demo data loaded:");
    for (label, id) in [
        ("CONFIRMED", &confirmed),
        ("SHIPPED", &shipped),
        ("CANCELLED", &cancelled),
        ("REJECTED (OUT_OF_STOCK)", &out_of_stock),
        ("REJECTED (INSUFFICIENT_CREDIT)", &no_credit),
        ("PENDING, just placed", &pending),
    ] {
        console.say(format!("  {label:<31} {}/api/orders/{id}", api.base));
    }
    console.say(format!(
        "  customer Ada                    {}/api/customers/{ada}",
        api.base
    ));
    console.say(format!(
        "  her orders                      {}/api/orders?customer_id={ada}",
        api.base
    ));
    console.say(format!(
        "  products                        {}/api/products",
        api.base
    ));
    Ok(())
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// Adds a product; one that exists from an earlier demo run is fine.
    async fn send_allowing_conflict(&self, path: &str, body: &Value) -> anyhow::Result<()> {
        match self.post(path, body).await {
            Err(error) if error.to_string().contains("409") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn customer(
        &self,
        name: &str,
        email: &str,
        credit_limit_cents: i64,
    ) -> anyhow::Result<String> {
        let body = json!({"name": name, "email": email, "credit_limit_cents": credit_limit_cents});
        let answer = self.post("/api/customers", &body).await?;
        id(&answer)
    }

    async fn order(&self, customer_id: &str, lines: &[(&str, u32)]) -> anyhow::Result<String> {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
            .collect();
        let answer = self
            .post(
                "/api/orders",
                &json!({"customer_id": customer_id, "lines": lines}),
            )
            .await?;
        id(&answer)
    }

    /// Waits until the order has left PENDING in the query API (at most 20 s).
    async fn settled(&self, order_id: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("{}/api/orders/{order_id}", self.base);
        while Instant::now() < deadline {
            if let Ok(response) = self.client.get(&url).send().await {
                let order: Value = response.json().await.unwrap_or(Value::Null);
                if order["status"].as_str().is_some_and(|s| s != "PENDING") {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("order {order_id} is still PENDING after 20 s")
    }
}

fn id(answer: &Value) -> anyhow::Result<String> {
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no id in {answer}"))
}
