-- Every order's payment as the payments query API shows it, as of the payment's
-- event `version`. The payment's aggregate id is its order id.
CREATE TABLE payments
(
    order_id     uuid PRIMARY KEY,
    customer_id  uuid        NOT NULL,
    -- The amount authorized or declined; voiding or capturing keeps it.
    amount_cents bigint      NOT NULL,
    status       text        NOT NULL
        CHECK (status IN ('AUTHORIZED', 'DECLINED', 'VOIDED', 'CAPTURED')),
    -- Why the payment was declined; null unless it was.
    reason       text,
    version      bigint      NOT NULL,
    updated_at   timestamptz NOT NULL
);
