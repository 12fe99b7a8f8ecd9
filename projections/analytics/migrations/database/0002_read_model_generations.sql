-- The registry of generations, replacing projection_generations (0001)
-- with the same rows: its column `projection` is now read_model, a name no
-- release reserves. A generation's latest row (highest version) wins: read
-- it with argMax(..., version) GROUP BY (read_model, generation), exact
-- before and after merges.
-- state: building | serving | retired | dropped.
-- Times are DateTime('UTC'), whole seconds; 1970-01-01 00:00:00 = not yet.
-- version: nanoseconds since the Unix epoch of the change.
CREATE TABLE IF NOT EXISTS ${db}.read_model_generations (
    read_model String,
    generation UInt32,
    state      String,
    created_at DateTime('UTC'),
    cutover_at DateTime('UTC'),
    retired_at DateTime('UTC'),
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (read_model, generation);

-- Every row of the old registry (none on a new install). Run again after a
-- crash before this migration was recorded, it copies the same rows again:
-- they collapse (same key and version) and argMax reads the same state.
INSERT INTO ${db}.read_model_generations
    (read_model, generation, state, created_at, cutover_at, retired_at, version)
SELECT `projection`, generation, state, created_at, cutover_at, retired_at, version
FROM ${db}.projection_generations;
