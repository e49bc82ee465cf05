-- The registered input files a daily decision of D reads, as one SHA-256: D's credit snapshot,
-- the client rules and every ImaginePay extract dated on or before D.
select
    sha256(
        coalesce(
            string_agg(source_file || '=' || sha256, ',' order by source_file), ''
        )
    ) as inputs_sha256
from landing.files
where
    (file_kind = 'credits' and file_date = getvariable('as_of_date'))
    or file_kind = 'client_rules'
    or (file_kind = 'transactions' and file_date <= getvariable('as_of_date'))
