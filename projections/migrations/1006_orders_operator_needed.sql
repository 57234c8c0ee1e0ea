-- A compensation another service refused for the order (docs/decisions/0014):
-- {step, error, at}, the latest one; null while nothing waits for an operator.
ALTER TABLE orders ADD COLUMN operator_needed jsonb;
