-- title: Top 20 spending keys
-- answers: Which 20 API keys cost the most over the usage window (from the snapshot's usage_since to the pull), what share of the organization's cost in that currency is each, who owns it, is the owner still in the project, and how many requests did it make?
-- Keys no longer listed (deleted) and keys whose owner left are ranked too. The share is
-- of every cost in the window, those not made with a key included.
WITH cost AS (
    SELECT api_key_id, currency, sum(amount) AS cost, max(project_id) AS project_id
    FROM costs
    WHERE snapshot_id = :snapshot_id AND api_key_id IS NOT NULL
    GROUP BY api_key_id, currency
    HAVING sum(amount) > 0
), total AS (
    SELECT currency, sum(amount) AS cost
    FROM costs
    WHERE snapshot_id = :snapshot_id
    GROUP BY currency
), used AS (
    SELECT api_key_id, sum(requests) AS requests
    FROM usage
    WHERE snapshot_id = :snapshot_id AND api_key_id IS NOT NULL
    GROUP BY api_key_id
), top AS (
    SELECT c.*, row_number() OVER (ORDER BY c.cost DESC, c.api_key_id, c.currency) AS rank
    FROM cost c
)
SELECT t.rank,
       coalesce(p.name, k.project_id, t.project_id) AS project,
       coalesce(k.name, '(not in the key list)') AS key, t.api_key_id AS key_id,
       coalesce(k.owner_email, u.email, k.owner_name, k.owner_id) AS owner, k.owner_type,
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
       round(t.cost, 6) AS cost, t.currency,
       round(100.0 * t.cost / total.cost, 1) AS percent_of_cost,
       coalesce(used.requests, 0) AS requests,
       CASE WHEN k.id IS NULL THEN NULL
            ELSE coalesce(datetime(k.last_used_at, 'unixepoch'), 'never') END AS last_used
FROM top t
JOIN total ON total.currency IS t.currency
LEFT JOIN used ON used.api_key_id = t.api_key_id
LEFT JOIN project_api_keys k ON k.snapshot_id = :snapshot_id AND k.id = t.api_key_id
LEFT JOIN projects p ON p.snapshot_id = :snapshot_id
     AND p.id = coalesce(k.project_id, t.project_id)
LEFT JOIN users u ON u.snapshot_id = :snapshot_id AND k.owner_type = 'user'
     AND u.id = k.owner_id
LEFT JOIN project_service_accounts sa ON sa.snapshot_id = :snapshot_id
     AND k.owner_type = 'service_account' AND sa.project_id = k.project_id
     AND sa.id = k.owner_id
WHERE t.rank <= 20
ORDER BY t.rank;
