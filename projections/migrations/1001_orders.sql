-- Every order as the orders query API shows it, as of the order's event `version`.
-- Order ids are UUIDv7, so `id DESC` is newest first: keyset pages need no time
-- column.
CREATE TABLE orders
(
    id          uuid PRIMARY KEY,
    customer_id uuid        NOT NULL,
    status      text        NOT NULL
        CHECK (status IN ('PENDING', 'CONFIRMED', 'REJECTED', 'CANCELLED', 'SHIPPED')),
    -- Null until the stock of every line is reserved.
    total_cents bigint,
    -- Why the order was rejected; null unless it was.
    reason      text,
    version     bigint      NOT NULL,
    placed_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- The list filters by customer or by status and pages newest first within the filter.
CREATE INDEX orders_by_customer ON orders (customer_id, id DESC);
CREATE INDEX orders_by_status ON orders (status, id DESC);

-- An order's lines in the order they were placed. A sku appears once per order.
CREATE TABLE order_lines
(
    order_id         uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_number      integer NOT NULL,
    sku              text COLLATE "C" NOT NULL,
    quantity         bigint  NOT NULL,
    -- Null until inventory reserves the line.
    unit_price_cents bigint,
    PRIMARY KEY (order_id, line_number),
    UNIQUE (order_id, sku)
);
