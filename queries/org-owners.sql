-- title: Org owners
-- answers: Who holds the org owner role, directly or through a group, and since when are they in the org?
SELECT DISTINCT u.email AS user, u.name, b.kind AS how, b.via_group_name AS via_group,
       datetime(u.added_at, 'unixepoch') AS added
FROM access_bindings b
JOIN users u ON u.snapshot_id = b.snapshot_id AND u.id = b.principal_id
WHERE b.snapshot_id = :snapshot_id AND b.preset_id = 'org_owner'
ORDER BY u.email;
