-- Run before the extract's lines are typed, in the same transaction: the txn_ids on more than
-- one line of this one extract (landing_file), into the temp table repeated_keys, which the model
-- reads to make every such line ambiguous. A statement of its own rather than a CTE of the
-- model's insert: there it held the insert's pipeline back (docs/design.md, "Issue 13,
-- fourteenth stop"). Only an 8-byte hash of each line's id is kept, with its line number (a copy
-- of the ids themselves, or a second pass over every line, costs more at 40M lines); the few
-- lines whose hash repeats are read again for their ids as text, which decide. Lines without an
-- id share a hash too; their null id is never counted.
create or replace temp table repeated_keys as
with

line_id_hashes as materialized (
    select
        line_number,
        hash(line_id_text(raw_line)) as id_hash
    from landing_file
),

repeated_id_hashes as (
    select id_hash
    from line_id_hashes
    group by id_hash
    having count(*) > 1
),

lines_with_a_repeated_hash as (
    select line_id_hashes.line_number
    from line_id_hashes
    semi join repeated_id_hashes
        on line_id_hashes.id_hash = repeated_id_hashes.id_hash
),

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
