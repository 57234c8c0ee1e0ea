-- The lines of every order the saga has seen placed, so that the order's later
-- events (rejected, cancelled, shipped), which carry no lines, can reach each of
-- its products. Written in the consumer's transaction with the OrderPlaced offset.
-- Versions from 1000 up, so they share `_sqlx_migrations` with the event store's
-- and the consumer tables' migrations.
CREATE TABLE order_lines
(
    order_id uuid   NOT NULL,
    sku      text   NOT NULL,
    quantity bigint NOT NULL,
    PRIMARY KEY (order_id, sku)
);
