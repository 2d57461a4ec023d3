-- title: Users in no project
-- answers: Which org users hold no role in any project, directly or through a group?
SELECT u.email AS user, u.name, u.role AS org_role, datetime(u.added_at, 'unixepoch') AS added
FROM users u
WHERE u.snapshot_id = :snapshot_id
  AND NOT EXISTS (SELECT 1 FROM access_bindings b
                  WHERE b.snapshot_id = u.snapshot_id AND b.principal_id = u.id
                    AND b.scope = 'project')
ORDER BY u.email;
