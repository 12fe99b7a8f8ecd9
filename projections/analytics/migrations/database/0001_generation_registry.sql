-- The registry of generations of each projection. A generation's latest row
-- (highest version) wins: read it with argMax(..., version) GROUP BY
-- (projection, generation), exact before and after merges.
-- state: building | serving | retired | dropped.
-- Times are DateTime('UTC'), whole seconds; 1970-01-01 00:00:00 = not yet.
-- version: nanoseconds since the Unix epoch of the change.
CREATE TABLE IF NOT EXISTS ${db}.projection_generations (
    projection String,
    generation UInt32,
    state      String,
    created_at DateTime('UTC'),
    cutover_at DateTime('UTC'),
    retired_at DateTime('UTC'),
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (projection, generation);
