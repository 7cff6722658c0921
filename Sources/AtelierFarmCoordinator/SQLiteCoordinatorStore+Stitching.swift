import AtelierFarmProtocol
import Foundation
import GRDB

/// `SQLiteCoordinatorStore`: what the stitcher of an upscale reads and records.
extension SQLiteCoordinatorStore {
    public func upscalesAwaitingStitch() throws -> [String] {
        try read { db in
            try String.fetchAll(db, sql: """
                SELECT id FROM jobs WHERE kind = 'upscale' AND state = 'running'
                  AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = jobs.id AND tasks.state != 'done')
                ORDER BY seq
                """)
        }
    }

    public func stitchInputs(jobID: String) throws -> StitchInputs? {
        try read { db -> StitchInputs? in
            guard let job = try JobRow.fetch(db, id: jobID), job.kind == .upscale, job.state == .running,
                  try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE job_id = ? AND state != 'done'",
                                   arguments: [jobID]) == 0 else { return nil }
            var paths = [Int: String]()
            for row in try Row.fetchAll(db, sql: "SELECT idx, path FROM results WHERE job_id = ? AND kind = 'tile'",
                                        arguments: [jobID]) {
                if let idx: Int = row["idx"], let path: String = row["path"] { paths[idx] = path }
            }
            return StitchInputs(imageWidth: job.imageWidth, imageHeight: job.imageHeight, tile: job.tile,
                                overlap: job.overlap, tilePaths: paths)
        }
    }

    public func recordStitched(jobID: String, path: String, bytes: Int, seamRatio: Double?, now: Int64) throws {
        try write { db in
            // Cancelled meanwhile: leave it cancelled (the file is harmless).
            guard try JobRow.fetch(db, id: jobID)?.state == .running else { return }
            try db.execute(sql: """
                INSERT INTO results (job_id, kind, idx, path, bytes, created) VALUES (?, 'upscaled', 0, ?, ?, ?)
                ON CONFLICT (job_id, kind, idx) DO UPDATE SET path = excluded.path, bytes = excluded.bytes,
                                                              created = excluded.created
                """, arguments: [jobID, path, bytes, now])
            try db.execute(sql: "UPDATE jobs SET state = 'succeeded', finished = ?, seam_ratio = ? WHERE id = ?",
                           arguments: [now, seamRatio, jobID])
        }
    }

    public func requeueLostTiles(jobID: String, lost: [(index: Int, reason: String)]) throws {
        try write { db in
            for tile in lost {
                let message = "the stored result of tile \(tile.index) is unusable (\(tile.reason)); rendering it again"
                try db.execute(sql: """
                    UPDATE tasks SET state = 'queued', last_error = ?, worker_id = NULL, lease_deadline = NULL
                    WHERE job_id = ? AND idx = ? AND state = 'done'
                    """, arguments: [message, jobID, tile.index])
                try db.execute(sql: "DELETE FROM results WHERE job_id = ? AND kind = 'tile' AND idx = ?",
                               arguments: [jobID, tile.index])
                try SQLiteCoordinatorStore.appendJobError(db, jobID: jobID, message)
            }
        }
    }
}
