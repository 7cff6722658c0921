#if PostgreSQL  // the trait (Package.swift); off, the coordinator builds without postgres-nio
import Foundation
import PostgresNIO

/// The PostgreSQL store's tables: the same as the SQLite store's (`CoordinatorSchema`, its
/// migrations folded into one), in PostgreSQL's types, plus the fencing-token sequence.
/// Migrations are numbered and append-only, recorded in `atelier_schema`, and run under an
/// advisory lock so two coordinators starting at once do not both apply one.
enum PostgresSchema {
    static let migrations: [(version: Int, sql: String)] = [
        (1, """
            CREATE TABLE jobs (
                seq BIGSERIAL PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                state TEXT NOT NULL,
                priority BIGINT NOT NULL,
                created BIGINT NOT NULL,
                finished BIGINT,
                spec BYTEA NOT NULL,
                errors TEXT NOT NULL DEFAULT '[]',
                seam_ratio DOUBLE PRECISION,
                max_attempts BIGINT NOT NULL,
                task_count BIGINT NOT NULL,
                model TEXT NOT NULL,
                image_width BIGINT NOT NULL DEFAULT 0,
                image_height BIGINT NOT NULL DEFAULT 0,
                tile BIGINT NOT NULL DEFAULT 0,
                overlap BIGINT NOT NULL DEFAULT 0,
                peer TEXT NOT NULL DEFAULT '',
                weights_sha256 TEXT,
                numerics TEXT,
                default_side BIGINT NOT NULL DEFAULT 0,
                expected_width BIGINT NOT NULL DEFAULT 0,
                expected_height BIGINT NOT NULL DEFAULT 0,
                expected_exact BOOLEAN NOT NULL DEFAULT FALSE
            );
            CREATE INDEX jobs_state ON jobs(state);

            CREATE TABLE tasks (
                id TEXT PRIMARY KEY,
                job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                idx BIGINT NOT NULL,
                state TEXT NOT NULL,
                spec BYTEA NOT NULL,
                model TEXT NOT NULL,
                accepted_channels BIGINT NOT NULL,
                work DOUBLE PRECISION NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0,
                max_attempts BIGINT NOT NULL,
                fencing_token BIGINT NOT NULL DEFAULT 0,
                lease_deadline BIGINT,
                worker_id TEXT,
                step BIGINT NOT NULL DEFAULT 0,
                total_steps BIGINT NOT NULL DEFAULT 0,
                last_error TEXT NOT NULL DEFAULT '',
                failures BIGINT NOT NULL DEFAULT 0,
                expiries BIGINT NOT NULL DEFAULT 0,
                not_before BIGINT NOT NULL DEFAULT 0,
                lost_by TEXT,
                UNIQUE (job_id, idx)
            );
            CREATE INDEX tasks_state ON tasks(state, lease_deadline);
            CREATE INDEX tasks_leased_worker ON tasks(worker_id) WHERE state = 'leased';

            CREATE TABLE attempts (
                id BIGSERIAL PRIMARY KEY,
                task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                fencing_token BIGINT NOT NULL UNIQUE,
                worker_id TEXT NOT NULL,
                started BIGINT NOT NULL,
                ended BIGINT,
                outcome TEXT NOT NULL DEFAULT 'running',
                error TEXT NOT NULL DEFAULT '',
                last_heartbeat BIGINT
            );
            CREATE INDEX attempts_task_outcome ON attempts(task_id, outcome);

            CREATE TABLE workers (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                capabilities BYTEA NOT NULL,
                registered BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                completed BIGINT NOT NULL DEFAULT 0,
                failed BIGINT NOT NULL DEFAULT 0,
                slots BIGINT NOT NULL DEFAULT 1,
                expiries BIGINT NOT NULL DEFAULT 0,
                expiry_streak BIGINT NOT NULL DEFAULT 0,
                quarantined_until BIGINT NOT NULL DEFAULT 0,
                proven BOOLEAN NOT NULL DEFAULT FALSE
            );

            CREATE TABLE worker_models (
                worker_id TEXT NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
                model TEXT NOT NULL,
                unet_in_channels BIGINT NOT NULL,
                weights_sha256 TEXT NOT NULL DEFAULT '',
                numerics TEXT NOT NULL DEFAULT '',
                default_side BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (worker_id, model)
            );
            CREATE INDEX worker_models_model ON worker_models(model);

            CREATE TABLE worker_job_failures (
                worker_id TEXT NOT NULL,
                job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                count BIGINT NOT NULL,
                PRIMARY KEY (worker_id, job_id)
            );

            CREATE TABLE results (
                job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                idx BIGINT NOT NULL,
                path TEXT NOT NULL,
                bytes BIGINT NOT NULL,
                created BIGINT NOT NULL,
                PRIMARY KEY (job_id, kind, idx)
            );

            CREATE TABLE requests (
                request_id TEXT PRIMARY KEY,
                peer TEXT NOT NULL,
                kind TEXT NOT NULL,
                fingerprint BIGINT NOT NULL,
                response BYTEA NOT NULL,
                created BIGINT NOT NULL
            );
            CREATE INDEX requests_created ON requests(created);

            CREATE SEQUENCE atelier_fencing_token;
            """),
        // Active/standby coordinators (`PostgresLeaderLease`): one row, the coordinator serving now.
        (2, """
            CREATE TABLE atelier_leader (
                id BIGINT PRIMARY KEY CHECK (id = 1),
                holder TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                expires BIGINT NOT NULL
            );
            """),
        // Access control (issue 11, helper tls): the same columns as SQLite's v7-tls-owner-binding-drain.
        (100, """
            ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
            ALTER TABLE workers ADD COLUMN token_name TEXT NOT NULL DEFAULT '';
            ALTER TABLE workers ADD COLUMN draining BOOLEAN NOT NULL DEFAULT FALSE;
            """),
        // Scale from zero (helper ops): a job accepted while no worker served its model is pinned
        // by its first lease; pin_pending until then.
        (300, """
            ALTER TABLE jobs ADD COLUMN pin_pending BOOLEAN NOT NULL DEFAULT FALSE;
            """),
        // The worker's denoising rate from its latest heartbeat (steps/s; 0 = not known).
        (200, """
            ALTER TABLE workers ADD COLUMN steps_per_second DOUBLE PRECISION NOT NULL DEFAULT 0;
            """),
    ]

    static func migrate(_ store: PostgresCoordinatorStore) throws {
        try store.write { db in
            // One migrator at a time across every coordinator on this database.
            try db.execute("SELECT pg_advisory_xact_lock(1, 0)")
            try db.execute("CREATE TABLE IF NOT EXISTS atelier_schema (version BIGINT PRIMARY KEY)")
            let applied = Set(try db.rows("SELECT version FROM atelier_schema").map { try $0["version"].decode(Int.self) })
            for migration in migrations where !applied.contains(migration.version) {
                // Statement by statement: the extended protocol takes one command per query.
                for statement in migration.sql.components(separatedBy: ";")
                    where !statement.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    try db.execute(PostgresQuery(unsafeSQL: statement))
                }
                try db.execute("INSERT INTO atelier_schema (version) VALUES (\(migration.version))")
            }
        }
    }
}
#endif
