import AtelierFarmProtocol
import GRDB

/// The coordinator's tables, created and upgraded by GRDB's `DatabaseMigrator`. Migrations are
/// append-only: a shipped migration is never edited, a schema change is a new one, so a farm can
/// upgrade its coordinator in place over an existing directory.
///
/// Times are Unix milliseconds (INTEGER). States are lower-case words (see `JobPhase` and
/// `TaskPhase`). Protobuf values (job and task specs, worker capabilities, stored responses) are
/// kept as their serialized bytes, so what a worker receives is exactly what was validated at
/// submission.
enum CoordinatorSchema {
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE jobs (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- submission order (ties of priority)
                    id TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL,                      -- batch | upscale
                    state TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    created INTEGER NOT NULL,
                    finished INTEGER,
                    spec BLOB NOT NULL,                      -- serialized Atelier_V1_SubmitJobRequest
                    errors TEXT NOT NULL DEFAULT '[]',       -- JSON array of strings
                    seam_ratio REAL,
                    max_attempts INTEGER NOT NULL,
                    task_count INTEGER NOT NULL,
                    model TEXT NOT NULL,
                    image_width INTEGER NOT NULL DEFAULT 0,  -- upscale: low-res size and grid
                    image_height INTEGER NOT NULL DEFAULT 0,
                    tile INTEGER NOT NULL DEFAULT 0,
                    overlap INTEGER NOT NULL DEFAULT 0,
                    peer TEXT NOT NULL DEFAULT ''
                );
                CREATE INDEX jobs_state ON jobs(state);

                CREATE TABLE tasks (
                    id TEXT PRIMARY KEY,                     -- "<job id>-<index>"
                    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                    idx INTEGER NOT NULL,
                    state TEXT NOT NULL,
                    spec BLOB NOT NULL,                      -- serialized Atelier_V1_TaskSpec (shared inputs stripped)
                    model TEXT NOT NULL,
                    accepted_channels INTEGER NOT NULL,      -- bit n set: a UNet with n input channels fits
                    work REAL NOT NULL,                      -- steps x output megapixels, for lease deadlines
                    attempts INTEGER NOT NULL DEFAULT 0,
                    max_attempts INTEGER NOT NULL,
                    fencing_token INTEGER NOT NULL DEFAULT 0, -- the current (latest) lease's token
                    lease_deadline INTEGER,
                    worker_id TEXT,
                    step INTEGER NOT NULL DEFAULT 0,
                    total_steps INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT NOT NULL DEFAULT '',
                    UNIQUE (job_id, idx)
                );
                CREATE INDEX tasks_state ON tasks(state, lease_deadline);

                CREATE TABLE attempts (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                    fencing_token INTEGER NOT NULL UNIQUE,
                    worker_id TEXT NOT NULL,
                    started INTEGER NOT NULL,
                    ended INTEGER,
                    outcome TEXT NOT NULL DEFAULT 'running', -- running | done | failed | rejected | expired | cancelled
                    error TEXT NOT NULL DEFAULT ''
                );
                CREATE INDEX attempts_task ON attempts(task_id);

                CREATE TABLE workers (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    capabilities BLOB NOT NULL,              -- serialized Atelier_V1_WorkerCapabilities
                    registered INTEGER NOT NULL,
                    last_seen INTEGER NOT NULL,
                    completed INTEGER NOT NULL DEFAULT 0,
                    failed INTEGER NOT NULL DEFAULT 0
                );

                -- The capabilities' models, normalised so leasing can match them in SQL.
                CREATE TABLE worker_models (
                    worker_id TEXT NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
                    model TEXT NOT NULL,
                    unet_in_channels INTEGER NOT NULL,
                    PRIMARY KEY (worker_id, model)
                );
                CREATE INDEX worker_models_model ON worker_models(model);

                -- The blocklist: failures of a worker on one job's tasks.
                CREATE TABLE worker_job_failures (
                    worker_id TEXT NOT NULL,
                    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                    count INTEGER NOT NULL,
                    PRIMARY KEY (worker_id, job_id)
                );

                CREATE TABLE results (
                    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL,                      -- image | tile | upscaled
                    idx INTEGER NOT NULL,
                    path TEXT NOT NULL,                      -- relative to the coordinator directory
                    bytes INTEGER NOT NULL,
                    created INTEGER NOT NULL,
                    PRIMARY KEY (job_id, kind, idx)
                );

                -- Responses of mutating requests, for resends of the same request_id.
                CREATE TABLE requests (
                    request_id TEXT PRIMARY KEY,
                    peer TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    fingerprint INTEGER NOT NULL,            -- FNV-1a of the serialized request
                    response BLOB NOT NULL,                  -- serialized Atelier_V1_Response
                    created INTEGER NOT NULL
                );
                CREATE INDEX requests_created ON requests(created);

                CREATE TABLE counters (
                    name TEXT PRIMARY KEY,
                    value INTEGER NOT NULL
                );
                INSERT INTO counters (name, value) VALUES ('fencing_token', 0);
                """)
        }
        // Lease expiries are not render failures: their own counter and budget, a back-off before
        // the task may be leased again, and the worker that lost it (to prefer another one).
        migrator.registerMigration("v2-expiry-budget") { db in
            try db.execute(sql: """
                ALTER TABLE tasks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;   -- fail_task + rejected results (max_attempts)
                ALTER TABLE tasks ADD COLUMN expiries INTEGER NOT NULL DEFAULT 0;   -- expired leases (CoordinatorOptions.maxLeaseExpiries)
                ALTER TABLE tasks ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0; -- no lease before this time (back-off)
                ALTER TABLE tasks ADD COLUMN lost_by TEXT;                          -- worker whose lease last expired
                UPDATE tasks SET failures = (SELECT COUNT(*) FROM attempts a
                                             WHERE a.task_id = tasks.id AND a.outcome IN ('failed', 'rejected'));
                UPDATE tasks SET expiries = (SELECT COUNT(*) FROM attempts a
                                             WHERE a.task_id = tasks.id AND a.outcome = 'expired');
                CREATE INDEX attempts_task_outcome ON attempts(task_id, outcome);
                """)
        }
        // Slots (leases held at once), lease expiries per worker and the quarantine they lead to,
        // and whether the worker ever proved alive (heartbeat or completion).
        migrator.registerMigration("v3-worker-slots-quarantine") { db in
            try db.execute(sql: """
                ALTER TABLE workers ADD COLUMN slots INTEGER NOT NULL DEFAULT 1;
                ALTER TABLE workers ADD COLUMN expiries INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE workers ADD COLUMN expiry_streak INTEGER NOT NULL DEFAULT 0;  -- since its last completion
                ALTER TABLE workers ADD COLUMN quarantined_until INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE workers ADD COLUMN proven INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX tasks_leased_worker ON tasks(worker_id) WHERE state = 'leased';
                """)
        }
        // Weights digest and numerics per worker model, and the (digest, numerics) group a job is
        // pinned to at submit (NULL: a job from before pinning, leased to any worker).
        migrator.registerMigration("v4-weights-pinning") { db in
            try db.execute(sql: """
                ALTER TABLE worker_models ADD COLUMN weights_sha256 TEXT NOT NULL DEFAULT '';
                ALTER TABLE worker_models ADD COLUMN numerics TEXT NOT NULL DEFAULT '';
                ALTER TABLE worker_models ADD COLUMN default_side INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE jobs ADD COLUMN weights_sha256 TEXT;
                ALTER TABLE jobs ADD COLUMN numerics TEXT;
                ALTER TABLE jobs ADD COLUMN default_side INTEGER NOT NULL DEFAULT 0;
                """)
        }
        // The size a batch job's images must have, fixed at submit, so a result is checked from
        // its PNG header before anything is decoded. exact = 0: only an upper bound is known.
        migrator.registerMigration("v5-expected-result-size") { db in
            try db.execute(sql: """
                ALTER TABLE jobs ADD COLUMN expected_width INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE jobs ADD COLUMN expected_height INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE jobs ADD COLUMN expected_exact INTEGER NOT NULL DEFAULT 0;
                """)
        }
        // When each attempt last heartbeated: an expired lease that never did is what a peer
        // leasing without working leaves behind, and only those count towards quarantine.
        migrator.registerMigration("v6-attempt-heartbeats") { db in
            try db.execute(sql: "ALTER TABLE attempts ADD COLUMN last_heartbeat INTEGER")
        }
        // Access control (issue 11, helper tls): who submitted each job (the token's name, '' when
        // access is open), which token registered each worker (its later lease requests must come
        // from the same one), and whether an admin drained it (no new leases).
        migrator.registerMigration("v7-tls-owner-binding-drain") { db in
            try db.execute(sql: """
                ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
                ALTER TABLE workers ADD COLUMN token_name TEXT NOT NULL DEFAULT '';
                ALTER TABLE workers ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
                """)
        }
        // Scale from zero: a job accepted while no worker served its model is pinned by its first
        // lease (pin_pending = 1 until then; its weights_sha256/numerics are NULL meanwhile).
        migrator.registerMigration("v7-ops-pin-on-first-lease") { db in
            try db.execute(sql: "ALTER TABLE jobs ADD COLUMN pin_pending INTEGER NOT NULL DEFAULT 0")
        }
        // The worker's denoising rate from its latest heartbeat (steps/s; 0 = not known), for
        // list_workers, the status page and the farm's steps/s metric.
        migrator.registerMigration("v7-obs-worker-step-rate") { db in
            try db.execute(sql: "ALTER TABLE workers ADD COLUMN steps_per_second REAL NOT NULL DEFAULT 0")
        }
        return migrator
    }
}
