-- A database as the collector before the numbered migration ladder left it
-- (main at cf54fac: user_version 1, the later tables created outside the version),
-- after two predictions, a 3-row CSV upload, two devices (pi-2 with one ingested
-- batch) and one analyst label. Made with that binary; dumped in creation order.
PRAGMA user_version = 1;
BEGIN TRANSACTION;
CREATE TABLE predictions (
    id               INTEGER PRIMARY KEY,
    created_at       TEXT NOT NULL DEFAULT (datetime('now')),
    source           TEXT NOT NULL CHECK (source IN ('single', 'csv', 'agent')),
    prediction       TEXT NOT NULL CHECK (prediction IN ('Normal', 'Suspicious')),
    confidence       REAL NOT NULL,
    login_hour       INTEGER NOT NULL,
    session_duration REAL NOT NULL,
    commands_count   INTEGER NOT NULL,
    failed_logins    INTEGER NOT NULL,
    protocol         TEXT NOT NULL,
    typing_speed     REAL,
    risky_commands   INTEGER,
    commands         TEXT,
    model_version    TEXT NOT NULL,
    reasons          TEXT NOT NULL, -- JSON list: feature index (worded at read time) or text
    device           TEXT,
    kind             TEXT,
    source_ip        TEXT,
    user             TEXT,
    started_at       TEXT,
    ended_at         TEXT
);
INSERT INTO "predictions" VALUES(1,'2026-12-07 02:53:54','single','Suspicious',1.0,3,5.0,3,4,'TOR',120.0,0,'["ls","sudo","chmod"]','bfp-sim-forest-1.1.0','[4,3,5]',NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "predictions" VALUES(2,'2026-12-07 02:53:54','single','Normal',0.96,14,30.0,2,0,'SSH',45.0,NULL,NULL,'bfp-sim-forest-1.1.0','[3,1,6]',NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "predictions" VALUES(3,'2026-12-07 02:53:54','csv','Normal',1.0,9,40.0,10,0,'HTTPS',45.0,NULL,NULL,'bfp-sim-forest-1.1.0','[3,1,4]',NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "predictions" VALUES(4,'2026-12-07 02:53:54','csv','Suspicious',1.0,2,5.0,80,4,'TOR',120.0,NULL,NULL,'bfp-sim-forest-1.1.0','[4,3,5]',NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "predictions" VALUES(5,'2026-12-07 02:53:54','csv','Normal',1.0,14,30.0,5,0,'HTTPS',35.0,NULL,NULL,'bfp-sim-forest-1.1.0','[3,1,4]',NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "predictions" VALUES(6,'2026-12-07 02:53:58','agent','Normal',0.8,22,10.0,1,0,'SSH',NULL,0,'["ls"]','m','["usual"]','pi-2','session','192.0.2.7','alice','2023-11-14 22:13:20','2023-11-14 22:23:20');
CREATE INDEX predictions_source_id ON predictions (source, id);
CREATE INDEX predictions_suspicious_id ON predictions (id) WHERE prediction = 'Suspicious';
CREATE INDEX predictions_device_id ON predictions (device, id) WHERE device IS NOT NULL;
CREATE TABLE counters (
    source     TEXT NOT NULL,
    device     TEXT NOT NULL DEFAULT '',
    prediction TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (source, device, prediction)
) WITHOUT ROWID;
INSERT INTO "counters" VALUES('agent','pi-2','Normal',1);
INSERT INTO "counters" VALUES('csv','','Normal',2);
INSERT INTO "counters" VALUES('csv','','Suspicious',1);
INSERT INTO "counters" VALUES('single','','Normal',1);
INSERT INTO "counters" VALUES('single','','Suspicious',1);
CREATE TABLE rollup_hourly (
    hour       TEXT NOT NULL,  -- 'YYYY-MM-DD HH:00:00', UTC
    source     TEXT NOT NULL,
    protocol   TEXT NOT NULL,
    prediction TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (hour, source, protocol, prediction)
) WITHOUT ROWID;
INSERT INTO "rollup_hourly" VALUES('2026-12-07 02:00:00','agent','SSH','Normal',1);
INSERT INTO "rollup_hourly" VALUES('2026-12-07 02:00:00','csv','HTTPS','Normal',2);
INSERT INTO "rollup_hourly" VALUES('2026-12-07 02:00:00','csv','TOR','Suspicious',1);
INSERT INTO "rollup_hourly" VALUES('2026-12-07 02:00:00','single','SSH','Normal',1);
INSERT INTO "rollup_hourly" VALUES('2026-12-07 02:00:00','single','TOR','Suspicious',1);
CREATE TABLE source_ips (
    source_ip  TEXT PRIMARY KEY,
    suspicious INTEGER NOT NULL,
    total      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO "source_ips" VALUES('192.0.2.7',0,1);
CREATE INDEX source_ips_suspicious ON source_ips (suspicious);
CREATE TABLE id_blocks (
    block      INTEGER NOT NULL,  -- id >> 12
    source     TEXT NOT NULL,
    prediction TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (block, source, prediction)
) WITHOUT ROWID;
INSERT INTO "id_blocks" VALUES(0,'agent','Normal',1);
INSERT INTO "id_blocks" VALUES(0,'csv','Normal',2);
INSERT INTO "id_blocks" VALUES(0,'csv','Suspicious',1);
INSERT INTO "id_blocks" VALUES(0,'single','Normal',1);
INSERT INTO "id_blocks" VALUES(0,'single','Suspicious',1);
CREATE TABLE devices (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL DEFAULT (datetime('now')),
    revoked_at    TEXT,
    last_seen     TEXT,
    agent_version TEXT,
    model_version TEXT,
    spool_depth   INTEGER NOT NULL DEFAULT 0,
    dropped       INTEGER NOT NULL DEFAULT 0,
    lines_read    INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    batches       INTEGER NOT NULL DEFAULT 0,
    records       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO "devices" VALUES(1,'pi-1','f182e64284202ed72c8cbdcc7f9e9216a8a8d38bc657c56458b1a4378e0b6e26','2026-12-07 02:53:54',NULL,NULL,NULL,NULL,0,0,0,NULL,0,0,0);
INSERT INTO "devices" VALUES(2,'pi-2','e19e8a514a8b4113cce716b2121c9a640a385c6ee54e7a6717d807adac9129c5','2026-12-07 02:53:57',NULL,'2026-12-07 02:53:58','0.1.0','m',0,0,10,NULL,1,1,1);
CREATE TABLE feedback (
    prediction_id INTEGER PRIMARY KEY REFERENCES predictions (id),
    analyst_label TEXT NOT NULL CHECK (analyst_label IN ('Normal', 'Suspicious')),
    labelled_at   TEXT NOT NULL DEFAULT (datetime('now')),
    note          TEXT
);
INSERT INTO "feedback" VALUES(1,'Normal','2026-12-07 02:53:55','admin');
COMMIT;
