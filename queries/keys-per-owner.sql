-- title: Keys per owner, with last use
-- answers: How many project API keys does each user or service account own, and when was any of them last used?
SELECT coalesce(k.owner_email, k.owner_name, k.owner_id) AS owner,
       k.owner_type,
       count(*) AS keys,
       datetime(max(k.last_used_at), 'unixepoch') AS last_used,
       sum(k.last_used_at IS NULL) AS never_used
FROM project_api_keys k
WHERE k.snapshot_id = :snapshot_id
GROUP BY k.owner_type, k.owner_id
ORDER BY keys DESC, owner;
