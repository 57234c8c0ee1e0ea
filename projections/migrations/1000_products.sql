-- The catalog's view of every product: stock, reservations and price, as of the
-- product's event `version`. `COLLATE "C"` gives byte order, so keyset pages by sku
-- are stable whatever the server's locale.
CREATE TABLE products
(
    sku         text COLLATE "C" PRIMARY KEY,
    name        text        NOT NULL,
    price_cents bigint      NOT NULL,
    on_hand     bigint      NOT NULL,
    reserved    bigint      NOT NULL,
    available   bigint GENERATED ALWAYS AS (on_hand - reserved) STORED,
    version     bigint      NOT NULL,
    updated_at  timestamptz NOT NULL
);
