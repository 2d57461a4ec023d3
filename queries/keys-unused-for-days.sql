-- title: Keys unused for more than :days days
-- answers: Which keys were never used, or not used for more than :days days before the snapshot was taken?
-- params: days:int (e.g. --param days=90)
SELECT p.name AS project, k.name AS key, k.id AS key_id,
       coalesce(k.owner_email, k.owner_name, k.owner_id) AS owner,
       coalesce(datetime(k.last_used_at, 'unixepoch'), 'never') AS last_used,
       CASE WHEN k.last_used_at IS NULL THEN NULL
            ELSE (s.as_of - k.last_used_at) / 86400 END AS idle_days
FROM project_api_keys k
JOIN snapshots s ON s.id = k.snapshot_id
JOIN projects p ON p.snapshot_id = k.snapshot_id AND p.id = k.project_id
WHERE k.snapshot_id = :snapshot_id
  AND (k.last_used_at IS NULL OR s.as_of - k.last_used_at > CAST(:days AS INTEGER) * 86400)
ORDER BY idle_days IS NOT NULL, idle_days DESC, p.name, k.name;
