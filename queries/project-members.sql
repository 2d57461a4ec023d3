-- title: Members of one project
-- answers: Who holds which role in the project :project (id or name), how, and what that gives them on keys?
-- params: project:text (e.g. --param project=Payments)
SELECT u.email AS user, b.kind AS how, b.role_name AS role, b.via_group_name AS via_group,
       l.level AS key_access, l.verdict AS can_create_keys
FROM access_bindings b
JOIN projects p ON p.snapshot_id = b.snapshot_id AND p.id = b.project_id
JOIN users u ON u.snapshot_id = b.snapshot_id AND u.id = b.principal_id
LEFT JOIN access_levels l ON l.snapshot_id = b.snapshot_id AND l.principal_id = b.principal_id
     AND l.project_id = b.project_id
WHERE b.snapshot_id = :snapshot_id AND (p.id = :project OR p.name = :project)
ORDER BY u.email, role;
