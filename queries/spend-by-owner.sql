-- title: Spend by key owner over the usage window
-- answers: What did the API keys of each owner (a user by e-mail, a service account by name) cost over the usage window (from the snapshot's usage_since to the pull), how many requests did they make, with how many keys in which projects, is the owner still in the organization, and how many of those keys has the owner lost access to?
-- Owners who left are listed too; keys no longer listed (deleted) have no owner and are
-- together under "(keys not in the key list)". Costs not made with a key are in
-- spend-by-project. An owner billed in two currencies has a row for each; the requests
-- and keys are on the first, so a sum of any column counts each once.
WITH cost AS (
    SELECT api_key_id, currency, sum(amount) AS cost, max(project_id) AS project_id
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
           c.cost, coalesce(u.requests, 0) AS requests
    FROM cost c LEFT JOIN used u ON u.api_key_id = c.api_key_id
    UNION ALL
    SELECT u.api_key_id, u.project_id, NULL, 0.0, coalesce(u.requests, 0)
    FROM used u
    WHERE u.api_key_id NOT IN (SELECT api_key_id FROM cost)
), owned AS (
    SELECT s.api_key_id, s.currency, s.cost, s.requests, k.owner_type, k.owner_id,
           k.last_used_at,
           coalesce(p.name, k.project_id, s.project_id) AS project,
           coalesce(k.owner_email, u.email, k.owner_name, k.owner_id,
                    '(keys not in the key list)') AS owner,
           CASE WHEN k.id IS NULL THEN NULL
                WHEN k.owner_type = 'user' THEN CASE WHEN u.id IS NULL THEN 'no' ELSE 'yes' END
                WHEN k.owner_type = 'service_account' THEN
                     CASE WHEN sa.id IS NOT NULL THEN 'yes'
                          WHEN p.status = 'archived' THEN NULL ELSE 'no' END
           END AS in_org,
           k.id IS NOT NULL AND (k.owner_project_access IS NOT 'active'
               OR (k.owner_type = 'service_account' AND sa.id IS NULL
                   AND p.status IS NOT 'archived')) AS without_access
    FROM spent s
    LEFT JOIN project_api_keys k ON k.snapshot_id = :snapshot_id AND k.id = s.api_key_id
    LEFT JOIN projects p ON p.snapshot_id = :snapshot_id
         AND p.id = coalesce(k.project_id, s.project_id)
    LEFT JOIN users u ON u.snapshot_id = :snapshot_id AND k.owner_type = 'user'
         AND u.id = k.owner_id
    LEFT JOIN project_service_accounts sa ON sa.snapshot_id = :snapshot_id
         AND k.owner_type = 'service_account' AND sa.project_id = k.project_id
         AND sa.id = k.owner_id
), by_owner AS (
    SELECT owner_type, owner_id, currency, max(owner) AS owner, max(in_org) AS in_org,
           sum(cost) AS cost, group_concat(DISTINCT project) AS projects,
           datetime(max(last_used_at), 'unixepoch') AS last_used
    FROM owned
    GROUP BY owner_type, owner_id, currency
), keys_of AS (
    SELECT owner_type, owner_id, count(*) AS keys, sum(requests) AS requests,
           sum(without_access) AS keys_without_access
    FROM (SELECT DISTINCT api_key_id, owner_type, owner_id, requests, without_access
          FROM owned)
    GROUP BY owner_type, owner_id
)
SELECT b.owner, b.owner_type, b.in_org AS owner_in_org,
       CASE WHEN b.nth = 1 THEN n.keys ELSE 0 END AS keys,
       CASE WHEN b.nth = 1 THEN n.keys_without_access ELSE 0 END AS keys_without_access,
       b.projects, round(b.cost, 6) AS cost, b.currency,
       CASE WHEN b.nth = 1 THEN n.requests ELSE 0 END AS requests,
       b.last_used
FROM (SELECT *, row_number() OVER (PARTITION BY owner_type, owner_id ORDER BY currency) AS nth
      FROM by_owner) b
JOIN keys_of n ON n.owner_type IS b.owner_type AND n.owner_id IS b.owner_id
ORDER BY b.cost DESC, requests DESC, b.owner, b.currency;
