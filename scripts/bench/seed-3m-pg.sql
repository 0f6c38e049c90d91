-- A 3 M-row PostgreSQL store for EXPLAIN-level measurements (docs/benchmarks.md, "Event-time counts,
-- offsets and CSV indexes at 3 M rows"): run on an empty database after `bfp-collector migrate --db URL`,
-- e.g. `psql URL -f scripts/bench/seed-3m-pg.sql`. Not a harness: rows, counts and roll-ups are made by SQL.
\timing on
INSERT INTO predictions (id, created_at, event_at, source, prediction, confidence, login_hour, session_duration,
  commands_count, failed_logins, protocol, model_version, reasons, device, kind, source_ip, "user", started_at)
SELECT g,
  timestamptz '2026-12-01 00:00:00+00' + g * interval '100 ms',
  CASE WHEN src = 'agent' THEN timestamptz '2026-11-01 00:00:00+00' + ((g * 7919) % 2592000) * interval '1 s'
       ELSE timestamptz '2026-12-01 00:00:00+00' + g * interval '100 ms' END,
  src,
  CASE WHEN g % 10 < 3 THEN 'Suspicious' ELSE 'Normal' END,
  0.9, 14, 2.5, 3, 0, (ARRAY['SSH','HTTPS','FTP','TOR'])[1 + g % 4], 'm1', '[]',
  CASE WHEN src = 'agent' THEN 'pi-' || (g % 20) END,
  CASE WHEN src = 'agent' THEN 'session' END,
  CASE WHEN src = 'agent' THEN '198.51.100.' || (g % 250) END,
  CASE WHEN src = 'agent' THEN 'user' || (g % 50) END,
  CASE WHEN src = 'agent' THEN to_char((timestamptz '2026-11-01 00:00:00+00' + ((g * 7919) % 2592000) * interval '1 s') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') END
FROM (SELECT g, CASE WHEN g > 1000000 AND g <= 2000000 THEN 'csv' WHEN g % 2 = 0 THEN 'agent' ELSE 'single' END AS src
      FROM generate_series(1::bigint, 3000000) g) s;
SELECT setval(pg_get_serial_sequence('predictions', 'id'), 3000000);
INSERT INTO counters SELECT source, COALESCE(device, ''), prediction, COUNT(*) FROM predictions GROUP BY 1, 2, 3;
INSERT INTO id_blocks SELECT id >> 12, source, prediction, COUNT(*) FROM predictions GROUP BY 1, 2, 3;
INSERT INTO rollup_hourly SELECT date_trunc('hour', event_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', source, protocol, prediction, COUNT(*) FROM predictions GROUP BY 1, 2, 3, 4;
VACUUM ANALYZE;
