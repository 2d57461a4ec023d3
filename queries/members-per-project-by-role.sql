-- title: Members per project by role
-- answers: How many users hold each role in each project, counting direct roles and roles through groups?
SELECT p.name AS project, b.role_name AS role,
       count(DISTINCT b.principal_id) AS users,
       count(DISTINCT CASE WHEN b.via_group_id IS NOT NULL THEN b.principal_id END) AS through_groups
FROM access_bindings b
JOIN projects p ON p.snapshot_id = b.snapshot_id AND p.id = b.project_id
WHERE b.snapshot_id = :snapshot_id AND b.scope = 'project' AND b.principal_type = 'user'
GROUP BY p.name, b.role_name
ORDER BY p.name, users DESC;
