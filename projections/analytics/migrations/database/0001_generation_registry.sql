-- The registry of generations of each projection. A generation's latest row
-- (highest version) wins: read it with argMax(..., version) GROUP BY
-- (projection, generation), exact before and after merges.
-- state: building | serving | retired | dropped.
-- Times are DateTime('UTC'), whole seconds; 1970-01-01 00:00:00 = not yet.
-- version: nanoseconds since the Unix epoch of the change.
-- Superseded by read_model_generations (0002, 0003). The column name is
-- quoted because `projection` is a keyword in CREATE TABLE on current
-- releases (syntax error 62 unquoted); quoted or not, 18.16 creates the same
-- table, so installs that applied this migration before are unchanged.
CREATE TABLE IF NOT EXISTS ${db}.projection_generations (
    `projection` String,
    generation UInt32,
    state      String,
    created_at DateTime('UTC'),
    cutover_at DateTime('UTC'),
    retired_at DateTime('UTC'),
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (`projection`, generation);
