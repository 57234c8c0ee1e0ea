-- Messages to customers: a welcome, and the outcome of each of their orders. One
-- event makes at most one notification, so `source_event_id` keeps a redelivery
-- from sending it twice.
CREATE TABLE notifications
(
    id              uuid PRIMARY KEY,
    customer_id     uuid        NOT NULL,
    kind            text        NOT NULL
        CHECK (kind IN ('WELCOME', 'ORDER_CONFIRMED', 'ORDER_REJECTED', 'ORDER_CANCELLED', 'ORDER_SHIPPED')),
    -- Null for a welcome.
    order_id        uuid,
    message         text        NOT NULL,
    created_at      timestamptz NOT NULL,
    source_event_id text        NOT NULL UNIQUE
);

CREATE INDEX notifications_by_customer ON notifications (customer_id, created_at DESC, id DESC);

-- The customer of each order, from its OrderPlaced: later order events do not name
-- the customer they notify.
CREATE TABLE notification_orders
(
    order_id    uuid PRIMARY KEY,
    customer_id uuid NOT NULL
);
