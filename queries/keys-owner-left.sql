-- title: Keys whose owner has left
-- answers: Which keys belong to an owner who lost access to the project (owner_project_access inactive) or is no longer in the organization?
SELECT p.name AS project, k.name AS key, k.id AS key_id,
       coalesce(k.owner_email, k.owner_name, k.owner_id) AS owner,
       k.owner_project_access,
       CASE WHEN k.owner_type = 'user' AND u.id IS NULL THEN 'left the organization'
            ELSE 'no access to the project' END AS why,
       datetime(k.last_used_at, 'unixepoch') AS last_used
FROM project_api_keys k
JOIN projects p ON p.snapshot_id = k.snapshot_id AND p.id = k.project_id
LEFT JOIN users u ON u.snapshot_id = k.snapshot_id AND u.id = k.owner_id
WHERE k.snapshot_id = :snapshot_id
  AND (k.owner_project_access != 'active' OR (k.owner_type = 'user' AND u.id IS NULL))
ORDER BY p.name, k.name;
