-- Every customer as the customers query API shows it. Its profile comes from the
-- customers stream, its counters from the orders and payments streams, and those
-- streams are not ordered with each other: a row is created by whichever event comes
-- first, and it is served only once `registered`.
CREATE TABLE customers
(
    id                     uuid PRIMARY KEY,
    registered             boolean NOT NULL DEFAULT false,
    name                   text,
    email                  text,
    credit_limit_cents     bigint,
    active                 boolean NOT NULL DEFAULT false,
    -- The sequence of the customer's last event; 0 before registration.
    version                bigint  NOT NULL DEFAULT 0,
    -- Amounts of the customer's payments that are authorized or captured.
    committed_cents        bigint  NOT NULL DEFAULT 0,
    available_credit_cents bigint GENERATED ALWAYS AS (credit_limit_cents - committed_cents) STORED,
    orders_count           bigint  NOT NULL DEFAULT 0,
    -- Totals of the customer's orders that are CONFIRMED or SHIPPED.
    lifetime_spend_cents   bigint  NOT NULL DEFAULT 0,
    CONSTRAINT registered_customers_have_a_profile
        CHECK (NOT registered OR (name IS NOT NULL AND email IS NOT NULL AND credit_limit_cents IS NOT NULL))
);

-- Per order (`aggregate_type` 'Order') and per payment ('Payment'): whose it is, and
-- the amount it counts now, towards lifetime spend or committed credit. Later events
-- of an order or payment do not name the customer, and moving the counted amount to
-- a new value (rather than adding to it) keeps every counter write idempotent.
CREATE TABLE customer_links
(
    aggregate_type text   NOT NULL,
    aggregate_id   uuid   NOT NULL,
    customer_id    uuid   NOT NULL,
    counted_cents  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
