-- title: Users who cannot create keys, and why
-- answers: Which org users hold a role in a project that does not let them create API keys there, what roles they hold, their key access level, and whether the verdict rests on a contested catalog rule?
SELECT u.email AS user,
       p.name AS project,
       l.level AS key_access,
       l.verdict,
       nullif(l.contested, '') AS contested_rule,
       CASE WHEN l.contested != '' THEN l.verdict_other END AS under_other_reading,
       (SELECT group_concat(b.role_name || coalesce(' via ' || b.via_group_name, ''), ', ')
          FROM access_bindings b
         WHERE b.snapshot_id = l.snapshot_id AND b.principal_id = l.principal_id
           AND b.project_id = l.project_id) AS project_roles
FROM access_levels l
JOIN users u ON u.snapshot_id = l.snapshot_id AND u.id = l.principal_id
JOIN projects p ON p.snapshot_id = l.snapshot_id AND p.id = l.project_id
WHERE l.snapshot_id = :snapshot_id
  AND l.principal_type = 'user'
  AND l.project_id IS NOT NULL
  AND l.archived = 0
  AND l.verdict != 'allowed'
ORDER BY u.email, p.name;
