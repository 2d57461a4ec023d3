-- title: Roles granted through groups
-- answers: Which roles do users hold only because of a group, in which project, through which group?
SELECT u.email AS user, b.via_group_name AS via_group, b.scope,
       coalesce(p.name, '(every project)') AS project, b.role_name AS role,
       b.grants_create AS grants_key_creation
FROM access_bindings b
JOIN users u ON u.snapshot_id = b.snapshot_id AND u.id = b.principal_id
LEFT JOIN projects p ON p.snapshot_id = b.snapshot_id AND p.id = b.project_id
WHERE b.snapshot_id = :snapshot_id AND b.via_group_id IS NOT NULL
ORDER BY u.email, project;
