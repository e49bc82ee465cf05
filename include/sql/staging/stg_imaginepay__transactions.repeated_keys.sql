-- Run before the extract's lines are typed, in the same transaction: the txn_ids on more than
-- one line of this one extract (landing_file), into the temp table repeated_keys, which the model
-- reads to make every such line ambiguous. The lines are grouped by the 8-byte hash of their id
-- taken as they were numbered (id_hash, the macro line_id_hash): a copy of the ids themselves,
-- or reading every numbered line again for its id, costs more at the largest size
-- (docs/design.md, "Repeated ids within an extract"). The few lines whose hash repeats are read
-- again for their ids as text, which decide. Lines without an id share a hash too; their null
-- id is never counted.
create or replace temp table repeated_keys as
with

repeated_id_hashes as materialized (
    select id_hash
    from landing_file
    group by id_hash
    having count(*) > 1
),

lines_with_a_repeated_hash as materialized (
    select landing_file.line_number
    from landing_file
    semi join repeated_id_hashes
        on landing_file.id_hash = repeated_id_hashes.id_hash
),

-- By line number, which DuckDB pushes into the scan of the numbered lines (they are in line
-- order): it reads the text of those few lines only. Joined on the hash instead, or with the CTEs
-- above not materialized (the planner then expects millions of lines and builds its join on the
-- numbered lines), it read every line's text.
line_ids as (
    select line_id_text(landing_file.raw_line) as txn_id
    from landing_file
    semi join lines_with_a_repeated_hash
        on landing_file.line_number = lines_with_a_repeated_hash.line_number
),

final as (
    select
        txn_id,
        count(*) as rows_with_txn_id
    from line_ids
    where txn_id is not null
    group by txn_id
    having count(*) > 1
)

select * from final
