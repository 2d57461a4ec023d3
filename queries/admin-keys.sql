-- title: Admin keys
-- answers: Which admin API keys exist, who owns them, when do they expire and when were they last used?
SELECT a.name AS key, a.id AS key_id, a.redacted_value,
       coalesce(a.owner_name, a.owner_id) AS owner,
       datetime(a.created_at, 'unixepoch') AS created,
       coalesce(datetime(a.expires_at, 'unixepoch'), 'never') AS expires,
       coalesce(datetime(a.last_used_at, 'unixepoch'), 'never') AS last_used
FROM admin_api_keys a
WHERE a.snapshot_id = :snapshot_id
ORDER BY a.expires_at IS NOT NULL, a.name;
