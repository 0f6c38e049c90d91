-- The SQLite twin of seed-3m-pg.sql: `bfp-collector migrate --db FILE`, then
-- `sqlite3 FILE < scripts/bench/seed-3m-sqlite.sql`.
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 3000000),
s AS (SELECT i, CASE WHEN i > 1000000 AND i <= 2000000 THEN 'csv' WHEN i % 2 = 0 THEN 'agent' ELSE 'single' END AS src,
        datetime(1796083200 + i / 10, 'unixepoch') AS ingest,
        datetime(1793491200 + (i * 7919) % 2592000, 'unixepoch') AS ev FROM g)
INSERT INTO predictions (id, created_at, event_at, source, prediction, confidence, login_hour, session_duration,
  commands_count, failed_logins, protocol, model_version, reasons, device, kind, source_ip, user, started_at)
SELECT i, ingest, CASE WHEN src = 'agent' THEN ev ELSE ingest END, src,
  CASE WHEN i % 10 < 3 THEN 'Suspicious' ELSE 'Normal' END, 0.9, 14, 2.5, 3, 0,
  CASE i % 4 WHEN 0 THEN 'SSH' WHEN 1 THEN 'HTTPS' WHEN 2 THEN 'FTP' ELSE 'TOR' END, 'm1', '[]',
  CASE WHEN src = 'agent' THEN 'pi-' || (i % 20) END, CASE WHEN src = 'agent' THEN 'session' END,
  CASE WHEN src = 'agent' THEN '198.51.100.' || (i % 250) END, CASE WHEN src = 'agent' THEN 'user' || (i % 50) END,
  CASE WHEN src = 'agent' THEN ev END
FROM s;
INSERT INTO counters SELECT source, COALESCE(device, ''), prediction, COUNT(*) FROM predictions GROUP BY 1, 2, 3;
INSERT INTO id_blocks SELECT id >> 12, source, prediction, COUNT(*) FROM predictions GROUP BY 1, 2, 3;
INSERT INTO rollup_hourly SELECT substr(event_at, 1, 13) || ':00:00', source, protocol, prediction, COUNT(*) FROM predictions GROUP BY 1, 2, 3, 4;
ANALYZE;
