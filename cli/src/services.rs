//! The services `shop up` runs, and the environment each one gets: its address,
//! its own database URL with its own role, and where its peers are.

use std::net::SocketAddr;

use platform::db::{
    DatabaseSpec, CUSTOMERS_DB, INVENTORY_DB, ORDERS_DB, PAYMENTS_DB, READ_MODEL_DB,
};
use sqlx::postgres::PgConnectOptions;

/// The database a service connects to, as its own login role.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDatabase {
    /// The variable that carries its URL, such as `INVENTORY_DATABASE_URL`.
    pub variable: &'static str,
    /// The login role.
    pub role: &'static str,
    /// The database name.
    pub name: &'static str,
}

/// One service of the stack. Its name is also the name of its binary.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// Binary and display name, such as `inventory`.
    pub name: &'static str,
    /// The variable that carries its bind address, such as `INVENTORY_ADDR`.
    pub address_variable: &'static str,
    /// The address it binds when the variable is unset.
    pub default_address: &'static str,
    /// Its database, if it has one.
    pub database: Option<ServiceDatabase>,
    /// Variables that tell it where other services are: (variable, service name).
    pub peers: &'static [(&'static str, &'static str)],
}

/// Every service, in start order: the gateway last, since it fronts the others.
pub const SERVICES: &[Service] = &[
    command_service(
        "inventory",
        ("INVENTORY_ADDR", "127.0.0.1:8081"),
        "INVENTORY_DATABASE_URL",
        INVENTORY_DB,
    ),
    command_service(
        "customers",
        ("CUSTOMERS_ADDR", "127.0.0.1:8082"),
        "CUSTOMERS_DATABASE_URL",
        CUSTOMERS_DB,
    ),
    command_service(
        "orders",
        ("ORDERS_ADDR", "127.0.0.1:8083"),
        "ORDERS_DATABASE_URL",
        ORDERS_DB,
    ),
    command_service(
        "payments",
        ("PAYMENTS_ADDR", "127.0.0.1:8084"),
        "PAYMENTS_DATABASE_URL",
        PAYMENTS_DB,
    ),
    Service {
        name: "projection-worker",
        address_variable: "PROJECTIONS_ADDR",
        default_address: "127.0.0.1:8090",
        database: Some(ServiceDatabase {
            variable: "PROJECTIONS_DATABASE_URL",
            role: READ_MODEL_DB.owner,
            name: READ_MODEL_DB.name,
        }),
        peers: &[],
    },
    query_service(
        ("catalog", "catalog"),
        ("CATALOG_ADDR", "127.0.0.1:8091"),
        "CATALOG_DATABASE_URL",
    ),
    query_service(
        ("orders-view", "orders_view"),
        ("ORDERS_VIEW_ADDR", "127.0.0.1:8092"),
        "ORDERS_VIEW_DATABASE_URL",
    ),
    query_service(
        ("customers-view", "customers_view"),
        ("CUSTOMERS_VIEW_ADDR", "127.0.0.1:8093"),
        "CUSTOMERS_VIEW_DATABASE_URL",
    ),
    Service {
        name: "gateway",
        address_variable: "GATEWAY_ADDR",
        default_address: "127.0.0.1:8080",
        database: None,
        peers: &[
            ("INVENTORY_URL", "inventory"),
            ("CUSTOMERS_URL", "customers"),
            ("ORDERS_URL", "orders"),
            ("PAYMENTS_URL", "payments"),
            ("CATALOG_URL", "catalog"),
            ("ORDERS_VIEW_URL", "orders-view"),
            ("CUSTOMERS_VIEW_URL", "customers-view"),
            ("PROJECTIONS_URL", "projection-worker"),
        ],
    },
];

/// A command service, which owns its event store: `(address variable, default
/// address)` and the variable that carries its database URL.
const fn command_service(
    name: &'static str,
    (address_variable, default_address): (&'static str, &'static str),
    database_variable: &'static str,
    database: DatabaseSpec,
) -> Service {
    Service {
        name,
        address_variable,
        default_address,
        database: Some(ServiceDatabase {
            variable: database_variable,
            role: database.owner,
            name: database.name,
        }),
        peers: &[],
    }
}

/// A query service, which reads the read models as its own read-only role:
/// `(address variable, default address)` and the variable that carries its
/// database URL.
const fn query_service(
    (name, role): (&'static str, &'static str),
    (address_variable, default_address): (&'static str, &'static str),
    database_variable: &'static str,
) -> Service {
    Service {
        name,
        address_variable,
        default_address,
        database: Some(ServiceDatabase {
            variable: database_variable,
            role,
            name: READ_MODEL_DB.name,
        }),
        peers: &[],
    }
}

/// The width of the widest service name, for aligned log prefixes.
pub fn name_width() -> usize {
    SERVICES
        .iter()
        .map(|service| service.name.len())
        .max()
        .unwrap_or(0)
}

/// A service ready to start: where it listens and its whole environment.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The service.
    pub service: Service,
    /// Its base URL, such as `http://127.0.0.1:8081`.
    pub base_url: String,
    /// Variables set for its process, on top of `shop`'s own environment.
    pub env: Vec<(String, String)>,
}

/// Plans every service against the given servers. `lookup` reads `shop`'s own
/// environment: an address or database URL set there wins over the derived one.
pub fn plan(
    server: &PgConnectOptions,
    database_url: &str,
    nats_url: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<Planned> {
    let address_of = |service: &Service| {
        lookup(service.address_variable).unwrap_or_else(|| service.default_address.to_owned())
    };
    let base_url_of = |name: &str| {
        let service = SERVICES.iter().find(|service| service.name == name);
        service
            .map(|service| base_url(&address_of(service)))
            .unwrap_or_default()
    };
    SERVICES
        .iter()
        .map(|service| {
            let address = address_of(service);
            let mut env = vec![
                ("DATABASE_URL".to_owned(), database_url.to_owned()),
                ("NATS_URL".to_owned(), nats_url.to_owned()),
                (service.address_variable.to_owned(), address.clone()),
            ];
            if let Some(database) = service.database {
                let url = lookup(database.variable)
                    .unwrap_or_else(|| role_url(server, database.role, database.name));
                env.push((database.variable.to_owned(), url));
            }
            for (variable, peer) in service.peers {
                env.push(((*variable).to_owned(), base_url_of(peer)));
            }
            Planned {
                service: *service,
                base_url: base_url(&address),
                env,
            }
        })
        .collect()
}

/// The URL that reaches a bind address: an unspecified IP (`0.0.0.0`, `::`)
/// becomes the loopback address.
pub fn base_url(address: &str) -> String {
    match address.parse::<SocketAddr>() {
        Ok(socket) if socket.ip().is_unspecified() => format!("http://127.0.0.1:{}", socket.port()),
        Ok(socket) => format!("http://{socket}"),
        Err(_) => format!("http://{address}"),
    }
}

/// A URL for `database` on the server of `server`, logging in as `role` without a
/// password (the local stack trusts local connections).
pub fn role_url(server: &PgConnectOptions, role: &str, database: &str) -> String {
    let host = server.get_host();
    let port = server.get_port();
    if host.starts_with('/') {
        return format!("postgres://{role}@localhost:{port}/{database}?host={host}");
    }
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!("postgres://{role}@{host}:{port}/{database}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::str::FromStr;

    use super::*;

    fn env_of<'a>(plans: &'a [Planned], name: &str) -> HashMap<&'a str, &'a str> {
        let plan = plans.iter().find(|plan| plan.service.name == name).unwrap();
        plan.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn server() -> PgConnectOptions {
        PgConnectOptions::from_str("postgres://postgres@127.0.0.1:5544/postgres").unwrap()
    }

    #[test]
    fn each_service_gets_its_own_role_and_database() {
        let plans = plan(&server(), "postgres://server", "nats://n:1", |_| None);
        let inventory = env_of(&plans, "inventory");
        assert_eq!(
            inventory["INVENTORY_DATABASE_URL"],
            "postgres://inventory@127.0.0.1:5544/inventory_es"
        );
        assert_eq!(inventory["NATS_URL"], "nats://n:1");
        assert_eq!(inventory["DATABASE_URL"], "postgres://server");
        let catalog = env_of(&plans, "catalog");
        assert_eq!(
            catalog["CATALOG_DATABASE_URL"],
            "postgres://catalog@127.0.0.1:5544/read_models"
        );
        let payments = env_of(&plans, "payments");
        assert_eq!(
            payments["PAYMENTS_DATABASE_URL"],
            "postgres://payments@127.0.0.1:5544/payments_es"
        );
        assert_eq!(payments["PAYMENTS_ADDR"], "127.0.0.1:8084");
        let worker = env_of(&plans, "projection-worker");
        assert_eq!(
            worker["PROJECTIONS_DATABASE_URL"],
            "postgres://projections@127.0.0.1:5544/read_models"
        );
    }

    #[test]
    fn the_gateway_learns_where_the_others_listen() {
        let lookup = |name: &str| (name == "CATALOG_ADDR").then(|| "0.0.0.0:9991".to_owned());
        let plans = plan(&server(), "postgres://server", "nats://n:1", lookup);
        let gateway = env_of(&plans, "gateway");
        assert_eq!(gateway["GATEWAY_ADDR"], "127.0.0.1:8080");
        assert_eq!(gateway["INVENTORY_URL"], "http://127.0.0.1:8081");
        assert_eq!(gateway["CATALOG_URL"], "http://127.0.0.1:9991");
        assert_eq!(gateway["PROJECTIONS_URL"], "http://127.0.0.1:8090");
        assert_eq!(gateway["ORDERS_URL"], "http://127.0.0.1:8083");
        assert_eq!(plans.last().unwrap().service.name, "gateway");
    }

    #[test]
    fn a_database_url_set_by_the_user_is_kept() {
        let lookup =
            |name: &str| (name == "INVENTORY_DATABASE_URL").then(|| "postgres://mine".to_owned());
        let plans = plan(&server(), "postgres://server", "nats://n:1", lookup);
        assert_eq!(
            env_of(&plans, "inventory")["INVENTORY_DATABASE_URL"],
            "postgres://mine"
        );
    }

    #[test]
    fn base_urls_reach_unspecified_addresses_through_loopback() {
        assert_eq!(base_url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(base_url("[::]:8080"), "http://127.0.0.1:8080");
        assert_eq!(base_url("127.0.0.1:8081"), "http://127.0.0.1:8081");
        assert_eq!(base_url("localhost:8081"), "http://localhost:8081");
    }

    #[test]
    fn role_urls_handle_sockets_and_ipv6_hosts() {
        let socket = PgConnectOptions::new()
            .host("/var/run/postgresql")
            .port(5432);
        assert_eq!(
            role_url(&socket, "catalog", "read_models"),
            "postgres://catalog@localhost:5432/read_models?host=/var/run/postgresql"
        );
        let ipv6 = PgConnectOptions::new().host("::1").port(5432);
        assert_eq!(
            role_url(&ipv6, "inventory", "inventory_es"),
            "postgres://inventory@[::1]:5432/inventory_es"
        );
    }
}
