-- title: Spend by project over the usage window
-- answers: What did each project cost over the usage window (from the snapshot's usage_since to the pull), how much of that went through API keys, how many requests were made in it, and with how many keys?
-- Every cost is counted once: costs come grouped by project, line item and key at once.
-- Projects with no cost and no usage row are left out; costs and usage outside any
-- project are under "(no project)". A project billed in two currencies has a row for
-- each; its requests and keys are on the first.
WITH cost AS (
    SELECT project_id, currency, sum(amount) AS cost,
           sum(CASE WHEN api_key_id IS NOT NULL THEN amount ELSE 0 END) AS through_keys,
           row_number() OVER (PARTITION BY project_id ORDER BY currency) AS nth
    FROM costs
    WHERE snapshot_id = :snapshot_id
    GROUP BY project_id, currency
), used AS (
    SELECT project_id, sum(requests) AS requests
    FROM usage
    WHERE snapshot_id = :snapshot_id
    GROUP BY project_id
), keyed AS (
    SELECT project_id, count(DISTINCT api_key_id) AS keys
    FROM (SELECT project_id, api_key_id FROM costs WHERE snapshot_id = :snapshot_id
          UNION
          SELECT project_id, api_key_id FROM usage WHERE snapshot_id = :snapshot_id)
    GROUP BY project_id
), spent AS (
    SELECT c.project_id, c.currency, c.cost, c.through_keys,
           CASE WHEN c.nth = 1 THEN coalesce(u.requests, 0) ELSE 0 END AS requests, c.nth
    FROM cost c LEFT JOIN used u ON u.project_id IS c.project_id
    UNION ALL
    SELECT u.project_id, NULL, 0.0, 0.0, coalesce(u.requests, 0), 1
    FROM used u
    WHERE NOT EXISTS (SELECT 1 FROM cost c WHERE c.project_id IS u.project_id)
)
SELECT coalesce(p.name, s.project_id, '(no project)') AS project, s.project_id, p.status,
       round(s.cost, 6) AS cost, round(s.through_keys, 6) AS cost_through_keys, s.currency,
       s.requests,
       CASE WHEN s.nth = 1 THEN coalesce(kd.keys, 0) ELSE 0 END AS keys
FROM spent s
LEFT JOIN keyed kd ON kd.project_id IS s.project_id
LEFT JOIN projects p ON p.snapshot_id = :snapshot_id AND p.id = s.project_id
ORDER BY s.cost DESC, s.requests DESC, project, s.currency;
