-- title: Users who cannot create keys, and why
-- answers: Which org users hold a role in a project that does not let them create API keys there, why (each role they hold there and what it gives on keys, and their key access in words), and whether the verdict rests on a contested catalog rule?
SELECT u.email AS user,
       p.name AS project,
       l.level AS key_access,
       l.verdict,
       CASE WHEN l.verdict = 'unknown' AND l.complete = 0
                 THEN 'cannot tell: a list that could add a role was not read'
            WHEN l.verdict = 'unknown' THEN 'cannot tell: a role is unknown to the catalog'
            WHEN l.level = 'read' THEN 'may read keys, not create them'
            ELSE 'no rights on keys'
       END || ': ' ||
       (SELECT group_concat(held, '; ')
          FROM (SELECT b.role_name || ' (' || b.kind || coalesce(' via ' || b.via_group_name, '')
                       || ') ' ||
                       CASE WHEN b.known = 0 THEN 'grants what the catalog does not know'
                            WHEN b.conditional = 1 THEN 'takes its key rights from the project role'
                            WHEN b.grants_manage = 1 THEN 'manages all keys'
                            WHEN b.grants_create = 1 THEN 'creates own keys'
                            WHEN b.grants_read = 1 THEN 'reads keys only'
                            ELSE 'gives no rights on keys' END AS held
                  FROM access_bindings b
                 WHERE b.snapshot_id = l.snapshot_id AND b.principal_id = l.principal_id
                   AND (b.project_id = l.project_id OR b.scope = 'organization')
                 ORDER BY b.scope DESC, b.kind, b.role_name)) AS why,
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
