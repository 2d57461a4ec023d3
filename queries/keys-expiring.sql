-- title: Keys that expire within :days days, or have expired
-- answers: Which project keys expire within :days days of the snapshot, or have already expired, who owns them and when were they last used?
-- params: days:int (e.g. --param days=14)
SELECT p.name AS project, k.name AS key, k.id AS key_id,
       coalesce(k.owner_email, k.owner_name, k.owner_id) AS owner,
       k.owner_type,
       datetime(k.expires_at, 'unixepoch') AS expires,
       (k.expires_at - s.as_of) / 86400 AS days_left,
       coalesce(datetime(k.last_used_at, 'unixepoch'), 'never') AS last_used
FROM project_api_keys k
JOIN snapshots s ON s.id = k.snapshot_id
JOIN projects p ON p.snapshot_id = k.snapshot_id AND p.id = k.project_id
WHERE k.snapshot_id = :snapshot_id
  AND k.expires_at IS NOT NULL
  AND k.expires_at - s.as_of <= CAST(:days AS INTEGER) * 86400
ORDER BY k.expires_at, p.name, k.name;
