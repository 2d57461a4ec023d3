-- title: Unrestricted keys
-- answers: Which keys hold all permissions ("All"), who owns them, and when were they last used?
SELECT p.name AS project, k.name AS key, k.id AS key_id,
       coalesce(k.owner_email, k.owner_name, k.owner_id) AS owner, k.owner_type,
       datetime(k.last_used_at, 'unixepoch') AS last_used
FROM key_scopes s
JOIN project_api_keys k ON k.snapshot_id = s.snapshot_id AND k.id = s.key_id
JOIN projects p ON p.snapshot_id = k.snapshot_id AND p.id = k.project_id
WHERE s.snapshot_id = :snapshot_id AND s.scope_kind = 'unrestricted'
ORDER BY k.owner_type DESC, p.name, k.name;
