-- The registered input files a reconciliation of D reads, as one SHA-256: D's payment file, and
-- whether its content was found to be another file's twin.
select
    sha256(
        coalesce(
            string_agg(
                files.source_file || '=' || files.sha256
                || '/' || coalesce(payment_files.duplicate_of, ''),
                ',' order by files.source_file
            ),
            ''
        )
    ) as inputs_sha256
from landing.files as files
left join main.payment_files
    on files.source_file = payment_files.source_file
where files.file_kind = 'payments' and files.file_date = getvariable('as_of_date')
