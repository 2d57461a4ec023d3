-- title: Keys and their recorded scopes
-- answers: What scopes did the audit log record for each key (restricted, read only, unrestricted, or unknown), and when?
SELECT p.name AS project, k.name AS key, k.id AS key_id, s.scope_kind,
       s.scopes, datetime(s.recorded_at, 'unixepoch') AS recorded
FROM key_scopes s
JOIN project_api_keys k ON k.snapshot_id = s.snapshot_id AND k.id = s.key_id
JOIN projects p ON p.snapshot_id = k.snapshot_id AND p.id = k.project_id
WHERE s.snapshot_id = :snapshot_id
ORDER BY p.name, k.name;
