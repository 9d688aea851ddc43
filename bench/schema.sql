-- The benchmark's demo schema (bench/run.sh): 10,000 customers and 20,000 orders,
-- deterministic, so every run and every server sees the same rows.
CREATE TABLE customers (
  id         integer PRIMARY KEY,
  name       text NOT NULL,
  email      text NOT NULL,
  country    text NOT NULL,
  segment    text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TABLE orders (
  id          integer PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers (id),
  ordered_at  timestamptz NOT NULL,
  status      text NOT NULL,
  total       numeric(10, 2) NOT NULL,
  items       integer NOT NULL
);
INSERT INTO customers
SELECT i,
       'Customer ' || i,
       'customer' || i || '@example.com',
       (ARRAY['DE', 'FR', 'GB', 'IN', 'JP', 'US', 'BR', 'CA'])[1 + i % 8],
       (ARRAY['consumer', 'corporate', 'home office'])[1 + i % 3],
       timestamptz '2023-01-01 00:00:00+00' + (i * interval '47 minutes')
FROM generate_series(1, 10000) AS i;
INSERT INTO orders
SELECT i,
       1 + (i * 7919) % 10000,
       timestamptz '2024-01-01 00:00:00+00' + (i * interval '23 minutes'),
       (ARRAY['pending', 'paid', 'shipped', 'delivered', 'returned'])[1 + i % 5],
       round((5 + (i * 37) % 99500 / 100.0)::numeric, 2),
       1 + i % 9
FROM generate_series(1, 20000) AS i;
CREATE INDEX orders_customer_id ON orders (customer_id);
VACUUM ANALYZE customers, orders;
