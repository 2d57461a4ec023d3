-- title: Service accounts and their keys
-- answers: Which service accounts exist in each project, with which role, and how many keys do they own?
SELECT p.name AS project, sa.name AS service_account, sa.id AS service_account_id, sa.role,
       count(k.id) AS keys,
       datetime(max(k.last_used_at), 'unixepoch') AS last_used
FROM project_service_accounts sa
JOIN projects p ON p.snapshot_id = sa.snapshot_id AND p.id = sa.project_id
LEFT JOIN project_api_keys k ON k.snapshot_id = sa.snapshot_id AND k.project_id = sa.project_id
     AND k.owner_type = 'service_account' AND k.owner_id = sa.id
WHERE sa.snapshot_id = :snapshot_id
GROUP BY sa.project_id, sa.id
ORDER BY p.name, sa.name;
