-- The old registry, copied by 0002 (a migration of its own, so that a crash
-- between the copy and the drop leaves 0002 complete and this one safe to
-- run again). A binary older than this migration fails on the missing table
-- instead of reading a registry nobody updates any more.
DROP TABLE IF EXISTS ${db}.projection_generations;
