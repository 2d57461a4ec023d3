-- title: Spend by key over the usage window
-- answers: What did each API key cost, and how many requests did it make, over the usage window (from the snapshot's usage_since to the pull): in which project, under which name, owned by whom, is that owner still in the project and in the organization, and when was the key last used?
-- Keys with a cost or a usage row in the window, also keys no longer listed (deleted:
-- no name, no owner) and keys whose owner left. Costs not made with a key are in
-- spend-by-project. A key billed in two currencies has a row for each; its requests
-- are on the first, so a sum of either column counts each once.
WITH cost AS (
    SELECT api_key_id, currency, sum(amount) AS cost, max(project_id) AS project_id,
           row_number() OVER (PARTITION BY api_key_id ORDER BY currency) AS nth
    FROM costs
    WHERE snapshot_id = :snapshot_id AND api_key_id IS NOT NULL
    GROUP BY api_key_id, currency
), used AS (
    SELECT api_key_id, sum(requests) AS requests, max(project_id) AS project_id
    FROM usage
    WHERE snapshot_id = :snapshot_id AND api_key_id IS NOT NULL
    GROUP BY api_key_id
), spent AS (
    SELECT c.api_key_id, coalesce(c.project_id, u.project_id) AS project_id, c.currency,
           c.cost, CASE WHEN c.nth = 1 THEN coalesce(u.requests, 0) ELSE 0 END AS requests
    FROM cost c LEFT JOIN used u ON u.api_key_id = c.api_key_id
    UNION ALL
    SELECT u.api_key_id, u.project_id, NULL, 0.0, coalesce(u.requests, 0)
    FROM used u
    WHERE u.api_key_id NOT IN (SELECT api_key_id FROM cost)
)
SELECT coalesce(p.name, k.project_id, s.project_id) AS project,
       coalesce(k.name, '(not in the key list)') AS key, s.api_key_id AS key_id,
       coalesce(k.owner_email, u.email, k.owner_name, k.owner_id) AS owner, k.owner_type,
       -- the key's owner_project_access, and a service account must still be listed
       -- (an archived project's accounts are not: cannot tell)
       CASE WHEN k.id IS NULL THEN NULL
            WHEN k.owner_project_access IS NOT 'active' THEN 'no'
            WHEN k.owner_type = 'service_account' AND sa.id IS NULL
                 THEN CASE WHEN p.status = 'archived' THEN NULL ELSE 'no' END
            ELSE 'yes' END AS owner_in_project,
       CASE WHEN k.id IS NULL THEN NULL
            WHEN k.owner_type = 'user' THEN CASE WHEN u.id IS NULL THEN 'no' ELSE 'yes' END
            WHEN k.owner_type = 'service_account' THEN
                 CASE WHEN sa.id IS NOT NULL THEN 'yes'
                      WHEN p.status = 'archived' THEN NULL ELSE 'no' END
       END AS owner_in_org,
       round(s.cost, 6) AS cost, s.currency, s.requests,
       CASE WHEN k.id IS NULL THEN NULL
            ELSE coalesce(datetime(k.last_used_at, 'unixepoch'), 'never') END AS last_used
FROM spent s
LEFT JOIN project_api_keys k ON k.snapshot_id = :snapshot_id AND k.id = s.api_key_id
LEFT JOIN projects p ON p.snapshot_id = :snapshot_id
     AND p.id = coalesce(k.project_id, s.project_id)
LEFT JOIN users u ON u.snapshot_id = :snapshot_id AND k.owner_type = 'user'
     AND u.id = k.owner_id
LEFT JOIN project_service_accounts sa ON sa.snapshot_id = :snapshot_id
     AND k.owner_type = 'service_account' AND sa.project_id = k.project_id
     AND sa.id = k.owner_id
ORDER BY s.cost DESC, s.requests DESC, project, key, s.currency;
